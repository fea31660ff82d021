"""Running ``rpx bench`` on the sample data from the task tests."""

from __future__ import annotations

import json

from rpx_tasks.cli import main
from rpx_tasks.manifest import manifest_relpath


def bench(task, manifest, out_dir, *extra) -> int:
    """Exit code of ``rpx bench <task> <extra> --manifest <manifest> --split hard`` on the CPU,
    plain output, reports in ``out_dir``."""
    return main(
        [
            "bench",
            task,
            *extra,
            "--manifest",
            str(manifest),
            "--split",
            "hard",
            "--device",
            "cpu",
            "--output-dir",
            str(out_dir),
            "--plain",
        ]
    )


def bench_all(task, extra, sample_dataset, out_dir, capsys) -> tuple[list[dict], str]:
    """Run :func:`bench` on the task's ``all.json`` manifest of the sample data; fails the test
    (showing stderr) unless it exits 0. Returns the manifest's samples and the captured stdout."""
    manifest = sample_dataset / manifest_relpath(task, "all")
    code = bench(task, manifest, out_dir, *extra)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(manifest.read_text())["samples"], captured.out
