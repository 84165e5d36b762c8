"""The support-set index: text and image embeddings of every support question, and k-NN over them.

On disk (the format the selectors read): `<run>/embeddings/text.npy` and `image.npy`, float32
[M, D] L2-normalised, and `<run>/embeddings/ids.json`, the support question ids in row order.
`demo_text.npy` embeds the demonstration as a prompt shows it, question AND answer: a query has no
answer yet, but a demonstration does, and which attribute its answer names is what decides whether
it helps (a selector that only sees demonstration questions cannot tell "red" from "3").
Nearest neighbours use faiss inner product (= cosine on normalised rows) and exclude items BY ID:
with several questions per image, rank 0 of an image search is not necessarily the query itself.

This module is the one reader of that folder: `read_index_ids` (the ids alone, e.g. upstream row
positions), `load_index_embeddings` (the matrices of one modality, e.g. for a selector) and
`SupportIndex.load` (everything) share the file names, the checks and the error messages.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.data.records import VQARecord
from vlmlab.data.tables import FileRules, read_json
from vlmlab.embed.base import Embedder
from vlmlab.embed.cache import EmbeddingCache, embed_images, embed_texts
from vlmlab.errors import DataError
from vlmlab.icl.data import target_answer
from vlmlab.runs import atomic_write_bytes, atomic_write_text

Modality = str  # "text" | "image"
EMBEDDINGS_DIR = "embeddings"
# Which index embeddings a modality concatenates, in order (the eval stage stacks query embeddings the same way).
MODALITY_PARTS: dict[str, tuple[str, ...]] = {"text": ("text",), "image": ("image",), "text+image": ("text", "image")}


_INDEX_IDS = FileRules(
    missing="{path} not found; run the icl index stage first (`vlmlab icl index`)",
    directory="{path} is a folder, not the index's ids file; rebuild the index", empty=None,
    not_utf8="{path} is not UTF-8 text; rebuild the index", bad_json="{path} is not valid JSON ({msg}); rebuild the index",
)


def read_index_ids(index_dir: Path | str) -> list[str]:
    """The support question ids of an index run folder, in row order (`embeddings/ids.json`)."""
    path = Path(index_dir) / EMBEDDINGS_DIR / "ids.json"
    ids = read_json(path, _INDEX_IDS)
    if not isinstance(ids, list):
        raise DataError(f"{path} must hold a list of question ids; rebuild the index")
    return [str(i) for i in ids]


def read_index_matrix(index_dir: Path | str, name: str, n_ids: int) -> np.ndarray:
    """float32 [n_ids, D] `embeddings/{name}.npy` of an index run folder (`text`, `image` or `demo_text`)."""
    path = Path(index_dir) / EMBEDDINGS_DIR / f"{name}.npy"
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        hint = "rebuild the index with --overwrite (older indexes lack it)" if name == "demo_text" else "run the icl index stage, or choose another modality"
        raise DataError(f"{path} not found; the index has no {name} embeddings ({hint})") from None
    except ValueError as exc:
        raise DataError(f"{path} cannot be read ({exc}); rebuild the index") from None
    if arr.ndim != 2 or arr.shape[0] != n_ids:
        raise DataError(f"{path} has shape {arr.shape} but ids.json lists {n_ids} ids; rebuild the index")
    return arr.astype(np.float32, copy=False)


def load_index_embeddings(index_dir: Path | str, modality: str = "text", demonstrations: bool = False) -> tuple[list[str], np.ndarray]:
    """Support ids and float32 [M, D] embeddings of `modality` (`text`, `image`, `text+image` concatenated).

    With `demonstrations`, the text part embeds "question answer" (`demo_text.npy`): how the items
    look as ICDs, not as queries. Only the files the modality needs are read.
    """
    names = MODALITY_PARTS.get(modality)
    if names is None:
        raise DataError(f"unknown modality {modality!r}; use text, image or text+image")
    ids = read_index_ids(index_dir)
    parts = [read_index_matrix(index_dir, "demo_text" if demonstrations and n == "text" else n, len(ids)) for n in names]
    return ids, np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


@dataclass
class SupportIndex:
    """Embeddings of the support set; row i belongs to question `ids[i]`."""

    ids: list[str]
    text: np.ndarray
    image: np.ndarray
    demo_text: np.ndarray | None = None  # question + answer; None in an index built before it existed

    def __post_init__(self) -> None:
        for name in ("text", "image", "demo_text"):
            arr = getattr(self, name)
            if arr is not None and arr.shape[0] != len(self.ids):
                raise DataError(f"index: {name} embeddings have {arr.shape[0]} rows for {len(self.ids)} ids; rebuild the index")
        self._pos = {q: i for i, q in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, qid: str) -> int:
        try:
            return self._pos[qid]
        except KeyError:
            raise DataError(f"question id {qid} is not in the support index; rebuild the index for this data") from None

    def matrix(self, modality: Modality) -> np.ndarray:
        if modality not in ("text", "image"):
            raise ValueError(f"modality must be text or image, got {modality!r}")
        return self.text if modality == "text" else self.image

    def demo_matrix(self) -> np.ndarray:
        """[M, Dt] embeddings of "question answer"; an error for an index built without them."""
        if self.demo_text is None:
            raise DataError("the index has no demonstration embeddings (embeddings/demo_text.npy); rebuild it with `vlmlab icl index ... --overwrite`")
        return self.demo_text

    def save(self, folder: Path | str) -> None:
        folder = Path(folder) / EMBEDDINGS_DIR
        for name in ("text", "image", "demo_text"):
            if getattr(self, name) is None:
                continue
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(getattr(self, name), dtype=np.float32), allow_pickle=False)
            atomic_write_bytes(folder / f"{name}.npy", buf.getvalue())
        atomic_write_text(folder / "ids.json", json.dumps(self.ids))

    @classmethod
    def load(cls, folder: Path | str) -> "SupportIndex":
        """Every matrix of an index run folder (`demo_text` only if present: older indexes lack it)."""
        ids = read_index_ids(folder)
        demo = read_index_matrix(folder, "demo_text", len(ids)) if (Path(folder) / EMBEDDINGS_DIR / "demo_text.npy").is_file() else None
        return cls(ids=ids, text=read_index_matrix(folder, "text", len(ids)), image=read_index_matrix(folder, "image", len(ids)), demo_text=demo)


def embed_records(
    records: Sequence[VQARecord],
    text_embedder: Embedder,
    image_embedder: Embedder,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """(text [N, Dt], image [N, Di]) embeddings of the questions and images of `records`."""
    text = embed_texts(text_embedder, [r.question for r in records], cache, batch_size)
    image = embed_images(image_embedder, [r.image for r in records], cache, batch_size)
    return text, image


def build_index(
    records: Sequence[VQARecord],
    text_embedder: Embedder,
    image_embedder: Embedder,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
) -> SupportIndex:
    """Embed the support set once (cached by content hash), demonstrations with their answers."""
    text, image = embed_records(records, text_embedder, image_embedder, cache, batch_size)
    demo = embed_texts(text_embedder, [demonstration_text(r) for r in records], cache, batch_size)
    return SupportIndex(ids=[r.question_id for r in records], text=text, image=image, demo_text=demo)


def demonstration_text(record: VQARecord) -> str:
    """What a demonstration shows in text: its question and answer (the question alone when it has no answer)."""
    try:
        return f"{record.question} {target_answer(record)}"
    except DataError:  # it can never be shown as a demonstration; the stage that needs its answer says so
        return record.question


TIE_DECIMALS = 5  # scores equal to this many decimals are ties, broken by lower support position


def _ranked(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Positions sorted by score (rounded) descending, ties by position ascending."""
    order = np.lexsort((positions, -np.round(scores.astype(np.float64), TIE_DECIMALS)))
    return positions[order]


def nearest(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    exclude: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """Top-`k` rows of `keys` by inner product for each query row, skipping excluded rows.

    Deterministic under ties (many questions share a wording or an image): scores equal to
    `TIE_DECIMALS` decimals are ordered by support position. faiss finds a few more than needed;
    when a tie reaches past what it returned, that query is ranked exactly over all rows.

    Args:
        queries: [Q, D] float32.
        keys: [M, D] float32.
        k: neighbours per query.
        exclude: per query, row positions that must not be returned (e.g. the query's own id).

    Returns:
        [Q, k] int64 positions, best first.
    """
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    keys = np.ascontiguousarray(keys, dtype=np.float32)
    exclude = exclude if exclude is not None else [[] for _ in range(len(queries))]
    extra = max((len(e) for e in exclude), default=0)
    if k > len(keys) - extra:
        raise DataError(f"asked for {k} neighbours but the support set has only {len(keys)} items ({extra} excluded); lower k")
    depth = min(len(keys), k + extra + 16)
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    scores, found = index.search(queries, depth)
    out = np.empty((len(queries), k), dtype=np.int64)
    for q in range(len(queries)):
        banned = set(int(e) for e in exclude[q])
        ok = found[q] >= 0
        ranked = _ranked(scores[q][ok], found[q][ok].astype(np.int64))
        kept = [int(p) for p in ranked if int(p) not in banned][:k]
        last = np.round(float(scores[q][ok].min()), TIE_DECIMALS)
        boundary = np.round(float(keys[kept[-1]] @ queries[q]), TIE_DECIMALS) if kept else last
        if depth < len(keys) and (len(kept) < k or boundary <= last):
            every = np.arange(len(keys), dtype=np.int64)
            ranked = _ranked(keys @ queries[q], every)
            kept = [int(p) for p in ranked if int(p) not in banned][:k]
        out[q] = kept
    return out
