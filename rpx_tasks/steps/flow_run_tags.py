"""Tags on the running flow run, added at run time (they depend on its parameters), so the UI's filters
find runs by task, model, split, device class and data source, and by ``regression``."""

from __future__ import annotations

from collections.abc import Iterable

from .logs import run_logger

REGRESSION_TAG = "regression"


def add_flow_run_tags(tags: Iterable[str]) -> list[str] | None:
    """Add ``tags`` to the flow run this code runs in (keeping its own tags); returns the flow run's tags
    afterwards, or None outside a flow run or when the API refused (logged as a warning: a tag is never
    worth failing a run for). Raises nothing."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    flow_run_id = flow_run.id
    if flow_run_id is None:
        return None
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(flow_run_id).tags or []
            merged = list(dict.fromkeys([*current, *tags]))
            if merged != list(current):
                client.update_flow_run(flow_run_id, tags=merged)
        return merged
    except Exception as error:  # noqa: BLE001 - tags are best effort
        run_logger().warning("Could not tag the flow run with %s: %s", list(tags), error)
        return None
