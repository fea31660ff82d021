"""``rpx phi RUN...``: one line per run with Φ, its interpretation, J_min and the per-phase JEDI.

RUN is a run folder, its result.json, or a model/split folder (its ``latest`` run). A run whose result.json
predates Φ gets it computed from its ``per_sample_metrics.parquet`` (read column by column, batch by batch:
memory O(cells)). ``--json`` prints the records as a JSON list.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rpx_tasks.errors import ConfigError
from rpx_tasks.ui import PlainUI


def add_phi_parser(commands: Any) -> None:
    """Add ``rpx phi RUN... [--json]``."""
    phi = commands.add_parser(
        "phi",
        help="Φ (phase robustness) and J_min (worst-phase quality) of one or more runs, one line each",
        description="RUN: a run folder, its result.json, or a model/split folder (its `latest` run).",
    )
    phi.add_argument("runs", nargs="+", metavar="RUN", help="runs to summarise")
    phi.add_argument("--json", action="store_true", help="print the records as a JSON list")


def _rows_from_parquet(path: Path, metrics: list[str]):
    """Yield the rows of ``per_sample_metrics.parquet`` with scene, phase and ``metrics`` only, batch by batch."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    present = set(parquet.schema_arrow.names)
    columns = [name for name in ("scene", "phase", *metrics) if name in present]
    for batch in parquet.iter_batches(columns=columns):
        yield from batch.to_pylist()


def run_phase_robustness(run: str | Path) -> dict[str, Any]:
    """Return ``{run, task, model, split, phi, jedi, source}`` of one run: the ``readiness.phi`` / ``readiness.jedi``
    blocks of its result.json (source ``result.json``), or, for an older run without them, computed from its
    per_sample_metrics.parquet (source ``per_sample_metrics.parquet``).

    Raises ConfigError when ``run`` is not a finished run, or an older run lacks its per-sample file.
    """
    from rpx_tasks.comparison.loading import resolve_run_folder
    from rpx_tasks.readiness import phase_robustness
    from rpx_tasks.reports import PER_SAMPLE_FILE, RESULT_FILE
    from rpx_tasks.tasks import get_task

    folder = resolve_run_folder(run)
    payload = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    readiness = payload.get("readiness") or {}
    record = {"run": str(folder), "task": payload.get("task"), "model": payload.get("model")}
    record["split"] = payload.get("split")
    if "phi" in readiness and "jedi" in readiness:
        return {**record, "phi": readiness["phi"], "jedi": readiness["jedi"], "source": RESULT_FILE}
    per_sample = folder / PER_SAMPLE_FILE
    if not per_sample.is_file():
        raise ConfigError(
            f"Run {folder} has no Φ in its {RESULT_FILE} and no {PER_SAMPLE_FILE} to compute it from.",
            hint="rerun the benchmark with this version of rpx-tasks",
        )
    metrics = list(get_task(str(payload.get("task"))).phi_metrics)
    robustness = phase_robustness(_rows_from_parquet(per_sample, metrics), metrics)
    return {**record, **robustness, "source": PER_SAMPLE_FILE}


def phi_line(record: dict[str, Any]) -> str:
    """One line of ``rpx phi``: ``model task/split  Φ 0.9123 (small)  J_min 0.6500  J clutter 0.70, ...  run``."""
    from rpx_tasks.readiness.robustness_lines import per_phase_text

    phi, jedi = record.get("phi") or {}, record.get("jedi") or {}
    phi_part = (
        f"Φ {phi['phi']:.4f} ({phi.get('interpretation')})"
        if phi.get("phi") is not None
        else f"Φ n/a ({phi.get('reason')})"
    )
    j_min = jedi.get("j_min")
    j_part = f"J_min n/a ({jedi.get('reason')})"
    if j_min is not None:
        j_part = f"J_min {j_min:.4f}  J {per_phase_text(jedi)}"
    return f"{record['model']}  {record['task']}/{record['split']}  {phi_part}  {j_part}  [{record['run']}]"


def cmd_phi(args: argparse.Namespace, ui: PlainUI) -> int:
    """Run ``rpx phi``; returns 0. Raises ConfigError (exit 1) when a RUN is not a finished run."""
    records = [run_phase_robustness(run) for run in args.runs]
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        for record in records:
            print(phi_line(record))
    return 0
