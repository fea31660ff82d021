"""A procedural dataset in the RPX Hub layout, for the demo, the tests and the benchmarks.

Every frame is ray cast (vectorised numpy) from a small indoor room: a camera about
``CAMERA_HEIGHT_M`` above a floor looks roughly horizontally at a back wall
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
  ``MIN_OBJECT_PIXELS`` visible pixels, by id;
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

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from rpx_tasks.constants import PHASES, SPLITS
from rpx_tasks.decoding import pose_matrix
from rpx_tasks.errors import ConfigError

# The task the Prefect smoke deployment runs on the built-in data (every task gets manifests).
TASK = "monocular_depth"

MIN_OBJECT_PIXELS = 20  # smaller visible parts are not listed in SampleFrame.objects
PAIR_STRIDE = 2  # SampleFrame.later is this many frames later
ARM_LABEL = "arm"
MOVING_LABELS = frozenset({ARM_LABEL})

# Paper-declared RealSense D435 intrinsics at 640x480; other sizes scale them by width / 640.
RPX_WIDTH = 640
RPX_HEIGHT = 480
RPX_FOCAL_PX = 615.0

CAMERA_HEIGHT_M = 1.2
WALL_DISTANCE_RANGE_M = (3.5, 4.5)
WALL_DISTANCE_M = sum(WALL_DISTANCE_RANGE_M) / 2
MAX_VALID_DEPTH_M = 6.0
MIN_VALID_DEPTH_M = 0.2
OCCLUDER_DEPTH_RANGE_M = (0.4, 0.8)
OBJECT_COUNT_BY_PHASE = {"clutter": (5, 8), "interaction": (2, 4), "clean": (0, 2)}

# Per difficulty: (speckle dropout fraction, roll step per frame in degrees, translation per frame in m).
DROPOUT_BY_SPLIT = {"easy": 0.01, "medium": 0.02, "hard": 0.03}
ROLL_STEP_DEG_RANGE = {"easy": (0.3, 0.6), "medium": (0.5, 1.2), "hard": (1.0, 2.0)}
TRANSLATION_STEP_M_RANGE = {"easy": (0.002, 0.005), "medium": (0.004, 0.008), "hard": (0.006, 0.012)}
MAX_ROLL_DEG = 3.0

_FAR_WALL_EXTRA_M = 3.5  # the corridor wall seen through the doorway lies this far behind the back wall
_DOOR_HEIGHT_M = 2.1
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def scaled_intrinsics(width: int, height: int) -> tuple[float, float, float, float]:
    """Return (fx, fy, cx, cy) of the RPX D435 camera scaled to an image of ``width`` x ``height``."""
    f = RPX_FOCAL_PX * width / RPX_WIDTH
    return f, f, width / 2.0, height / 2.0


@dataclass(frozen=True)
class Box:
    """An oriented box: centre (world, m), half extents (m), rotation local->world, albedo RGB 0-1."""

    center: np.ndarray
    half: np.ndarray
    rotation: np.ndarray
    albedo: np.ndarray
    dark: bool = False


@dataclass(frozen=True)
class Room:
    """Per-scene geometry and appearance shared by all phases."""

    wall_distance: float
    door_x: tuple[float, float]
    picture_x: tuple[float, float]
    picture_y: tuple[float, float]
    wall_albedo: np.ndarray
    floor_albedo: np.ndarray
    light: tuple[float, float, float]
    camera_height: float
    yaw: float
    pitch: float
    objects: tuple[Box, ...]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera->world rotation in T265 axes (X right, Y up, Z back; world Y up), angles in radians.

    Yaw turns about world Y, pitch about the camera X (positive looks up), roll about the
    camera Z (the optical axis), so the relative rotation of two frames that differ only in
    roll is a rotation about Z by the roll difference.
    """
    return _rot_y(yaw) @ _rot_x(pitch) @ _rot_z(roll)


def rotation_to_quaternion_xyzw(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    quat = np.asarray(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


# --------------------------------------------------------------------------- scene layout


def _make_room(seed: int, scene_idx: int, split: str) -> Room:
    rng = _rng(seed, scene_idx, 0xA11)
    wall = float(rng.uniform(*WALL_DISTANCE_RANGE_M))
    door_w = float(rng.uniform(0.8, 1.1))
    door_c = float(rng.choice([-1, 1]) * rng.uniform(0.5, 1.2))
    pic_c = -math.copysign(float(rng.uniform(0.5, 1.1)), door_c)  # the picture hangs on the other side
    pic_w, pic_h = float(rng.uniform(0.5, 0.9)), float(rng.uniform(0.35, 0.6))
    pic_y = float(rng.uniform(1.3, 1.8))
    n_max = OBJECT_COUNT_BY_PHASE["clutter"][1]
    objects = tuple(_make_object(rng, wall, dark=(split == "hard" and i == 0)) for i in range(n_max))
    return Room(
        wall_distance=wall,
        door_x=(door_c - door_w / 2, door_c + door_w / 2),
        picture_x=(pic_c - pic_w / 2, pic_c + pic_w / 2),
        picture_y=(pic_y - pic_h / 2, pic_y + pic_h / 2),
        wall_albedo=rng.uniform(0.55, 0.85, 3) * np.array([1.0, 0.97, 0.9]),
        floor_albedo=rng.uniform(0.35, 0.6, 3) * np.array([1.0, 0.8, 0.6]),
        light=(float(rng.uniform(-1.0, 1.0)), 2.7, -float(rng.uniform(1.0, 2.5))),
        camera_height=CAMERA_HEIGHT_M + float(rng.uniform(-0.02, 0.02)),
        yaw=math.radians(rng.uniform(-4, 4)),
        pitch=math.radians(rng.uniform(-1, 1)),
        objects=objects,
    )


def _make_object(rng: np.random.Generator, wall: float, dark: bool) -> Box:
    z = -rng.uniform(1.8, wall - 0.4)
    x = rng.uniform(-0.42, 0.42) * -z
    half = np.array([rng.uniform(0.1, 0.3), rng.uniform(0.08, 0.55), rng.uniform(0.1, 0.25)])
    albedo = np.array([0.06, 0.06, 0.07]) if dark else rng.uniform(0.15, 0.95, 3)
    return Box(
        center=np.array([x, half[1], z]),
        half=half,
        rotation=_rot_y(rng.uniform(-math.pi / 4, math.pi / 4)),
        albedo=albedo,
        dark=dark,
    )


def _phase_objects(room: Room, seed: int, scene_idx: int, phase_idx: int) -> list[Box]:
    lo, hi = OBJECT_COUNT_BY_PHASE[PHASES[phase_idx]]
    count = int(_rng(seed, scene_idx, phase_idx, 0xB0C).integers(lo, hi + 1))
    return list(room.objects[:count])


def _arm_motion(rng: np.random.Generator, frames_per_clip: int) -> list[tuple[np.ndarray, float, float]]:
    """Robot-arm tip per frame as (tip in OpenCV camera axes, side, tilt).

    The arm enters from the left (side -1) or right (+1) image edge at 0.4-0.8 m and its tip
    reaches a little further into the image every frame. It is placed relative to the camera
    of each frame (camera and arm belong to the same robot), so it stays in view.
    """
    side = float(rng.choice([-1.0, 1.0]))
    depth = rng.uniform(*OCCLUDER_DEPTH_RANGE_M)
    half_width = depth * (RPX_WIDTH / 2) / RPX_FOCAL_PX  # half the field of view at that depth
    y = rng.uniform(-0.05, 0.2) * depth  # around or a little below the optical axis
    reach = rng.uniform(0.5, 0.7)  # tip position as a fraction of the half width, from the centre
    tilt = float(rng.uniform(-0.25, 0.25))
    return [
        (np.array([side * max(0.3, reach - 0.005 * k) * half_width, y, depth]), side, tilt)
        for k in range(frames_per_clip)
    ]


def _arm_world_boxes(frame_arm, camera_pose) -> list[Box]:
    """Arm and gripper boxes in world coordinates for a camera at ``camera_pose`` (position, rotation)."""
    (tip, side, tilt) = frame_arm
    position, rotation = camera_pose
    cv_to_body = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes -> T265 body axes
    arm_rot_cv = _rot_z(tilt)  # slight tilt in the image plane
    length = 0.5
    arm_center_cv = tip + arm_rot_cv @ np.array([side * (length / 2 + 0.03), 0.0, 0.0])
    grip_center_cv = tip + arm_rot_cv @ np.array([side * 0.015, 0.0, 0.0])
    boxes = []
    for center_cv, half, albedo in (
        (arm_center_cv, np.array([length / 2, 0.022, 0.022]), np.array([0.55, 0.57, 0.6])),
        (grip_center_cv, np.array([0.018, 0.04, 0.03]), np.array([0.2, 0.2, 0.22])),
    ):
        center_world = position + rotation @ (cv_to_body @ center_cv)
        rot_world = rotation @ cv_to_body @ arm_rot_cv
        boxes.append(Box(center=center_world, half=half, rotation=rot_world, albedo=albedo))
    return boxes


# --------------------------------------------------------------------------- rendering


class _Rays:
    """Per-resolution ray directions in camera body axes (z-component -1, so ray t = z-depth)."""

    def __init__(self, height: int, width: int):
        fx, fy, cx, cy = scaled_intrinsics(width, height)
        u = (np.arange(width, dtype=np.float32) - cx) / fx
        v = (np.arange(height, dtype=np.float32) - cy) / fy
        self.x = np.broadcast_to(u[None, :], (height, width))
        self.y = np.broadcast_to(-v[:, None], (height, width))
        self.intrinsics = (fx, fy, cx, cy)
        self.shape = (height, width)


def _world_dirs(rays: _Rays, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = rotation.astype(np.float32)
    return tuple(r[i, 0] * rays.x + r[i, 1] * rays.y - r[i, 2] for i in range(3))


def _box_window(box: Box, cam_pos: np.ndarray, cam_rot: np.ndarray, intrinsics, shape) -> tuple[int, int, int, int]:
    """Pixel window (v0, v1, u0, u1) holding the box's projection (the full image if it reaches behind the camera)."""
    h, w = shape
    corners = box.center + (_CORNER_SIGNS * box.half) @ box.rotation.T
    cam = (corners - cam_pos) @ cam_rot  # world -> camera body axes
    z = -cam[:, 2]
    if np.any(z < 0.05):
        return 0, h, 0, w
    fx, fy, cx, cy = intrinsics
    u = cx + fx * cam[:, 0] / z
    v = cy - fy * cam[:, 1] / z
    u0, u1 = max(0, math.floor(u.min())), min(w, math.ceil(u.max()) + 1)
    v0, v1 = max(0, math.floor(v.min())), min(h, math.ceil(v.max()) + 1)
    return v0, v1, u0, u1


def _intersect_box(origin: np.ndarray, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray, box: Box):
    """Slab test of rays against ``box``. Returns (t with inf where missed, (nx, ny, nz) world face normals)."""
    ol = [float(c) for c in (origin - box.center) @ box.rotation]  # world -> box axes
    r = box.rotation.astype(np.float32)
    dl = [r[0, i] * dx + r[1, i] * dy + r[2, i] * dz for i in range(3)]
    t_near = np.full(dx.shape, -np.inf, np.float32)
    t_far = np.full(dx.shape, np.inf, np.float32)
    axis = np.zeros(dx.shape, np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(3):
            inv = 1 / dl[i]
            t1 = (-float(box.half[i]) - ol[i]) * inv
            t2 = (float(box.half[i]) - ol[i]) * inv
            near = np.minimum(t1, t2)
            later = near > t_near
            axis[later] = i
            np.copyto(t_near, near, where=later)
            np.minimum(t_far, np.maximum(t1, t2), out=t_far)
    t = np.where((t_far >= t_near) & (t_near > 0), t_near, np.float32(np.inf))
    # Outward face normal in box axes: against the ray direction along the entry axis.
    nl = [np.where(axis == i, -np.sign(dl[i]), np.float32(0)) for i in range(3)]
    return t, tuple(r[j, 0] * nl[0] + r[j, 1] * nl[1] + r[j, 2] * nl[2] for j in range(3))


_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)


# Surface codes of the per-pixel surface map; objects follow from _FIRST_OBJECT on.
_FLOOR, _WALL, _CORRIDOR, _BASEBOARD, _PICTURE, _FIRST_OBJECT = range(6)


def _render_frame(room: Room, objects: list[Box], cam_pos: np.ndarray, cam_rot: np.ndarray,
                 rays: _Rays, rng: np.random.Generator, dropout: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ray cast one frame seen from ``cam_pos`` / ``cam_rot`` (camera->world, T265 axes).

    Returns (rgb (H, W, 3) uint8, depth (H, W) uint16 millimetres with 0 = invalid,
    surface code (H, W) int8 (``_FIRST_OBJECT + k`` for ``objects[k]``), noise-free z-depth
    (H, W) float32 metres).
    """
    h, w = rays.shape
    dx, dy, dz = _world_dirs(rays, cam_rot)
    np.minimum(dz, np.float32(-1e-6), out=dz)  # the camera always faces the back wall
    ox, oy, oz = (float(c) for c in cam_pos)
    wall_z = -room.wall_distance

    # Back wall; through its doorway the corridor wall lies beyond the valid depth range.
    t = (wall_z - oz) / dz
    wx, wy = ox + t * dx, oy + t * dy
    in_door = (wx > room.door_x[0]) & (wx < room.door_x[1]) & (wy < _DOOR_HEIGHT_M)
    t[in_door] *= (wall_z - _FAR_WALL_EXTRA_M - oz) / (wall_z - oz)
    code = np.where(in_door, np.int8(_CORRIDOR), np.int8(_WALL))
    with np.errstate(divide="ignore"):
        t_floor = -oy / dy
    floor = (t_floor > 0) & (t_floor < t)
    np.copyto(t, t_floor, where=floor)
    code[floor] = _FLOOR

    box_normals = []
    for k, box in enumerate(objects):
        v0, v1, u0, u1 = _box_window(box, cam_pos, cam_rot, rays.intrinsics, (h, w))
        if v0 >= v1 or u0 >= u1:
            continue
        win = (slice(v0, v1), slice(u0, u1))
        t_box, normal = _intersect_box(cam_pos, dx[win], dy[win], dz[win], box)
        closer = t_box < t[win]
        np.copyto(t[win], t_box, where=closer)
        code[win][closer] = _FIRST_OBJECT + k
        box_normals.append((win, closer, normal))

    px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
    wall = code == _WALL
    code[wall & (py < 0.1)] = _BASEBOARD
    picture = wall & (px > room.picture_x[0]) & (px < room.picture_x[1]) \
        & (py > room.picture_y[0]) & (py < room.picture_y[1])
    code[picture] = _PICTURE

    # Lambertian point light with an ambient term and mild attenuation with distance.
    vx, vy, vz = room.light[0] - px, room.light[1] - py, room.light[2] - pz
    dist2 = vx * vx + vy * vy + vz * vz
    n_dot_v = np.where(floor, vy, vz)  # floor normal +Y, walls +Z
    for win, closer, (nx, ny, nz) in box_normals:
        np.copyto(n_dot_v[win], nx * vx[win] + ny * vy[win] + nz * vz[win], where=closer)
    lambert = np.maximum(n_dot_v, 0) / np.sqrt(dist2)
    shade = (0.35 + 0.9 * lambert / (1 + 0.08 * dist2)) * np.exp(np.float32(-0.05) * t)
    _apply_floor_texture(shade, floor, px, pz)
    shade += (rng.random((h, w), dtype=np.float32) - 0.5) * np.float32(0.04)
    shade[picture] = 1.0  # specular glare saturates the picture
    palette = np.array([room.floor_albedo, room.wall_albedo, room.wall_albedo * 0.45, (0.4, 0.35, 0.3),
                        (0.97, 0.97, 0.95)] + [box.albedo for box in objects], np.float32)
    shade *= 255
    rgb = np.empty((h, w, 3), np.uint8)
    for c in range(3):  # per channel: a lot faster than gathering (H, W, 3) floats
        channel = np.take(palette[:, c], code)
        channel *= shade
        channel += 0.5
        rgb[..., c] = np.minimum(channel, 255)

    # Depth as a D435 reports it: noise growing with range, dropouts, no return beyond range.
    depth = t * (1 + np.float32(0.0035) * t * (rng.random((h, w), dtype=np.float32) - 0.5))
    invalid = (depth > MAX_VALID_DEPTH_M) | (depth < MIN_VALID_DEPTH_M) | picture
    invalid |= rng.random((h, w), dtype=np.float32) < dropout
    jump = np.abs(np.diff(depth, axis=1)) > 0.25  # flying pixels at depth discontinuities
    invalid[:, 1:] |= jump
    invalid[:, :-1] |= jump
    for k, box in enumerate(objects):
        if box.dark:  # a dark, absorbing object returns only half of its pixels
            invalid |= (code == _FIRST_OBJECT + k) & (rng.random((h, w), dtype=np.float32) < 0.5)
    depth_mm = (np.minimum(depth, MAX_VALID_DEPTH_M + 1) * 1000 + 0.5).astype(np.uint16)
    depth_mm[invalid] = 0
    return rgb, depth_mm, code, t


def _apply_floor_texture(shade: np.ndarray, floor: np.ndarray, px: np.ndarray, pz: np.ndarray) -> None:
    """Multiply the floor pixels of ``shade`` by a 0.5 m tile pattern with grout lines (in place)."""
    rows = np.flatnonzero(floor.any(axis=1))
    if rows.size == 0:
        return
    band = slice(rows[0], rows[-1] + 1)
    gx, gz = px[band] * 2, pz[band] * 2  # tile coordinates
    ix, iz = np.floor(gx).astype(np.int32), np.floor(gz).astype(np.int32)
    tile = ((ix * 73856093) ^ (iz * 19349663)) & 255
    grout = (np.abs(gx - np.round(gx)) < 0.02) | (np.abs(gz - np.round(gz)) < 0.02)
    texture = np.where(grout, np.float32(0.55), 0.8 + tile.astype(np.float32) * np.float32(0.3 / 255))
    np.copyto(shade[band], shade[band] * texture, where=floor[band])


# --------------------------------------------------------------------------- camera motion


def _clip_trajectory(room: Room, seed: int, scene_idx: int, phase_idx: int, split: str,
                     frames_per_clip: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Camera (position, camera->world rotation) per frame: a steady drift and a zig-zag roll."""
    rng = _rng(seed, scene_idx, phase_idx, 0xCA3)
    roll_step = math.radians(rng.uniform(*ROLL_STEP_DEG_RANGE[split]))
    direction = rng.choice([-1.0, 1.0])
    step = rng.uniform(*TRANSLATION_STEP_M_RANGE[split])
    heading = rng.uniform(0, 2 * math.pi)
    velocity = step * np.array([math.cos(heading), 0.0, math.sin(heading)])
    position = np.array([rng.uniform(-0.1, 0.1), room.camera_height, rng.uniform(-0.1, 0.1)])
    roll = math.radians(rng.uniform(-1.0, 1.0))
    limit = math.radians(MAX_ROLL_DEG)
    poses = []
    for _ in range(frames_per_clip):
        poses.append((position.copy(), camera_rotation(room.yaw, room.pitch, roll)))
        if abs(roll + direction * roll_step) > limit:
            direction = -direction
        roll += direction * roll_step
        position = position + velocity
    return poses


# --------------------------------------------------------------------------- writing


def _png_bytes(image: np.ndarray) -> bytes:
    """Encode (H, W, 3) uint8 as RGB8, (H, W) uint8 as 8-bit grey or (H, W) uint16 as 16-bit grey PNG.

    A minimal writer (filter 0, zlib level 1) because it is about twice as fast as PIL's
    adaptive-filter encoder on these noisy frames; any PNG reader decodes it.
    """
    h, w = image.shape[:2]
    if image.dtype == np.uint8:
        colour_type = 2 if image.ndim == 3 else 0
        rows, bit_depth, strategy = image.reshape(h, -1), 8, zlib.Z_DEFAULT_STRATEGY
    else:
        rows, bit_depth, colour_type, strategy = image.astype(">u2").view(np.uint8).reshape(h, -1), 16, 0, zlib.Z_RLE
    raw = np.empty((h, rows.shape[1] + 1), np.uint8)
    raw[:, 0] = 0  # filter type None on every row
    raw[:, 1:] = rows
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 8, strategy)
    data = compressor.compress(raw.tobytes()) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _write_npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """An ``np.load``-compatible .npz with a fixed zip timestamp (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH), _write_npy_bytes(array))


def scene_name(scene_idx: int) -> str:
    """Folder name of the ``scene_idx``-th scene (``scene_000``, ...)."""
    return f"scene_{scene_idx:03d}"


# --------------------------------------------------------------------------- objects and frames for task authors


def colour_name(albedo: Sequence[float]) -> str:
    """A colour word for an RGB albedo in 0-1: black, grey, white, red, orange, yellow, green, cyan,
    blue, purple or pink (by value, saturation and hue). Raises nothing."""
    r, g, b = (float(c) for c in albedo)
    hi, lo = max(r, g, b), min(r, g, b)
    if hi < 0.2:
        return "black"
    if (hi - lo) / hi < 0.2:
        return "white" if hi > 0.8 else "grey"
    span = hi - lo
    if hi == r:
        sector = ((g - b) / span) % 6
    elif hi == g:
        sector = (b - r) / span + 2
    else:
        sector = (r - g) / span + 4
    hue = 60.0 * sector
    for limit, name in _HUE_NAMES:
        if hue < limit:
            return name
    return "red"


_HUE_NAMES = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (255, "blue"),
              (290, "purple"), (335, "pink"), (360, "red"))


def object_label(box: Box) -> str:
    """The category word of a floor object by its proportions: ``bottle`` (tall and slim),
    ``crate`` (low and wide) or ``box``. Raises nothing."""
    footprint = max(float(box.half[0]), float(box.half[2]))
    if box.half[1] >= 2.0 * footprint:
        return "bottle"
    if box.half[1] <= 0.75 * footprint:
        return "crate"
    return "box"


@dataclass(frozen=True)
class SampleObject:
    """One object visible in a sample frame.

    ``id`` is its value in ``SampleFrame.instances`` (stable within the clip), ``label`` a
    category (``box``, ``crate``, ``bottle`` or ``arm``), ``colour`` a colour word,
    ``box`` the float64 [x1, y1, x2, y2] = [min x, min y, max x + 1, max y + 1] of its visible
    pixels and ``pixels`` their count.
    """

    id: int
    label: str
    colour: str
    box: np.ndarray
    pixels: int

    @property
    def moving(self) -> bool:
        """True for objects that move with the camera (the arm): their points have no fixed world position."""
        return self.label in MOVING_LABELS


@dataclass(frozen=True)
class _Entity:
    """An object of a clip before it has an id: its label, colour and surface codes."""

    label: str
    colour: str
    codes: tuple[int, ...]
    order: int


@dataclass(eq=False)
class SampleFrame:
    """One rendered frame of the sample dataset, handed to every task's ``sample_entry``.

    See the module docstring ("For task authors"). Arrays are the frame as written; do not
    modify them.
    """

    root: Path
    scene: str
    phase_idx: int
    frame_idx: int
    frames_in_clip: int
    split: str
    rgb: np.ndarray = field(repr=False)
    depth_mm: np.ndarray = field(repr=False)
    instances: np.ndarray = field(repr=False)
    objects: list[SampleObject] = field(repr=False)
    pose: np.ndarray = field(repr=False)
    intrinsics: tuple[float, float, float, float] = field(repr=False)
    later: "SampleFrame | None" = field(default=None, repr=False)
    _surface_depth_m: np.ndarray | None = field(default=None, repr=False)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def stem(self) -> str:
        """The frame's file stem, ``frame_idx`` as 5 digits (``00003``)."""
        return f"{self.frame_idx:05d}"

    @property
    def phase(self) -> str:
        """``clutter``, ``interaction`` or ``clean``."""
        return PHASES[self.phase_idx]

    @property
    def clip_dir(self) -> str:
        """The root-relative folder of the frame's clip, ``scenes/<scene>/<phase_idx>``."""
        return f"scenes/{self.scene}/{self.phase_idx}"

    @property
    def paths(self) -> dict[str, str]:
        """Root-relative paths of the frame's ``rgb``, ``depth`` and ``pose`` files."""
        return {
            "rgb": f"{self.clip_dir}/rgb/{self.stem}.png",
            "depth": f"{self.clip_dir}/depth/{self.stem}.png",
            "pose": f"{self.clip_dir}/pose/{self.stem}.npz",
        }

    def object(self, object_id: int) -> SampleObject | None:
        """The visible object with ``id == object_id``, or None."""
        return next((obj for obj in self.objects if obj.id == object_id), None)

    def base_entry(self) -> dict:
        """A new manifest entry with the keys every task shares: ``id`` (``<scene>__<phase_idx>__<stem>``),
        ``scene_id``, ``phase`` (index), ``frame_idx``, ``difficulty`` and ``rgb``."""
        return {
            "id": f"{self.scene}__{self.phase_idx}__{self.stem}",
            "scene_id": self.scene,
            "phase": self.phase_idx,
            "frame_idx": self.frame_idx,
            "difficulty": self.split,
            "rgb": self.paths["rgb"],
        }

    def _label_path(self, folder: str, suffix: str) -> tuple[str, Path]:
        parts = Path(folder).parts
        if not folder or Path(folder).is_absolute() or ".." in parts or "\\" in folder:
            raise ConfigError(
                f"Label folder {folder!r} must be a relative path inside the clip folder.",
                hint="use a plain folder name such as 'mask' or 'boxes'",
            )
        relative = f"{self.clip_dir}/{Path(folder).as_posix()}/{self.stem}{suffix}"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return relative, path

    def write_png(self, folder: str, array: np.ndarray) -> str:
        """Write ``array`` to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.png``; return that root-relative path.

        (H, W) or (H, W, 3) uint8 -> 8-bit grey / RGB; any other (H, W) integer array (uint16,
        int32 label maps) -> 16-bit grey. Same array, same bytes. Raises ConfigError for another
        shape or dtype, integer values outside 0-65535, or a folder that leaves the clip folder.
        """
        array = np.asarray(array)
        if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
            data = array
        elif array.ndim == 2 and np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
            if array.size and (int(array.min()) < 0 or int(array.max()) > 65535):
                raise ConfigError(
                    f"Label map for {folder!r} has values outside 0-65535 (min {array.min()}, max {array.max()}).",
                    hint="16-bit PNG labels hold 0-65535; write other values with write_npy",
                )
            data = array.astype(np.uint16, copy=False)
        else:
            raise ConfigError(
                f"Cannot write a {array.dtype} array of shape {array.shape} as PNG ({folder!r}).",
                hint="pass (H, W) or (H, W, 3) uint8, or an (H, W) integer label map; write other arrays with write_npy",
            )
        relative, path = self._label_path(folder, ".png")
        path.write_bytes(_png_bytes(np.ascontiguousarray(data)))
        return relative

    def write_json(self, folder: str, obj) -> str:
        """Write ``obj`` as JSON to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.json``; return that path.

        numpy arrays and scalars are converted to lists and numbers. Raises ConfigError for a
        value JSON cannot hold or a folder that leaves the clip folder.
        """
        try:
            text = json.dumps(_plain_json(obj))
        except (TypeError, ValueError) as exc:  # e.g. a dict key that is not a string or number
            raise ConfigError(f"Cannot write the {folder!r} label as JSON: {exc}", hint="use lists, dicts, str, numbers and numpy arrays") from exc
        relative, path = self._label_path(folder, ".json")
        path.write_text(text + "\n", encoding="utf-8")
        return relative

    def write_npy(self, folder: str, array: np.ndarray) -> str:
        """Write ``array`` with numpy's .npy format to ``scenes/<scene>/<phase_idx>/<folder>/<stem>.npy``;
        return that root-relative path. Raises ConfigError for object arrays or a folder that leaves the clip folder."""
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise ConfigError(f"Cannot write an object array as .npy ({folder!r}).", hint="use a numeric dtype")
        relative, path = self._label_path(folder, ".npy")
        path.write_bytes(_write_npy_bytes(array))
        return relative

    def backproject(self, pixels: np.ndarray) -> np.ndarray:
        """World points (N, 3) float64 of pixels (N, 2) given as (x, y) (column, row, may be fractional).

        Uses the frame's written depth at the nearest pixel and the ray through (x, y); rows are
        NaN where that depth is invalid (0) or the pixel lies outside the image. Raises nothing.
        """
        points = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        fx, fy, cx, cy = self.intrinsics
        col, row, inside = self._nearest_pixel(points)
        depth = np.full(len(points), np.nan)
        depth[inside] = self.depth_mm[row[inside], col[inside]] / 1000.0
        depth[depth == 0] = np.nan
        camera = np.stack([(points[:, 0] - cx) / fx * depth, -(points[:, 1] - cy) / fy * depth, -depth], axis=1)
        return camera @ self.pose[:3, :3].T + self.pose[:3, 3]

    def project(self, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (N, 3) into this frame: returns (pixels (N, 2) float64 (x, y), visible (N,) bool).

        ``visible`` means in front of the camera, inside the image and not hidden behind a nearer
        surface (the rendered, noise-free depth at the nearest pixel is no more than 3 % + 2 cm
        closer). Pixels of points behind the camera are NaN. Raises nothing.
        """
        points = np.asarray(world, dtype=np.float64).reshape(-1, 3)
        fx, fy, cx, cy = self.intrinsics
        camera = (points - self.pose[:3, 3]) @ self.pose[:3, :3]
        depth = -camera[:, 2]
        in_front = np.isfinite(depth) & (depth > 1e-6)
        pixels = np.full((len(points), 2), np.nan)
        pixels[in_front, 0] = cx + fx * camera[in_front, 0] / depth[in_front]
        pixels[in_front, 1] = cy - fy * camera[in_front, 1] / depth[in_front]
        col, row, visible = self._nearest_pixel(pixels)
        surface = self._surface_depth_m if self._surface_depth_m is not None else np.full(self.depth_mm.shape, np.inf)
        visible[visible] = depth[visible] <= surface[row[visible], col[visible]] * 1.03 + 0.02
        return pixels, visible

    def _nearest_pixel(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            col = np.rint(points[:, 0])
            row = np.rint(points[:, 1])
            inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < self.width) & (row >= 0) & (row < self.height)
        col = np.where(inside, col, 0).astype(np.intp)
        row = np.where(inside, row, 0).astype(np.intp)
        return col, row, inside


def _plain_json(value):
    """``value`` with numpy arrays and scalars turned into lists and numbers. Raises ConfigError
    for a value JSON cannot hold."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(
        f"Cannot write a {type(value).__name__} as JSON.",
        hint="labels written with write_json hold lists, dicts, str, numbers and numpy arrays",
    )


# --------------------------------------------------------------------------- writing


def write_sample_dataset(root: str | Path, *, scenes_per_split: int = 2, frames_per_clip: int = 4,
                         height: int = 96, width: int = 128, seed: int = 0,
                         splits: Sequence[str] = SPLITS) -> Path:
    """Write the procedural RPX-layout dataset under ``root`` for every registered task; return ``root`` as a Path.

    Writes ``scenes/<scene>/<phase_idx>/{rgb,depth,pose}/<stem>`` for 3 x ``scenes_per_split``
    scenes (the first ``scenes_per_split`` easy, then medium, then hard) x 3 phases x
    ``frames_per_clip`` frames, the label files each task's ``sample_entry`` writes, and
    ``manifests/<task>/{easy,medium,hard,all}.json`` for every registered task with a
    ``sample_entry`` (``root`` null, paths relative to ``root``, samples ordered by scene,
    phase, frame). ``splits`` limits the difficulties written (scene names and content stay as
    in the full dataset; only those splits' manifests are written, and ``all.json`` lists just
    them). Same arguments give the same bytes; files already under ``root`` are overwritten or
    left alone. Raises ConfigError on non-positive sizes or an unknown split; a task's
    ``sample_entry`` may raise its own errors.
    """
    if min(scenes_per_split, frames_per_clip, height, width) < 1:
        raise ConfigError("scenes_per_split, frames_per_clip, height and width must be >= 1", hint="e.g. rpx sample-data DIR --frames-per-clip 4")
    if isinstance(splits, str):
        splits = [splits]
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise ConfigError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}", hint=f"choose from {SPLITS}")
    splits = [split for split in SPLITS if split in splits]
    from rpx_tasks.tasks import iter_tasks

    specs = [spec for spec in iter_tasks() if spec.sample_entry is not None]
    root = Path(root)
    clips: list[_ClipJob] = []
    for split in splits:
        split_idx = SPLITS.index(split)
        for scene_idx in range(split_idx * scenes_per_split, (split_idx + 1) * scenes_per_split):
            room = _make_room(seed, scene_idx, split)
            for phase_idx in range(len(PHASES)):
                clips.append(_plan_clip(room, seed, scene_idx, phase_idx, split, frames_per_clip))
    rays = _Rays(height, width)
    entries: dict[str, dict[str, list[dict]]] = {spec.name: {split: [] for split in splits} for spec in specs}
    # Clips are independent and numpy/zlib release the GIL, so threads overlap rendering and encoding.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for clip, clip_entries in zip(clips, pool.map(lambda clip: _write_clip(root, clip, rays, specs), clips)):
            for task, samples in clip_entries.items():
                entries[task][clip.split] += samples
    for spec in specs:
        by_split = entries[spec.name]
        for split in splits:
            _write_manifest(root / "manifests" / spec.name / f"{split}.json", spec.name, split, by_split[split])
        _write_manifest(root / "manifests" / spec.name / "all.json", spec.name, "all",
                        [entry for split in splits for entry in by_split[split]])
    return root


def _write_manifest(path: Path, task: str, split: str, samples: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"task": task, "split": split, "root": None, "samples": samples}
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class _ClipJob:
    """Everything needed to render one (scene, phase) clip."""

    room: Room
    seed: int
    scene_idx: int
    phase_idx: int
    split: str
    objects: list[Box]
    trajectory: list[tuple[np.ndarray, np.ndarray]]
    arm: list[tuple[np.ndarray, float, float]] | None


def _plan_clip(room: Room, seed: int, scene_idx: int, phase_idx: int, split: str, frames_per_clip: int) -> _ClipJob:
    arm = None
    if PHASES[phase_idx] == "interaction":
        arm = _arm_motion(_rng(seed, scene_idx, phase_idx, 0xA53), frames_per_clip)
    return _ClipJob(
        room=room, seed=seed, scene_idx=scene_idx, phase_idx=phase_idx, split=split,
        objects=_phase_objects(room, seed, scene_idx, phase_idx),
        trajectory=_clip_trajectory(room, seed, scene_idx, phase_idx, split, frames_per_clip),
        arm=arm,
    )


def _clip_entities(clip: _ClipJob) -> list[_Entity]:
    entities = [
        _Entity(object_label(box), colour_name(box.albedo), (_FIRST_OBJECT + k,), k) for k, box in enumerate(clip.objects)
    ]
    if clip.arm is not None:  # arm and gripper, rendered after the static objects, are one instance
        first = _FIRST_OBJECT + len(clip.objects)
        entities.append(_Entity(ARM_LABEL, "grey", (first, first + 1), len(clip.objects)))
    return entities


def _instance_ids(entities: list[_Entity], code: np.ndarray) -> dict[_Entity, int]:
    """Ids 1..n by the column of each object's visible centroid in the clip's first frame, left to
    right; objects not visible there follow in scene order."""
    flat = code.ravel().astype(np.intp)
    size = _FIRST_OBJECT + sum(len(e.codes) for e in entities)
    counts = np.bincount(flat, minlength=size)
    columns = np.bincount(flat, weights=np.tile(np.arange(code.shape[1], dtype=np.float64), code.shape[0]), minlength=size)

    def key(entity: _Entity):
        pixels = sum(int(counts[c]) for c in entity.codes)
        if pixels == 0:
            return (1, 0.0, entity.order)
        return (0, sum(float(columns[c]) for c in entity.codes) / pixels, entity.order)

    return {entity: index + 1 for index, entity in enumerate(sorted(entities, key=key))}


def _frame_objects(instances: np.ndarray, ids: dict[_Entity, int]) -> list[SampleObject]:
    counts = np.bincount(instances.ravel(), minlength=len(ids) + 1)
    objects = []
    for entity, object_id in sorted(ids.items(), key=lambda item: item[1]):
        pixels = int(counts[object_id])
        if pixels < MIN_OBJECT_PIXELS:
            continue
        mask = instances == object_id
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
        objects.append(SampleObject(object_id, entity.label, entity.colour, box, pixels))
    return objects


def _write_clip(root: Path, clip: _ClipJob, rays: _Rays, specs) -> dict[str, list[dict]]:
    """Render, write and describe one clip's frames; returns each task's manifest entries in frame order.

    Frames are rendered in order and handed to the tasks ``PAIR_STRIDE`` frames late, so each
    one's ``later`` frame exists while only ``PAIR_STRIDE + 1`` frames are held.
    """
    scene = scene_name(clip.scene_idx)
    entries: dict[str, list[dict]] = {spec.name: [] for spec in specs}
    entities = _clip_entities(clip)
    lookup: np.ndarray | None = None
    ids: dict[_Entity, int] = {}
    pending: deque[SampleFrame] = deque()
    n_frames = len(clip.trajectory)

    def emit(frame: SampleFrame) -> None:
        for spec in specs:
            entry = spec.sample_entry(frame)
            if entry is None:
                continue
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"Task {spec.name}: sample_entry returned {type(entry).__name__}, not a dict or None.",
                    hint="return frame.base_entry() plus the task's label keys, or None to skip the frame",
                )
            entries[spec.name].append(entry)

    for frame_idx, (position, rotation) in enumerate(clip.trajectory):
        arm_boxes = _arm_world_boxes(clip.arm[frame_idx], (position, rotation)) if clip.arm else []
        rng = _rng(clip.seed, clip.scene_idx, clip.phase_idx, frame_idx, 0xF4A)
        rgb, depth_mm, code, surface = _render_frame(clip.room, clip.objects + arm_boxes, position, rotation, rays,
                                                     rng, DROPOUT_BY_SPLIT[clip.split])
        if lookup is None:
            ids = _instance_ids(entities, code)
            lookup = np.zeros(_FIRST_OBJECT + len(clip.objects) + len(arm_boxes), np.int32)
            for entity, object_id in ids.items():
                lookup[list(entity.codes)] = object_id
        instances = np.take(lookup, code.astype(np.intp))
        quaternion = rotation_to_quaternion_xyzw(rotation)
        frame = SampleFrame(
            root=root, scene=scene, phase_idx=clip.phase_idx, frame_idx=frame_idx, frames_in_clip=n_frames,
            split=clip.split, rgb=rgb, depth_mm=depth_mm, instances=instances,
            objects=_frame_objects(instances, ids), pose=pose_matrix(position, quaternion),
            intrinsics=rays.intrinsics, _surface_depth_m=surface,
        )
        for key, data in (("rgb", _png_bytes(rgb)), ("depth", _png_bytes(depth_mm))):
            path = root / frame.paths[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        pose_path = root / frame.paths["pose"]
        pose_path.parent.mkdir(parents=True, exist_ok=True)
        _write_npz(pose_path, position=np.asarray(position, np.float64), orientation=quaternion)
        pending.append(frame)
        if len(pending) > PAIR_STRIDE:
            earlier = pending.popleft()
            earlier.later = frame
            emit(earlier)
    while pending:
        earlier = pending.popleft()
        earlier.later = pending[-1] if pending else None
        emit(earlier)
    return entries
