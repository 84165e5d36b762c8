"""Per-image attributes of the faces (a stimuli table), joined onto the ratings for the bias models.

A human ratings file holds what raters said; what the faces *are* — the emotion they were made to
show, an occluding band, the generator's valence — often sits in a second table, one row per
image (the toy world's `stimuli.csv`, a stimulus set's metadata). With it the analysis can ask
"are occluded faces labelled correctly less often?" and measure "correct" against the intended
emotion instead of against the raters' own consensus.

    table = read_stimuli("data/faces/stimuli.csv")   # indexed by image id
    frame, left_out = join_stimuli(human_frame, table, "data/faces/stimuli.csv")

Columns: the image id is `image_id` (or `image` when there is no `image_id`); `path`,
`file_name`, `image_path` and a file-name `image` column are dropped; every other column is an
attribute (numbers stay numbers). An attribute named like a ratings column (`emotion`, `valence`,
`group`, ...) gets the prefix `stimulus_`, so `--factor stimulus_valence` is the face's own
valence and `stimulus_emotion` its intended emotion.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vlmlab.errors import DataError

PREFIX = "stimulus_"
INTENDED_EMOTION = PREFIX + "emotion"
_PATHS = ("path", "file_name", "image_path")


def read_stimuli(path: Path | str) -> pd.DataFrame:
    """The stimuli table indexed by image id (text), one row per image.

    Raises:
        DataError: the file cannot be read, has no image id column, or names an image twice.
    """
    from vlmlab.data.sources import read_rows

    table = read_rows(path)
    id_col = table.find_column(("image_id", "image"), "the image id")
    drop = {id_col, *_PATHS} | ({"image"} if id_col == "image_id" else set())
    seen: dict[str, int] = {}
    rows = []
    for row in table.rows:
        image = row.values.get(id_col)
        image = None if image is None else str(image).strip()
        if not image:
            raise DataError(f"{table.where(row)}: column {id_col!r} is empty; every stimulus row needs an image id")
        if image in seen:
            raise DataError(f"{table.where(row)}: image {image!r} is listed twice (first on line {seen[image]}); keep one row per image")
        seen[image] = row.line
        rows.append({"image": image, **{k: v for k, v in row.values.items() if k not in drop}})
    frame = pd.DataFrame(rows).set_index("image")
    for column in frame.columns:  # CSV cells are text: a column of numbers is a number column (a covariate)
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().all():
            frame[column] = numbers
    return frame


def join_stimuli(frame: pd.DataFrame, stimuli: pd.DataFrame, source: Path | str) -> tuple[pd.DataFrame, int]:
    """(the ratings of the faces the stimuli table lists, each with its face's attributes; how many
    rated faces it does not list).

    The table also picks the faces to model: a table of mid-scale faces only keeps the 1-9 clipping
    out of a valence offset. Faces without a row are left out and counted, never silently.

    Raises:
        DataError: the table lists none of the rated faces (ids of another data set).
    """
    renamed = stimuli.rename(columns={c: PREFIX + c for c in stimuli.columns if c in frame.columns})
    images = frame["image"].astype(str)
    listed = images.isin(renamed.index)
    if not listed.any():
        raise DataError(f"{source}: none of the {images.nunique()} rated images has a row (e.g. {images.iloc[0]!r}); "
                        "the stimuli table must use the ratings' image ids")
    kept = frame[listed.to_numpy()]
    attributes = renamed.loc[images[listed].to_numpy()]
    attributes.index = kept.index
    return pd.concat([kept, attributes], axis=1), int(images[~listed].nunique())
