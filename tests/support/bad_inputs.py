"""The harness of the bad-input catalogue (issue 9, requirement 2): one mistake per case, run through
``rpx bench`` in-process against an output folder that already holds a report.

Every case starts from a small split of its task: the first ``BASE_SAMPLES`` samples of the built-in
sample data's ``hard`` manifest, written to a manifest whose ``root`` is the sample data (the sample
files are only read; a case that corrupts a file writes its own copy under the test's ``tmp_path``
and names it by absolute path). A case breaks the config (extra CLI options), the manifest or one
sample (``Draft``: the sample at ``BROKEN``), or runs a model that returns the wrong thing
(``tests/support/bad_models.py``). :func:`run_case` copies the task's earlier report (one good run
per task and session, fixture ``earlier_reports``) into the case's output folder, runs the case and
asserts its exit code, an ``error:`` line with a hint and no traceback on stderr, every culprit
named, and the earlier report byte-identical (same files, bytes and mtimes; nothing added to its folder
or beside it).

A sample that fails when its split opens must fail before any model is built: such cases run
``tests.support.bad_models:recorded_baseline`` (the task's default baseline, recorded in
``bad_models.BUILT`` when built) instead of the baseline itself.

Loaded as a pytest plugin by ``tests/conftest.py`` (the session fixture ``earlier_reports``).
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from rpx_tasks.manifest import manifest_relpath

# How many samples of the task's hard split a case's manifest holds, and which of them a case breaks.
BASE_SAMPLES = 3
BROKEN = 1
# The model of the earlier report, and of cases whose mistake lies in the data.
BASELINE = "baseline"
RECORDED_BASELINE = "tests.support.bad_models:recorded_baseline"
# Placeholders of BadCase.culprits: the broken sample's id, the id of the first sample the model sees, and
# the case's manifest file.
SAMPLE = "{sample}"
FIRST = "{first}"
MANIFEST = "{manifest}"


class BuiltBeforeTheError(AssertionError):
    """A case's data error came after its model was built (mid-run, not when the split opened); everything
    else :func:`run_case` asserts held."""


class Files:
    """Writes broken sample files under a folder; each method returns the file's absolute path."""

    def __init__(self, folder: Path, sample_root: Path):
        self.folder = folder
        self.sample_root = sample_root

    def raw(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def text(self, name: str, value: Any) -> str:
        """``value`` as a JSON file."""
        return self.raw(name, json.dumps(value).encode())

    def png(self, name: str, array: np.ndarray) -> str:
        path = self.folder / name
        Image.fromarray(array).save(path)
        return str(path)

    def npy(self, name: str, array: Any) -> str:
        path = self.folder / name
        np.save(path, np.asarray(array))
        return str(path)

    def sample_bytes(self, relpath: str) -> bytes:
        """The bytes of a sample data file (``relpath`` relative to its root)."""
        return (self.sample_root / relpath).read_bytes()

    def sample_json(self, relpath: str) -> Any:
        """The parsed value of a sample data JSON file."""
        return json.loads((self.sample_root / relpath).read_text())


@dataclass
class Draft:
    """The manifest a case breaks: ``manifest`` (a dict written as JSON, unless ``text`` replaces it)."""

    manifest: dict[str, Any]
    files: Files
    text: str | None = None

    @property
    def entry(self) -> dict[str, Any]:
        """The sample the case breaks (the manifest's sample at ``BROKEN``)."""
        return self.manifest["samples"][BROKEN]


# What a case does to its draft manifest.
Breaks = Callable[[Draft], None]


@dataclass(frozen=True)
class BadCase:
    """One catalogue case: ``task``, a short ``name``, what ``breaks`` (the draft manifest; None keeps it
    good), the ``model`` option (None: none), extra CLI ``options``, the expected ``exit_code`` and the
    ``culprits`` stderr must name (placeholders ``SAMPLE``, ``FIRST`` and ``MANIFEST``); ``family`` is its part
    of the catalogue (config, manifest, files, predictions)."""

    task: str
    name: str
    culprits: tuple[str, ...]
    breaks: Breaks | None = None
    model: str | None = BASELINE
    options: tuple[str, ...] = ()
    exit_code: int = 1
    family: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return f"{self.task}:{self.name}"


def set_fields(**fields: Any) -> Breaks:
    """Set ``fields`` of the broken sample."""

    def breaks(draft: Draft) -> None:
        draft.entry.update(fields)

    return breaks


def drop_fields(*keys: str) -> Breaks:
    """Remove ``keys`` from the broken sample."""

    def breaks(draft: Draft) -> None:
        for key in keys:
            draft.entry.pop(key)

    return breaks


def set_file(key: str, write: Callable[[Draft], str]) -> Breaks:
    """Point the broken sample's ``key`` at the file ``write(draft)`` writes (its absolute path)."""

    def breaks(draft: Draft) -> None:
        draft.entry[key] = write(draft)

    return breaks


def base_manifest(task: str, sample_root: Path) -> dict[str, Any]:
    """The first ``BASE_SAMPLES`` samples of ``task``'s hard split, rooted at the sample data."""
    manifest = json.loads((sample_root / manifest_relpath(task, "hard")).read_text())
    return {"task": task, "split": "hard", "root": str(sample_root), "samples": manifest["samples"][:BASE_SAMPLES]}


def bench_argv(task: str, manifest: str, out_dir: Path, model: str | None, options: tuple[str, ...]) -> list[str]:
    """The argv of ``rpx bench`` on the CPU with plain output, the model (if any) and ``options`` last."""
    model_options = ["--model", model] if model else []
    return [
        "bench",
        task,
        *model_options,
        "--manifest",
        manifest,
        "--split",
        "hard",
        "--device",
        "cpu",
        "--output-dir",
        str(out_dir),
        "--plain",
        *options,
    ]


def run_cli(argv: list[str]) -> int:
    """``rpx_tasks.cli.main(argv)`` in-process; a usage error's SystemExit becomes its exit code.

    Flow-run heartbeats are off meanwhile: they tell a server that a long run on a worker is alive, and
    stopping their thread at the end of each flow run costs up to a second here, half of a short run.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from rpx_tasks.cli import main

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        try:
            return main(argv)
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1


def folder_state(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every path under ``folder``: a file's (bytes, mtime in ns), None for a folder."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


class EarlierReports:
    """One good run per task (the default baseline on its base manifest), each in its own folder."""

    def __init__(self, sample_root: Path, folder: Path):
        self.sample_root = sample_root
        self.folder = folder
        self._reports: dict[str, Path] = {}

    def report(self, task: str, capsys: pytest.CaptureFixture[str]) -> Path:
        """The folder of ``task``'s earlier report (run on first use). Fails the test if that run fails."""
        if task not in self._reports:
            manifest = self.folder / f"{task}.json"
            manifest.write_text(json.dumps(base_manifest(task, self.sample_root)))
            out_dir = self.folder / f"{task}-report"
            code = run_cli(bench_argv(task, str(manifest), out_dir, BASELINE, ()))
            captured = capsys.readouterr()
            assert code == 0, captured.err
            assert (out_dir / "result.json").is_file(), sorted(p.name for p in out_dir.iterdir())
            self._reports[task] = out_dir
        return self._reports[task]


@pytest.fixture(scope="session")
def earlier_reports(sample_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> EarlierReports:
    """The earlier report of each task, made once per session on first use."""
    return EarlierReports(sample_dataset, tmp_path_factory.mktemp("earlier-reports"))


def _write_case_manifest(case: BadCase, sample_root: Path, folder: Path) -> tuple[Path, str, str]:
    """The case's manifest file, the id of its broken sample and the id of the first sample in run order."""
    draft = Draft(copy.deepcopy(base_manifest(case.task, sample_root)), Files(folder, sample_root))
    broken_id = draft.entry["id"]
    first_id = min(
        draft.manifest["samples"], key=lambda entry: (entry["scene_id"], entry["phase"], entry.get("frame_idx", 0))
    )["id"]
    if case.breaks is not None:
        case.breaks(draft)
    path = folder / "manifest.json"
    path.write_text(draft.text if draft.text is not None else json.dumps(draft.manifest))
    return path, broken_id, first_id


def run_case(case: BadCase, earlier: EarlierReports, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``case`` into a copy of its task's earlier report and assert what every case must show
    (see the module docstring). Returns the captured stderr."""
    from tests.support import bad_models

    report = earlier.report(case.task, capsys)
    files = tmp_path / "files"
    files.mkdir()
    manifest, broken_id, first_id = _write_case_manifest(case, earlier.sample_root, files)
    out_dir = tmp_path / "out"
    shutil.copytree(report, out_dir)
    before = folder_state(out_dir)
    bad_models.BUILT.clear()

    code = run_cli(bench_argv(case.task, str(manifest), out_dir, case.model, case.options))
    err = capsys.readouterr().err

    assert code == case.exit_code, f"exit code {code}, expected {case.exit_code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert "error:" in err, err
    assert ("usage:" if case.exit_code == 2 else "hint:") in err, err
    for culprit in case.culprits:
        named = culprit.replace(SAMPLE, broken_id).replace(FIRST, first_id).replace(MANIFEST, str(manifest))
        assert named in err, f"{named!r} is not named; stderr:\n{err}"
    after = folder_state(out_dir)
    assert sorted(after) == sorted(before), "the output folder's files changed"
    changed = [name for name in before if after[name] != before[name]]
    assert not changed, f"the earlier report was touched: {changed}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["files", "out"], "a file appeared beside the report"
    if case.model == RECORDED_BASELINE and bad_models.BUILT:
        raise BuiltBeforeTheError(f"the model was built before the error: {bad_models.BUILT}; stderr:\n{err}")
    return err
