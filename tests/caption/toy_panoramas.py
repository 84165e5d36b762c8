"""Toy ERP panoramas with queries and references (QuIC-360 layout), for the caption-study tests.

Each 2:1 panorama shows one coloured shape on a white background, in the left or the right half;
the query is "Describe the image." and the five references name the colour and the shape with a
few sentence frames, so a tiny model can learn the task in a few hundred steps and its CIDEr after
fine-tuning is clearly above its CIDEr before (a random-init model emits unrelated tokens).

    write_toy_panoramas(Path("data"), n_train=96, n_test=16, seed=0)  # data/train.tsv, data/test.tsv, data/panos/
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (230, 200, 20)}
SHAPES = ("circle", "square", "triangle")
FRAMES = ("A {c} {s}.", "A {c} {s} in the panorama.", "There is a {c} {s}.", "One {c} {s}.", "A {c} {s} on white.")


def draw_panorama(colour: str, shape: str, side: str, rng: np.random.Generator, width: int = 224) -> PIL.Image.Image:
    height = width // 2
    image = PIL.Image.new("RGB", (width, height), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(image)
    cx = (0.25 if side == "left" else 0.75) * width + rng.uniform(-8, 8)
    cy = 0.5 * height + rng.uniform(-6, 6)
    r = height * 0.3
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return image


def write_toy_panoramas(out: Path, *, n_train: int = 96, n_test: int = 16, seed: int = 0) -> Path:
    """Write `panos/*.png`, `train.tsv` and `test.tsv` (path, query, annotation) under `out`."""
    out = Path(out)
    (out / "panos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    combos = [(c, s) for c in COLOURS for s in SHAPES]
    index = 0
    for split, n in (("train", n_train), ("test", n_test)):
        rows = []
        for i in range(n):
            colour, shape = combos[(i + (5 if split == "test" else 0)) % len(combos)]
            side = ("left", "right")[int(rng.integers(2))]
            name = f"panos/{split}_{index:04d}.png"
            draw_panorama(colour, shape, side, rng).save(out / name)
            index += 1
            for frame in FRAMES:
                rows.append((name, "Describe the image.", frame.format(c=colour, s=shape)))
        with open(out / f"{split}.tsv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(("path", "query", "annotation"))
            writer.writerows(rows)
    return out
