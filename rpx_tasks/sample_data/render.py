"""The vectorised numpy ray caster of the sample data: one frame's RGB, sensor depth and surface map.

A camera looks at the back wall of a :class:`~rpx_tasks.sample_data.scene.Room`; through its
doorway a corridor wall lies beyond ``MAX_VALID_DEPTH_M`` (invalid in depth), a glossy picture
saturates the RGB and returns no depth, and box objects stand on a tiled floor. Depth is what a
D435 would report: noise growing with range, random speckle dropouts, flying pixels at depth
discontinuities, half the pixels of dark objects lost and nothing beyond the valid range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rpx_tasks.constants import SAMPLE_BASEBOARD_ALBEDO, scaled_intrinsics
from rpx_tasks.sample_data.scene import Box, Room

MAX_VALID_DEPTH_M = 6.0
MIN_VALID_DEPTH_M = 0.2
DROPOUT_BY_SPLIT = {"easy": 0.01, "medium": 0.02, "hard": 0.03}  # speckle dropout fraction per difficulty

_FAR_WALL_EXTRA_M = 3.5  # the corridor wall seen through the doorway lies this far behind the back wall
_DOOR_HEIGHT_M = 2.1

# Surface codes of the per-pixel surface map; objects follow from FIRST_OBJECT on.
_FLOOR, _WALL, _CORRIDOR, _BASEBOARD, _PICTURE, FIRST_OBJECT = range(6)

_CORNER_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)


class Rays:
    """Per-resolution ray directions in camera body axes (z-component -1, so ray t = z-depth)."""

    def __init__(self, height: int, width: int):
        fx, fy, cx, cy = scaled_intrinsics(width, height)
        u = (np.arange(width, dtype=np.float32) - cx) / fx
        v = (np.arange(height, dtype=np.float32) - cy) / fy
        self.x = np.broadcast_to(u[None, :], (height, width))
        self.y = np.broadcast_to(-v[:, None], (height, width))
        self.intrinsics = (fx, fy, cx, cy)
        self.shape = (height, width)


@dataclass
class _Hits:
    """What the rays of one frame hit: ray t (= z-depth, m), surface codes and hit points."""

    t: np.ndarray
    code: np.ndarray
    floor: np.ndarray
    picture: np.ndarray
    points: tuple[np.ndarray, np.ndarray, np.ndarray]
    box_normals: list


def render_frame(
    room: Room,
    objects: list[Box],
    cam_pos: np.ndarray,
    cam_rot: np.ndarray,
    rays: Rays,
    rng: np.random.Generator,
    dropout: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ray cast one frame seen from ``cam_pos`` / ``cam_rot`` (camera->world, T265 axes).

    Returns (rgb (H, W, 3) uint8, depth (H, W) uint16 millimetres with 0 = invalid,
    surface code (H, W) int8 (``FIRST_OBJECT + k`` for ``objects[k]``), noise-free z-depth
    (H, W) float32 metres). ``dropout`` is the fraction of valid pixels lost at random. Raises nothing.
    """
    hits = _cast_rays(room, objects, cam_pos, cam_rot, rays)
    rgb = _shade(room, objects, hits, rng)
    depth_mm = _sensor_depth(objects, hits, rng, dropout)
    return rgb, depth_mm, hits.code, hits.t


def _cast_rays(room: Room, objects: list[Box], cam_pos: np.ndarray, cam_rot: np.ndarray, rays: Rays) -> _Hits:
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
        code[win][closer] = FIRST_OBJECT + k
        box_normals.append((win, closer, normal))

    px, py, pz = ox + t * dx, oy + t * dy, oz + t * dz
    wall = code == _WALL
    code[wall & (py < 0.1)] = _BASEBOARD
    picture = (
        wall & (px > room.picture_x[0]) & (px < room.picture_x[1]) & (py > room.picture_y[0]) & (py < room.picture_y[1])
    )
    code[picture] = _PICTURE
    return _Hits(t=t, code=code, floor=floor, picture=picture, points=(px, py, pz), box_normals=box_normals)


def _shade(room: Room, objects: list[Box], hits: _Hits, rng: np.random.Generator) -> np.ndarray:
    """RGB of the hits: a Lambertian point light with an ambient term and mild attenuation with distance."""
    h, w = hits.t.shape
    px, py, pz = hits.points
    vx, vy, vz = room.light[0] - px, room.light[1] - py, room.light[2] - pz
    dist2 = vx * vx + vy * vy + vz * vz
    n_dot_v = np.where(hits.floor, vy, vz)  # floor normal +Y, walls +Z
    for win, closer, (nx, ny, nz) in hits.box_normals:
        np.copyto(n_dot_v[win], nx * vx[win] + ny * vy[win] + nz * vz[win], where=closer)
    lambert = np.maximum(n_dot_v, 0) / np.sqrt(dist2)
    shade = (0.35 + 0.9 * lambert / (1 + 0.08 * dist2)) * np.exp(np.float32(-0.05) * hits.t)
    _apply_floor_texture(shade, hits.floor, px, pz)
    shade += (rng.random((h, w), dtype=np.float32) - 0.5) * np.float32(0.04)
    shade[hits.picture] = 1.0  # specular glare saturates the picture
    palette = np.array(
        [room.floor_albedo, room.wall_albedo, room.wall_albedo * 0.45, SAMPLE_BASEBOARD_ALBEDO, (0.97, 0.97, 0.95)]
        + [box.albedo for box in objects],
        np.float32,
    )
    shade *= 255
    rgb = np.empty((h, w, 3), np.uint8)
    for c in range(3):  # per channel: a lot faster than gathering (H, W, 3) floats
        channel = np.take(palette[:, c], hits.code)
        channel *= shade
        channel += 0.5
        rgb[..., c] = np.minimum(channel, 255)
    return rgb


def _sensor_depth(objects: list[Box], hits: _Hits, rng: np.random.Generator, dropout: float) -> np.ndarray:
    """Depth as a D435 reports it (uint16 mm, 0 = invalid): noise growing with range, dropouts, no return
    beyond range."""
    h, w = hits.t.shape
    t = hits.t
    depth = t * (1 + np.float32(0.0035) * t * (rng.random((h, w), dtype=np.float32) - 0.5))
    invalid = (depth > MAX_VALID_DEPTH_M) | (depth < MIN_VALID_DEPTH_M) | hits.picture
    invalid |= rng.random((h, w), dtype=np.float32) < dropout
    jump = np.abs(np.diff(depth, axis=1)) > 0.25  # flying pixels at depth discontinuities
    invalid[:, 1:] |= jump
    invalid[:, :-1] |= jump
    for k, box in enumerate(objects):
        if box.dark:  # a dark, absorbing object returns only half of its pixels
            invalid |= (hits.code == FIRST_OBJECT + k) & (rng.random((h, w), dtype=np.float32) < 0.5)
    depth_mm = (np.minimum(depth, MAX_VALID_DEPTH_M + 1) * 1000 + 0.5).astype(np.uint16)
    depth_mm[invalid] = 0
    return depth_mm


def _world_dirs(rays: Rays, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = rotation.astype(np.float32)
    return tuple(r[i, 0] * rays.x + r[i, 1] * rays.y - r[i, 2] for i in range(3))


def _box_window(box: Box, cam_pos: np.ndarray, cam_rot: np.ndarray, intrinsics, shape) -> tuple[int, int, int, int]:
    """Pixel window (v0, v1, u0, u1) holding the box's projection (the full image if it reaches behind
    the camera)."""
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
