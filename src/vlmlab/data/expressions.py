"""Real-face expression datasets as rating sources: FER-2013 and the AffectNet layout.

Both read into the same `RatingRecord`s as a human ratings table, so the rating study runs on them
beside the toy faces (`data.format: fer2013 | affectnet` in a rating config). Labels become the
study's words: FER's "fear" -> "fearful", "surprise" -> "surprised", "disgust" -> "disgusted".

FER-2013 (`fer2013.csv`): columns `emotion,pixels,Usage`; emotion codes 0-6 = angry, disgust, fear,
happy, sad, surprise, neutral; `pixels` is 48x48 = 2304 space-separated grey values 0-255. The image
is decoded into PNG bytes (no files written); the id is `fer<line>`; `Usage` becomes the group
column `usage` (Training / PublicTest / PrivateTest).

AffectNet (`Manually_Annotated_file_lists/training.csv` or `validation.csv`; images under
`Manually_Annotated_Images/`): columns `subDirectory_filePath, face_x, face_y, face_width,
face_height, facial_landmarks, expression, valence, arousal`; expression codes 0-7 = neutral,
happy, sad, surprise, fear, disgust, anger, contempt, 8-10 = none, uncertain, non-face (no
emotion); valence and arousal in [-1, 1] (-2: not rated), mapped to the study's 1-9 scale by
5 + 4 v.

    records = read_fer2013("fer2013.csv", usage="PublicTest")
    records = read_affectnet("validation.csv", images="Manually_Annotated_Images")
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import PIL.Image

from vlmlab.data.images import Image, image_under_root
from vlmlab.data.records import RatingRecord
from vlmlab.data.sources import read_rows
from vlmlab.errors import DataError

FER2013_EMOTIONS = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
AFFECTNET_EMOTIONS = ("neutral", "happy", "sad", "surprised", "fearful", "disgusted", "angry", "contempt")
AFFECTNET_NO_EMOTION = (8, 9, 10)  # none, uncertain, non-face
AFFECTNET_NOT_RATED = -2.0
FORMATS = ("ratings", "fer2013", "affectnet")


def _code(value: object, where: str, column: str, allowed: range) -> int:
    try:
        code = int(str(value).strip())
    except ValueError:
        raise DataError(f"{where}: {column} is {value!r}, expected a code {allowed.start}-{allowed.stop - 1}") from None
    if code not in allowed:
        raise DataError(f"{where}: {column} code {code} is outside {allowed.start}-{allowed.stop - 1}")
    return code


def fer_pixels(text: object, where: str) -> PIL.Image.Image:
    """A 48x48 greyscale image from FER-2013's space-separated pixel string."""
    parts = str(text if text is not None else "").split()
    if len(parts) != 48 * 48:
        raise DataError(f"{where}: pixels has {len(parts)} values, expected 2304 (48x48 grey levels separated by spaces)")
    try:
        values = np.array([int(p) for p in parts])
    except ValueError:
        bad = next(p for p in parts if not p.lstrip("-").isdigit())
        raise DataError(f"{where}: pixels holds {bad!r}, expected whole numbers 0-255") from None
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixels has a value outside 0-255 ({int(values.min())}..{int(values.max())})")
    return PIL.Image.fromarray(values.astype(np.uint8).reshape(48, 48), "L")


def read_fer2013(path: Path | str, usage: str | None = None) -> list[RatingRecord]:
    """FER-2013 rows (optionally one `Usage` split) as ratings with an emotion and no valence/arousal."""
    table = read_rows(path)
    for column in ("emotion", "pixels"):
        table.find_column((column,), f"FER-2013's {column}")
    usage_col = table.find_column(("Usage",), "the split", required=False)
    records = []
    for row in table.rows:
        split = str(row.values.get(usage_col) or "").strip() if usage_col else ""
        if usage is not None and split != usage:
            continue
        where = table.where(row)
        code = _code(row.values.get("emotion"), where, "emotion", range(7))
        image = Image.from_pil(fer_pixels(row.values.get("pixels"), where))
        records.append(RatingRecord(image_id=f"fer{row.line:06d}", image=image, rater_id=None, emotion=FER2013_EMOTIONS[code],
                                    valence=None, arousal=None, groups={"usage": split} if usage_col else {}, source=where))
    if not records:
        raise DataError(f"{table.path}: no FER-2013 rows" + (f" with Usage {usage!r}" if usage else ""))
    return records


def _affect_scale(value: object, where: str, column: str) -> float | None:
    if value is None or not str(value).strip():
        raise DataError(f"{where}: {column} is empty; every AffectNet row needs {column} in [-1, 1] (or -2: not rated)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {column} is {value!r}, expected a number in [-1, 1] (or -2: not rated)") from None
    if number == AFFECTNET_NOT_RATED:
        return None
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise DataError(f"{where}: {column} {value!r} is outside [-1, 1] (-2 marks not rated)")
    return 5.0 + 4.0 * number


def read_affectnet(path: Path | str, images: Path | str | None = None) -> list[RatingRecord]:
    """An AffectNet annotation CSV as ratings (one per image); `images` defaults to the CSV's folder."""
    table = read_rows(path)
    root = Path(images) if images is not None else table.path.parent
    file_col = table.find_column(("subDirectory_filePath",), "the image file (subDirectory_filePath)")
    for column in ("expression", "valence", "arousal"):
        table.find_column((column,), f"AffectNet's {column}")
    records = []
    for row in table.rows:
        where = table.where(row)
        name = str(row.values.get(file_col) or "").strip()
        if not name:
            raise DataError(f"{where}: subDirectory_filePath is empty; every row names its image")
        code = _code(row.values.get("expression"), where, "expression", range(11))
        records.append(RatingRecord(
            image_id=name, image=image_under_root(root, name, where), rater_id=None,
            emotion=None if code in AFFECTNET_NO_EMOTION else AFFECTNET_EMOTIONS[code],
            valence=_affect_scale(row.values.get("valence"), where, "valence"),
            arousal=_affect_scale(row.values.get("arousal"), where, "arousal"), groups={}, source=where))
    if not records:
        raise DataError(f"{table.path}: no AffectNet rows")
    return records


def read_face_ratings(path: Path | str, images: Path | str | None = None, format: str = "ratings") -> list[RatingRecord]:
    """The rating study's human ratings from a ratings table, FER-2013 or AffectNet."""
    if format == "fer2013":
        return read_fer2013(path)
    if format == "affectnet":
        return read_affectnet(path, images)
    if format == "ratings":
        from vlmlab.data.ratings import read_ratings

        return read_ratings(path, images)
    raise DataError(f"unknown face data format {format!r}; use one of {', '.join(FORMATS)}")
