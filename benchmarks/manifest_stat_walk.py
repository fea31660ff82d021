"""Time the download step's stale-cache check: the stat walk over a resolved manifest's files.

Usage: ``python benchmarks/manifest_stat_walk.py [--files 10000] [--repeat 20]``. Writes a
synthetic resolved manifest of N samples (one rgb and one depth file each, so 2N files) in a
temporary folder, then reports the best and median time of ``hub.resolved_files_present``
(JSON read included) and the budget it must meet: under 50 ms for 10,000 files (issue 10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rpx_tasks.hub import resolved_files_present


def write_manifest(folder: Path, samples: int) -> tuple[Path, int]:
    """Write ``samples`` samples' rgb and depth files and their resolved manifest; return (manifest, files)."""
    root = folder / "root"
    for name in ("rgb", "depth"):
        (root / name).mkdir(parents=True)
        for i in range(samples):
            (root / name / f"{i:06d}.png").touch()
    entries = [{"id": f"s{i}", "rgb": f"rgb/{i:06d}.png", "depth": f"depth/{i:06d}.png"} for i in range(samples)]
    manifest = folder / "hard.depth+rgb.json"
    payload = {"root": str(root), "samples": entries, "source": {"modalities": ["rgb", "depth"]}}
    manifest.write_text(json.dumps(payload, separators=(",", ":")))
    return manifest, 2 * samples


def main() -> None:
    """Run the benchmark and print one line per measure. Raises SystemExit on a wrong check result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="files to stat (half rgb, half depth)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest, files = write_manifest(Path(tmp), max(1, args.files // 2))
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            if not resolved_files_present(manifest):
                raise SystemExit("check said a file is missing; it is not")
            times.append((time.perf_counter() - started) * 1000)
    best, median = min(times), statistics.median(times)
    print(f"resolved_files_present over {files:,} files: best {best:.1f} ms, median {median:.1f} ms")
    print(f"budget: 50 ms per 10,000 files -> {50 * files / 10_000:.0f} ms")


if __name__ == "__main__":
    main()
