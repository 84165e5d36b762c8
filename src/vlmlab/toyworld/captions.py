"""Shapes captions: 1-3 coloured shapes per image with five varied reference captions.

A scene is a list of `ShapeGroup`s: one group is `count` copies of a (colour, shape, size); a
singleton also has a named position on a 3x3 grid. References vary synonyms (colour, shape,
size, position words), the order of the groups, the sentence frame and the word order inside a
phrase, and they always name every group's colour and shape (a synonym of it from
`scenes.COLOUR_SYNONYMS` / `scenes.SHAPE_SYNONYMS`).

Output (see `write_caption_dataset`): `images/{split}/*.png`, `captions_{split}.json` in COCO
captions format and `{split}.tsv` in the QuIC-360 layout (`path`, `query`, `annotation`, one row per
reference). Call `generate_captions(out_dir, n=2000, seed=0)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image

from vlmlab.toyworld.scenes import (
    COLOURS,
    COLOUR_SYNONYMS,
    NUMBER_WORDS,
    SHAPE_PLURALS,
    SHAPE_SYNONYMS,
    SHAPES,
    canvas,
    draw_shape,
    finish_canvas,
    pick,
    split_counts,
)
from vlmlab.toyworld.writers import DatasetWriter, Manifest

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
CAPTION_QUERY = "Describe the image."
N_REFERENCES = 5
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
VERTICAL = ("top", "middle", "bottom")
HORIZONTAL = ("left", "centre", "right")


@dataclass(frozen=True)
class ShapeGroup:
    """`count` copies of one coloured shape; `cells` are (row, col) on the 3x3 grid, one per copy."""

    colour: str
    shape: str
    size: str
    cells: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return len(self.cells)


@dataclass(frozen=True)
class CaptionItem:
    """One (image, query) pair and its references, ready to be written."""

    image_id: int
    file_name: str
    query: str
    references: tuple[str, ...]


def sample_scene(rng: np.random.Generator) -> list[ShapeGroup]:
    """1-3 objects: one group of copies, or distinct groups (distinct colour+shape pairs)."""
    total = int(rng.integers(1, 4))
    partitions = {1: [[1]], 2: [[2], [1, 1]], 3: [[3], [2, 1], [1, 1, 1]]}[total]
    parts = pick(rng, partitions)
    cells = [(int(c) // 3, int(c) % 3) for c in rng.permutation(9)[:total]]
    used: set[tuple[str, str]] = set()
    groups = []
    for k in parts:
        while True:
            colour, shape = pick(rng, list(COLOURS)), pick(rng, SHAPES)
            if (colour, shape) not in used:
                used.add((colour, shape))
                break
        size = pick(rng, ("small", "large"))
        groups.append(ShapeGroup(colour, shape, size, tuple(sorted(cells[:k]))))
        cells = cells[k:]
    return groups


def draw_scene(groups: Sequence[ShapeGroup], rng: np.random.Generator, size: int = 112) -> PIL.Image.Image:
    """Render groups on a white `size`x`size` canvas; positions jitter a little inside their cell."""
    image, draw = canvas(size, size)
    cell = size / 3
    for g in groups:
        radius = cell * (0.24 if g.size == "small" else 0.42)
        for row, col in g.cells:
            jx, jy = rng.uniform(-0.06, 0.06, size=2) * cell
            draw_shape(draw, g.shape, (col + 0.5) * cell + jx, (row + 0.5) * cell + jy, radius, COLOURS[g.colour])
    return finish_canvas(image)


def position_phrases(row: int, col: int) -> tuple[str, ...]:
    """Ways to say where a cell of the 3x3 grid is ('in the top left', 'at the upper left', ...)."""
    v, h = VERTICAL[row], HORIZONTAL[col]
    if v == "middle" and h == "centre":
        return ("in the centre", "in the middle", "at the center")
    if v == "middle":
        return (f"on the {h}", f"at the {h} side", f"on the {h}-hand side")
    vert = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}[v]
    if h == "centre":
        return (f"at the {vert[0]}", f"near the {vert[0]}", f"in the {vert[1]} part")
    return (f"in the {vert[0]} {h}", f"in the {vert[1]} {h} corner", f"at the {vert[0]}-{h}")


def group_phrase(g: ShapeGroup, rng: np.random.Generator) -> str:
    """One noun phrase for a group, with random synonyms and a random internal word order."""
    colour = pick(rng, COLOUR_SYNONYMS[g.colour])
    shape = pick(rng, SHAPE_SYNONYMS[g.shape])
    size = pick(rng, SIZE_WORDS[g.size]) if rng.random() < 0.8 else ""
    if g.count > 1:
        plural = SHAPE_PLURALS[shape]
        number = NUMBER_WORDS[g.count]
        forms = [f"{number} {size} {colour} {plural}", f"{number} {colour} {plural}" + (f" of {size} size" if size else "")]
        if g.count == 2:
            forms.append(f"a pair of {size} {colour} {plural}")
        return " ".join(pick(rng, forms).split())
    where = pick(rng, position_phrases(*g.cells[0])) if rng.random() < 0.85 else ""
    article = "an" if (size or colour)[0] in "aeiou" else "a"
    forms = [
        f"{article} {size} {colour} {shape} {where}",
        f"{'an' if shape[0] in 'aeiou' else 'a'} {size} {shape} that is {colour} {where}",
        f"one {size} {colour} {shape} {where}",
    ]
    return " ".join(pick(rng, forms).split())


def _join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def scene_references(groups: Sequence[ShapeGroup], rng: np.random.Generator, n: int = N_REFERENCES) -> tuple[str, ...]:
    """`n` distinct references; each names every group's colour and shape (synonyms allowed)."""
    plural_first = groups[0].count > 1 or len(groups) > 1
    frames = ["{}", "a picture of {}", "an image showing {}", "there {be} {}", "{} on a white background", "we can see {}"]
    refs: list[str] = []
    for attempt in range(50):
        order = [groups[int(i)] for i in rng.permutation(len(groups))]
        body = _join([group_phrase(g, rng) for g in order])
        frame = frames[(len(refs) + attempt) % len(frames)] if attempt < 10 else pick(rng, frames)
        text = frame.replace("{be}", "are" if plural_first else "is").format(body)
        text = text[0].upper() + text[1:] + "."
        if text not in refs:
            refs.append(text)
        if len(refs) == n:
            break
    while len(refs) < n:  # only for degenerate vocabularies; keep the count the format promises
        refs.append(refs[len(refs) % len(refs)])
    return tuple(refs)


def write_caption_dataset(writer: DatasetWriter, split: str, items: Sequence[CaptionItem], extra_image_keys: dict[int, dict] | None = None) -> None:
    """Write `captions_{split}.json` (COCO captions) and `{split}.tsv` (path, query, annotation).

    COCO `file_name` is relative to the dataset root. When one image has several queries
    (panorama), each (image, query) pair is its own COCO image entry with a `query` key.
    """
    images, annotations, rows = [], [], []
    ann_id = 1
    for item in items:
        entry = {"id": item.image_id, "file_name": item.file_name, "query": item.query}
        entry.update((extra_image_keys or {}).get(item.image_id, {}))
        images.append(entry)
        for ref in item.references:
            annotations.append({"id": ann_id, "image_id": item.image_id, "caption": ref})
            rows.append((item.file_name, item.query, ref))
            ann_id += 1
    coco = {
        "info": {"description": f"vlmlab toy world captions, split {split}", "version": "1.0"},
        "licenses": [{"id": 1, "name": "CC0 1.0 (synthetic)", "url": ""}],
        "images": images,
        "annotations": annotations,
    }
    writer.json(f"captions_{split}.json", coco)
    writer.table(f"{split}.tsv", ("path", "query", "annotation"), rows, delimiter="\t")


def generate_captions(out_dir: str | Path, n: int = 2000, seed: int = 0, image_size: int = 112, overwrite: bool = False) -> Manifest:
    """Write `n` shapes-caption images (80/10/10 train/val/test) and their references.

    Args:
        out_dir: output folder (empty, or a previous toy-world output which is replaced).
        n: number of images.
        seed: the only source of randomness; same seed, same bytes.
        image_size: side in pixels (a multiple of 28 keeps Qwen2-VL token grids whole).
        overwrite: allow a non-empty folder that is not a toy-world output.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 101]))
    writer = DatasetWriter(out_dir, kind="captions", seed=seed, n=n, overwrite=overwrite)
    image_id = 0
    counts: dict[str, int] = {}
    scenes: dict[int, dict] = {}
    for split, size in zip(SPLITS, split_counts(n, SPLIT_FRACTIONS)):
        items = []
        for _ in range(size):
            image_id += 1
            groups = sample_scene(rng)
            rel = f"images/{split}/{image_id:06d}.png"
            writer.png(rel, draw_scene(groups, rng, image_size))
            items.append(CaptionItem(image_id, rel, CAPTION_QUERY, scene_references(groups, rng)))
            scenes[image_id] = {"width": image_size, "height": image_size, "objects": [
                {"colour": g.colour, "shape": g.shape, "size": g.size, "count": g.count, "cells": [list(c) for c in g.cells]}
                for g in groups
            ]}
        write_caption_dataset(writer, split, items, {i.image_id: {"width": image_size, "height": image_size} for i in items})
        counts[split] = size
    writer.json("scenes.json", {str(k): v for k, v in scenes.items()})
    return writer.finish(counts)
