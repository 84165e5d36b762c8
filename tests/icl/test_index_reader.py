"""The ICL index folder has one reader (`vlmlab.icl.index`): the index stage's consumers, the selectors and
the Lever-LM row mapping see the same ids and the same one-line error for the same broken folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vlmlab.errors import DataError
from vlmlab.icl.index import SupportIndex, load_index_embeddings, read_index_ids
from vlmlab.icl.lever_lm import SupportRows
from vlmlab.icl.selectors.records import load_index_embeddings as selector_reader


def _readers(folder: Path):
    return {
        "SupportIndex.load": lambda: SupportIndex.load(folder).ids,
        "load_index_embeddings": lambda: load_index_embeddings(folder, "text+image")[0],
        "SupportRows.from_index": lambda: SupportRows.from_index(folder).ids,
    }


def test_every_reader_sees_the_same_index(index_run: Path) -> None:
    ids = json.loads((index_run / "embeddings" / "ids.json").read_text())
    assert selector_reader is load_index_embeddings
    assert all(read() == ids for read in _readers(index_run).values()) and read_index_ids(index_run) == ids
    index = SupportIndex.load(index_run)
    both = load_index_embeddings(index_run, "text+image", demonstrations=True)[1]
    assert np.array_equal(both, np.concatenate([index.demo_matrix(), index.image], axis=1))


@pytest.mark.parametrize("damage,needle", [
    (lambda f: (f / "ids.json").unlink(), "ids.json not found; run the icl index stage first"),
    (lambda f: (f / "ids.json").write_text("[1, 2"), "ids.json is not valid JSON"),
    (lambda f: (f / "ids.json").write_text('{"a": 1}'), "must hold a list of question ids"),
    (lambda f: np.save(f / "text.npy", np.zeros((3, 4), np.float32)), "text.npy has shape (3, 4) but ids.json lists"),
    (lambda f: (f / "image.npy").write_bytes(b"not numpy"), "image.npy cannot be read"),
])
def test_a_broken_index_is_the_same_one_line_error_everywhere(tmp_path: Path, index_run: Path, damage, needle: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(index_run, folder)
    damage(folder / "embeddings")
    readers = _readers(folder)
    if not needle.startswith(("ids.json", "must hold")):
        readers.pop("SupportRows.from_index")  # the row mapping reads the ids alone
    messages = set()
    for name, read in readers.items():
        with pytest.raises(DataError) as exc:
            read()
        assert needle in str(exc.value) and len(str(exc.value).splitlines()) == 1, name
        messages.add(str(exc.value))
    assert len(messages) == 1
