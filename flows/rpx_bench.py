"""Flow ``rpx-bench``: one (task, model, split) benchmark run, step by step.

validate config -> resolve device -> download split -> resolve model -> run benchmark -> write report

Parameters are the ``rpx bench`` options as plain JSON values, so ``prefect deployment run``
can pass them. ``manifest="builtin:sample"`` runs the built-in procedural dataset (offline).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from rpx_tasks.bench import discard_staged
from rpx_tasks.errors import ConfigError, RPXError
from rpx_tasks.models.registry import BASELINE_ALIAS, default_baseline
from rpx_tasks.runner import Progress
from rpx_tasks.steps import (
    BUILTIN_SAMPLE,
    download_split_step,
    report_progress,
    resolve_device_step,
    resolve_model_step,
    run_benchmark_step,
    validate_config_step,
    write_report_step,
)

# Flow parameter -> RunConfig field; the flow's `model` is RunConfig.model_name.
PARAMETER_FIELDS = {
    "task": "task", "split": "split", "model": "model_name", "hf_checkpoint": "hf_checkpoint",
    "repo_id": "repo_id", "revision": "revision", "cache_dir": "cache_dir", "manifest": "manifest",
    "max_samples": "max_samples", "batch_size": "batch_size", "device": "device", "output_dir": "output_dir",
    "geometric_coherence": "geometric_coherence", "model_kwargs": "model_kwargs",
}


def model_label(model: str | None, hf_checkpoint: str | None, task: str | None = None) -> str:
    """A short model name for flow-run names: the callable of an import path, the task's
    baseline for ``baseline``, else the name or checkpoint."""
    if model == BASELINE_ALIAS and task:
        try:
            return default_baseline(task).name
        except RPXError:
            return model
    if model:
        return model.rsplit(":", 1)[-1]
    return hf_checkpoint or "no-model"


def flow_run_name() -> str:
    """``<task>-<model>-<split>``, e.g. ``monocular_depth-ground_plane_depth-hard``."""
    params = flow_run.parameters
    label = model_label(params.get("model"), params.get("hf_checkpoint"), params.get("task"))
    return f"{params.get('task')}-{label}-{params.get('split')}"


def log_rpx_error(error: RPXError) -> None:
    """Put an RPX error's message and hint in the flow-run logs."""
    hint = f"\n  hint: {error.hint}" if error.hint else ""
    get_run_logger().error("%s: %s%s", type(error).__name__, error.message, hint)


@flow(name="rpx-bench", flow_run_name=flow_run_name, log_prints=False)
def rpx_bench(
    task: str,
    split: str = "hard",
    model: str | None = None,
    hf_checkpoint: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    manifest: str | None = None,
    max_samples: int | None = None,
    batch_size: int = 1,
    device: str = "cuda",
    output_dir: str | None = None,
    geometric_coherence: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark ``model`` (registry name or ``package.module:callable``) or ``hf_checkpoint`` on one split.

    ``geometric_coherence`` also computes SGC (``rpx bench --sgc``; tasks that support it).
    ``model_kwargs`` go to the model factory or HF loader (``rpx bench --model-kwarg KEY=VALUE``).

    Returns the run summary: task, model, split, device, num_samples, primary metric and value,
    s_overall, output_dir, result_json, summary_md and the artifact keys. Fails with the
    RPX error (message and hint logged) of the first step that fails; the config is validated
    before any download or model load.
    """
    values = {
        "task": task, "split": split, "model": model, "hf_checkpoint": hf_checkpoint, "repo_id": repo_id,
        "revision": revision, "cache_dir": cache_dir, "manifest": manifest, "max_samples": max_samples,
        "batch_size": batch_size, "device": device, "output_dir": output_dir,
        "geometric_coherence": geometric_coherence, "model_kwargs": model_kwargs,
    }
    params = {PARAMETER_FIELDS[name]: value for name, value in values.items()}
    builtin_sample = manifest == BUILTIN_SAMPLE
    try:
        config = validate_config_step(params, builtin_sample=builtin_sample)
        resolved_device = resolve_device_step(config.device, require_cuda=config.require_cuda)
        prepared = download_split_step(config, builtin_sample=builtin_sample)
        loaded_model = resolve_model_step(config, resolved_device)
        staged = run_benchmark_step(config, loaded_model, prepared, resolved_device)
        try:
            return write_report_step(config, prepared, staged, resolved_device)
        finally:
            discard_staged(staged)
    except RPXError as error:
        log_rpx_error(error)
        raise


def flow_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """The flow parameters of CLI-style options: ``model_name`` becomes ``model``, None values drop out."""
    renamed = {("model" if key == "model_name" else key): value for key, value in options.items()}
    unknown = sorted(set(renamed) - set(PARAMETER_FIELDS))
    if unknown:
        raise ConfigError(f"Not parameters of flow rpx-bench: {unknown}.", hint=f"known: {sorted(PARAMETER_FIELDS)}")
    return {key: value for key, value in renamed.items() if value is not None}


def check_prefect_api() -> None:
    """Raise ConfigError when PREFECT_API_URL names a server that does not answer (no-op without one)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise ConfigError(
            f"The Prefect server at {url} does not answer ({error}).",
            hint="start it with `prefect server start`, correct PREFECT_API_URL, or unset PREFECT_API_URL "
            "to run on Prefect's embedded API",
            details={"api_url": url},
        )


def run_bench_flow(params: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run flow rpx-bench in this process; returns its summary dict.

    ``params`` are the CLI options (``model`` or ``model_name``). ``progress(done, total,
    stage)`` receives the benchmark loop's progress. Re-raises the RPXError of a failed step
    unchanged, so the caller can print its message and hint; raises ConfigError when a
    configured Prefect server does not answer.
    """
    check_prefect_api()
    with report_progress(progress):
        return rpx_bench(**flow_parameters(params))
