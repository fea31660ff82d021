"""How long a run may take and how long it keeps retrying the Hub: the flow parameters ``timeout_seconds``,
``benchmark_timeout_seconds`` and ``hub_retry_delays`` of ``rpx-bench`` (and of each matrix entry).

- ``timeout_seconds``: the whole flow run; past it the run fails as *TimedOut* (Prefect's own flow timeout,
  applied around the steps by ``flow_timeout``), its GPU slot and run folder released.
- ``benchmark_timeout_seconds``: the ``run-benchmark`` step (Prefect's task timeout); a timed-out benchmark is
  not retried (it would hang again).
- ``hub_retry_delays``: the seconds to wait before each retry of a transient Hub error in ``download-split``
  and ``resolve-model`` (e.g. ``[30, 120, 600]`` for a scheduled run, which may wait out a Hub incident);
  None keeps the interactive default, 3 retries after about 2, 4 and 8 s (``RPX_DOWNLOAD_BACKOFF_S``).

None means no limit, and is the default of an interactive run; the nightly deployments set all three.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from rpx_tasks.errors import ConfigError

# The flow parameters of this module, with their defaults (no limit, the interactive retry delays).
RUN_LIMIT_PARAMETERS: dict[str, Any] = {
    "timeout_seconds": None,
    "benchmark_timeout_seconds": None,
    "hub_retry_delays": None,
}

# At most this many retries of a transient Hub error.
MAX_HUB_RETRIES = 10


def _positive_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"Parameter {name!r} must be a positive number of seconds, not {value!r}.",
            hint=f"e.g. {name}=21600 (6 h), or leave it out for no limit",
            details={"parameter": name, "value": value},
        )
    return float(value)


@dataclass(frozen=True)
class RunLimits:
    """The checked values of the parameters in ``RUN_LIMIT_PARAMETERS``."""

    timeout_seconds: float | None = None
    benchmark_timeout_seconds: float | None = None
    hub_retry_delays: tuple[float, ...] | None = None

    @classmethod
    def from_parameters(cls, values: dict[str, Any]) -> "RunLimits":
        """Check and return the limits of flow parameter ``values`` (missing ones: no limit).

        Raises ConfigError for a timeout that is not a positive number, or retry delays that are not a list of
        0 to ``MAX_HUB_RETRIES`` non-negative numbers.
        """
        delays = values.get("hub_retry_delays")
        if delays is not None:
            if not isinstance(delays, (list, tuple)) or len(delays) > MAX_HUB_RETRIES:
                raise ConfigError(
                    f"Parameter 'hub_retry_delays' must be a list of at most {MAX_HUB_RETRIES} delays in seconds, "
                    f"not {delays!r}.",
                    hint="e.g. hub_retry_delays=[30, 120, 600] (3 retries), [] for none",
                    details={"parameter": "hub_retry_delays", "value": delays},
                )
            for delay in delays:
                if delay != 0:
                    _positive_seconds("hub_retry_delays", delay)
            delays = tuple(float(delay) for delay in delays)
        return cls(
            timeout_seconds=_positive_seconds("timeout_seconds", values.get("timeout_seconds")),
            benchmark_timeout_seconds=_positive_seconds(
                "benchmark_timeout_seconds", values.get("benchmark_timeout_seconds")
            ),
            hub_retry_delays=delays,
        )

    def hub_retry_options(self) -> dict[str, Any]:
        """Return the ``with_options`` of a step that retries transient Hub errors: ``retries`` and
        ``retry_delay_seconds`` from ``hub_retry_delays``; empty (the step's own defaults) without them."""
        if self.hub_retry_delays is None:
            return {}
        return {"retries": len(self.hub_retry_delays), "retry_delay_seconds": list(self.hub_retry_delays) or 0}

    def benchmark_options(self) -> dict[str, Any]:
        """Return the ``with_options`` of run-benchmark: its ``timeout_seconds`` when set, else nothing."""
        return {} if self.benchmark_timeout_seconds is None else {"timeout_seconds": self.benchmark_timeout_seconds}


class RunTimeoutError(TimeoutError):
    """A flow run went past its ``timeout_seconds``."""


@contextmanager
def flow_timeout(limits: RunLimits) -> Iterator[None]:
    """Raise RunTimeoutError when the block runs longer than ``limits.timeout_seconds``; no-op without it.

    Used around the flow's body: Prefect's flow engine turns a TimeoutError into the *TimedOut* state, as for a
    flow decorated with ``timeout_seconds`` (Prefect's own timeout does the interrupting).
    """
    from prefect.utilities.timeout import timeout

    try:
        with timeout(seconds=limits.timeout_seconds, timeout_exc_type=RunTimeoutError):
            yield
    except RunTimeoutError:
        raise RunTimeoutError(f"the run exceeded its timeout_seconds ({limits.timeout_seconds:g} s)") from None
