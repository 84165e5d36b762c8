"""The ICL study's stages as functions: index -> candidates -> beam -> rl-data, and eval.

Each stage is a resumable run folder (`vlmlab.runs.Run`): items are appended to the ledger as they
finish, a re-run skips them, and the stage outputs (`embeddings/`, `candidates.jsonl`,
`beams.jsonl`, `rl.jsonl`, `metrics.json`, `report.md`) are rebuilt from the ledger in item order,
so an interrupted run ends with the same files as an uninterrupted one.

`beam` and `eval` are data-parallel: under `torchrun --nproc_per_node N`, each rank takes every
N-th item (`accelerate.PartialState`), appends to its own ledger shard, and rank 0 merges the
shards in item order and writes the outputs. Backends can be passed in (notebooks, tests);
otherwise they are loaded from the config with `vlmlab.models.loading.load_backend`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vlmlab.config import load_config
from vlmlab.embed.cache import EmbeddingCache
from vlmlab.embed.registry import build_embedder
from vlmlab.errors import DataError, ModelError
from vlmlab.icl import beam as beam_mod
from vlmlab.icl.candidates import build_pools, choose_anchors
from vlmlab.icl.selectors.records import read_jsonl  # noqa: F401  (one JSONL reader for the study; re-exported)
from vlmlab.icl.configs import BeamConfig, CandidatesConfig, IndexConfig, RLDataConfig
from vlmlab.icl.data import Split, load_split, target_answer
from vlmlab.icl.index import SupportIndex, build_index
from vlmlab.icl.lever_lm import SupportRows, write_lever_lm
from vlmlab.icl.prompts import check_backend_images
from vlmlab.icl.rl_data import (answer_candidates, balance_records, candidate_sequences, mined_sequences, policy_candidates, rl_statistics,
                                score_candidates)
from vlmlab.models.base import Backend
from vlmlab.models.preflight import preflight_model
from vlmlab.models.spec import ModelBlock
from vlmlab.progress import track
from vlmlab.runs import Run, atomic_write_text


# --- plumbing ------------------------------------------------------------------------------

def load_backend(cfg: ModelBlock) -> Backend:
    """The backend of a stage's model block (`ModelBlock.load`, the one path every study takes)."""
    return cfg.load()


def upstream_config(folder: Path, model: type, stage: str) -> Any:
    """The resolved config of an earlier stage's run folder."""
    path = Path(folder) / "config.yaml"
    if not path.exists():
        raise DataError(f"{folder}: not an icl {stage} run folder (no config.yaml); run `vlmlab icl {stage}` first")
    return load_config(path, model)


def index_support(index_dir: Path) -> tuple[IndexConfig, Split, SupportIndex]:
    """The index run's config, its support split, and its embeddings (ids checked to match)."""
    icfg = upstream_config(index_dir, IndexConfig, "index")
    support = load_split(icfg.support)
    index = SupportIndex.load(index_dir)
    if index.ids != support.ids:
        raise DataError(f"{index_dir}: the index ids do not match {icfg.support.questions}; re-run `vlmlab icl index`")
    return icfg, support, index


def embedders_of(icfg: IndexConfig) -> dict[str, Any]:
    """The embedders (names and options) an index run used, as a selector checkpoint records them."""
    return {"text": icfg.text_embedder, "text_options": dict(icfg.text_embedder_options),
            "image": icfg.image_embedder, "image_options": dict(icfg.image_embedder_options)}


def imported_beams(beams_dir: Path) -> dict[str, Any]:
    """What `vlmlab icl import-lever-lm` recorded beside imported beams (`lever_lm_import.json`); {} for our own."""
    path = Path(beams_dir) / "lever_lm_import.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def training_provenance(index_dir: Path, beams_dir: Path) -> dict[str, Any]:
    """Embedders and pool settings behind a beam run, for `SelectorData.from_run(provenance=...)`."""
    icfg = upstream_config(index_dir, IndexConfig, "index")
    if not (Path(beams_dir) / "config.yaml").is_file():  # beams imported from upstream files: as the import recorded (None: unknown)
        record = imported_beams(beams_dir)
        return {"embedders": embedders_of(icfg), "pool_sampler": record.get("pool_sampler"), "pool_k": int(record.get("pool_k") or 0),
                "pool_mix_weights": record.get("pool_mix_weights")}
    bcfg = upstream_config(beams_dir, BeamConfig, "beam")
    ccfg = upstream_config(bcfg.candidates, CandidatesConfig, "candidates")
    return {"embedders": embedders_of(icfg), "pool_sampler": ccfg.sampler, "pool_k": ccfg.k, "pool_mix_weights": ccfg.mix_weights}


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def distributed(device: str) -> tuple[int, int, Callable[[], None]]:
    """(rank, world size, barrier) from accelerate; one process outside torchrun/accelerate."""
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    return state.process_index, state.num_processes, state.wait_for_everyone


def open_sharded(out: Path, config: Any, stage: str, overwrite: bool, device: str) -> tuple[Run, int, int, Callable[[], None]]:
    """Open the run on every rank (rank 0 first), each rank with its own ledger shard."""
    rank, world, barrier = distributed(device)
    run = None
    if rank == 0:
        run = Run.open(out, config, stage=stage, overwrite=overwrite, shard=(0, world) if world > 1 else None)
        if world == 1 and any(run.dir.glob("ledger.rank*.jsonl")):
            run.merge_shards()  # shards left by an interrupted multi-process run
    barrier()
    if rank != 0:
        run = Run.open(out, config, stage=stage, shard=(rank, world))
    assert run is not None
    return run, rank, world, barrier


# --- index ---------------------------------------------------------------------------------

def run_index(config: IndexConfig, out: Path | str, *, overwrite: bool = False) -> Path:
    """Embed the support set (text and image) into `<out>/embeddings/`."""
    out = Path(out)
    support = load_split(config.support)
    run = Run.open(out, config, stage="icl-index", overwrite=overwrite)
    text_emb = build_embedder(config.text_embedder, **config.text_embedder_options)
    image_emb = build_embedder(config.image_embedder, **config.image_embedder_options)
    cache = EmbeddingCache(config.cache_dir if config.cache_dir is not None else out / "embed_cache")
    if "index" not in run.done_ids() or not (out / "embeddings" / "ids.json").exists():
        index = build_index(support.records, text_emb, image_emb, cache, config.batch_size)
        index.save(out)
        if "index" not in run.done_ids():
            run.append("index", {"items": len(index), "text_dim": int(index.text.shape[1]), "image_dim": int(index.image.shape[1])})
    index = SupportIndex.load(out)
    run.write_metrics({"support": len(index), "text_dim": int(index.text.shape[1]), "image_dim": int(index.image.shape[1])})
    run.write_report(f"# icl index\n\nsupport: {len(index)} questions from `{config.support.questions}`\n\n"
                     f"text: {config.text_embedder} ({index.text.shape[1]} d), image: {config.image_embedder} ({index.image.shape[1]} d)\n")
    run.finish()
    return out


# --- candidates ----------------------------------------------------------------------------

def run_candidates(config: CandidatesConfig, out: Path | str, *, overwrite: bool = False) -> Path:
    """Pools of K per anchor into `<out>/candidates.jsonl` (`{"id", "pool"}` per anchor)."""
    out = Path(out)
    _, support, index = index_support(config.index)
    anchors = choose_anchors(len(index), config.anchors, config.seed)
    pools = build_pools(index, anchors, config.sampler, config.k, config.seed, config.mix_weights)
    run = Run.open(out, config, stage="icl-candidates", overwrite=overwrite)
    for anchor, pool in zip(anchors, pools):
        qid = index.ids[anchor]
        target_answer(support.records[anchor])  # an anchor without answers is an error here, not in beam
        if qid not in run.done_ids():
            run.append(qid, {"pool": [index.ids[p] for p in pool]})
    by_id = {r["id"]: r for r in run.records()}
    rows = [{"id": index.ids[a], "pool": by_id[index.ids[a]]["pool"]} for a in anchors]
    write_jsonl(out / "candidates.jsonl", rows)
    run.write_metrics({"anchors": len(rows), "k": config.k, "sampler": config.sampler})
    run.write_report(f"# icl candidates\n\n{len(rows)} anchors, K={config.k}, sampler `{config.sampler}`, seed {config.seed}\n")
    run.finish()
    return out


# --- beam ----------------------------------------------------------------------------------

def run_beam(config: BeamConfig, out: Path | str, *, backend: Backend | None = None, overwrite: bool = False) -> Path | None:
    """InfoScore beam search for every anchor into `<out>/beams.jsonl` (+ `lever_lm.json`).

    Returns the run folder on rank 0, None on other ranks.
    """
    out = Path(out)
    ccfg = upstream_config(config.candidates, CandidatesConfig, "candidates")
    _, support, _ = index_support(ccfg.index)
    cands = read_jsonl(Path(config.candidates) / "candidates.jsonl")
    for c in cands:
        beam_mod.check_search(len(c["pool"]), config.beam_size, config.shots, config.order, config.rank_by)
        if c["id"] in c["pool"]:
            raise DataError(f"{config.candidates}: anchor {c['id']} is in its own pool; rebuild the candidates")
    if backend is None:
        preflight_model(config.scorer)  # hub access, processor, family facts, quantization: before the run folder
    run, rank, world, barrier = open_sharded(out, config, "icl-beam", overwrite, config.device)
    mine = [c for c in cands[rank::world] if c["id"] not in run.done_ids()]
    started = time.perf_counter()
    if mine:
        backend = backend if backend is not None else load_backend(config.scorer)
        check_backend_images(backend, config.shots, "beam")
    for c in track(mine, f"beam search (rank {rank})"):
        anchor = support.get(c["id"], str(config.candidates))
        pool = support.subset(c["pool"])
        try:
            res = beam_mod.beam_search(backend, anchor, pool, beam_size=config.beam_size, shots=config.shots,
                                       order=config.order, rank_by=config.rank_by, batch_size=config.batch_size,
                                       score_eos=config.score_eos, prompt_format=config.prompt_format)
        except ModelError as exc:
            run.append(c["id"], {"status": "error", "error": str(exc), "pool": c["pool"]})
            continue
        run.append(c["id"], {"status": "ok", "pool": c["pool"], "base_prob": res.base_prob, "forward_passes": res.forward_passes,
                             "beams": [b.to_json(c["pool"]) for b in res.beams]})
    elapsed = time.perf_counter() - started
    barrier()
    if rank != 0:
        return None
    order = [c["id"] for c in cands]
    if world > 1:
        run.merge_shards(order)
    by_id = {r["id"]: r for r in run.records()}
    ok = [by_id[i] for i in order if i in by_id and by_id[i]["status"] == "ok"]
    rows = [{"id": r["id"], "pool": r["pool"], "order": config.order, "score_eos": config.score_eos, "prompt_format": config.prompt_format,
             "base_prob": r["base_prob"], "beams": r["beams"]} for r in ok]
    write_jsonl(out / "beams.jsonl", rows)
    write_lever_lm(rows, out / "lever_lm.json", SupportRows(support.ids, source=str(ccfg.index)), source=str(out))  # upstream ids = support rows
    errors = sum(1 for i in order if i in by_id and by_id[i]["status"] == "error")
    metrics = {
        "anchors": len(order), "ok": len(ok), "errors": errors,
        "mean_forward_passes": float(np.mean([r["forward_passes"] for r in ok])) if ok else 0.0,
        "mean_best_cumulative": float(np.mean([r["beams"][0]["cumulative"] for r in ok])) if ok else 0.0,
        "mean_base_prob": float(np.mean([r["base_prob"] for r in ok])) if ok else 0.0,
        "seconds_this_invocation": elapsed,
    }
    run.write_metrics(metrics)
    run.write_report(f"# icl beam\n\n{len(ok)}/{len(order)} anchors searched ({errors} errors); beam {config.beam_size}, shots {config.shots}, "
                     f"order {config.order}, rank by {config.rank_by}, end of turn {'scored' if config.score_eos else 'not scored'}\n\nmean P(y|x) {metrics['mean_base_prob']:.4f}; "
                     f"mean best cumulative InfoScore {metrics['mean_best_cumulative']:.4f}; "
                     f"{metrics['mean_forward_passes']:.1f} forward passes per anchor\n")
    run.finish("complete" if not errors else "degraded", errors=errors)
    return out


# --- rl-data -------------------------------------------------------------------------------

def _stats_table(before: dict, after: dict) -> str:
    keys = ["queries", "candidates", "positives", "positive_ratio", "candidates_per_query", "mean_vqa_acc"]
    rows = "".join(f"| {k} | {before[k]:.4g} | {after[k]:.4g} |\n" for k in keys)
    return f"| statistic | before | after balancing |\n|---|---|---|\n{rows}"


def earlier_rl_file(folder: Path) -> Path:
    """The RL data of an earlier rl-data run or import folder: every candidate (`rl_raw.jsonl`) if kept, else `rl.jsonl`."""
    folder = Path(folder)
    for name in ("rl_raw.jsonl", "rl.jsonl"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"mine_from: {folder} holds no rl_raw.jsonl or rl.jsonl; give an rl-data run folder or an imported one")


def run_rl_data(config: RLDataConfig, out: Path | str, *, backend: Backend | None = None, overwrite: bool = False) -> Path:
    """Answer and VQA-score beams + sampled sequences per anchor; balanced `rl.jsonl`, raw `rl_raw.jsonl`."""
    out = Path(out)
    bcfg = upstream_config(config.beams, BeamConfig, "beam")
    ccfg = upstream_config(bcfg.candidates, CandidatesConfig, "candidates")
    _, support, _ = index_support(ccfg.index)
    beams = read_jsonl(Path(config.beams) / "beams.jsonl")
    # the other sources' sequences first: a selector that does not fit this index stops here, before any output
    extra = policy_candidates(beams, ccfg.index, config.selector, config.sources, provenance=training_provenance(ccfg.index, config.beams),
                              shots=bcfg.shots, selector_beams=config.selector_beams, temperatures=config.selector_temperatures,
                              samples=config.selector_samples, seed=config.seed) if set(config.sources) - {"beams", "random"} else {}
    mined, mined_counts = mined_sequences(beams, [(str(p), read_jsonl(earlier_rl_file(p))) for p in config.mine_from], bcfg.shots)
    for anchor, seqs in mined.items():
        extra.setdefault(anchor, []).extend(seqs)
    if backend is None:
        preflight_model(config.scorer or bcfg.scorer)  # before the run folder
    run = Run.open(out, config, stage="icl-rl-data", overwrite=overwrite)
    pending = [b for b in beams if b["id"] not in run.done_ids()]
    # score sampled sequences as the beams were scored (files from before these fields: answer only, chat)
    score_eos = bool(beams[0].get("score_eos", False)) if beams else bcfg.score_eos
    prompt_format = str(beams[0].get("prompt_format", "chat")) if beams else bcfg.prompt_format
    rescore = config.scorer is not None and config.scorer != bcfg.scorer
    if pending:
        backend = backend if backend is not None else load_backend(config.scorer or bcfg.scorer)
        check_backend_images(backend, bcfg.shots, "rl-data")
    for rec in track(pending, "rl-data"):
        anchor = support.get(rec["id"], str(config.beams))
        pool = support.subset(rec["pool"])
        cands = candidate_sequences(rec, config.n_sampled if "random" in config.sources else 0, bcfg.shots, config.seed,
                                    extra=extra.get(rec["id"], []), use_beams="beams" in config.sources)
        scored = answer_candidates(backend, anchor, pool, cands, max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                                   vqa_mode=config.vqa_mode, correct_threshold=config.correct_threshold,
                                   correct_comparison=config.correct_comparison, prompt_format=config.prompt_format,
                                   postprocess=config.answer_postprocess)
        scored = [c for c in scored if c["source"] != "mined" or c["vqa_correct"]]  # upstream keeps only the mined positives
        scored = score_candidates(backend, anchor, pool, scored, score_eos=score_eos, prompt_format=prompt_format,
                                  batch_size=config.batch_size, rescore_beams=rescore)
        run.append(rec["id"], {"pool": rec["pool"], "candidates": scored})
    by_id = {r["id"]: r for r in run.records()}
    raw = [{"id": b["id"], "pool": by_id[b["id"]]["pool"], "candidates": by_id[b["id"]]["candidates"]} for b in beams]
    balanced = balance_records(raw, config.top_positives, config.top_negatives, config.min_positives,
                               config.require_negatives, config.positive_ratio)
    write_jsonl(out / "rl_raw.jsonl", raw)
    write_jsonl(out / "rl.jsonl", balanced)
    before, after = rl_statistics(raw), rl_statistics(balanced)
    if config.mine_from:
        mined_counts["kept_positives"] = sum(c["source"] == "mined" for r in raw for c in r["candidates"])
    run.write_metrics({"before": before, "after": after, **({"mined": mined_counts} if config.mine_from else {})})
    run.write_report(f"# icl rl-data\n\n{_stats_table(before, after)}\n\nbalancing: top {config.top_positives} positives, "
                     f"top {config.top_negatives} hard negatives, queries with < {config.min_positives} positives dropped; "
                     f"correct = VQA accuracy {config.correct_comparison} {config.correct_threshold} ({config.vqa_mode}); "
                     f"sampled sequences InfoScore-scored (end of turn {'scored' if score_eos else 'not scored'}"
                     f"{'; beams re-scored by this scorer' if rescore else ''})\n"
                     + (f"\nmined from {', '.join(map(str, config.mine_from))}: {mined_counts['offered']} candidates of these anchors, "
                        f"{mined_counts['outside_pool']} outside their pools, {mined_counts['kept_positives']} answered right and kept "
                        f"(repeats of other sources count once, under those)\n" if config.mine_from else ""))
    run.finish()
    return out
