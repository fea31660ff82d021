"""rpx_tasks: the RPX robot-perception benchmark core (no Prefect import here)."""

from rpx_tasks.errors import (
    AdapterError,
    ConfigError,
    DatasetError,
    DownloadError,
    ManifestError,
    MetricError,
    ModelError,
    RPXError,
    TransientDownloadError,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "ConfigError",
    "DatasetError",
    "DownloadError",
    "ManifestError",
    "MetricError",
    "ModelError",
    "RPXError",
    "TransientDownloadError",
    "__version__",
]
