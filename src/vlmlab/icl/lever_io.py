"""Run folders <-> upstream Lever-LM / Lever-Plus files: what `vlmlab icl import-*/export-*` do.

An import writes a folder that later stages read like one of ours: `beams.jsonl` (train `beams:`)
or `rl.jsonl` (train `rl:`), plus `lever_lm_import.json` / `lever_plus_import.json` recording the
upstream file's sha256, its construct_order and the support rows (index run, row order, sha256 of
the ordered ids), and for beams what upstream did: `beam_score: marginal` (its only score) and how its
pools were drawn (`pool_sampler`, `pool_k`: upstream's RandSampler is vlmlab's `random`), so train
and eval need no overrides and an eval on other pools is still refused. An export finds the support rows from `--index`, else from that record, else from
the run's config chain (rl-data -> beam -> candidates -> index), and refuses rows that differ from
the ones recorded. Everything is validated before the first file is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmlab.errors import DataError
from vlmlab.icl.lever_lm import RowOrder, SupportRows, import_lever_lm, read_json, upstream_pool_source, upstream_pools, write_lever_lm
from vlmlab.icl.lever_plus import import_lever_plus, write_lever_plus
from vlmlab.icl.selectors.records import read_jsonl
from vlmlab.icl.stages import write_jsonl
from vlmlab.runs import atomic_write_text

RECORDS = ("lever_lm_import.json", "lever_plus_import.json")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    """The import record, keys unsorted (an upstream `_meta` inside keeps its key order for export)."""
    atomic_write_text(path, json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def _recorded(folder: Path) -> dict[str, Any]:
    for name in RECORDS:
        if (folder / name).is_file():
            return read_json(folder / name)
    return {}


def _index_of(folder: Path) -> Path | None:
    """The index run behind a beam or rl-data run folder: its import record, else its config chain."""
    from vlmlab.icl.configs import BeamConfig, CandidatesConfig, RLDataConfig
    from vlmlab.icl.stages import upstream_config

    if _recorded(folder).get("index"):
        return Path(_recorded(folder)["index"])
    if not (folder / "config.yaml").is_file():
        return None
    if not (folder / "beams.jsonl").is_file():
        return _index_of(Path(upstream_config(folder, RLDataConfig, "rl-data").beams))
    cands = upstream_config(folder, BeamConfig, "beam").candidates
    return Path(upstream_config(Path(cands), CandidatesConfig, "candidates").index)


def support_for(folder: Path, index: Path | None, row_order: RowOrder | None) -> SupportRows:
    """The support rows a run folder's ids are written as, checked against what it recorded."""
    rec = _recorded(folder)
    index = index if index is not None else _index_of(folder)
    if index is None:
        raise DataError(f"{folder}: no index run known for it (no config.yaml, no import record); pass --index INDEX_RUN")
    support = SupportRows.from_index(index, row_order or rec.get("row_order") or "file")
    support.check(rec, str(folder))
    return support


def _out_folder(out: Path, name: str) -> None:
    if out.suffix in (".jsonl", ".json") or out.is_file():
        raise DataError(f"{out}: give a folder to write {name} and its import record into (train reads the folder)")


def import_beams(upstream: Path, out: Path, index: Path, *, candidates: Path | None = None, pools: Path | None = None,
                 order: str | None = None, row_order: RowOrder = "file") -> Path:
    """Upstream Lever-LM beams -> `<out>/beams.jsonl` + `<out>/lever_lm_import.json`."""
    _out_folder(out, "beams.jsonl")
    support = SupportRows.from_index(index, row_order)
    if candidates is not None and pools is not None:
        raise DataError("pass either --candidates (a vlmlab candidates run) or --pools (upstream's sampler cache), not both")
    pool_map = None
    if candidates is not None:
        pool_map = {r["id"]: r["pool"] for r in read_jsonl(Path(candidates) / "candidates.jsonl")}
    elif pools is not None:
        pool_map = upstream_pools(pools, support)
    records, meta = import_lever_lm(upstream, support, order=order, pools=pool_map)
    if candidates is not None:  # a vlmlab candidates run drew the pools: its sampler, K and weights
        from vlmlab.icl.configs import CandidatesConfig
        from vlmlab.icl.stages import upstream_config

        ccfg = upstream_config(Path(candidates), CandidatesConfig, "candidates")
        source = {"pool_sampler": ccfg.sampler, "pool_k": ccfg.k, "pool_mix_weights": ccfg.mix_weights if ccfg.sampler == "mix" else None}
    elif pools is not None:  # upstream's sampler cache: its file names say which sampler and K
        source = upstream_pool_source([Path(pools).name, Path(upstream).name], [len(r["pool"]) for r in records])
    else:  # pools = the ICDs the beams use: not the pools the search had
        source = {"pool_sampler": None, "pool_k": None, "pool_mix_weights": None}
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "beams.jsonl", records)
    _write_record(out / RECORDS[0], {**meta, **source, "candidates": str(candidates) if candidates else None, "pools": str(pools) if pools else None})
    return out / "beams.jsonl"


def export_beams(run: Path, out: Path, *, index: Path | None = None, row_order: RowOrder | None = None) -> Path:
    """`<run>/beams.jsonl` -> upstream Lever-LM JSON at `out` (+ `out` stem `.vlmlab.json`)."""
    support = support_for(run, index, row_order)
    return write_lever_lm(read_jsonl(run / "beams.jsonl"), out, support, where=str(run / "beams.jsonl"), source=str(run))


def import_rl(upstream: Path, out: Path, index: Path, *, beams: Path | None = None, row_order: RowOrder = "file") -> Path:
    """Upstream Lever-Plus rl_data -> `<out>/rl.jsonl` + `<out>/lever_plus_import.json`."""
    _out_folder(out, "rl.jsonl")
    support = SupportRows.from_index(index, row_order)
    pools = {r["id"]: r["pool"] for r in read_jsonl(Path(beams) / "beams.jsonl")} if beams is not None else None
    records, meta = import_lever_plus(upstream, support, pools=pools)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "rl.jsonl", records)
    _write_record(out / RECORDS[1], {**meta, "beams": str(beams) if beams else None})
    return out / "rl.jsonl"


def export_rl(run: Path, out: Path, *, index: Path | None = None, row_order: RowOrder | None = None, balanced: bool = False) -> Path:
    """An rl-data run's `rl_raw.jsonl` (or `rl.jsonl`) -> upstream Lever-Plus rl_data JSON with `_meta`."""
    from vlmlab.icl.stages import index_support

    support = support_for(run, index, row_order)
    name = "rl.jsonl" if balanced or not (run / "rl_raw.jsonl").is_file() else "rl_raw.jsonl"
    records = read_jsonl(run / name)
    _, split, _ = index_support(Path(support.source))
    rec = _recorded(run)
    vqa_model, gen_args = "", {}
    if (run / "config.yaml").is_file():
        import yaml

        cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
        vqa_model = str((cfg.get("scorer") or {}).get("ref", ""))
        gen_args = {"max_new_tokens": cfg.get("max_new_tokens")}
    return write_lever_plus(records, out, support, where=str(run / name), records_by_id={r.question_id: r for r in split.records},
                            meta=rec.get("_meta") or None, vqa_model=vqa_model, gen_args=gen_args)
