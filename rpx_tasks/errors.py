"""The RPX error tree.

Every mistake a user can make (bad config, bad manifest, unreachable Hub, a model that
returns the wrong thing) is raised as one of these, with a hint that says what to do.
The CLI prints ``message`` and ``hint`` without a traceback and exits with code 1.
"""

from __future__ import annotations

from typing import Any


class RPXError(Exception):
    """Base of every RPX error: a message, an optional hint and a details dict."""

    def __init__(self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = dict(details) if details else {}

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def __reduce__(self):
        # Keep hint and details when the error crosses a process or a Prefect result store.
        return (_rebuild_error, (type(self), self.message, self.hint, self.details))


def _rebuild_error(cls, message, hint, details):
    return cls(message, hint=hint, details=details)


class ConfigError(RPXError):
    """Invalid configuration or command-line values."""


class MergeError(ConfigError):
    """The runs given to ``rpx merge`` are not the complete shards of one run (``details["reason"]``:
    ``not_a_run``, ``incomplete``, ``not_a_shard``, ``mismatch``, ``overlap``, ``missing``, ``corrupt``,
    ``output``)."""


class DatasetError(RPXError):
    """The dataset on disk or on the Hub is unusable (e.g. a shard fails its checksum)."""


class ManifestError(DatasetError):
    """A manifest is missing, malformed, or names a sample file that cannot be used."""


class DownloadError(DatasetError):
    """Fetching from the Hugging Face Hub (or a mirror) failed."""


class TransientDownloadError(DownloadError):
    """A download failure worth retrying: connection reset, timeout, HTTP 5xx or 429."""


class ModelError(RPXError):
    """A model could not be resolved or returned predictions of the wrong kind."""


class AdapterError(ModelError):
    """An adapter around a user function or a checkpoint failed to convert inputs or outputs."""


class ModelRuntimeError(AdapterError):
    """A model failed while it ran (a checkpoint's forward pass raised, e.g. CUDA out of memory): not a
    fault of its inputs or outputs, so the run stays resumable (a smaller --batch-size may well pass)."""


class MetricError(RPXError):
    """A metric received inputs of the wrong type or shape."""


class OutputError(RPXError):
    """A run's output folder cannot be used: the disk is full, or another run is writing into it."""


class RunLockedError(OutputError):
    """Another live run holds the output folder's lock (its pid and host are in ``details``)."""


__all__ = [
    "RPXError",
    "ConfigError",
    "MergeError",
    "DatasetError",
    "ManifestError",
    "DownloadError",
    "TransientDownloadError",
    "ModelError",
    "AdapterError",
    "ModelRuntimeError",
    "MetricError",
    "OutputError",
    "RunLockedError",
]
