"""Equirectangular (ERP) panoramas to perspective views, with numpy only.

An ERP image maps longitude [-180°, 180°) to x (left to right) and latitude [90°, -90°] to y (top
to bottom). A perspective view is a pinhole camera at the sphere's centre looking at (yaw, pitch)
with a square field of view `fov`. For every output pixel we build its ray, rotate it by pitch then
yaw, convert it to (longitude, latitude), and sample the panorama bilinearly, wrapping around in
longitude (the seam at ±180° is continuous).

    views = cubemap_views(pil_panorama, size=256)             # front, right, back, left
    views = cubemap_views(pil_panorama, size=256, views=6)    # ... + up, down
    face = perspective_view(array, yaw=90, pitch=0, fov=90, size=256)

Conventions: yaw 0 looks at the panorama's centre column (longitude 0), positive yaw turns right
(towards larger x); positive pitch looks up.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

# (name, yaw, pitch) of the cube faces, in the order views are passed to a model.
CUBE_FACES: tuple[tuple[str, float, float], ...] = (
    ("front", 0.0, 0.0),
    ("right", 90.0, 0.0),
    ("back", 180.0, 0.0),
    ("left", -90.0, 0.0),
    ("up", 0.0, 90.0),
    ("down", 0.0, -90.0),
)


def view_rays(yaw: float, pitch: float, fov: float, size: int) -> np.ndarray:
    """Unit ray directions (size, size, 3) in world coordinates (x right, y up, z forward)."""
    half = np.tan(np.radians(fov) / 2.0)
    coords = (2.0 * (np.arange(size) + 0.5) / size - 1.0) * half
    x, y = np.meshgrid(coords, -coords)  # image rows go down, y goes up
    rays = np.stack([x, y, np.ones_like(x)], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    p, t = np.radians(pitch), np.radians(yaw)
    # pitch: rotate about the x axis (looking up for positive pitch)
    rot_x = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    # yaw: rotate about the y axis (turning right for positive yaw)
    rot_y = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    return rays @ rot_x.T @ rot_y.T


def rays_to_erp(rays: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous ERP pixel coordinates (u, v) of ray directions; pixel centres are at +0.5."""
    lon = np.arctan2(rays[..., 0], rays[..., 2])  # [-pi, pi], 0 = forward
    lat = np.arcsin(np.clip(rays[..., 1], -1.0, 1.0))  # [-pi/2, pi/2], up positive
    u = (lon / (2 * np.pi) + 0.5) * width
    v = (0.5 - lat / np.pi) * height
    return u, v


def sample_bilinear(erp: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) array at continuous pixel coordinates; x wraps, y clamps."""
    height, width = erp.shape[:2]
    x = u - 0.5
    y = np.clip(v - 0.5, 0.0, height - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    x1 = x0 + 1
    y1 = np.minimum(y0 + 1, height - 1)
    x0 %= width
    x1 %= width
    data = erp if np.issubdtype(erp.dtype, np.floating) else erp.astype(np.float32)
    top = data[y0, x0] * (1 - fx) + data[y0, x1] * fx
    bottom = data[y1, x0] * (1 - fx) + data[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def perspective_view(erp: np.ndarray, *, yaw: float, pitch: float, fov: float, size: int) -> np.ndarray:
    """A size x size perspective view of an (H, W, C) ERP array, same dtype as the input."""
    if erp.ndim != 3:
        raise ValueError(f"expected an (H, W, C) panorama array, got shape {erp.shape}")
    u, v = rays_to_erp(view_rays(yaw, pitch, fov, size), erp.shape[1], erp.shape[0])
    out = sample_bilinear(erp, u, v)
    if np.issubdtype(erp.dtype, np.integer):
        info = np.iinfo(erp.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(erp.dtype)


def cubemap_views(
    panorama: PIL.Image.Image, *, size: int, views: int = 4, fov: float = 90.0
) -> list[tuple[str, PIL.Image.Image]]:
    """(face name, RGB view) for the first `views` faces of `CUBE_FACES` (4: horizontal ring, 6: + up/down)."""
    if views not in (4, 6):
        raise ValueError(f"views must be 4 or 6, got {views}")
    erp = np.asarray(panorama.convert("RGB"), dtype=np.float32)  # converted once for all views
    out = []
    for name, yaw, pitch in CUBE_FACES[:views]:
        view = perspective_view(erp, yaw=yaw, pitch=pitch, fov=fov, size=size)
        out.append((name, PIL.Image.fromarray(np.clip(np.rint(view), 0, 255).astype(np.uint8))))
    return out
