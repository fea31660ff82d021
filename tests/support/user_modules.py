"""Small importable modules a user could point ``--model`` at, for the model-resolution tests.

``rpx_user_models`` holds numpy functions, a Model class, factories (good and broken) and a ready
instance; ``rpx_user_broken`` raises at import; ``rpx_user_needs_dep`` imports a missing package.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

# File name -> source of each module (dedented when written).
USER_MODULE_SOURCES: dict[str, str] = {
    "rpx_user_models.py": """
        import numpy as np

        NOT_CALLABLE = 42

        def predict_depth(rgb):
            return np.full(rgb.shape[:2], 2.0, dtype=np.float64)

        class DepthModel:
            task = "monocular_depth"

            def __init__(self, device="cpu", scale=1.0):
                self.name = "user_depth"
                self.device = device
                self.scale = scale
                self.torch_module = None

            def setup(self):
                pass

            def predict(self, batch):
                return [np.full(s.rgb.shape[:2], self.scale, np.float32) for s in batch]

        def build(device="cpu", scale=3.0):
            return DepthModel(device=device, scale=scale)

        def build_no_kwargs():
            return DepthModel()

        def build_wrong_task():
            model = DepthModel()
            model.task = "object_segmentation"
            return model

        def build_not_a_model():
            return "nope"

        def build_raises():
            raise RuntimeError("weights missing")

        class Holder:
            @staticmethod
            def predict_depth(rgb):
                return np.ones(rgb.shape[:2])

        READY = DepthModel(scale=5.0)
    """,
    "rpx_user_broken.py": """
        raise RuntimeError("boom at import")
    """,
    "rpx_user_needs_dep.py": """
        import rpx_surely_missing_dependency
    """,
}


def write_user_modules(folder: Path) -> list[str]:
    """Write every module of ``USER_MODULE_SOURCES`` into ``folder``; return their module names. Raises OSError."""
    for filename, source in USER_MODULE_SOURCES.items():
        (folder / filename).write_text(textwrap.dedent(source))
    return [Path(filename).stem for filename in USER_MODULE_SOURCES]
