"""The ``--hf-checkpoint`` fast path for keypoint matching: any transformers keypoint-matching checkpoint.

``load_hf_keypoint_model("ETH-CVG/lightglue_superpoint")`` loads the checkpoint's config,
model (``AutoModelForKeypointMatching``: LightGlue, SuperGlue or EfficientLoFTR in
transformers 5.x) and image processor (``AutoImageProcessor``; the PIL backends need no
torchvision), never with remote code. ``HFKeypointMatchingModel.predict`` runs one batched
forward per group of pairs of equal frame sizes, with the processor's own
``post_process_keypoint_matching``, and returns the matches in each frame's original pixel
coordinates (x, y).

Sub-pixel coordinates: the processors' post-processing scales the normalised keypoints by
``target_sizes`` and then truncates them to int32 pixels (up to 1 px of error, a third of the
metric's 3 px threshold). Passing target sizes ``SUBPIXEL`` times the frame size and dividing
afterwards keeps 1/``SUBPIXEL`` px resolution with the processors' code unchanged; half a
sub-pixel step is added to the normalised keypoints first, so the truncation rounds.

Offline use and loading errors follow ``hf_depth``: ``HF_HUB_OFFLINE=1`` (read at call time)
means the checkpoint must already be in the HF cache (``cache_dir`` or ``HF_HUB_CACHE``).
On CPU the model is loaded with ``attn_implementation="eager"`` so that FLOPs are counted
(see ``hf_depth``); an explicit ``attn_implementation=`` wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.errors import AdapterError, ConfigError, ModelError
from rpx_tasks.models.hf_depth import _load_error, _offline, _torch_dtype
from rpx_tasks.sample import Sample

TASK = "keypoint_matching"
SUBPIXEL = 64


def _keypoint_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    return sorted(MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES)


def _keypoint_load_error(checkpoint: str, what: str, exc: Exception) -> ModelError | ConfigError:
    error = _load_error(checkpoint, what, exc)
    if error.hint and "depth-estimation" in error.hint:
        known = ", ".join(_keypoint_model_types())
        error.hint = f"check that the checkpoint is a transformers keypoint-matching model ({known})"
    return error


def load_hf_keypoint_model(
    checkpoint: str,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    threshold: float = 0.0,
    processor_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> "HFKeypointMatchingModel":
    """Load an HF keypoint-matching checkpoint (Hub id or local folder) as an HFKeypointMatchingModel.

    ``threshold`` drops matches whose score is not above it (the processors' post-processing
    rule); ``dtype`` casts the weights (float32/float16/bfloat16); ``processor_kwargs`` go to
    ``AutoImageProcessor.from_pretrained`` and the remaining ``kwargs`` to
    ``AutoModelForKeypointMatching.from_pretrained``. Weights load on the CPU; ``setup()``
    moves them to ``device``. The display name defaults to the checkpoint id.

    Raises ConfigError for an empty or malformed checkpoint id, an unknown dtype, a
    non-numeric threshold or ``trust_remote_code`` (never allowed); ModelError when the
    checkpoint cannot be found (offline: not in the cache) or is not a keypoint-matching model.
    """
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise ConfigError("An HF checkpoint id is required.", hint="e.g. --hf-checkpoint ETH-CVG/lightglue_superpoint")
    if kwargs.pop("trust_remote_code", False) or (processor_kwargs or {}).get("trust_remote_code"):
        raise ConfigError(
            "trust_remote_code is not allowed for the HF keypoint-matching fast path.",
            hint="it only runs transformers' own model classes; wrap custom code in a factory "
            "and pass --model package.module:factory",
        )
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"threshold must be a number, got {threshold!r}.", hint="e.g. threshold=0.2") from None
    torch_dtype = _torch_dtype(dtype)

    from transformers import AutoConfig, AutoImageProcessor, AutoModelForKeypointMatching

    hub_kwargs: dict[str, Any] = {"cache_dir": cache_dir, "revision": revision, "trust_remote_code": False}
    if _offline():
        hub_kwargs["local_files_only"] = True
    hub_kwargs.update({k: kwargs.pop(k) for k in ("local_files_only", "token") if k in kwargs})

    try:
        config = AutoConfig.from_pretrained(checkpoint, **hub_kwargs)
    except Exception as exc:  # transformers raises OSError / ValueError / HFValidationError
        raise _keypoint_load_error(checkpoint, "config", exc) from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in _keypoint_model_types():
        raise ModelError(
            f"HF checkpoint {checkpoint!r} is a {model_type!r} model, not a keypoint-matching model.",
            hint="the keypoint fast path loads AutoModelForKeypointMatching; model types it knows: "
            + ", ".join(_keypoint_model_types()),
            details={"checkpoint": checkpoint, "model_type": model_type},
        )
    model_kwargs = dict(kwargs)
    if not str(device).startswith("cuda"):
        model_kwargs.setdefault("attn_implementation", "eager")
    if torch_dtype is not None:
        model_kwargs["dtype"] = torch_dtype
    try:
        module = AutoModelForKeypointMatching.from_pretrained(checkpoint, config=config, **hub_kwargs, **model_kwargs)
    except Exception as exc:
        raise _keypoint_load_error(checkpoint, "model weights", exc) from exc
    try:
        processor = AutoImageProcessor.from_pretrained(checkpoint, **hub_kwargs, **(processor_kwargs or {}))
    except Exception as exc:
        raise _keypoint_load_error(checkpoint, "image processor", exc) from exc
    if not callable(getattr(processor, "post_process_keypoint_matching", None)):
        raise ModelError(
            f"The image processor of {checkpoint!r} ({type(processor).__name__}) "
            "has no post_process_keypoint_matching.",
            hint="use a checkpoint with a keypoint-matching processor (SuperGlue, LightGlue, EfficientLoFTR)",
            details={"checkpoint": checkpoint},
        )
    return HFKeypointMatchingModel(module, processor, name=name or checkpoint, device=device, threshold=threshold)


class HFKeypointMatchingModel:
    """A transformers keypoint matcher plus its image processor, benchmarked as one Model.

    ``predict(batch)`` returns one ``KeypointMatches`` per sample (points in frame A and frame
    B at their original resolutions, float64; scores the matching scores). Pairs whose two
    frames have the same sizes share one forward pass.
    """

    task = TASK

    def __init__(self, module: Any, processor: Any, *, name: str, device: str = "cpu", threshold: float = 0.0):
        self.torch_module = module
        self.processor = processor
        self.name = name
        self.device = str(device)
        self.threshold = threshold
        self._ready = False

    def setup(self) -> None:
        """Put the module in eval mode on ``device``. Raises ModelError when it cannot be moved there."""
        try:
            self.torch_module.eval().to(self.device)
        except Exception as exc:
            raise ModelError(
                f"Could not move {self.name} to device {self.device!r}: {exc}",
                hint="check --device (`cuda`, `cuda:N` or `cpu`) and free GPU memory",
            ) from exc
        self._ready = True

    def predict(self, batch: list[Sample]) -> list[Any]:
        """Return one KeypointMatches per sample, in batch order.

        Raises AdapterError when a sample has no second frame ("requires a second RGB frame"),
        or when the processor or the model fails on the batch.
        """
        from rpx_tasks.tasks._pairs import second_frame

        if not self._ready:
            self.setup()
        pairs = [(sample.rgb, second_frame(sample, TASK)) for sample in batch]
        groups: dict[tuple, list[int]] = {}
        for index, (rgb_a, rgb_b) in enumerate(pairs):
            groups.setdefault((rgb_a.shape[:2], rgb_b.shape[:2]), []).append(index)
        results: list[Any] = [None] * len(batch)
        for (size_a, size_b), indices in groups.items():
            for index, matches in zip(indices, self._match_same_size([pairs[i] for i in indices], size_a, size_b)):
                results[index] = matches
        return results

    def _match_same_size(self, pairs: list[tuple[np.ndarray, np.ndarray]], size_a, size_b) -> list[Any]:
        """One forward pass for pairs of equal frame sizes; returns their KeypointMatches."""
        import torch

        from rpx_tasks.tasks.keypoint_matching import KeypointMatches

        described = f"{len(pairs)} pair(s) of {size_a[0]}x{size_a[1]} / {size_b[0]}x{size_b[1]} frames"
        try:
            inputs = self.processor(images=[[a, b] for a, b in pairs], return_tensors="pt")
        except Exception as exc:
            raise AdapterError(
                f"The image processor of {self.name} failed on {described}: {exc}",
                hint="frames must be (H, W, 3) uint8 RGB",
            ) from exc
        inputs = self._to_device(inputs)
        scaled = [tuple(int(v) * SUBPIXEL for v in size_a), tuple(int(v) * SUBPIXEL for v in size_b)]
        try:
            with torch.inference_mode():
                outputs = self.torch_module(**inputs)
                for key, value in list(outputs.items()):
                    if torch.is_tensor(value) and value.is_floating_point():
                        outputs[key] = value.float()
                # Half a sub-pixel step turns the processors' int32 truncation into rounding.
                half_step = 0.5 / torch.tensor([scaled[0][::-1], scaled[1][::-1]], dtype=torch.float32)
                keypoints = outputs["keypoints"]
                outputs["keypoints"] = keypoints + half_step.to(keypoints.device).reshape(1, 2, 1, 2)
                processed = self.processor.post_process_keypoint_matching(
                    outputs, target_sizes=[scaled] * len(pairs), threshold=self.threshold
                )
                matches = []
                for result in processed:
                    points0 = result["keypoints0"].double().cpu().numpy() / SUBPIXEL
                    points1 = result["keypoints1"].double().cpu().numpy() / SUBPIXEL
                    scores = result["matching_scores"].double().cpu().numpy()
                    matches.append(KeypointMatches(points0.reshape(-1, 2), points1.reshape(-1, 2), scores.reshape(-1)))
                return matches
        except Exception as exc:
            out_of_memory = "out of memory" in str(exc).lower()
            raise AdapterError(
                f"{self.name} failed on {described}: {type(exc).__name__}: {exc}",
                hint="lower --batch-size"
                if out_of_memory
                else "run the checkpoint on one pair in Python to see the full traceback",
            ) from exc

    def _to_device(self, inputs: Any) -> dict[str, Any]:
        import torch

        device = torch.device(self.device)
        dtype = next(self.torch_module.parameters()).dtype
        moved = {}
        for key, value in inputs.items():
            if torch.is_tensor(value):
                if value.is_floating_point():
                    value = value.to(dtype)
                value = value.to(device, non_blocking=device.type == "cuda")
            moved[key] = value
        return moved

    def __repr__(self) -> str:
        return f"HFKeypointMatchingModel(name={self.name!r}, device={self.device!r})"


__all__ = ["HFKeypointMatchingModel", "load_hf_keypoint_model"]
