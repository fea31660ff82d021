"""Where a run's time goes: wall and CPU seconds per pipeline stage, and which stage held the loop up.

The stages of one run (``STAGES``): ``read`` (decode a sample), ``preprocess`` / ``forward`` /
``postprocess`` (the model's call), ``validate`` (the prediction's contract), ``score`` (metrics,
alignment, temporal stability, SGC) and ``write`` (rows and checkpoint commits).

A :class:`StageClock` adds up, per stage,

- ``wall_s``: seconds a thread spent busy in the stage, summed over the threads and processes that
  ran it (decoding threads or the decoding worker, the scoring threads, the loop's own thread);
- ``cpu_s``: CPU seconds of that work: the CPU clock of the thread that ran it and, for the model's
  three stages (run on the loop's thread), the CPU of the process's native threads as well (torch's
  intra-op pool), i.e. the process CPU minus what its other Python threads used meanwhile (Linux;
  elsewhere the calling thread's CPU only);
- ``bottleneck_share``: the fraction of the loop's wall time during which the loop's thread was busy in
  the stage or waiting for it (waiting for the next decoded batch counts for ``read``, waiting for
  scores for ``validate`` and ``score`` in proportion to their busy time). The shares add up to at most 1;
  the rest is the loop's own bookkeeping.

Models may report their own preprocess and postprocess: a model that defines
``use_stage_clock(clock)`` gets the run's clock once and wraps its parts in ``clock.stage(...)``; the rest of
its ``predict`` call counts as ``forward``. A model without it counts as one ``forward`` stage.
:data:`NO_STAGES` is the clock of a model used outside a run: it times nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

STAGES = ("read", "preprocess", "forward", "postprocess", "validate", "score", "write")
MODEL_STAGES = ("preprocess", "forward", "postprocess")
_SCORING = ("validate", "score")
_PER_THREAD_CPU = sys.platform.startswith("linux")


def _thread_cpu_clock(native_id: int) -> int:
    """Linux's CPU-time clock id of thread ``native_id`` (the kernel's MAKE_THREAD_CPUCLOCK(tid, SCHED))."""
    return (~native_id << 3) | 6


@dataclass(frozen=True)
class CpuMark:
    """A reading of the CPU clocks: the process's, and each other Python thread's (by native id)."""

    process: float
    others: dict[int, float]
    thread: float


def cpu_mark() -> CpuMark:
    """Read the process CPU clock and those of the process's other Python threads. Raises nothing."""
    others: dict[int, float] = {}
    if _PER_THREAD_CPU:
        me = threading.get_native_id()
        for thread in threading.enumerate():
            native = thread.native_id
            if native is None or native == me:
                continue
            try:
                others[native] = time.clock_gettime(_thread_cpu_clock(native))
            except OSError:  # the thread ended meanwhile
                continue
    return CpuMark(time.process_time(), others, time.thread_time())


def cpu_since(mark: CpuMark) -> float:
    """CPU seconds since ``mark`` of the calling thread plus the process's native threads (torch's pools):
    the process's CPU minus what its other Python threads used meanwhile. Off Linux: the calling thread's.
    Raises nothing."""
    now = cpu_mark()
    if not _PER_THREAD_CPU:
        return max(0.0, now.thread - mark.thread)
    others = sum(value - mark.others.get(native, 0.0) for native, value in now.others.items())
    return max(0.0, now.process - mark.process - others)


class StageClock:
    """Busy wall and CPU seconds per stage (``STAGES``), and the loop's waiting time per stage; thread-safe.

    ``sync`` (e.g. a CUDA synchronize) runs before a model stage's clock stops, so asynchronous device work
    counts in the stage that queued it. The clock is created on the loop's thread: a stage timed there
    counts toward the bottleneck shares, and a model stage timed there measures native-thread CPU too
    (:func:`cpu_since`); any other counts its own thread's CPU.
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self._sync = sync or (lambda: None)
        self._home = threading.get_ident()
        self._lock = threading.Lock()
        self._wall = dict.fromkeys(STAGES, 0.0)
        self._cpu = dict.fromkeys(STAGES, 0.0)
        self._held = dict.fromkeys((*STAGES, "scoring"), 0.0)

    def __deepcopy__(self, memo: dict) -> "StageClock":
        # A deep copy of a model (the FLOP pass) gets a clock of its own: its extra call is not the run's.
        return StageClock(self._sync)

    def add(self, stage: str, wall: float, cpu: float, *, held: float = 0.0) -> None:
        """Add ``wall`` busy seconds and ``cpu`` CPU seconds to ``stage``, ``held`` of them on the loop's
        thread. Raises KeyError for a stage not in ``STAGES``."""
        with self._lock:
            self._wall[stage] += wall
            self._cpu[stage] += cpu
            self._held[stage] += held

    def hold(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` the loop's thread waited for ``stage`` (``scoring``: validate and score)."""
        with self._lock:
            self._held[stage] += seconds

    @contextlib.contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        """Time the block as busy in ``stage`` (``sync`` first for the model's stages). Raises KeyError for an
        unknown stage, at the end of the block."""
        home = threading.get_ident() == self._home
        native = home and stage in MODEL_STAGES  # torch's threads work for the model's stages only
        start_cpu = cpu_mark() if native else time.thread_time()
        start = time.perf_counter()
        try:
            yield
        finally:
            if stage in MODEL_STAGES:
                self._sync()
            wall = time.perf_counter() - start
            cpu = cpu_since(start_cpu) if native else time.thread_time() - start_cpu
            self.add(stage, wall, cpu, held=wall if home else 0.0)

    @contextlib.contextmanager
    def waiting(self, stage: str) -> Iterator[None]:
        """Count the block as the loop's thread waiting for ``stage`` (``read`` or ``scoring``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.hold(stage, time.perf_counter() - start)

    def totals(self, stages: tuple[str, ...]) -> tuple[float, float]:
        """(busy wall, CPU) seconds of ``stages`` so far, summed."""
        with self._lock:
            return sum(self._wall[s] for s in stages), sum(self._cpu[s] for s in stages)

    def report(self, loop_wall_s: float) -> dict[str, dict[str, float | None]]:
        """``{stage: {wall_s, cpu_s, bottleneck_share}}`` for every stage of ``STAGES``, the shares relative to
        ``loop_wall_s`` (None when the loop took no time). Raises nothing."""
        with self._lock:
            held = dict(self._held)
            busy_scoring = sum(self._wall[s] for s in _SCORING)
            for name in _SCORING:
                part = self._wall[name] / busy_scoring if busy_scoring > 0 else (1.0 if name == "score" else 0.0)
                held[name] += held["scoring"] * part
            return {
                name: {
                    "wall_s": round(self._wall[name], 6),
                    "cpu_s": round(self._cpu[name], 6),
                    "bottleneck_share": round(min(1.0, held[name] / loop_wall_s), 4) if loop_wall_s > 0 else None,
                }
                for name in STAGES
            }


class _NoStages(StageClock):
    """The clock of a model used outside a run: times nothing."""

    @contextlib.contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        yield

    def __deepcopy__(self, memo: dict) -> "StageClock":
        return self


NO_STAGES: StageClock = _NoStages()


def timed_decode(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``decode`` that also records on each sample it returns ``read_seconds = (wall, CPU)`` of its decoding
    (the calling thread's CPU clock). Raises what ``decode`` raises."""

    def run(entry: Any) -> Any:
        start, start_cpu = time.perf_counter(), time.thread_time()
        sample = decode(entry)
        sample.read_seconds = (time.perf_counter() - start, time.thread_time() - start_cpu)
        return sample

    return run


def stages_line(compute: dict[str, Any]) -> str | None:
    """One line of where the loop's time went: ``read 4% · preprocess 21% · forward 70% ... (bottleneck:
    forward; 12.3 s)``, from result.json's ``compute`` (None when it has no ``stages``)."""
    stages = compute.get("stages")
    if not stages:
        return None
    entries = {name: stages.get(name) or {} for name in STAGES}
    # A stage that never ran (a model without sub-stages has no preprocess) is left out.
    known = {
        name: entry["bottleneck_share"]
        for name, entry in entries.items()
        if entry.get("bottleneck_share") is not None and (entry["bottleneck_share"] > 0 or entry.get("wall_s"))
    }
    if not known:
        return None
    parts = " · ".join(f"{name} {100 * share:.0f}%" for name, share in known.items())
    top = max(known, key=known.get)
    wall = compute.get("stages_loop_wall_s")
    tail = f"; loop {wall:.1f} s" if isinstance(wall, (int, float)) else ""
    return f"{parts} (bottleneck: {top}{tail})"


__all__ = [
    "MODEL_STAGES",
    "NO_STAGES",
    "STAGES",
    "CpuMark",
    "StageClock",
    "cpu_mark",
    "cpu_since",
    "stages_line",
    "timed_decode",
]
