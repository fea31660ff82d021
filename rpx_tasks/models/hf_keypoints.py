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

Offline use, loading errors and device moves come from ``models.hf_loading``:
``HF_HUB_OFFLINE=1`` (read at call time) means the checkpoint must already be in the HF cache
(``cache_dir`` or ``HF_HUB_CACHE``). On CPU the model is loaded with
``attn_implementation="eager"`` so that FLOPs are counted (see ``hf_depth``); an explicit
``attn_implementation=`` wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rpx_tasks.contracts.keypoints import KeypointMatches
from rpx_tasks.errors import ConfigError, ModelError
from rpx_tasks.models.hf_batches import float32_outputs, forward_error, predict_by_size, processor_error
from rpx_tasks.models.hf_loading import (
    check_request,
    hub_kwargs,
    inputs_to_device,
    load_checkpoint,
    model_load_kwargs,
    move_module,
)
from rpx_tasks.sample import Sample, second_frame

TASK = "keypoint_matching"
SUBPIXEL = 64


def _keypoint_model_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    return sorted(MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES)


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
    check_request(checkpoint, "ETH-CVG/lightglue_superpoint", kwargs, processor_kwargs, kind="keypoint-matching")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"threshold must be a number, got {threshold!r}.", hint="e.g. threshold=0.2") from None

    from transformers import AutoModelForKeypointMatching

    hub = hub_kwargs(cache_dir, revision, kwargs)
    model_kwargs = model_load_kwargs(kwargs, device=device, dtype=dtype)
    _config, module, processor = load_checkpoint(
        checkpoint,
        AutoModelForKeypointMatching,
        _keypoint_model_types(),
        expected="a keypoint-matching model",
        hub=hub,
        model_kwargs=model_kwargs,
        processor_kwargs=processor_kwargs,
    )
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
        move_module(self.torch_module, self.device, self.name)
        self._ready = True

    def predict(self, batch: list[Sample]) -> list[KeypointMatches]:
        """Return one KeypointMatches per sample, in batch order.

        Raises AdapterError when a sample has no second frame ("requires a second RGB frame"),
        or when the processor or the model fails on the batch.
        """
        if not self._ready:
            self.setup()
        pairs = [(sample.rgb, second_frame(sample, TASK)) for sample in batch]
        return predict_by_size(
            pairs,
            lambda pair: (pair[0].shape[:2], pair[1].shape[:2]),
            lambda group, sizes: self._match_same_size(group, *sizes),
        )

    def _match_same_size(
        self, pairs: list[tuple[np.ndarray, np.ndarray]], size_a: tuple[int, int], size_b: tuple[int, int]
    ) -> list[KeypointMatches]:
        """One forward pass for pairs of equal frame sizes; returns their KeypointMatches."""
        import torch

        described = f"{len(pairs)} pair(s) of {size_a[0]}x{size_a[1]} / {size_b[0]}x{size_b[1]} frames"
        try:
            inputs = self.processor(images=[[a, b] for a, b in pairs], return_tensors="pt")
        except Exception as exc:
            raise processor_error(self.name, described, exc) from exc
        inputs = inputs_to_device(inputs, self.torch_module, self.device)
        scaled = [tuple(int(v) * SUBPIXEL for v in size_a), tuple(int(v) * SUBPIXEL for v in size_b)]
        try:
            with torch.inference_mode():
                outputs = float32_outputs(self.torch_module(**inputs))
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
            raise forward_error(self.name, described, exc, unit="pair") from exc

    def __repr__(self) -> str:
        return f"HFKeypointMatchingModel(name={self.name!r}, device={self.device!r})"


__all__ = ["HFKeypointMatchingModel", "load_hf_keypoint_model"]
