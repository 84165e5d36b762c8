"""ERP -> perspective projection against the analytic sphere geometry, and the image strategies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vlmlab.caption.images import ImagePreparer
from vlmlab.caption.panorama import CUBE_FACES, cubemap_views, perspective_view, rays_to_erp, view_rays
from vlmlab.data.images import Image
from vlmlab.errors import ConfigError


def smooth_erp(width: int = 512, height: int = 256) -> np.ndarray:
    """A panorama whose 3 channels are smooth functions of the sphere direction (x, y, z)."""
    lon = ((np.arange(width) + 0.5) / width - 0.5) * 2 * np.pi
    lat = (0.5 - (np.arange(height) + 0.5) / height) * np.pi
    lon, lat = np.meshgrid(lon, lat)
    xyz = np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], axis=-1)
    return (xyz + 1.0) / 2.0  # in [0, 1], float64


def test_view_centres_look_where_yaw_and_pitch_say() -> None:
    for yaw, pitch, expected in [(0, 0, (0, 0, 1)), (90, 0, (1, 0, 0)), (180, 0, (0, 0, -1)), (-90, 0, (-1, 0, 0)),
                                 (0, 90, (0, 1, 0)), (0, -90, (0, -1, 0)), (45, 0, (np.sqrt(0.5), 0, np.sqrt(0.5)))]:
        rays = view_rays(yaw, pitch, 90, 2)  # the 4 centre pixels straddle the optical axis
        centre = rays.reshape(-1, 3).mean(axis=0)
        centre /= np.linalg.norm(centre)
        assert np.allclose(centre, expected, atol=1e-9), (yaw, pitch, centre)
    # the top row of a level view looks up, the right column looks right (for yaw 0)
    rays = view_rays(0, 0, 90, 8)
    assert rays[0, :, 1].min() > 0 and rays[-1, :, 1].max() < 0
    assert rays[:, -1, 0].min() > 0 and rays[:, 0, 0].max() < 0
    # a 90 degree view: the edge pixel centre of 8 sits at tan = 7/8 on the image plane
    edge = view_rays(0, 0, 90, 8)[4, -1]
    assert np.degrees(np.arctan2(edge[0], edge[2])) == pytest.approx(np.degrees(np.arctan(7 / 8)), abs=1e-9)


def test_projection_matches_the_sphere_directions() -> None:
    erp = smooth_erp()
    for _, yaw, pitch in CUBE_FACES:
        view = perspective_view(erp, yaw=yaw, pitch=pitch, fov=90, size=32)
        expected = (view_rays(yaw, pitch, 90, 32) + 1.0) / 2.0  # what smooth_erp encodes
        assert np.abs(view - expected).max() < 0.02, (yaw, pitch)


def test_erp_coordinates_wrap_and_the_seam_is_continuous() -> None:
    u, v = rays_to_erp(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 400, 200)
    assert np.allclose(u[:2], [200, 300]) and np.allclose(v[:2], [100, 100]) and v[2] == pytest.approx(0)
    # the back view straddles the +-180 seam: a panorama with a left/right colour step shows both halves
    erp = np.zeros((64, 128, 3), dtype=np.uint8)
    erp[:, :64] = (255, 0, 0)
    erp[:, 64:] = (0, 0, 255)
    back = perspective_view(erp, yaw=180, pitch=0, fov=90, size=16)
    assert tuple(back[8, 0]) == (0, 0, 255) and tuple(back[8, -1]) == (255, 0, 0)  # looking back, right is the left edge
    assert back.dtype == np.uint8


def test_cubemap_views_of_a_pil_panorama() -> None:
    pano = PIL.Image.fromarray((smooth_erp(256, 128) * 255).astype(np.uint8))
    views = cubemap_views(pano, size=24)
    assert [n for n, _ in views] == ["front", "right", "back", "left"]
    assert all(v.size == (24, 24) and v.mode == "RGB" for _, v in views)
    assert len(cubemap_views(pano, size=24, views=6)) == 6
    with pytest.raises(ValueError):
        cubemap_views(pano, size=24, views=5)


def test_image_preparer_strategies(tmp_path: Path) -> None:
    pano = PIL.Image.fromarray((smooth_erp(200, 100) * 255).astype(np.uint8))
    pano.save(tmp_path / "pano.png")
    source = Image(path=tmp_path / "pano.png")
    squash = ImagePreparer(tmp_path / "cache", policy="squash", size=64)(source)
    assert len(squash) == 1 and squash[0].load().size == (64, 64)
    pad = ImagePreparer(tmp_path / "cache", policy="pad", size=64)(source)
    assert pad[0].load().size == (128, 64)  # 2:1 canvas keeps the whole ERP
    prep = ImagePreparer(tmp_path / "cache", policy="cubemap", size=32, views=6)
    cube = prep(source)
    assert len(cube) == 6 and all(im.load().size == (32, 32) for im in cube)
    assert len({im.sha256 for im in cube}) == 6  # six different views
    assert prep.folder.name == "cubemap-32-v6-fov90"
    mtime = cube[0].path.stat().st_mtime_ns
    again = prep(source)  # cached: same files, not rewritten
    assert [im.path for im in again] == [im.path for im in cube] and again[0].path.stat().st_mtime_ns == mtime
    assert ImagePreparer(tmp_path / "cache", policy="none", size=64)(source) == [source]
    with pytest.raises(ConfigError, match="unknown image policy"):
        ImagePreparer(tmp_path, policy="fisheye", size=64)
