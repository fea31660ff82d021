"""A procedural dataset in the RPX Hub layout, for the demo, the tests and the benchmarks.

Every frame is ray cast (vectorised numpy) from a small indoor room: a camera about
``CAMERA_HEIGHT_M`` (``rpx_tasks.constants``) above a floor looks roughly horizontally at a back wall
``WALL_DISTANCE_RANGE_M`` away, which has a doorway onto a far corridor (beyond
``MAX_VALID_DEPTH_M``, so invalid in depth) and a glossy picture (a specular patch: saturated
RGB, no depth). Box-shaped objects stand on the floor. The three phases of a scene share the
room and differ in structure: *clutter* has 5-8 objects, *interaction* keeps a few and adds a
robot arm with a gripper entering from an image side 0.4-0.8 m from the camera, *clean* keeps
0-2. The camera drifts by a few millimetres and rolls about its optical axis by
``ROLL_STEP_DEG_RANGE`` (per difficulty) every frame; the saved poses are exactly the poses
rendered. Depth drops out in random speckles, at depth discontinuities, on the picture,
partly on dark objects and beyond ``MAX_VALID_DEPTH_M``. Difficulty (assigned scene-wise) raises
the speckle dropout rate and the camera motion, and every hard scene holds a dark object.

Output is byte-identical for the same arguments: all randomness comes from generators seeded
by (seed, scene, phase, frame), PNGs carry no timestamps and pose ``.npz`` files are written
with a fixed zip date.

Modules: ``scene`` (room, objects, arm, camera path), ``render`` (the ray caster),
``encoders`` (deterministic PNG / .npy / .npz / JSON), ``objects`` (labels, colours, instance
ids), ``frame`` (:class:`SampleFrame`), ``writer`` (:func:`write_sample_dataset`) and
``builtin`` (the built-in sample data under the RPX cache, ``manifest="builtin:sample"``).

For task authors
----------------
``write_sample_dataset`` renders the frames clip by clip and, for every registered task whose
``TaskSpec.sample_entry`` is set, calls ``sample_entry(frame)`` once per frame with a
:class:`SampleFrame`, then writes ``manifests/<task>/{easy,medium,hard,all}.json`` from the
returned entries (None skips the frame). Adding a task never needs an edit here. A
``sample_entry`` typically returns ``{**frame.base_entry(), "<key>": frame.write_png("<folder>",
labels)}``. What a frame offers:

- ``scene``, ``phase_idx`` (0-2), ``phase``, ``frame_idx``, ``frames_in_clip``, ``split``,
  ``stem``, ``height``, ``width``, ``paths`` (root-relative ``rgb``, ``depth``, ``pose``);
- ``rgb`` (H, W, 3) uint8 and ``depth_mm`` (H, W) uint16 (0 = invalid), exactly as written;
- ``instances`` (H, W) int32: 0 for floor, walls and picture, else the object's id. Ids are
  1..n per clip, numbered left to right by each object's visible centroid in the clip's first
  frame (objects not visible there come last), and stay fixed over the clip. The arm and its
  gripper (interaction phase) form one object labelled ``arm``;
- ``objects``: the :class:`SampleObject` s (id, label, colour, box, pixels) with at least
  ``MIN_OBJECT_PIXELS`` visible pixels, by id; labels and colour words are the ``SAMPLE_*``
  vocabulary of ``rpx_tasks.constants``;
- ``pose`` (4, 4) float64 camera->world in T265 axes (exactly what the saved pose decodes to)
  and ``intrinsics`` (fx, fy, cx, cy); ``backproject(pixels)`` and ``project(world)`` map
  between (x, y) pixels and world points (the scene is static except the ``arm``, which moves
  with the camera: see ``SampleObject.moving``);
- ``later``: the frame ``PAIR_STRIDE`` frames later in the same clip (the last frame when
  fewer remain; None for the last frame itself), for pair tasks; only one level deep;
- ``base_entry()`` (id, scene_id, phase, frame_idx, difficulty, rgb) and ``write_png`` /
  ``write_json`` / ``write_npy(folder, value)``, which write
  ``scenes/<scene>/<phase_idx>/<folder>/<stem>.<ext>`` deterministically and return the
  root-relative path for the entry.

``sample_entry`` runs on worker threads (one clip per thread at a time) and must only write
files named after its own frame.
"""

from rpx_tasks.sample_data.builtin import (
    BUILTIN_SAMPLE,
    builtin_manifest_path,
    ensure_sample_data,
    is_builtin,
    sample_data_dir,
    sample_tasks,
)
from rpx_tasks.sample_data.frame import MOVING_LABELS, SampleFrame, SampleObject
from rpx_tasks.sample_data.objects import MIN_OBJECT_PIXELS, colour_name, object_label
from rpx_tasks.sample_data.render import DROPOUT_BY_SPLIT, MAX_VALID_DEPTH_M, MIN_VALID_DEPTH_M
from rpx_tasks.sample_data.scene import (
    MAX_ROLL_DEG,
    OBJECT_COUNT_BY_PHASE,
    OCCLUDER_DEPTH_RANGE_M,
    ROLL_STEP_DEG_RANGE,
    TRANSLATION_STEP_M_RANGE,
    WALL_DISTANCE_RANGE_M,
    Box,
    Room,
    camera_rotation,
    rotation_to_quaternion_xyzw,
)
from rpx_tasks.sample_data.writer import PAIR_STRIDE, scene_name, write_sample_dataset

__all__ = [
    "BUILTIN_SAMPLE",
    "DROPOUT_BY_SPLIT",
    "MAX_ROLL_DEG",
    "MAX_VALID_DEPTH_M",
    "MIN_OBJECT_PIXELS",
    "MIN_VALID_DEPTH_M",
    "MOVING_LABELS",
    "OBJECT_COUNT_BY_PHASE",
    "OCCLUDER_DEPTH_RANGE_M",
    "PAIR_STRIDE",
    "ROLL_STEP_DEG_RANGE",
    "TRANSLATION_STEP_M_RANGE",
    "WALL_DISTANCE_RANGE_M",
    "Box",
    "Room",
    "SampleFrame",
    "SampleObject",
    "builtin_manifest_path",
    "camera_rotation",
    "colour_name",
    "ensure_sample_data",
    "is_builtin",
    "object_label",
    "rotation_to_quaternion_xyzw",
    "sample_data_dir",
    "sample_tasks",
    "scene_name",
    "write_sample_dataset",
]
