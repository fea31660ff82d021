"""The built-in sample data: the procedural dataset, written once under the RPX cache, as a manifest source.

``manifest="builtin:sample"`` (``BUILTIN_SAMPLE``) names it wherever a manifest path is accepted.
It covers every registered task with a ``sample_entry`` and works offline.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import rpx_tasks
from rpx_tasks.constants import SPLITS, rpx_cache_dir
from rpx_tasks.errors import ConfigError
from rpx_tasks.manifest import MANIFESTS_DIR, manifest_relpath
from rpx_tasks.sample_data.writer import write_sample_dataset
from rpx_tasks.tasks import get_task, iter_tasks

# The `manifest` value that asks for the built-in procedural dataset instead of a file.
BUILTIN_SAMPLE = "builtin:sample"

# The manifests written per task: one per difficulty and "all" (every difficulty).
_MANIFEST_SPLITS = (*SPLITS, "all")


def is_builtin(manifest: str | None) -> bool:
    """Return True when ``manifest`` names the built-in sample data (``BUILTIN_SAMPLE``). Raises nothing."""
    return manifest == BUILTIN_SAMPLE


def sample_tasks() -> list[str]:
    """Return the names of the registered tasks the built-in sample data covers (those with a
    ``sample_entry``), in registry order. Raises nothing."""
    return [spec.name for spec in iter_tasks() if spec.sample_entry is not None]


def check_covered(task: str) -> None:
    """Raise ConfigError (with a hint) when the built-in sample data does not cover ``task``: an
    unknown task, or one without a ``sample_entry``. Returns None for a covered task."""
    if get_task(task).sample_entry is None:
        raise ConfigError(
            f"The built-in sample data does not cover {task!r}.",
            hint=f"it covers {', '.join(sample_tasks())}; or pass a real manifest",
            details={"task": task},
        )


def sample_data_dir() -> Path:
    """Return where the built-in dataset is written once: ``<rpx_cache_dir()>/sample-data-<version>-<tasks>``.

    The folder is named by the package version and a hash of the covered tasks, so a new version
    or task means new data. Raises nothing (the folder may not exist yet).
    """
    tasks = hashlib.sha256(",".join(sample_tasks()).encode()).hexdigest()[:8]
    return rpx_cache_dir() / f"sample-data-{rpx_tasks.__version__}-{tasks}"


def ensure_sample_data(root: str | Path | None = None) -> Path:
    """Write the built-in sample dataset to ``root`` (default ``sample_data_dir()``) unless it is there.

    A ``root`` that holds a ``manifests/`` folder counts as written and is left alone. The data
    is written to a temporary sibling and renamed into place, so concurrent runs never see half
    a dataset. Returns the dataset root. Raises OSError when the folder cannot be written.
    """
    root = Path(root or sample_data_dir())
    if (root / MANIFESTS_DIR).is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        write_sample_dataset(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        staging.rename(root)
    except OSError:  # another run finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return root


def builtin_manifest_path(task: str, split: str, *, root: str | Path | None = None) -> Path:
    """Return the manifest of ``task`` and ``split`` in the built-in sample data, writing the data first if needed.

    ``split`` is ``easy``, ``medium``, ``hard`` or ``all``; ``root`` defaults to
    ``sample_data_dir()``. Raises ConfigError (with a hint) for an unknown task, a task without
    sample data or an unknown split, before anything is written; OSError when the data cannot
    be written.
    """
    check_covered(task)
    if split not in _MANIFEST_SPLITS:
        raise ConfigError(
            f"The built-in sample data has no split {split!r}.",
            hint=f"choose one of {', '.join(_MANIFEST_SPLITS)}",
            details={"split": split},
        )
    return ensure_sample_data(root) / manifest_relpath(task, split)
