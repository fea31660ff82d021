"""When the ``rpx`` command lets Python's cyclic garbage collector run; entry points opt in explicitly.

A benchmark run imports Prefect, pydantic, numpy, Pillow and pyarrow: about a million
objects that live until the process ends. Every full collection walks all of them (0.05-0.1 s on the
2-core machine) and at exit the interpreter collects and tears them down once more (~0.3-0.4 s):
together ~0.6 s of a CLI run against a Prefect server that takes ~3 s in all, for no garbage (imports
make next to none). So the CLI

- defers collection while it starts (``defer_collection``: argument checks and imports; commands other
  than ``bench`` and ``demo`` turn it back on once their arguments are parsed),
- freezes what it imported out of the collector's view and turns collection on when the work starts
  (``collect_from_now_on``): the benchmark loop's garbage is collected as before, the imports are
  never walked again. The imports' few cyclic leftovers (~10k small objects, a few MB) are frozen with
  them for good: collecting them first would walk the million objects this avoids,
- freezes everything before it returns (``skip_collection_at_exit``): the interpreter's final
  collection then has nothing to walk. Files are closed by the code that writes them, never by
  the collector, and atexit handlers (Prefect's log and event flushing) still run.

Library code never calls these: they change the whole process (``gc.freeze`` is process-wide).
"""

from __future__ import annotations

import gc


def defer_collection() -> None:
    """Turn the cyclic collector off until ``collect_from_now_on``; returns None."""
    gc.disable()


def collect_from_now_on() -> None:
    """Where ``defer_collection`` turned the collector off: move every object alive now out of its view for good
    (``gc.freeze``) and turn it on; returns None. A no-op where the collector is on (``main`` called by a test
    or a notebook, which never deferred it). Call it once the imports are done and before the work that makes
    garbage."""
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()


def skip_collection_at_exit() -> None:
    """Freeze every object alive now, so the interpreter's final collection walks none of them; returns None.
    Call it as the last thing before the process exits."""
    gc.freeze()


__all__ = ["collect_from_now_on", "defer_collection", "skip_collection_at_exit"]
