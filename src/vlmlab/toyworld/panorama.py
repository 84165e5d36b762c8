"""Panorama captions: wide 2:1 scenes whose reference captions depend on the query.

A scene has a sky (day, sunset or night; sun or moon; clouds), a ground (grass, sand, snow) and
0-2 coloured shapes standing in each of three regions (left, centre, right). Each image gets three
of the queries in `QUERIES` ("What is on the left side?", "Describe the sky.", ...); the five
references for a query describe only what that query asks about, so a captioner that ignores the
query scores badly. Files are the same as for shapes captions (COCO JSON with one entry per
(image, query) pair and a `query` key; QuIC-360-style TSV), plus `scenes.json` with the ground truth.

Call `generate_panorama(out_dir, n=1000, seed=0)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.toyworld.captions import SPLIT_FRACTIONS, SPLITS, CaptionItem, write_caption_dataset
from vlmlab.toyworld.scenes import (
    COLOURS,
    COLOUR_SYNONYMS,
    NUMBER_WORDS,
    SHAPE_SYNONYMS,
    SHAPES,
    SUPERSAMPLE,
    canvas,
    draw_shape,
    finish_canvas,
    pick,
    split_counts,
)
from vlmlab.toyworld.writers import DatasetWriter, Manifest

REGIONS = ("left", "centre", "right")
QUERIES: dict[str, tuple[str, ...]] = {
    "left": ("What is on the left side?", "What can be seen on the left?"),
    "centre": ("What is in the centre?", "What is in the middle of the view?"),
    "right": ("What is on the right side?", "What can be seen on the right?"),
    "sky": ("Describe the sky.", "What does the sky look like?"),
    "ground": ("Describe the ground.", "What is the ground like?"),
    "scene": ("Describe the whole scene.", "Describe the panorama."),
}
SKIES = {"day": (135, 190, 240), "sunset": (245, 160, 90), "night": (20, 25, 70)}
GROUNDS = {"grass": (70, 150, 60), "sand": (225, 200, 130), "snow": (240, 240, 245)}
SKY_WORDS = {
    "day": ("a clear blue sky", "a bright blue daytime sky", "a blue sky"),
    "sunset": ("an orange sunset sky", "a warm evening sky at sunset", "an orange sky at dusk"),
    "night": ("a dark night sky", "a dark blue sky at night", "a night sky"),
}
LIGHT_WORDS = {"sun": ("the sun", "a yellow sun", "a shining sun"), "moon": ("the moon", "a pale moon", "a white moon")}
GROUND_WORDS = {
    "grass": ("green grass", "a grassy field", "a green meadow"),
    "sand": ("yellow sand", "a sandy beach", "desert sand"),
    "snow": ("white snow", "a snowy field", "snow-covered ground"),
}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}


@dataclass(frozen=True)
class PanoObject:
    colour: str
    shape: str
    size: str
    region: str
    x: float  # centre x as a fraction of the width


@dataclass(frozen=True)
class PanoScene:
    time: str
    light: str | None  # "sun", "moon" or None
    clouds: int
    ground: str
    objects: tuple[PanoObject, ...]

    def in_region(self, region: str) -> list[PanoObject]:
        return [o for o in self.objects if o.region == region]


def sample_panorama(rng: np.random.Generator) -> PanoScene:
    time = pick(rng, tuple(SKIES))
    light = ("moon" if time == "night" else "sun") if rng.random() < 0.75 else None
    clouds = 0 if time == "night" else int(rng.integers(0, 3))
    ground = pick(rng, tuple(GROUNDS))
    objects = []
    for i, region in enumerate(REGIONS):
        k = int(rng.choice(3, p=[0.25, 0.5, 0.25]))
        slots = sorted(rng.permutation(2)[:k].tolist())
        for slot in slots:
            x = (i + 0.25 + 0.5 * slot + rng.uniform(-0.05, 0.05)) / 3
            objects.append(PanoObject(pick(rng, tuple(COLOURS)), pick(rng, SHAPES), pick(rng, ("small", "large")), region, x))
    return PanoScene(time, light, clouds, ground, tuple(objects))


def draw_panorama(scene: PanoScene, rng: np.random.Generator, width: int = 224) -> PIL.Image.Image:
    """Render a scene at `width` x `width/2` (equirectangular aspect); the horizon is the middle row."""
    height = width // 2
    image, draw = canvas(width, height, SKIES[scene.time])
    k = SUPERSAMPLE  # draw_shape scales by itself; raw rectangles and ellipses need the factor
    draw.rectangle((0, k * height // 2, k * width, k * height), fill=GROUNDS[scene.ground])
    if scene.light:
        lx, ly = rng.uniform(0.1, 0.9) * width, (0.38 if scene.time == "sunset" else 0.18) * height
        colour = (250, 220, 60) if scene.light == "sun" else (235, 235, 225)
        draw_shape(draw, "circle", lx, ly, 0.09 * height, colour)
    for _ in range(scene.clouds):
        cx, cy = rng.uniform(0.05, 0.95) * width, rng.uniform(0.1, 0.3) * height
        w, h = 0.08 * width, 0.05 * height
        draw.ellipse((k * (cx - w), k * (cy - h), k * (cx + w), k * (cy + h)), fill=(250, 250, 250))
    for o in scene.objects:
        r = (0.10 if o.size == "small" else 0.17) * height
        draw_shape(draw, o.shape, o.x * width, 0.72 * height, r, COLOURS[o.colour])
    return finish_canvas(image)


def _object_phrase(o: PanoObject, rng: np.random.Generator) -> str:
    size = pick(rng, SIZE_WORDS[o.size]) if rng.random() < 0.7 else ""
    words = " ".join(f"{size} {pick(rng, COLOUR_SYNONYMS[o.colour])} {pick(rng, SHAPE_SYNONYMS[o.shape])}".split())
    return ("an " if words[0] in "aeiou" else "a ") + words


def _objects_phrase(objs: list[PanoObject], rng: np.random.Generator) -> str:
    phrases = [_object_phrase(objs[int(i)], rng) for i in rng.permutation(len(objs))]
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _region_ref(scene: PanoScene, region: str, rng: np.random.Generator) -> str:
    objs = scene.in_region(region)
    ground = pick(rng, GROUND_WORDS[scene.ground])
    if not objs:
        return pick(rng, (f"Nothing, just {ground}.", f"Only {ground}, no objects.", f"There is nothing there but {ground}."))
    body = _objects_phrase(objs, rng)
    frame = pick(rng, ("{}.", "{} standing on " + ground + ".", "There {be} {}.", "I can see {}."))
    text = frame.replace("{be}", "is" if len(objs) == 1 else "are").format(body)
    return text[0].upper() + text[1:]


def _sky_ref(scene: PanoScene, rng: np.random.Generator) -> str:
    sky = pick(rng, SKY_WORDS[scene.time])
    parts = []
    if scene.light:
        parts.append(pick(rng, LIGHT_WORDS[scene.light]))
    if scene.clouds:
        parts.append(f"{NUMBER_WORDS[scene.clouds]} white cloud{'s' if scene.clouds > 1 else ''}")
    if not parts:
        return pick(rng, (f"{sky}, empty.", f"{sky} with nothing in it.", f"just {sky}.")).capitalize()
    return f"{sky} with {' and '.join(parts)}.".capitalize()


def _ground_ref(scene: PanoScene, rng: np.random.Generator) -> str:
    ground = pick(rng, GROUND_WORDS[scene.ground])
    text = pick(rng, ("{}.", "The ground is {}.", "Below the horizon there is {}.", "{}, all the way around."))
    text = text.format(ground)
    return text[0].upper() + text[1:]


def _scene_ref(scene: PanoScene, rng: np.random.Generator) -> str:
    text = f"{pick(rng, SKY_WORDS[scene.time])} above {pick(rng, GROUND_WORDS[scene.ground])}"
    bits = [f"{_objects_phrase(scene.in_region(r), rng)} {w}" for r, w in
            zip(REGIONS, ("on the left", "in the centre", "on the right")) if scene.in_region(r)]
    if bits:
        text += ", with " + (bits[0] if len(bits) == 1 else ", ".join(bits[:-1]) + " and " + bits[-1])
    return text[0].upper() + text[1:] + "."


def panorama_references(scene: PanoScene, topic: str, rng: np.random.Generator, n: int = 5) -> tuple[str, ...]:
    """`n` references for one query topic (a key of `QUERIES`), distinct where the scene allows."""
    make = {"sky": _sky_ref, "ground": _ground_ref, "scene": _scene_ref}
    refs: list[str] = []
    for _ in range(40):
        ref = make[topic](scene, rng) if topic in make else _region_ref(scene, topic, rng)
        if ref not in refs:
            refs.append(ref)
        if len(refs) == n:
            break
    while len(refs) < n:  # a plain ground has only three wordings; repeat rather than drop a row
        refs.append(refs[len(refs) % max(1, len(refs))])
    return tuple(refs)


def scene_json(scene: PanoScene) -> dict:
    return {
        "time": scene.time, "light": scene.light, "clouds": scene.clouds, "ground": scene.ground,
        "objects": [{"colour": o.colour, "shape": o.shape, "size": o.size, "region": o.region} for o in scene.objects],
    }


def generate_panorama(out_dir: str | Path, n: int = 1000, seed: int = 0, width: int = 224, queries_per_image: int = 3, overwrite: bool = False) -> Manifest:
    """Write `n` panoramas (80/10/10 train/val/test), each with `queries_per_image` query topics.

    COCO ids number (image, query) pairs; `scenes.json` maps each pair id to its image's ground truth.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 202]))
    writer = DatasetWriter(out_dir, kind="panorama", seed=seed, n=n, overwrite=overwrite)
    pair_id, image_no = 0, 0
    counts: dict[str, int] = {}
    truth: dict[str, dict] = {}
    for split, size in zip(SPLITS, split_counts(n, SPLIT_FRACTIONS)):
        items, extra = [], {}
        for _ in range(size):
            image_no += 1
            scene = sample_panorama(rng)
            rel = f"images/{split}/{image_no:06d}.png"
            writer.png(rel, draw_panorama(scene, rng, width))
            topics = [tuple(QUERIES)[int(i)] for i in rng.permutation(len(QUERIES))[:queries_per_image]]
            for topic in topics:
                pair_id += 1
                items.append(CaptionItem(pair_id, rel, pick(rng, QUERIES[topic]), panorama_references(scene, topic, rng)))
                extra[pair_id] = {"width": width, "height": width // 2, "topic": topic}
                truth[str(pair_id)] = {"file_name": rel, "topic": topic, **scene_json(scene)}
        write_caption_dataset(writer, split, items, extra)
        counts[split] = size
        counts[f"{split}_pairs"] = len(items)
    writer.json("scenes.json", truth)
    return writer.finish(counts)
