"""Shared vocabulary and drawing for toy-world scenes: colours, shapes, and PIL rendering.

Every generator draws with these functions so that a colour or shape name always means the same
pixels. Drawing happens at `SUPERSAMPLE`x resolution and is downsampled with a box filter, which
gives smooth edges while staying deterministic and fast.

The vocabulary also lists the synonyms that caption references and VQA annotators may use, so a
test (or an analysis) can check that a reference "mentions the drawn colour" without guessing.
"""

from __future__ import annotations

import math
from typing import Sequence, TypeVar

import numpy as np
import PIL.Image
import PIL.ImageDraw

T = TypeVar("T")

SUPERSAMPLE = 2

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (235, 200, 30),
    "purple": (135, 55, 175),
    "orange": (245, 130, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "cross")

# Words a reference or an annotator may use for each value (canonical word first).
COLOUR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "lime", "emerald"),
    "blue": ("blue", "navy", "azure"),
    "yellow": ("yellow", "golden", "lemon"),
    "purple": ("purple", "violet", "lilac"),
    "orange": ("orange", "amber", "tangerine"),
}
SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "dot", "round shape"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "triangular shape", "wedge"),
    "star": ("star", "star shape", "five-pointed star"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "cross": ("cross", "plus sign", "plus shape"),
}
SHAPE_PLURALS: dict[str, str] = {
    "circle": "circles", "disc": "discs", "dot": "dots", "round shape": "round shapes",
    "square": "squares", "box": "boxes", "block": "blocks",
    "triangle": "triangles", "triangular shape": "triangular shapes", "wedge": "wedges",
    "star": "stars", "star shape": "star shapes", "five-pointed star": "five-pointed stars",
    "diamond": "diamonds", "rhombus": "rhombuses", "lozenge": "lozenges",
    "cross": "crosses", "plus sign": "plus signs", "plus shape": "plus shapes",
}
NUMBER_WORDS: dict[int, str] = {0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One element of `items`, drawn with `rng` (keeps Python types, unlike `rng.choice`)."""
    return items[int(rng.integers(len(items)))]


def pick_weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key of `weights` drawn with probability proportional to its value (keys in sorted order)."""
    keys = sorted(k for k, w in weights.items() if w > 0)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def canvas(width: int, height: int, background: tuple[int, int, int] = (255, 255, 255)) -> tuple[PIL.Image.Image, PIL.ImageDraw.ImageDraw]:
    """A supersampled RGB canvas and its drawer; pass the image to `finish_canvas` when done."""
    image = PIL.Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), background)
    return image, PIL.ImageDraw.Draw(image)


def finish_canvas(image: PIL.Image.Image) -> PIL.Image.Image:
    """Downsample a supersampled canvas to its nominal size (box filter: deterministic)."""
    w, h = image.size
    return image.resize((w // SUPERSAMPLE, h // SUPERSAMPLE), PIL.Image.Resampling.BOX)


def shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices of a shape of radius `r` centred at (cx, cy); circles have no polygon."""
    if shape == "square":
        s = r * 0.85
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.75), (cx - r * 0.95, cy + r * 0.75)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    if shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + i * math.pi / 5
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        return pts
    if shape == "cross":
        a, b = r * 0.32, r * 0.95
        return [
            (cx - a, cy - b), (cx + a, cy - b), (cx + a, cy - a), (cx + b, cy - a), (cx + b, cy + a), (cx + a, cy + a),
            (cx + a, cy + b), (cx - a, cy + b), (cx - a, cy + a), (cx - b, cy + a), (cx - b, cy - a), (cx - a, cy - a),
        ]
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def draw_shape(draw: PIL.ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
    """Draw a filled shape in nominal (not supersampled) pixel coordinates on a `canvas` drawer."""
    k = SUPERSAMPLE
    if shape == "circle":
        draw.ellipse((k * (cx - r), k * (cy - r), k * (cx + r), k * (cy + r)), fill=fill)
        return
    draw.polygon([(k * x, k * y) for x, y in shape_points(shape, cx, cy, r)], fill=fill)


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Split `n` items into parts with the given fractions; the last part takes the remainder."""
    sizes = [int(round(n * f)) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    if min(sizes) < 0:
        raise ValueError(f"cannot split {n} items into fractions {list(fractions)}")
    return sizes
