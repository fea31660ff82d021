"""The benchmark pipeline as plain functions, one per step; the Prefect steps wrap these.

validate_config -> resolve_device -> prepare_split -> load_model -> run_split -> write_report

``prepare_split`` opens the split it fetched, so a bad sample (any field of any entry) fails
before ``load_model``; ``run_split`` opens it again for the run.

``run_bench`` runs them all in-process without Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpx_tasks.alignment_record import resolve_alignment
from rpx_tasks.config import RunConfig
from rpx_tasks.contracts.model import Model
from rpx_tasks.dataset import SplitDataset, open_split, row_id
from rpx_tasks.device import resolve_device
from rpx_tasks.environment import environment_record
from rpx_tasks.errors import ConfigError, ModelRuntimeError, OutputError, RPXError
from rpx_tasks.hub.retries import retry_transient
from rpx_tasks.model_selection import resolve_model
from rpx_tasks.readiness import phase_robustness
from rpx_tasks.reports import (
    CELLS_FILE,
    PER_SAMPLE_FILE,
    PHASE_SCORES_FILE,
    RESULT_FILE,
    SHARD_STATE_FILE,
    SUMMARY_FILE,
    format_summary,
    per_sample_schema,
    publish,
    remove_partial_files,
    write_cells,
    write_result_json,
    write_text_atomic,
)
from rpx_tasks.run_identity import config_fingerprint
from rpx_tasks.run_journal import RunJournal, disk_full_as_output_error
from rpx_tasks.run_record import (
    RunRecord,
    complete_run,
    fail_run,
    open_run,
    publish_record,
    release_run,
    write_record,
)
from rpx_tasks.runner import Progress, ResumePoint, RunOutcome, run_benchmark
from rpx_tasks.sample_data.builtin import builtin_manifest_path, is_builtin
from rpx_tasks.sharding import shard_split, shard_summary, write_shard_state
from rpx_tasks.tasks import get_task

logger = logging.getLogger("rpx_tasks.run")

__all__ = [
    "RunConfig",
    "PreparedSplit",
    "StagedRun",
    "ReportPaths",
    "validate_config",
    "resolve_device",
    "prepare_split",
    "open_prepared",
    "load_model",
    "run_split",
    "write_report",
    "discard_staged",
    "run_bench",
]


def validate_config(params: dict[str, Any]) -> RunConfig:
    """Return a RunConfig built from plain values (CLI options or flow parameters; None means default).

    Raises ConfigError for any invalid value, the model's included (registry name, import path
    and its signature, HF fast path, model kwargs: ``model_selection.check_model_selection``),
    so a wrong model stops the run before its split is downloaded; ModelError for a built model
    of another task.
    """
    return RunConfig(**{key: value for key, value in params.items() if value is not None})


@dataclass(frozen=True)
class PreparedSplit:
    """A split ready to read: its manifest on disk and where it came from."""

    manifest_path: Path
    root: Path | None
    num_samples: int | None
    source: str  # "local" (--manifest or the built-in sample data) or "hub" (downloaded or mirror)
    repo_id: str | None = None
    revision: str | None = None


def download_modalities(config: RunConfig) -> tuple[str, ...]:
    """Return the modalities a run downloads: the task's, plus depth when SGC is asked for."""
    spec = get_task(config.task)
    extra = ("depth",) if config.geometric_coherence and "depth" in spec.optional_modalities else ()
    return (*spec.modalities, *extra)


def open_prepared(config: RunConfig, prepared: PreparedSplit) -> SplitDataset:
    """Open the prepared split for the config's task (``dataset.open_split``: every entry checked).

    ``max_samples`` cuts a local manifest here (a Hub download is already cut); then ``shard`` keeps its
    shard's clips (``sharding.shard_split``). Returns the SplitDataset. Raises ManifestError naming the first
    bad sample, field and value; ConfigError when the split has fewer clips than shards.
    """
    dataset = open_split(
        prepared.manifest_path,
        get_task(config.task),
        max_samples=config.max_samples if prepared.source == "local" else None,
        split=config.split,
        vocabulary=config.vocabulary,
        frames=config.frame_selection,
    )
    return shard_split(dataset, config.shard) if config.shard is not None else dataset


def prepare_split(config: RunConfig, *, reuse_resolved: bool = False) -> PreparedSplit:
    """Return the split's manifest: the local ``--manifest`` as is, the built-in sample data's
    manifest of the split (written under the RPX cache on first use), or a task-scoped Hub download.
    The samples are checked when the split is opened (``open_prepared``), before the model is loaded.
    ``reuse_resolved``: a Hub split resolved before and still complete on disk is used without any
    request (``hub.warm_split``; the Prefect download step gets the same from its cache instead).

    Raises ConfigError (the built-in sample data lacks the task), OSError (it cannot be written),
    DownloadError / ManifestError / DatasetError from the Hub layer.
    """
    if is_builtin(config.manifest):
        manifest = builtin_manifest_path(config.task, config.split)
        return PreparedSplit(manifest_path=manifest, root=None, num_samples=None, source="local")
    if config.manifest:
        return PreparedSplit(manifest_path=Path(config.manifest).resolve(), root=None, num_samples=None, source="local")
    from rpx_tasks import hub

    selection = {
        "modalities": download_modalities(config),
        "repo_id": config.effective_repo_id,
        "revision": config.effective_revision,
        "cache_dir": config.cache_dir,
        "max_samples": config.max_samples,
    }
    warm = hub.warm_split(config.task, config.split, **selection) if reuse_resolved else None
    downloaded = warm or hub.download_split(config.task, config.split, **selection)
    return PreparedSplit(
        manifest_path=downloaded.manifest_path,
        root=downloaded.root,
        num_samples=downloaded.num_samples,
        source="hub",
        repo_id=downloaded.repo_id,
        revision=downloaded.revision,
    )


def load_model(config: RunConfig, device: str) -> Model:
    """Return the Model the config's model selector names, on ``device`` (not yet set up).

    Raises ConfigError (unknown or mismatched model) / ModelError (it cannot be built).
    """
    return resolve_model(
        get_task(config.task),
        model=config.model,
        model_name=config.model_name,
        hf_checkpoint=config.hf_checkpoint,
        device=device,
        model_kwargs=config.model_kwargs,
        cache_dir=config.cache_dir,
        execution=config.execution,
    )


@dataclass
class StagedRun:
    """A finished run whose rows sit in its journal (``.rpx-checkpoint/`` of the run folder), not yet published.

    ``vocabulary``: the record of the vocabulary the model received (open-vocabulary tasks), else None.
    ``shard``: the record of the shard it ran (``--shard``), else None.
    ``run``: the run record (``run.json`` says ``running`` until the report is written); it holds the
    run folder's lock until ``write_report`` or ``discard_staged``.
    """

    outcome: RunOutcome
    journal: RunJournal
    output_dir: Path
    run: RunRecord
    metric_names: list[str] = field(default_factory=list)
    vocabulary: dict[str, Any] | None = None
    shard: dict[str, Any] | None = None


def _announce(message: str) -> None:
    logger.info(message)


def run_split(
    config: RunConfig,
    model: Model,
    dataset: SplitDataset,
    device: str,
    progress: Progress | None = None,
    orchestration: dict[str, Any] | None = None,
    announce: Callable[[str], None] = _announce,
) -> StagedRun:
    """Claim the run's folder (``run_record.open_run``: a new run, or the incomplete run of the same
    configuration, resumed) and run the benchmark loop, committing rows and state to the run's journal
    as it goes (``config.checkpoint_every`` samples / ``config.checkpoint_seconds``).

    ``progress(done, total, stage)`` receives the loop's progress; ``announce(message)`` says that
    a run resumes ("resuming run <id>: 3,000 of 3,600 samples done"); ``orchestration`` (plain data:
    the Prefect flow run and deployment) goes into the run record. Returns the StagedRun (rows not
    yet published; the folder's lock still held). Raises RunLockedError (another run writes into
    the folder), ConfigError (an incomplete run of another configuration is there), ManifestError
    (bad samples), ModelError (bad predictions), MetricError, OutputError (the disk is full). On
    failure the run record says ``failed`` (``resumable`` for a full disk or an error that is not
    an RPX error; ``running`` after an interrupt: the run is incomplete), the lock is released and
    any previous report is untouched.
    """
    spec = get_task(config.task)
    with disk_full_as_output_error(config.output_path):
        record = open_run(config, device, samples_total=len(dataset), orchestration=orchestration, resume=config.resume)
    journal = RunJournal(
        record.folder,
        per_sample_schema(spec.metric_names, clips=spec.clip is not None),
        every_samples=config.checkpoint_every,
        every_seconds=config.checkpoint_seconds,
        on_commit=lambda done: _record_progress(record, done),
        owner={"run_id": record.id, "fingerprint": record.fingerprint},
    )
    try:  # a checkpoint that does not fit is left as it is, for the command that started it
        with disk_full_as_output_error(record.folder, journal):
            remove_partial_files(record.folder)
            resume = _resume_point(journal, record, dataset)
    except BaseException:
        release_run(record)
        raise
    if resume is not None:
        unit = "frames" if spec.clip is not None else "samples"
        announce(f"resuming run {record.id}: {resume.samples_done:,} of {len(dataset):,} {unit} done")
    try:
        with disk_full_as_output_error(record.folder, journal):
            outcome = run_benchmark(
                model,
                dataset,
                spec,
                device=device,
                batch_size=config.batch_size,
                rows=journal,
                progress=progress,
                count_flops=config.count_flops,
                temporal_stability=config.temporal_stability,
                geometric_coherence=config.geometric_coherence,
                checkpoints=journal,
                resume=resume,
                alignment=resolve_alignment(config.task, config.alignment, config.model_name).mode,
                fscore=config.fscore,
                num_workers=config.num_workers,
            )
    except BaseException as error:
        _end_attempt(record, journal, error)
        raise
    return StagedRun(
        outcome=outcome,
        journal=journal,
        output_dir=record.folder,
        run=record,
        metric_names=spec.metric_names,
        vocabulary=dataset.vocabulary,
        shard=dataset.shard,
    )


def _record_progress(record: RunRecord, done: int) -> None:
    """After a journal commit: ``run.json`` says how many samples are done (``rpx runs`` shows it)."""
    record.samples_done = done
    write_record(record)


def _resume_point(journal: RunJournal, record: RunRecord, dataset: SplitDataset) -> ResumePoint | None:
    """Open the run's journal: returns the ResumePoint of a resumed run's last commit, or None (a new run, or a
    resumed run killed before its first commit).
    Raises ConfigError when the commit does not fit the split (more samples, another last sample),
    OutputError when it cannot be read."""
    if record.resumed_from is None:  # a new run: open_run already cleared any earlier run's journal
        journal.open()
        return None
    checkpoint = journal.open()
    if checkpoint is not None and (checkpoint.run_id, checkpoint.fingerprint) != (record.id, record.fingerprint):
        logger.warning(
            "Run %s: its folder's checkpoint belongs to another run; starting from the first sample.", record.id
        )
        journal.discard()
        journal.open()
        checkpoint = None
    if checkpoint is None or checkpoint.samples_done == 0:
        record.resumed_from = 0
        return None
    done = checkpoint.samples_done
    if done > len(dataset) or row_id(dataset.entries[done - 1], dataset.spec) != checkpoint.last_id:
        raise ConfigError(
            f"Run {record.id} in {record.folder} stopped after sample {checkpoint.last_id!r} ({done} done), "
            "which does not match this split.",
            hint="pass --no-resume to start afresh",
            details={"run_id": record.id, "samples_done": done, "last_id": checkpoint.last_id},
        )
    record.resumed_from = done
    return ResumePoint(samples_done=done, rows=journal.rows(), state=checkpoint.state)


def _end_attempt(record: RunRecord, journal: RunJournal, error: BaseException) -> None:
    """After an attempt raised: an interrupt (Ctrl-C) leaves the run incomplete; a failure worth retrying
    (a full disk, an error that is not an RPX error) marks it failed and resumable, keeping its journal;
    any other failure marks it failed and discards its journal. The lock is released in every case."""
    if not isinstance(error, Exception):
        release_run(record)
        return
    resumable = is_worth_resuming(error)
    if not resumable:
        journal.discard()
    fail_run(record, samples_done=journal.committed, resumable=resumable)


def is_worth_resuming(error: BaseException) -> bool:
    """Return whether the run's committed samples should be kept for the same command to resume: after a
    full disk (OutputError), a failure while the model ran (ModelRuntimeError: e.g. CUDA out of memory,
    which a smaller --batch-size avoids; batch size is not part of the fingerprint), or an error that is not
    an RPX error (a crash, a transient device or network error). Not after bad input: a prediction that
    breaks the task's contract (ModelError, AdapterError), a bad sample file (DatasetError), a metric or
    configuration error; that run failed for good and its folder is left as it was."""
    if isinstance(error, (OutputError, ModelRuntimeError)):
        return True
    return not isinstance(error, RPXError)


@dataclass(frozen=True)
class ReportPaths:
    """Where the report files of a run are (``phase_scores``: the chart, None where no report wrote it)."""

    output_dir: Path
    result_json: Path
    summary_md: Path
    per_sample: Path
    cells: Path
    phase_scores: Path | None = None


def result_payload(config: RunConfig, prepared: PreparedSplit, staged: StagedRun, device: str) -> dict[str, Any]:
    """Return the content of result.json (with ``vocabulary``, its source and size, for open-vocabulary
    tasks; ``alignment``, the depth alignment and its fit statistics, for depth tasks; for clip tasks
    ``num_samples`` counts clips, ``num_frames`` frames, and ``frames`` records the frame budget,
    sampling and fscore option; ``shard`` for a shard run: ``sharding.shard_summary``). Raises nothing."""
    outcome = staged.outcome
    vocabulary = {} if staged.vocabulary is None else {"vocabulary": staged.vocabulary}
    shard = {} if staged.shard is None else {"shard": shard_summary(staged.shard, base_fingerprint(config, staged))}
    aligns = get_task(config.task).align_prediction is not None
    alignment = {"alignment": _alignment_record(config, outcome)} if aligns else {}
    selection = config.frame_selection
    clips = (
        {}
        if selection is None
        else {"num_frames": outcome.compute.get("frames"), "frames": {**selection.record(), "fscore": config.fscore}}
    )
    return {
        "task": config.task,
        "model": config.display_name,
        "split": config.split,
        "repo_id": prepared.repo_id if prepared.source == "hub" else None,
        "revision": prepared.revision,
        "manifest": str(prepared.manifest_path),
        "num_samples": outcome.num_samples,
        **clips,
        **shard,
        **vocabulary,
        **alignment,
        "primary_metric": outcome.readiness["primary_metric"],
        "aggregated": outcome.aggregated,
        "readiness": outcome.readiness,
        "compute": outcome.compute,
        "environment": environment_record(device, dataset_revision=prepared.revision),
        "notes": outcome.notes,
        "run": staged.run.as_dict(),
    }


def _alignment_record(config: RunConfig, outcome: RunOutcome) -> dict[str, Any]:
    """result.json's ``alignment``: mode, source and, when the run aligned, the fit counts and statistics."""
    choice = resolve_alignment(config.task, config.alignment, config.model_name)
    if outcome.alignment is None:
        return {"mode": choice.mode, "source": choice.source}
    return outcome.alignment.record(choice.source)


def write_report(
    config: RunConfig, prepared: PreparedSplit, staged: StagedRun, device: str
) -> tuple[ReportPaths, dict[str, Any]]:
    """Publish the four report files into the run folder, then mark the run complete (``run.json``, and
    ``latest`` for a run without ``--output-dir``), delete its journal and release its lock; returns the
    report paths and the payload.

    result.json is written last of the report, so its presence means the report is complete. Raises
    OutputError when the disk is full, OSError when a file cannot be written (the run record then says
    ``failed`` and ``resumable``: the same command writes the report without predicting again).
    """
    try:
        with disk_full_as_output_error(staged.output_dir, staged.journal):
            published = _publish_report(config, prepared, staged, device)
    except BaseException as error:
        _end_attempt(staged.run, staged.journal, error)
        raise
    staged.journal.discard()
    release_run(staged.run)
    return published


def _publish_report(
    config: RunConfig, prepared: PreparedSplit, staged: StagedRun, device: str
) -> tuple[ReportPaths, dict[str, Any]]:
    """Write the report files (per-sample and cells Parquet, phase_scores.png, summary.md, result.json) and publish
    the complete run record; returns their paths and the payload (its ``readiness`` with ``phi`` and ``jedi``,
    computed from the journal's rows)."""
    out = staged.output_dir
    # samples_total counts the split's samples as the run reads them: frames, for a clip task
    outcome = staged.outcome
    complete_run(staged.run, samples_done=outcome.compute.get("frames", outcome.num_samples))
    payload = result_payload(config, prepared, staged, device)
    # Φ and J_min from the committed rows, read once (reference §8.7-8.8): O(cells) memory.
    robustness = phase_robustness(staged.journal.rows(), get_task(config.task).phi_metrics)
    payload["readiness"] = {**payload["readiness"], **robustness}
    paths = ReportPaths(
        output_dir=out,
        result_json=out / RESULT_FILE,
        summary_md=out / SUMMARY_FILE,
        per_sample=out / PER_SAMPLE_FILE,
        cells=out / CELLS_FILE,
        phase_scores=out / PHASE_SCORES_FILE,
    )
    rows = staged.journal.assemble(paths.per_sample, metadata={"rpx_run_id": staged.run.id})
    try:
        publish(rows, paths.per_sample)
    finally:
        rows.unlink(missing_ok=True)
    write_cells(paths.cells, staged.outcome.cells, staged.metric_names)
    from rpx_tasks.phase_chart import write_phase_scores

    write_phase_scores(out, payload, paths.phase_scores)
    write_text_atomic(paths.summary_md, format_summary(payload))
    if staged.shard is not None:  # what `rpx merge` needs besides the report; before result.json, which ends it
        write_shard_state(out / SHARD_STATE_FILE, staged.shard, staged.outcome.state, payload["shard"])
    write_result_json(paths.result_json, payload)
    publish_record(staged.run)
    return paths, payload


def base_fingerprint(config: RunConfig, staged: StagedRun) -> str:
    """Return the fingerprint of the unsharded run of ``config`` (a shard run's, without its shard), which
    the merge of all its shards equals. Raises ConfigError as ``config_fingerprint``."""
    return config_fingerprint(config, staged.run.data, with_shard=False)


def discard_staged(staged: StagedRun) -> None:
    """Let go of a staged run after ``write_report`` or when a later step fails: its lock is released. Its
    journal stays until the report is written, so the same command can still finish it. Raises nothing."""
    release_run(staged.run)


def run_bench(config: RunConfig, progress: Progress | None = None) -> tuple[ReportPaths, dict[str, Any]]:
    """Run every step in-process without Prefect; returns the report paths and payload.

    A Hub split resolved before and still complete on disk is used without any request; a transient
    download error is retried (``hub.retries``). Raises the RPXError of the first step that fails
    (ConfigError, DownloadError, ManifestError, ModelError, MetricError).
    """
    device = resolve_device(config.device, require_cuda=config.require_cuda)
    # As the Prefect download step: a warm cache makes no request; transient errors are retried.
    prepared = retry_transient(lambda: prepare_split(config, reuse_resolved=True))
    dataset = open_prepared(config, prepared)
    model = load_model(config, device)
    staged = run_split(config, model, dataset, device, progress)
    try:
        return write_report(config, prepared, staged, device)
    finally:
        discard_staged(staged)
