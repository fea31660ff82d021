"""Decode samples ahead of inference, in order, memory bounded to a few batches.

Two engines:

* ``prefetch_threads``: worker threads in this process. PIL and numpy release the GIL for
  part of the work only, so on few cores decoding threads barely scale.
* ``prefetch_processes``: one decoding worker process (``python -m rpx_tasks.decode_worker``)
  that hands frames over through one pre-allocated shared-memory ring (a memfd, never a file
  under /dev/shm) of as many slots as requests in flight. The worker writes a sample's array
  buffers into its slot and replies on a pipe; a reader thread here copies them out into fresh
  arrays and frees the slot at once, so no caller ever holds a view into a reused slot. (One
  shared-memory block per frame was measured slower: creating and mapping each costs more
  than the GIL contention it removes.)
"""

from __future__ import annotations

import collections
import itertools
import mmap
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

from rpx_tasks.decode_worker import read_message, write_message
from rpx_tasks.errors import DatasetError
from rpx_tasks.sample import Sample

_PAGE = mmap.PAGESIZE
_WORKER_EXIT_S = 5.0


def prefetch_threads(
    decode: Callable[[dict], Sample], entries: Iterable[dict], batch_size: int, *, depth: int = 2, workers: int = 2
) -> Iterator[list[Sample]]:
    """Yield batches of decoded samples in entry order, decoding up to ``depth`` batches ahead.

    Raises whatever ``decode`` raises (e.g. ManifestError), at the sample's turn.
    """
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rpx-decode")
    futures = (executor.submit(decode, entry) for entry in entries)
    try:
        pending: collections.deque[Future[Sample]] = collections.deque(
            itertools.islice(futures, (depth + 1) * batch_size)
        )
        while pending:
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            pending.extend(itertools.islice(futures, len(batch)))
            yield batch
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def processes_available() -> bool:
    """True where ``prefetch_processes`` can run (Linux: memfd shared memory, fd passing)."""
    return sys.platform.startswith("linux") and hasattr(os, "memfd_create")


class _Reader:
    """Reads the worker's replies in a thread, copies samples out of the ring, queues results."""

    def __init__(self, stream):
        self.stream = stream
        self.results: queue.Queue = queue.Queue()
        self.ring: mmap.mmap | None = None
        self.slot_size = 0
        self.thread = threading.Thread(target=self._run, name="rpx-decode-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                message = read_message(self.stream)
                if message is None:
                    break
                kind, slot, payload, spans, nbytes = message
                if kind == "error":
                    self.results.put((False, payload, 0))
                elif spans is None:
                    self.results.put((True, pickle.loads(payload), nbytes))
                else:
                    base = slot * self.slot_size
                    with memoryview(self.ring) as view:
                        buffers = [bytearray(view[base + offset : base + offset + length]) for offset, length in spans]
                    self.results.put((True, pickle.loads(payload, buffers=buffers), nbytes))
        except BaseException as exc:  # handed to the consumer, which raises it
            self.results.put((False, exc, 0))
        self.results.put(
            (
                False,
                DatasetError(
                    "The decoding worker exited unexpectedly.",
                    hint="see its error output above; re-run with RPX_DECODE_ENGINE=threads to decode in-process",
                ),
                0,
            )
        )


class _DecodeWorker:
    """The decoding worker process, its request pipe, its reader thread and the ring's slots.

    Counts the requests sent (``sent``, the next slot) and not yet answered (``outstanding``).
    ``close`` stops the process, joins the reader, unmaps the ring and closes ``ring_fd``.
    """

    def __init__(self, ring_fd: int):
        self.ring_fd = ring_fd
        self.process: subprocess.Popen | None = None
        self.reader: _Reader | None = None
        self.outstanding = 0
        self.n_slots = 0
        self.sent = 0

    def start(self) -> None:
        """Start ``python -m rpx_tasks.decode_worker`` with the ring fd, and the reader thread."""
        # The child imports rpx_tasks from wherever this process did, installed or not.
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rpx_tasks.decode_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(self.ring_fd,),
            env=env,
        )
        self.reader = _Reader(self.process.stdout)

    def post(self, message: tuple) -> None:
        """Send ``message`` to the worker; raises DatasetError when the worker is gone."""
        try:
            write_message(self.process.stdin, message)
        except OSError as exc:
            raise DatasetError(
                "The decoding worker exited unexpectedly.",
                hint="re-run with RPX_DECODE_ENGINE=threads to decode in-process",
            ) from exc

    def send(self, entry: dict) -> None:
        """Ask the worker to decode ``entry`` into the next slot (slot -1 before the ring exists)."""
        self.post(("decode", self.sent % self.n_slots if self.n_slots else -1, entry))
        self.sent += 1
        self.outstanding += 1

    def take(self) -> tuple[bool, Any, int]:
        """The next reply, in request order: (ok, sample or exception, bytes of array buffers)."""
        result = self.reader.results.get()
        self.outstanding -= 1
        return result

    def open_ring(self, nbytes: int, capacity: int) -> None:
        """Size the ring at ``capacity`` slots of ``nbytes`` plus headroom, map it, tell the worker."""
        self.n_slots = capacity
        slot_size = (nbytes + nbytes // 4 + 16 * 64 + _PAGE - 1) // _PAGE * _PAGE
        os.ftruncate(self.ring_fd, slot_size * self.n_slots)
        self.reader.slot_size = slot_size
        self.reader.ring = mmap.mmap(self.ring_fd, slot_size * self.n_slots)
        self.post(("ring", slot_size, self.n_slots))
        self.sent = 0

    def close(self) -> None:
        """Stop the worker (killed when requests are still outstanding), free the ring, close the fd."""
        process, reader = self.process, self.reader
        if process is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
            if self.outstanding:
                process.kill()
            try:
                process.wait(timeout=_WORKER_EXIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if reader is not None:
                reader.thread.join()
                if reader.ring is not None:
                    reader.ring.close()
            process.stdout.close()
        os.close(self.ring_fd)


def _next_batch(ready: collections.deque, worker: _DecodeWorker, batch_size: int) -> list[Sample]:
    """Up to ``batch_size`` samples: the ready ones first, then the worker's replies in order.

    Raises the error of the first failed sample.
    """
    batch = []
    while len(batch) < batch_size and (ready or worker.outstanding):
        ok, value = ready.popleft() if ready else worker.take()[:2]
        if not ok:
            raise value
        batch.append(value)
    return batch


def prefetch_processes(
    factory: str, args: tuple, entries: Iterable[dict], batch_size: int, *, depth: int = 2
) -> Iterator[list[Sample]]:
    """Yield batches of samples decoded in a worker process, in entry order, up to ``depth`` batches ahead.

    The worker builds its decode function as ``factory(*args)`` (``factory`` is
    ``"module:function"``, everything picklable). Raises whatever decoding raises (e.g.
    ManifestError, unchanged), at the sample's turn; DatasetError when the worker dies.
    Closing the generator early stops the worker and frees the ring.
    """
    capacity = max(1, (depth + 1) * batch_size)
    entries = iter(entries)
    ring_fd = os.memfd_create("rpx-decode-ring", os.MFD_CLOEXEC)
    worker = _DecodeWorker(ring_fd)
    try:
        worker.start()
        worker.post(("init", ring_fd, factory, args))
        first = next(entries, None)
        if first is None:
            return
        # The first sample travels in the pipe and sizes the ring's slots.
        worker.send(first)
        ok, value, nbytes = worker.take()
        if nbytes > 0:
            worker.open_ring(nbytes, capacity)
        ready = collections.deque([(ok, value)])
        for entry in itertools.islice(entries, capacity - 1):
            worker.send(entry)
        while ready or worker.outstanding:
            batch = _next_batch(ready, worker, batch_size)
            for entry in itertools.islice(entries, len(batch)):
                worker.send(entry)
            yield batch
    finally:
        worker.close()
