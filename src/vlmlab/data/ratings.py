"""Human ratings of images (faces): emotion category, valence and arousal on a 1-9 scale.

A ratings file is a CSV, TSV or JSONL table, one rating per row:

| column | accepted names | |
|---|---|---|
| image id | `image_id`, `image` | required |
| image file | `path`, `file_name`, `image_path` (or `image` when `image_id` is the id) | optional; else the image id is the file name |
| emotion | `emotion` | category label; empty cell -> None |
| valence, arousal | `valence`, `arousal` | numbers on the scale (default 1-9); empty -> None |
| rater | `rater_id`, `rater` | optional; (image, rater) must be unique |
| anything else | | a group attribute of the row (`age_group`, `gender`, ...) kept as text |

At least one of emotion, valence and arousal must be present.

    ratings = read_ratings("human_ratings.csv", images="faces/")
"""

from __future__ import annotations

import math
from pathlib import Path

from vlmlab.data.images import SUPPORTED_EXTENSIONS, Image, image_under_root
from vlmlab.data.records import RatingRecord
from vlmlab.data.sources import image_from_cell, read_rows
from vlmlab.data.tables import Row, Table
from vlmlab.errors import DataError

ID_COLUMNS = ("image_id", "image")
PATH_COLUMNS = ("path", "file_name", "image_path")
RATER_COLUMNS = ("rater_id", "rater")


def _text(row: Row, column: str | None) -> str | None:
    if column is None:
        return None
    value = row.values.get(column)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(table: Table, row: Row, column: str | None, scale: tuple[float, float]) -> float | None:
    if column is None:
        return None
    value = row.values.get(column)
    if value is None or isinstance(value, str) and not value.strip():
        return None
    where = table.where(row)
    if isinstance(value, bool):
        raise DataError(f"{where}: {column} is {value!r}, expected a number from {scale[0]:g} to {scale[1]:g}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {column} is {value!r}, expected a number from {scale[0]:g} to {scale[1]:g}") from None
    if not math.isfinite(number) or not scale[0] <= number <= scale[1]:
        raise DataError(f"{where}: {column} {value!r} is outside {scale[0]:g}-{scale[1]:g}; fix the value or the scale")
    return number


def _image_for(root: Path, name: str, where: str) -> Image:
    """The image called `name` under `root`; a name without extension takes the first existing match."""
    if Path(name).suffix:
        return image_under_root(root, name, where)
    for ext in SUPPORTED_EXTENSIONS:
        image = image_under_root(root, name + ext, where)
        assert image.path is not None
        if image.path.exists():
            return image
    return image_under_root(root, name, where)  # missing: reported on load, naming the path


def read_ratings(
    path: Path | str,
    images: Path | str | None = None,
    *,
    scale: tuple[float, float] = (1.0, 9.0),
) -> list[RatingRecord]:
    """Read a human ratings table into `RatingRecord`s in file order.

    Args:
        path: the CSV/TSV/JSONL file.
        images: the image root; defaults to the file's folder.
        scale: inclusive range of valence and arousal.

    Raises:
        DataError: bad file, no image id column, none of emotion/valence/arousal, a value that is
            not a number or is outside the scale, an empty image id, a duplicate (image, rater).
    """
    table = read_rows(path)
    root = Path(images) if images is not None else table.path.parent
    id_col = table.find_column(ID_COLUMNS, "the image id")
    path_col = table.find_column(PATH_COLUMNS, "the image file", required=False)
    if path_col is None and id_col != "image" and "image" in table.columns:
        path_col = "image"  # `image_id` names the image, `image` holds its file (toy world faces)
    rater_col = table.find_column(RATER_COLUMNS, "the rater", required=False)
    emotion_col = table.find_column(("emotion",), "the emotion", required=False)
    valence_col = table.find_column(("valence",), "the valence", required=False)
    arousal_col = table.find_column(("arousal",), "the arousal", required=False)
    if emotion_col is None and valence_col is None and arousal_col is None:
        table.find_column(("emotion", "valence", "arousal"), "the ratings")  # raises, listing the columns
    known = {id_col, path_col, rater_col, emotion_col, valence_col, arousal_col}
    group_cols = [c for c in table.columns if c not in known]

    records: list[RatingRecord] = []
    first_line: dict[tuple[str, str], int] = {}
    files_of: dict[str, tuple[str, int]] = {}
    for row in table.rows:
        where = table.where(row)
        image_id = _text(row, id_col)
        if image_id is None:
            raise DataError(f"{where}: column {id_col!r} is empty; every rating needs an image id")
        rater = _text(row, rater_col)
        if rater is not None:
            first = first_line.setdefault((image_id, rater), row.line)
            if first != row.line:
                raise DataError(f"{where}: duplicate rating of image {image_id!r} by rater {rater!r} (first on line {first}); remove one")
        cell = row.values.get(path_col) if path_col is not None else None
        if isinstance(cell, (dict, bytes, bytearray)):  # embedded (`datasets` Image feature)
            image = image_from_cell(cell, root, where)
        else:
            file_name = _text(row, path_col) or image_id
            seen_file, seen_line = files_of.setdefault(image_id, (file_name, row.line))
            if seen_file != file_name:
                raise DataError(f"{where}: image id {image_id!r} names file {file_name!r}, but line {seen_line} names "
                                f"{seen_file!r}; one id must mean one image: fix one of the rows")
            image = _image_for(root, file_name, where)
        records.append(
            RatingRecord(
                image_id=image_id,
                image=image,
                rater_id=rater,
                emotion=_text(row, emotion_col),
                valence=_number(table, row, valence_col, scale),
                arousal=_number(table, row, arousal_col, scale),
                groups={c: "" if row.values.get(c) is None else str(row.values[c]) for c in group_cols},
                source=where,
            )
        )
    return records
