"""Flow ``rpx-bench-matrix``: many (task, model, split) runs of ``rpx-bench`` as subflow runs.

With ``deployment`` (an ``rpx-bench`` deployment, e.g. ``rpx-bench/matrix-entry``) every entry is its own flow
run of that deployment, in its own process on whichever worker is free: one worker per GPU, at most
``max_parallel`` entries at once (:mod:`flows.fan_out`). Without it the entries run in this process, one after
another. Either way a failing run is recorded and the others go on. One table artifact, ``leaderboard_key``,
summarises them all, and the leaderboard files (``leaderboard.parquet``, ``leaderboard.md``, ``leaderboard.png``:
:func:`rpx_tasks.leaderboard.write_leaderboard`, models ranked by overall WPS) of the completed runs go to
``leaderboard_dir`` (default: ``<output_root>/leaderboard``, else ``rpx_results/leaderboards/<leaderboard_key>``;
replaced by each matrix run, whose history is the table artifact's).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.fan_out import plan_fan_out, run_fanned_out
from flows.parameters import PARAMETER_FIELDS
from flows.rpx_bench import log_rpx_error, model_label, rpx_bench
from rpx_tasks.errors import ConfigError, RPXError
from rpx_tasks.leaderboard import write_leaderboard
from rpx_tasks.run_record import read_json_object
from rpx_tasks.steps.run_limits import RUN_LIMIT_PARAMETERS, RunLimits, flow_timeout

DEFAULT_LEADERBOARD_KEY = "rpx-leaderboard"


def run_parameters(run: dict[str, Any], defaults: dict[str, Any], output_root: str | None) -> dict[str, Any]:
    """The rpx-bench parameters of one matrix entry: ``defaults`` overlaid by the entry.

    With ``output_root`` and no explicit ``output_dir`` a run writes to
    ``<output_root>/<task>/<model>/<split>``. Raises ConfigError for keys rpx-bench does not take.
    """
    params = {**defaults, **run}
    known = set(PARAMETER_FIELDS) | set(RUN_LIMIT_PARAMETERS)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"Matrix entry {run!r} has keys rpx-bench does not take: {unknown}.",
            hint=f"use only: {sorted(known)}",
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
        try:
            summary = state.result()
        except Exception as unreadable:  # noqa: BLE001 - a worker's result storage this process cannot read
            row["error"] = f"completed, but its result could not be read here: {unreadable}"
            return row
        row.update(
            {
                key: summary.get(key)
                for key in ("primary_metric", "primary_value", "s_overall", "num_samples", "output_dir")
            }
        )
    elif state is not None:
        try:
            failure = state.result(raise_on_failure=False)
        except Exception:  # noqa: BLE001 - a failed run of another process: its state message says why
            failure = None
        row["error"] = failure.message if isinstance(failure, RPXError) else (state.message or repr(failure))
    return row


def leaderboard_folder(leaderboard_dir: str | None, output_root: str | None, leaderboard_key: str) -> Path:
    """Return where the leaderboard files go: ``leaderboard_dir``, else ``<output_root>/leaderboard``, else
    ``rpx_results/leaderboards/<leaderboard_key>`` (relative to the working directory: the checkout under a
    worker)."""
    if leaderboard_dir:
        return Path(leaderboard_dir)
    if output_root:
        return Path(output_root) / "leaderboard"
    return Path("rpx_results") / "leaderboards" / leaderboard_key


def write_leaderboard_files(rows: list[dict[str, Any]], folder: Path, leaderboard_key: str) -> dict[str, Path]:
    """Write the leaderboard files of the completed runs among ``rows`` (their result.json payloads) into
    ``folder``; returns their paths (empty when no run completed). A file that cannot be written is logged as
    an error (the table artifact has the numbers); raises nothing."""
    logger = get_run_logger()
    results = []
    for row in rows:
        payload = read_json_object(Path(row["output_dir"]) / "result.json") if row.get("output_dir") else None
        if payload is not None:
            results.append({**payload, "folder": row["output_dir"]})  # its rows give the primary metric's CI
    if not results:
        logger.warning("No completed run: no leaderboard files written.")
        return {}
    groups = sorted({f"{payload.get('task')} / {payload.get('split')}" for payload in results})
    try:
        paths = write_leaderboard(results, folder, title=f"RPX leaderboard: {', '.join(groups)}")
    except OSError as error:
        logger.error("Leaderboard files not written to %s: %s", folder, error)
        return {}
    logger.info("Leaderboard of %d runs written to %s", len(results), folder.resolve())
    return paths


@flow(name="rpx-bench-matrix", log_prints=False)
def rpx_bench_matrix(
    runs: list[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    output_root: str | None = None,
    leaderboard_key: str = DEFAULT_LEADERBOARD_KEY,
    leaderboard_dir: str | None = None,
    deployment: str | None = None,
    max_parallel: int | None = None,
    work_queues: list[str] | None = None,
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Run every entry of ``runs`` (rpx-bench parameters, over ``defaults``) as a subflow run.

    With ``deployment`` (``flow/deployment`` of rpx-bench) each entry is a flow run of that deployment on a
    worker, at most ``max_parallel`` at once (default: one per GPU queue), spread over ``work_queues``
    (default: the ready ``gpu-*`` queues of the deployment's pool), polled every ``poll_seconds``; without it
    they run here, one after another. ``timeout_seconds`` bounds the whole matrix run (entries still in
    flight are then cancelled); each entry's own ``timeout_seconds`` / ``benchmark_timeout_seconds`` /
    ``hub_retry_delays`` go in ``defaults`` or the entry.

    Returns one row per run (task, model, split, state, primary metric and value, s_overall,
    num_samples, error), publishes them as the table artifact ``leaderboard_key`` and writes the
    leaderboard files of the completed runs into ``leaderboard_dir`` (module doc). Raises
    an RPXError after all runs when any failed, so the matrix run ends Failed.
    """
    logger = get_run_logger()
    try:
        limits = RunLimits.from_parameters({"timeout_seconds": timeout_seconds})
    except RPXError as error:
        log_rpx_error(error)
        raise
    rows: list[dict[str, Any] | None] = []
    entries: list[tuple[int, dict[str, Any]]] = []
    for run in runs:
        try:
            entries.append((len(rows), run_parameters(run, defaults or {}, output_root)))
            rows.append(None)
        except ConfigError as error:
            logger.error("%s\n  hint: %s", error.message, error.hint)
            rows.append(leaderboard_row(run, error=error))
    with flow_timeout(limits):
        if deployment:
            try:
                plan = plan_fan_out(deployment, work_queues, max_parallel, len(entries), poll_seconds)
            except RPXError as error:
                log_rpx_error(error)
                raise
            logger.info(
                "Fanning %d runs out through deployment %s, at most %d at once, over queues: %s",
                len(entries),
                deployment,
                plan.max_parallel,
                ", ".join(plan.queues) or "(the deployment's)",
            )
            finished = run_fanned_out(plan, [params for _, params in entries])
            for (position, params), flow_run in zip(entries, finished):
                rows[position] = leaderboard_row(params, flow_run.state)
                log_row(rows[position])
        else:
            for position, params in entries:
                rows[position] = leaderboard_row(params, rpx_bench(**params, return_state=True))
                log_row(rows[position])
    create_table_artifact(rows, key=leaderboard_key, description=f"RPX leaderboard: {len(rows)} runs")
    write_leaderboard_files(rows, leaderboard_folder(leaderboard_dir, output_root, leaderboard_key), leaderboard_key)
    failed = [row for row in rows if row["state"] != "Completed"]
    if failed:
        names = ", ".join(f"{row['task']}/{row['model']}/{row['split']}" for row in failed)
        raise RPXError(
            f"{len(failed)} of {len(rows)} benchmark runs failed: {names}.",
            hint="open the failed subflow runs for their logs",
        )
    return rows


def log_row(row: dict[str, Any]) -> None:
    """Say in the matrix run's log how one entry ended."""
    get_run_logger().info("%s/%s/%s: %s", row["task"], row["model"], row["split"], row["state"])
