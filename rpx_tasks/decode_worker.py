"""The decoding worker process behind ``rpx_tasks.prefetch.prefetch_processes``.

Run as ``python -m rpx_tasks.decode_worker`` with stdin/stdout as pipes to the parent. Every
message either way is an 8-byte little-endian length followed by a pickle. The parent sends:

* ``("init", ring_fd, factory, args)`` once: ``factory`` is ``"module:function"``, called with
  ``args`` to build the decode function; ``ring_fd`` is an inherited memfd holding the ring;
* ``("ring", slot_size, n_slots)`` once the parent has sized the ring (maps ``ring_fd``);
* ``("decode", slot, entry)``: decode ``entry``; with ``slot >= 0`` the sample's array buffers
  are written into that slot of the ring, otherwise everything travels in the pipe.

Replies come in request order: ``("ok", slot, pickle5_bytes, spans, nbytes)`` where ``spans``
are the (offset, length) of the out-of-band buffers inside the slot (None when the sample was
pickled in-band, e.g. because it did not fit), or ``("error", slot, exception, None, 0)``.
The worker exits at end of input (parent closed the pipe or died) or when its output breaks.
"""

from __future__ import annotations

import importlib
import mmap
import os
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO

from rpx_tasks.allocator import tune_allocator_for_frames
from rpx_tasks.errors import DatasetError, RPXError

HEADER = struct.Struct("<Q")
ALIGN = 64


def write_message(stream: BinaryIO, message: Any) -> None:
    """Write one length-prefixed pickled message to ``stream`` and flush it."""
    payload = pickle.dumps(message, protocol=5)
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_message(stream: BinaryIO) -> Any:
    """Read one length-prefixed pickled message from ``stream``; None at end of input.

    Raises DatasetError when the stream ends in the middle of a message.
    """
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) != HEADER.size:
        raise DatasetError(
            "Decoding worker pipe closed in the middle of a message.", hint="the other process died; re-run"
        )
    (length,) = HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) != length:
        raise DatasetError(
            "Decoding worker pipe closed in the middle of a message.", hint="the other process died; re-run"
        )
    return pickle.loads(payload)


def _load_factory(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _portable_error(exc: BaseException, entry: Any) -> BaseException:
    """``exc`` itself when it survives pickling, else a DatasetError carrying its text."""
    if isinstance(exc, RPXError):
        return exc
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))
        return exc
    except Exception:  # any unpicklable error is replaced by a typed one
        sample = entry.get("id") if isinstance(entry, dict) else None
        return DatasetError(
            f"Decoding sample {sample!r} failed in the worker: {exc!r}", hint="see the error text for the cause"
        )


def _encode(
    sample: Any, ring: mmap.mmap | None, slot: int, slot_size: int
) -> tuple[bytes, list[tuple[int, int]] | None, int]:
    """Pickle ``sample`` with its contiguous buffers out of band into ``slot``; in-band when that fails."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(sample, protocol=5, buffer_callback=buffers.append)
    raws = []
    try:
        raws = [buffer.raw() for buffer in buffers]
    except BufferError:
        raws = None
    nbytes = sum(raw.nbytes for raw in raws) if raws is not None else 0
    if ring is not None and raws is not None and slot >= 0:
        spans, offset, base = [], 0, slot * slot_size
        for raw in raws:
            if offset + raw.nbytes > slot_size:
                spans = None
                break
            ring[base + offset : base + offset + raw.nbytes] = raw
            spans.append((offset, raw.nbytes))
            offset = (offset + raw.nbytes + ALIGN - 1) // ALIGN * ALIGN
        if spans is not None:
            return header, spans, nbytes
    return pickle.dumps(sample, protocol=5), None, nbytes


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer decode requests from ``requests`` on ``replies`` until end of input."""
    decode = None
    ring_fd = -1
    ring: mmap.mmap | None = None
    slot_size = 0
    try:
        while True:
            message = read_message(requests)
            if message is None:
                return
            kind = message[0]
            if kind == "init":
                _, ring_fd, factory, args = message
                decode = _load_factory(factory)(*args)
            elif kind == "ring":
                _, slot_size, n_slots = message
                ring = mmap.mmap(ring_fd, slot_size * n_slots)
            elif kind == "decode":
                _, slot, entry = message
                try:
                    sample = decode(entry)
                except Exception as exc:  # every failure goes back to the caller, in order
                    write_message(replies, ("error", slot, _portable_error(exc, entry), None, 0))
                    continue
                header, spans, nbytes = _encode(sample, ring, slot, slot_size)
                write_message(replies, ("ok", slot if spans is not None else -1, header, spans, nbytes))
    finally:
        if ring is not None:
            ring.close()


def main() -> None:
    """Entry point: serve on stdin/stdout; anything printed by decoding code goes to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    tune_allocator_for_frames()  # this process is an entry point of its own
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin.buffer, replies)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        try:
            replies.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
