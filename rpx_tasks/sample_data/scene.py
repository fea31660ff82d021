"""The procedural room of a sample scene: geometry, objects, the robot arm and the camera path.

Everything is drawn from generators seeded by (seed, scene, phase, ...), so the same arguments
give the same scene. Rotations are camera->world in T265 axes (X right, Y up, Z back; world Y up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rpx_tasks.constants import CAMERA_HEIGHT_M, PHASES, RPX_FOCAL_PX, RPX_WIDTH, WALL_DISTANCE_M

# The back wall of a scene stands this far from the camera (centred on the assumed RPX room depth).
WALL_DISTANCE_RANGE_M = (WALL_DISTANCE_M - 0.5, WALL_DISTANCE_M + 0.5)
OCCLUDER_DEPTH_RANGE_M = (0.4, 0.8)  # distance of the robot arm from the camera
OBJECT_COUNT_BY_PHASE = {"clutter": (5, 8), "interaction": (2, 4), "clean": (0, 2)}

# Camera motion per difficulty: roll step per frame in degrees, translation per frame in m.
ROLL_STEP_DEG_RANGE = {"easy": (0.3, 0.6), "medium": (0.5, 1.2), "hard": (1.0, 2.0)}
TRANSLATION_STEP_M_RANGE = {"easy": (0.002, 0.005), "medium": (0.004, 0.008), "hard": (0.006, 0.012)}
MAX_ROLL_DEG = 3.0

# One camera pose: (position (3,) in world metres, rotation (3, 3) camera->world).
CameraPose = tuple[np.ndarray, np.ndarray]
# The arm in one frame: (tip in OpenCV camera axes, side -1 left / +1 right, tilt in radians).
ArmPlacement = tuple[np.ndarray, float, float]


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


def seeded_rng(*key: int) -> np.random.Generator:
    """Return a numpy generator seeded by the integers ``key``. Raises nothing."""
    return np.random.default_rng([int(k) for k in key])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    """Return the (3, 3) rotation by ``a`` radians about Z. Raises nothing."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Return the (3, 3) camera->world rotation in T265 axes (X right, Y up, Z back; world Y up).

    Angles in radians. Yaw turns about world Y, pitch about the camera X (positive looks up),
    roll about the camera Z (the optical axis), so the relative rotation of two frames that
    differ only in roll is a rotation about Z by the roll difference. Raises nothing.
    """
    return _rot_y(yaw) @ _rot_x(pitch) @ rot_z(roll)


def rotation_to_quaternion_xyzw(rotation: np.ndarray) -> np.ndarray:
    """Return the unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix. Raises nothing."""
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


def make_room(seed: int, scene_idx: int, split: str) -> Room:
    """Return the room of scene ``scene_idx`` (every hard scene's first object is dark). Raises nothing."""
    rng = seeded_rng(seed, scene_idx, 0xA11)
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


def phase_objects(room: Room, seed: int, scene_idx: int, phase_idx: int) -> list[Box]:
    """Return the floor objects standing in phase ``phase_idx`` of the scene (a prefix of the room's).
    Raises nothing."""
    lo, hi = OBJECT_COUNT_BY_PHASE[PHASES[phase_idx]]
    count = int(seeded_rng(seed, scene_idx, phase_idx, 0xB0C).integers(lo, hi + 1))
    return list(room.objects[:count])


def arm_motion(rng: np.random.Generator, frames_per_clip: int) -> list[ArmPlacement]:
    """Return the robot-arm tip per frame as (tip in OpenCV camera axes, side, tilt). Raises nothing.

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


def arm_world_boxes(frame_arm: ArmPlacement, camera_pose: CameraPose) -> list[Box]:
    """Return the arm and gripper boxes in world coordinates for a camera at ``camera_pose``. Raises nothing."""
    (tip, side, tilt) = frame_arm
    position, rotation = camera_pose
    cv_to_body = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes -> T265 body axes
    arm_rot_cv = rot_z(tilt)  # slight tilt in the image plane
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


def clip_trajectory(
    room: Room, seed: int, scene_idx: int, phase_idx: int, split: str, frames_per_clip: int
) -> list[CameraPose]:
    """Return the camera (position, camera->world rotation) per frame: a steady drift and a zig-zag roll.

    The roll steps by ``ROLL_STEP_DEG_RANGE[split]`` and turns back at ``MAX_ROLL_DEG``. Raises nothing.
    """
    rng = seeded_rng(seed, scene_idx, phase_idx, 0xCA3)
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
