"""Decode samples ahead of inference in worker threads, in order, memory bounded to a few batches.

PIL's PNG decoding and numpy release the GIL for most of their work, so threads overlap
decoding with inference and scoring. (Worker processes handing frames over through shared
memory were measured slower on 2 cores: creating and mapping a block per frame cost more
than the GIL contention it removed.)
"""

from __future__ import annotations

import collections
import itertools
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from rpx_tasks.sample import Sample


def prefetch_threads(decode: Callable[[dict], Sample], entries: Iterable[dict], batch_size: int, *, depth: int = 2, workers: int = 2) -> Iterator[list[Sample]]:
    """Yield batches of decoded samples in entry order, decoding up to ``depth`` batches ahead.

    Raises whatever ``decode`` raises (e.g. ManifestError), at the sample's turn.
    """
    executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rpx-decode")
    futures = (executor.submit(decode, entry) for entry in entries)
    try:
        pending: collections.deque[Future[Sample]] = collections.deque(itertools.islice(futures, (depth + 1) * batch_size))
        while pending:
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            pending.extend(itertools.islice(futures, len(batch)))
            yield batch
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
