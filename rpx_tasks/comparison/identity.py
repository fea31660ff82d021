"""What identifies the two runs of a comparison, and the warnings when they are not like for like."""

from __future__ import annotations

from typing import Any

from rpx_tasks.comparison.loading import LoadedRun
from rpx_tasks.run_identity import device_class as run_device_class
from rpx_tasks.runs_listing import data_revision


def device_class(result: dict[str, Any]) -> str:
    """Return the device class of a run (``run_identity.device_class``: cuda, mps or cpu), from result.json's
    ``compute.device``, ``environment.device`` or ``run.device``; ``unknown`` when none is recorded."""
    device = (
        (result.get("compute") or {}).get("device")
        or (result.get("environment") or {}).get("device")
        or (result.get("run") or {}).get("device")
    )
    return run_device_class(str(device)) if device else "unknown"


def run_data_revision(result: dict[str, Any]) -> str | None:
    """Return the revision of the run's data: from ``run.data`` (Hub revision, manifest sha256, built-in sample
    version), else result.json's ``revision`` or ``manifest``."""
    data = (result.get("run") or {}).get("data") or {}
    return data_revision(data) or result.get("revision") or result.get("manifest")


def run_summary(run: LoadedRun) -> dict[str, Any]:
    """Return the ``runs.a`` / ``runs.b`` block of a comparison: id, folder and identity of ``run``."""
    result, record = run.result, run.result.get("run") or {}
    return {
        "id": record.get("id"),
        "folder": str(run.folder),
        "task": result.get("task"),
        "model": result.get("model"),
        "split": result.get("split"),
        "primary_metric": result.get("primary_metric"),
        "num_samples": result.get("num_samples"),
        "device_class": device_class(result),
        "data_revision": run_data_revision(result),
        "data": record.get("data"),
        "fingerprint": record.get("fingerprint"),
        "code_revision": (result.get("environment") or {}).get("code_revision"),
        "finished": record.get("finished"),
    }


def identity_warnings(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, str]]:
    """Return the warnings ``{code, message}`` for two run summaries that differ in what makes runs comparable:
    data revision, device class, split, model, or (same model name) the model's configuration or weights."""
    warnings = []

    def differ(key: str, code: str, what: str) -> None:
        if a.get(key) != b.get(key):
            warnings.append({"code": code, "message": f"{what} differ: A {a.get(key)!r}, B {b.get(key)!r}"})

    differ("data_revision", "data_revision_differs", "data revisions")
    differ("device_class", "device_class_differs", "device classes (latency, throughput and memory not comparable)")
    differ("split", "split_differs", "splits")
    differ("model", "model_differs", "models")
    same_setup = all(a.get(key) == b.get(key) for key in ("model", "split", "data_revision"))
    if same_setup and a.get("fingerprint") and b.get("fingerprint") and a["fingerprint"] != b["fingerprint"]:
        warnings.append(
            {
                "code": "model_revision_differs",
                "message": "same model name but a different run fingerprint: the model's revision, weights or "
                "settings (model kwargs, max samples, vocabulary) differ",
            }
        )
    return warnings
