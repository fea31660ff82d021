"""What the frame-pair tasks (relative_camera_pose, keypoint_matching, novel_view_synthesis) share.

- :func:`pair_id`: the Hub id form of a pair sample, ``<scene>__<phase>__<stemA>__<stemB>``.
- :func:`pair_entry`: the manifest entry of a built-in sample pair, before the task's own keys.

The second frame of a sample is ``rpx_tasks.sample.second_frame``; the weight-free image-motion
estimate the pair baselines build on is ``rpx_tasks.models.image_motion``.
"""

from __future__ import annotations

from rpx_tasks.contracts.sample_frame import SampleFrame


def pair_id(scene: str, phase: int | str, stem_a: str, stem_b: str) -> str:
    """The id of a frame pair in the Hub form ``<scene>__<phase>__<stemA>__<stemB>``."""
    return f"{scene}__{phase}__{stem_a}__{stem_b}"


def pair_entry(frame: SampleFrame, later: SampleFrame, task_keys: dict, *, second_frame_key: str = "rgb_b") -> dict:
    """The manifest entry of the sample-data pair (``frame``, ``later``): ``frame``'s shared keys,
    the pair ``id``, ``task_keys``, then ``second_frame_key`` (default ``rgb_b``: the later RGB;
    novel_view_synthesis names it ``target_rgb``, which models never receive), ``frame_idx_b``
    and the pair's ``metadata`` (both stems and their frame distance). Raises nothing."""
    entry = frame.base_entry()
    entry.update(
        {
            "id": pair_id(frame.scene, frame.phase_idx, frame.stem, later.stem),
            **task_keys,
            second_frame_key: later.paths["rgb"],
            "frame_idx_b": later.frame_idx,
            "metadata": {"frame": frame.stem, "frame_b": later.stem, "pair_stride": later.frame_idx - frame.frame_idx},
        }
    )
    return entry


__all__ = ["pair_entry", "pair_id"]
