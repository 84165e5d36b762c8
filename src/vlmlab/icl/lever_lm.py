"""Upstream Lever-LM beam files, both ways, with upstream's ids = dataset ROW POSITIONS.

Upstream `generate_data.py` (ForJadeForest/Lever-LM) writes one JSON object
`{"<anchor row>": {"id_list": [[icd, ..., icd, anchor_row], ...], "score_list": [s, ...]}}`.
Every id is the `idx` column its loaders add (`ds.add_column("idx", range(len(ds)))`): the row
position in the training split, not a question id. Each beam step PREPENDS the new pick
(`[idx, *seq]`), so `id_list` holds the picks newest first, anchor last; `score_list` holds the last
step's marginal InfoScore (upstream ranks by it). How a pick entered the prompt is the file-name
field `construct_order`:

- `left`: the new pick goes first in the prompt, so `id_list[:-1]` IS the prompt order (our
  `order: left` beams store `ids` in exactly that order).
- `right`: the new pick goes just before the query, after the parent's picks IN THE ORDER OF THE
  PREPENDED LIST (`get_info_score` builds `choosed_icd_seq_list[:-1] + [new] + [query]` from
  `id_list[1:]`), so the prompt upstream scored for the beam is `id_list[1:-1] + [id_list[0]]`. With 2
  shots that is the picks in choosing order (the reversed list); with 3+ it is not (the parent's picks
  appear newest first), and it is what we import: the beam's `ids` are the prompt upstream scored, and
  with `order: right` a selector learns that order and eval lays its picks out in it. Export writes
  the inverse, `[ids[-1], *ids[:-1]]`, which upstream reads back as the same prompt.

`SupportRows` is the mapping row position <-> question id: the support split's ids in row order
(the index run's `ids.json`, i.e. the questions file's order; `question_id` order for data that
upstream loaded from the hub, which sorts by question id). Its sha256 is recorded next to every
file we write or import and checked when one is read back, so positions can never silently point at
other examples. A row that maps nowhere is a `DataError` naming the file and the row.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

from vlmlab.data import tables
from vlmlab.data.tables import FileRules
from vlmlab.errors import DataError
from vlmlab.runs import atomic_write_text

RowOrder = Literal["file", "question_id"]
FILE_ORDER = re.compile(r"construct_order:(left|right)")
FILE_SAMPLER = re.compile(r"(RandSampler|TextSimSampler|ImgSimSampler|MixSampler)")
FILE_CANDIDATES = re.compile(r"candidate_num:\s*(\d+)")
# upstream's RandSampler draws `candidate_num` rows uniformly from the split without the anchor: the distribution of
# vlmlab's `random` sampler. Its similarity samplers rank by upstream's own (CLIP) embeddings, which vlmlab's
# index does not have, so their pools cannot be redrawn here.
SAME_SAMPLER = {"RandSampler": "random"}


def upstream_pool_source(names: Sequence[str], pool_sizes: Sequence[int]) -> dict[str, Any]:
    """How upstream drew the pools, from its file names (`...-RandSampler-...-candidate_num:64-...`).

    Returns `pool_sampler` (`random` for RandSampler, `upstream:<name>` for a sampler vlmlab cannot
    redraw, None when no name says it), `pool_k` (`candidate_num`, else the pools' common size) and
    `pool_mix_weights` (None: upstream's MixSampler is not vlmlab's mix).
    """
    sampler = next((m.group(1) for n in names if (m := FILE_SAMPLER.search(n))), None)
    k = next((int(m.group(1)) for n in names if (m := FILE_CANDIDATES.search(n))), None)
    if k is None and pool_sizes and len(set(pool_sizes)) == 1:
        k = pool_sizes[0]
    return {"pool_sampler": None if sampler is None else SAME_SAMPLER.get(sampler, f"upstream:{sampler}"), "pool_k": k,
            "pool_mix_weights": None}


def support_sha256(ids: Sequence[str]) -> str:
    """sha256 of the ordered ids (the same digest a selector checkpoint's fingerprint records)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def _qid_sort_key(qid: str) -> tuple[int, int | str]:
    return (0, int(qid)) if qid.lstrip("-").isdigit() else (1, qid)


@dataclass
class SupportRows:
    """The support split's question ids in upstream row order; `row()`/`qid()` map both ways."""

    ids: list[str]
    row_order: RowOrder = "file"
    source: str = "support"
    _row: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.row_order == "question_id":
            self.ids = sorted(self.ids, key=_qid_sort_key)
        elif self.row_order != "file":
            raise DataError(f"row order must be 'file' or 'question_id', got {self.row_order!r}")
        self._row = {q: i for i, q in enumerate(self.ids)}

    @classmethod
    def from_index(cls, index_dir: Path | str, row_order: RowOrder = "file") -> "SupportRows":
        """The rows of an index run folder (`embeddings/ids.json`, the support file's order)."""
        from vlmlab.icl.index import read_index_ids

        return cls(read_index_ids(index_dir), row_order, str(index_dir))

    @property
    def sha256(self) -> str:
        return support_sha256(self.ids)

    def meta(self) -> dict[str, Any]:
        """What a written file records about the rows its positions refer to."""
        return {"support_ids_sha256": self.sha256, "support_rows": len(self.ids), "row_order": self.row_order}

    def check(self, meta: Mapping[str, Any] | None, where: str) -> None:
        """Refuse a file whose recorded support set differs from this one."""
        if not meta or "support_ids_sha256" not in meta:
            return
        if meta["support_ids_sha256"] != self.sha256 or meta.get("row_order", self.row_order) != self.row_order:
            raise DataError(
                f"{where}: written for another support set ({meta.get('support_rows')} rows, row order {meta.get('row_order')}, "
                f"sha256 {str(meta['support_ids_sha256'])[:12]}) than {self.source} ({len(self.ids)} rows, row order {self.row_order}, "
                f"sha256 {self.sha256[:12]}); use the index run it was made with"
            )

    def qid(self, row: Any, where: str) -> str:
        """The question id at upstream row `row` (an int or a digit string)."""
        text = str(row)
        if isinstance(row, bool) or not text.isdigit() or int(text) >= len(self.ids):
            raise DataError(f"{where}: upstream id {row!r} maps to no row of {self.source} ({len(self.ids)} rows, ids are row positions); "
                            "import with the index run of the split upstream used")
        return self.ids[int(text)]

    def row(self, qid: str, where: str) -> int:
        try:
            return self._row[str(qid)]
        except KeyError:
            raise DataError(f"{where}: question id {qid} is not in {self.source}; export with the index run the beams were made from") from None


# Upstream's files and our sidecars: the reason is json's own text, the file is the user's to check.
UPSTREAM_FILE = FileRules(missing="{path}: file not found", empty=None, not_utf8="{path}: not valid JSON ({error})",
                          bad_json="{path}: not valid JSON ({error})")


def read_json(path: Path | str) -> Any:
    """An upstream Lever-LM / Lever-Plus JSON file (or our sidecar), parsed."""
    return tables.read_json(path, UPSTREAM_FILE)


def sidecar(path: Path | str) -> Path:
    """`X.json` -> `X.vlmlab.json`: what we record next to an upstream-format file we write."""
    path = Path(path)
    return path.with_name(path.stem + ".vlmlab.json")


def file_order(path: Path, order: str | None, recorded: str | None) -> str:
    """construct_order from the caller, our sidecar or upstream's file name; they must agree."""
    found = {src: o for src, o in (("--order", order), ("the .vlmlab.json beside it", recorded)) if o}
    m = FILE_ORDER.search(path.name)
    if m:
        found["its file name"] = m.group(1)
    if not found:
        raise DataError(f"{path}: construct_order unknown (no 'construct_order:left|right' in the file name); pass --order left or right (upstream's default is left)")
    if len(set(found.values())) > 1:
        raise DataError(f"{path}: construct_order disagrees: " + ", ".join(f"{k} says {v}" for k, v in found.items()))
    value = next(iter(found.values()))
    if value not in ("left", "right"):
        raise DataError(f"{path}: construct_order must be left or right, got {value!r}")
    return value


def upstream_pools(path: Path | str, support: SupportRows) -> dict[str, list[str]]:
    """Upstream's sampler cache (`{anchor row: [candidate rows]}`) as anchor id -> pool ids."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected upstream's candidate-set cache, an object anchor row -> list of rows")
    out = {}
    for anchor, rows in data.items():
        where = f"{path} anchor {anchor}"
        if not isinstance(rows, list):
            raise DataError(f"{where}: candidate set must be a list of rows")
        out[support.qid(anchor, where)] = [support.qid(r, where) for r in rows]
    return out


def import_lever_lm(path: Path | str, support: SupportRows, *, order: str | None = None,
                    pools: Mapping[str, Sequence[str]] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read an upstream beam file into our `beams.jsonl` records (anchors in file order) + provenance.

    Args:
        path: the upstream JSON.
        support: the rows its ids refer to.
        order: construct_order when neither the file name nor our sidecar says it.
        pools: anchor id -> pool ids (a candidates run, or `upstream_pools`); every ICD must be in
            its anchor's pool. Without it, a pool is the ICDs its beams use, in first-use order.

    Returns:
        The records (`ids` in prompt order; `marginal` = upstream's score; `cumulative` null, as
        upstream keeps no per-step scores) and what to record beside them.
    """
    path = Path(path)
    data = read_json(path)
    side = read_json(sidecar(path)) if sidecar(path).is_file() else {}
    support.check(side, str(path))
    order = file_order(path, order, side.get("construct_order"))
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected upstream Lever-LM beams, an object anchor row -> {{id_list, score_list}}")
    records, shots = [], None
    for key, entry in data.items():
        where = f"{path} anchor {key}"
        anchor = support.qid(key, where)
        if not isinstance(entry, dict) or not isinstance(entry.get("id_list"), list) or not isinstance(entry.get("score_list"), list):
            raise DataError(f"{where}: needs lists 'id_list' and 'score_list'")
        seqs, scores = entry["id_list"], entry["score_list"]
        if len(seqs) != len(scores) or not seqs:
            raise DataError(f"{where}: {len(seqs)} sequences but {len(scores)} scores")
        beams_ids = []
        for seq in seqs:
            if not isinstance(seq, list) or len(seq) < 2 or str(seq[-1]) != str(key):
                raise DataError(f"{where}: each id_list entry must be [icd rows..., {key}] (the anchor row last), got {seq!r}")
            icds = [support.qid(r, where) for r in seq[:-1]]
            if len(set(icds)) != len(icds) or anchor in icds:
                raise DataError(f"{where}: sequence {seq} repeats a row or holds the anchor")
            shots = len(icds) if shots is None else shots
            if len(icds) != shots:
                raise DataError(f"{where}: sequence {seq} has {len(icds)} ICDs, earlier ones {shots}; one file holds one few_shot_num")
            beams_ids.append(icds if order == "left" else icds[1:] + icds[:1])  # the prompt upstream scored (module docstring)
        if pools is not None:
            if anchor not in pools:
                raise DataError(f"{where}: anchor {anchor} has no candidate pool; use the pools the beams were searched in")
            pool = [str(p) for p in pools[anchor]]
        else:
            pool = list(dict.fromkeys(i for ids in beams_ids for i in ids))
        at = {q: i for i, q in enumerate(pool)}
        beams = []
        for ids, score in zip(beams_ids, scores):
            missing = [i for i in ids if i not in at]
            if missing:
                raise DataError(f"{where}: ICD question ids {missing} are not in its candidate pool; use the pools the beams were searched in")
            beams.append({"ids": ids, "positions": [at[i] for i in ids], "step_scores": [], "marginal": float(score), "cumulative": None})
        records.append({"id": anchor, "pool": pool, "order": order, "beams": beams})
    meta = {"format": "lever-lm", "upstream_file": str(path), "upstream_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "construct_order": order, "shots": shots, **support.meta(), "index": support.source,
            "beam_score": "marginal"}  # upstream ranks beams by, and keeps only, the last step's marginal InfoScore
    return records, meta


def export_lever_lm(records: Iterable[Mapping[str, Any]], support: SupportRows, *, where: str = "beams.jsonl",
                    order: str | None = None) -> tuple[dict[str, dict[str, list]], str]:
    """Our beam records -> (the upstream object, its construct_order).

    Each record's `order` (or `order` for records without one) decides the layout; one file holds
    one order. Scores are each beam's `marginal`, the score upstream writes.
    """
    out: dict[str, dict[str, list]] = {}
    orders = set()
    for n, rec in enumerate(records, start=1):
        at = f"{where} line {n}"
        rec_order = str(rec.get("order") or order or "")
        if rec_order not in ("left", "right"):
            raise DataError(f"{at}: no beam order (left/right); export from a beam run folder or pass the order")
        orders.add(rec_order)
        anchor = support.row(str(rec["id"]), at)
        rows = []
        for beam in rec["beams"]:
            icds = [support.row(str(i), at) for i in beam["ids"]]
            rows.append([*(icds if rec_order == "left" else icds[-1:] + icds[:-1]), anchor])  # right: upstream reads back this prompt
        out[str(anchor)] = {"id_list": rows, "score_list": [float(beam["marginal"]) for beam in rec["beams"]]}
    if len(orders) > 1:
        raise DataError(f"{where} mixes beam orders {sorted(orders)}; upstream files hold one construct_order")
    return out, (orders.pop() if orders else (order or "left"))


def write_lever_lm(records: Iterable[Mapping[str, Any]], path: Path | str, support: SupportRows, *,
                   where: str = "beams.jsonl", order: str | None = None, source: str = "") -> Path:
    """Write the upstream file and, beside it, `X.vlmlab.json` (support rows, construct_order)."""
    data, used = export_lever_lm(records, support, where=where, order=order)
    atomic_write_text(sidecar(path), json.dumps({"format": "lever-lm", "construct_order": used, **support.meta(), "source": source}, indent=1))
    atomic_write_text(path, json.dumps(data))
    return Path(path)
