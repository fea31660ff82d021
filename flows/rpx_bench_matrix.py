"""Flow ``rpx-bench-matrix``: many (task, model, split) runs of ``rpx-bench`` as subflow runs.

Runs go one after another (a GPU serves one benchmark at a time anyway); a failing run is
recorded and the next one starts. One table artifact, ``leaderboard_key``, summarises them all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.parameters import PARAMETER_FIELDS
from flows.rpx_bench import model_label, rpx_bench
from rpx_tasks.errors import ConfigError, RPXError

DEFAULT_LEADERBOARD_KEY = "rpx-leaderboard"


def run_parameters(run: dict[str, Any], defaults: dict[str, Any], output_root: str | None) -> dict[str, Any]:
    """The rpx-bench parameters of one matrix entry: ``defaults`` overlaid by the entry.

    With ``output_root`` and no explicit ``output_dir`` a run writes to
    ``<output_root>/<task>/<model>/<split>``. Raises ConfigError for keys rpx-bench does not take.
    """
    params = {**defaults, **run}
    unknown = sorted(set(params) - set(PARAMETER_FIELDS))
    if unknown:
        raise ConfigError(
            f"Matrix entry {run!r} has keys rpx-bench does not take: {unknown}.",
            hint=f"use only: {sorted(PARAMETER_FIELDS)}",
        )
    if output_root and not params.get("output_dir"):
        label = re.sub(r"[^A-Za-z0-9_.-]+", "__", model_label(params.get("model"), params.get("hf_checkpoint")))
        params["output_dir"] = str(
            Path(output_root) / str(params.get("task")) / label / str(params.get("split", "hard"))
        )
    return {key: value for key, value in params.items() if value is not None}


def leaderboard_row(params: dict[str, Any], state: Any = None, error: RPXError | None = None) -> dict[str, Any]:
    """One leaderboard row: the run's identity, its final state and its headline numbers or error."""
    row: dict[str, Any] = {
        "task": params.get("task"),
        "model": params.get("model") or params.get("hf_checkpoint"),
        "split": params.get("split", "hard"),
        "state": "Failed" if state is None else state.name,
        "primary_metric": None,
        "primary_value": None,
        "s_overall": None,
        "num_samples": None,
        "output_dir": None,
        "error": error.message if error is not None else None,
    }
    if state is not None and state.is_completed():
        summary = state.result()
        row.update(
            {
                key: summary.get(key)
                for key in ("primary_metric", "primary_value", "s_overall", "num_samples", "output_dir")
            }
        )
    elif state is not None:
        failure = state.result(raise_on_failure=False)
        row["error"] = failure.message if isinstance(failure, RPXError) else (state.message or repr(failure))
    return row


@flow(name="rpx-bench-matrix", log_prints=False)
def rpx_bench_matrix(
    runs: list[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    output_root: str | None = None,
    leaderboard_key: str = DEFAULT_LEADERBOARD_KEY,
) -> list[dict[str, Any]]:
    """Run every entry of ``runs`` (rpx-bench parameters, over ``defaults``) as a subflow run.

    Returns one row per run (task, model, split, state, primary metric and value, s_overall,
    num_samples, error) and publishes them as the table artifact ``leaderboard_key``. Raises
    an RPXError after all runs when any failed, so the matrix run ends Failed.
    """
    logger = get_run_logger()
    rows = []
    for run in runs:
        try:
            params = run_parameters(run, defaults or {}, output_root)
        except ConfigError as error:
            logger.error("%s\n  hint: %s", error.message, error.hint)
            rows.append(leaderboard_row(run, error=error))
            continue
        state = rpx_bench(**params, return_state=True)
        rows.append(leaderboard_row(params, state))
        logger.info("%s/%s/%s: %s", rows[-1]["task"], rows[-1]["model"], rows[-1]["split"], rows[-1]["state"])
    create_table_artifact(rows, key=leaderboard_key, description=f"RPX leaderboard: {len(rows)} runs")
    failed = [row for row in rows if row["state"] != "Completed"]
    if failed:
        names = ", ".join(f"{row['task']}/{row['model']}/{row['split']}" for row in failed)
        raise RPXError(
            f"{len(failed)} of {len(rows)} benchmark runs failed: {names}.",
            hint="open the failed subflow runs for their logs",
        )
    return rows
