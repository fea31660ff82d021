"""Flow ``rpx-bench``: one (task, model, split) benchmark run, step by step.

validate config -> resolve device -> download split -> open split (every sample checked) -> resolve model ->
run benchmark -> write report -> compare previous (never fails the run)

The flow run is tagged ``task:``, ``model:``, ``split:``, ``data:`` and ``device:`` once they are known, and
``regression`` when compare-previous finds the primary metric regressed.

``shards=K`` runs the split in K shards instead (``shard="1/K"`` .. ``"K/K"``, each a subflow run of this
flow, one after another) and merges them (step merge-shards) into one report equal to the unsharded run's.

Parameters are the ``rpx bench`` options as plain JSON values (:mod:`flows.parameters`), so
``prefect deployment run`` can pass them. ``manifest="builtin:sample"`` runs the built-in
procedural dataset (offline).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prefect import Flow, flow, get_run_logger
from prefect.runtime import flow_run

from flows.parameters import FLOW_ONLY_PARAMETERS, PARAMETER_DEFAULTS, PARAMETER_FIELDS, config_params, flow_parameters
from rpx_tasks.allocator import tune_allocator_for_frames
from rpx_tasks.bench import discard_staged
from rpx_tasks.cpu_budget import apply_torch_threads
from rpx_tasks.errors import ConfigError, RPXError
from rpx_tasks.model_selection import BASELINE_ALIAS, default_baseline
from rpx_tasks.run_identity import device_class
from rpx_tasks.runner import Progress
from rpx_tasks.sharding import Shard, check_shard_count
from rpx_tasks.steps import (
    add_flow_run_tags,
    compare_previous_step,
    merge_shards_step,
    open_split_step,
    resolve_device_step,
    resolve_model_step,
    run_benchmark_step,
    run_download_split_step,
    run_labels,
    validate_config_step,
    write_report_step,
)
from rpx_tasks.steps.run_limits import RUN_LIMIT_PARAMETERS, RunLimits, flow_timeout

__all__ = [
    "bench_flow",
    "check_prefect_api",
    "flow_parameters",
    "model_label",
    "rpx_bench",
    "run_bench_flow",
]


def model_label(model: str | None, hf_checkpoint: str | None, task: str | None = None) -> str:
    """Return a short model name for flow-run names: the callable of an import path, the task's
    baseline for ``baseline``, else the name or checkpoint. Raises nothing."""
    if model == BASELINE_ALIAS and task:
        try:
            return default_baseline(task).name
        except RPXError:
            return model
    if model:
        return model.rsplit(":", 1)[-1]
    return hf_checkpoint or "no-model"


def flow_run_name() -> str:
    """Return ``<task>-<model>-<split>``, e.g. ``monocular_depth-ground_plane_depth-hard``, with ``-shard-<i>of<K>``
    for a shard run and ``-<K>-shards`` for a run that fans out K shards."""
    params = flow_run.parameters
    label = model_label(params.get("model"), params.get("hf_checkpoint"), params.get("task"))
    name = f"{params.get('task')}-{label}-{params.get('split')}"
    if params.get("shard"):
        return f"{name}-shard-{str(params['shard']).replace('/', 'of').replace(' ', '')}"
    return f"{name}-{params['shards']}-shards" if params.get("shards") else name


def log_rpx_error(error: RPXError) -> None:
    """Put an RPX error's message and hint in the flow-run logs."""
    hint = f"\n  hint: {error.hint}" if error.hint else ""
    get_run_logger().error("%s: %s%s", type(error).__name__, error.message, hint)


def run_steps(params: dict[str, Any], progress: Progress | None, limits: RunLimits | None = None) -> dict[str, Any]:
    """Run the seven steps and compare-previous on RunConfig keyword arguments; returns the run summary
    (with ``comparison``: compare-previous's outcome).

    ``progress`` also receives the benchmark loop's progress; ``limits``: the run-benchmark timeout and the Hub
    retry delays (:mod:`rpx_tasks.steps.run_limits`). Must run inside a flow run.
    Re-raises the RPXError of the first step that fails, after logging its message and hint.
    """
    limits = limits or RunLimits()
    # The allocator setting is process-wide, so the entry point (this flow run) opts in, not the library.
    tune_allocator_for_frames()
    try:
        apply_torch_threads()  # RPX_TORCH_THREADS (process-wide)
        config = validate_config_step(params)
        labels = run_labels(config, config.device)  # once: it hashes a local manifest
        add_flow_run_tags(labels.tags(with_device=False))  # findable even if it fails
        resolved_device = resolve_device_step(config.device, require_cuda=config.require_cuda)
        labels = dataclasses.replace(labels, device=device_class(resolved_device))
        add_flow_run_tags(labels.tags())
        prepared = run_download_split_step(config, limits)  # refetches when a cached split lost files
        dataset = open_split_step(config, prepared)
        loaded_model = resolve_model_step.with_options(**limits.hub_retry_options())(config, resolved_device)
        benchmark = run_benchmark_step.with_options(**limits.benchmark_options())
        staged = benchmark(config, loaded_model, dataset, resolved_device, progress, labels)
        try:
            summary = write_report_step(config, prepared, staged, resolved_device)
        finally:
            discard_staged(staged)
    except RPXError as error:
        log_rpx_error(error)
        raise
    summary["comparison"] = compare_previous(config, resolved_device, summary)
    return summary


def run_shards(shard_flow: Flow, values: dict[str, Any], shards: int) -> dict[str, Any]:
    """Run shards 1/K .. K/K of the run ``values`` (flow parameters) as subflow runs of ``shard_flow``, one after
    another, then merge them; returns the merged run's summary with ``shards`` (each shard run's summary).

    With ``output_dir`` the shards write into ``<output_dir>/shards/shard-<i>of<K>/`` and the merged report
    into ``output_dir``; without, each goes where its run would (``rpx_results/<model>/<split>/...``). Must run
    inside a flow run. Raises ConfigError (bad ``shards``, or with ``shard``), the RPX error of a failed shard
    run (the shards already complete stay; the same flow run again resumes or reruns only what is missing),
    MergeError.
    """
    try:
        check_shard_count(shards, values.get("shard"))
        config = validate_config_step(config_params(values))  # a bad option fails once, before any shard runs
    except RPXError as error:
        log_rpx_error(error)
        raise
    output_dir = values.get("output_dir")
    summaries = []
    for index in range(1, shards + 1):
        shard = Shard(index, shards)
        folder = f"{output_dir}/shards/{shard.slug}" if output_dir else None
        summaries.append(shard_flow(**{**values, "shard": str(shard), "output_dir": folder}))
    try:
        summary = merge_shards_step(config, [item["output_dir"] for item in summaries], output_dir)
    except RPXError as error:
        log_rpx_error(error)
        raise
    summary["shards"] = [{key: item.get(key) for key in ("run_id", "output_dir", "device")} for item in summaries]
    summary["comparison"] = compare_previous(config, summary["device"], summary)
    return summary


def compare_previous(config: Any, device: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Run step compare-previous; returns its outcome. A failure of the step itself (not only of the
    comparison, which the step handles) is logged as a warning: it never fails the flow run. Raises nothing."""
    try:
        return compare_previous_step(config, device, summary)
    except Exception as error:  # noqa: BLE001 - the report is published; a comparison problem must not fail the run
        get_run_logger().warning("compare-previous failed (%s); the run is not affected.", error)
        return {"status": "error", "error": str(error)}


def bench_flow(progress: Progress | None = None) -> Flow:
    """Return flow ``rpx-bench``, whose benchmark step also sends its progress to ``progress``.

    ``progress(done, total, stage)`` is bound here, not passed as a flow parameter: flow
    parameters stay plain JSON (the CLI passes its live progress bar). Raises nothing.
    """

    # Parameters spelled out for Prefect's parameter schema; their defaults are RunConfig's (flows.parameters).
    # persist_result: the summary of a run on a worker is read back by the matrix that fanned it out
    # (Prefect's result storage, $PREFECT_HOME/storage by default: shared between the processes of one host).
    @flow(name="rpx-bench", flow_run_name=flow_run_name, log_prints=False, persist_result=True)
    def rpx_bench(
        task: str,
        split: str = PARAMETER_DEFAULTS["split"],
        model: str | None = PARAMETER_DEFAULTS["model"],
        hf_checkpoint: str | None = PARAMETER_DEFAULTS["hf_checkpoint"],
        repo_id: str | None = PARAMETER_DEFAULTS["repo_id"],
        revision: str | None = PARAMETER_DEFAULTS["revision"],
        cache_dir: str | None = PARAMETER_DEFAULTS["cache_dir"],
        manifest: str | None = PARAMETER_DEFAULTS["manifest"],
        max_samples: int | None = PARAMETER_DEFAULTS["max_samples"],
        shard: str | None = PARAMETER_DEFAULTS["shard"],
        batch_size: int = PARAMETER_DEFAULTS["batch_size"],
        device: str = PARAMETER_DEFAULTS["device"],
        require_cuda: bool = PARAMETER_DEFAULTS["require_cuda"],
        output_dir: str | None = PARAMETER_DEFAULTS["output_dir"],
        geometric_coherence: bool = PARAMETER_DEFAULTS["geometric_coherence"],
        model_kwargs: dict[str, Any] | None = PARAMETER_DEFAULTS["model_kwargs"],
        vocabulary: str | list[str] | None = PARAMETER_DEFAULTS["vocabulary"],
        alignment: str | None = PARAMETER_DEFAULTS["alignment"],
        frame_budget: int | None = PARAMETER_DEFAULTS["frame_budget"],
        sampling: str = PARAMETER_DEFAULTS["sampling"],
        fscore: bool = PARAMETER_DEFAULTS["fscore"],
        count_flops: bool = PARAMETER_DEFAULTS["count_flops"],
        resume: bool = PARAMETER_DEFAULTS["resume"],
        checkpoint_every: int = PARAMETER_DEFAULTS["checkpoint_every"],
        checkpoint_seconds: float = PARAMETER_DEFAULTS["checkpoint_seconds"],
        shards: int | None = FLOW_ONLY_PARAMETERS["shards"],
        precision: str = PARAMETER_DEFAULTS["precision"],
        compile: bool = PARAMETER_DEFAULTS["compile"],
        num_workers: int | None = PARAMETER_DEFAULTS["num_workers"],
        timeout_seconds: float | None = RUN_LIMIT_PARAMETERS["timeout_seconds"],
        benchmark_timeout_seconds: float | None = RUN_LIMIT_PARAMETERS["benchmark_timeout_seconds"],
        hub_retry_delays: list[float] | None = RUN_LIMIT_PARAMETERS["hub_retry_delays"],
    ) -> dict[str, Any]:
        """Benchmark ``model`` (registry name, ``baseline`` or ``package.module:callable``) or ``hf_checkpoint``.

        ``manifest`` is a local manifest file or ``builtin:sample`` (the built-in sample data);
        without it the split is downloaded from ``repo_id`` at ``revision``.
        ``geometric_coherence`` also computes SGC (``rpx bench --sgc``; tasks that support it).
        ``model_kwargs`` go to the model factory or HF loader (``rpx bench --model-kwarg KEY=VALUE``).
        ``vocabulary`` (open-vocabulary tasks) overrides the vocabulary every sample's model receives:
        a list of phrases, ``"a,b"``, ``"@FILE"`` or ``"frame-labels"`` (``rpx bench --vocabulary``).
        ``alignment`` (depth tasks): ``none``, ``ls_affine`` or ``ls_disparity``, fitted per frame before the
        depth metrics (``rpx bench --alignment``); None applies the registry model's default (video_depth: one
        fit per clip).
        ``frame_budget``, ``sampling`` (``all`` | ``stride``) and ``fscore`` (clip tasks: video_depth): at most
        ``frame_budget`` frames per clip, the first ones or every k-th; ``fscore`` adds fscore_5cm.
        ``require_cuda`` (``rpx bench --require-cuda``; the nightly deployments set it) fails the run with a
        ConfigError when the GPU is missing, instead of falling back to the CPU.
        ``count_flops=False`` skips the FLOP count (``rpx bench --no-flops``; flops_g null, with the reason).
        ``resume`` (default True) resumes the incomplete run of the same configuration, so a retried or
        re-run flow run continues where a crashed one stopped; False (``rpx bench --no-resume``) starts
        afresh. Rows and state are committed every ``checkpoint_every`` samples or ``checkpoint_seconds``.
        ``shard`` (``"i/K"``, ``rpx bench --shard``) runs shard i of K of the split only (whole clips, balanced
        by frame count); ``shards=K`` runs all K shards as subflow runs and merges them (``rpx merge``).
        ``precision`` (``fp32``, ``bf16``, ``fp16``: autocast) and ``compile`` (``torch.compile``) choose how an HF
        fast path runs (``rpx bench --precision`` / ``--compile``); ``num_workers`` the decoding workers
        (``rpx bench --num-workers``; None: sized from the cores available).
        ``timeout_seconds`` (the whole run) and ``benchmark_timeout_seconds`` (run-benchmark) fail a run that
        takes longer (TimedOut); ``hub_retry_delays`` (e.g. ``[30, 120, 600]``) are the waits before each retry
        of a transient Hub error in download-split and resolve-model (:mod:`rpx_tasks.steps.run_limits`; the
        nightly deployments set all three).

        Returns the run summary: task, model, split, device, num_samples, primary metric and value,
        s_overall, output_dir, result_json, summary_md and the artifact keys. Fails with the
        RPX error (message and hint logged) of the first step that fails; the config is validated
        before any download or model load.
        """
        given = dict(locals())
        values = {name: value for name, value in given.items() if name in PARAMETER_FIELDS}
        try:
            limits = RunLimits.from_parameters({name: given[name] for name in RUN_LIMIT_PARAMETERS})
        except RPXError as error:
            log_rpx_error(error)
            raise
        with flow_timeout(limits):
            if shards is not None:
                return run_shards(rpx_bench, values, shards)
            return run_steps(config_params(values), progress, limits)

    return rpx_bench


# The flow deployments and the matrix run (entrypoint flows/rpx_bench.py:rpx_bench).
rpx_bench = bench_flow()


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


def run_bench_flow(
    params: dict[str, Any], progress: Progress | None = None, *, check_api: bool = True
) -> dict[str, Any]:
    """Run flow rpx-bench in this process; returns its summary dict.

    ``params`` are the CLI options (``model`` or ``model_name``). ``progress(done, total,
    stage)`` receives the benchmark loop's progress. ``check_api=False`` skips asking the configured
    server for its health (the caller just did: ``rpx_tasks.cli_run_path.choose_run_path``).
    Re-raises the RPXError of a failed step unchanged, so the caller can print its message and hint;
    raises ConfigError when a configured Prefect server does not answer or an option is not a flow parameter.
    """
    if check_api:
        check_prefect_api()
    return bench_flow(progress)(**flow_parameters(params))
