"""Stage `eval`: VQA accuracy of each demonstration-choice method at 1..N shots on a test split.

Story: load the index and its support split, the test split and its fixed seeded subsets; choose
demonstrations for every (method, shots, query); generate answers in batches (data-parallel by
query under torchrun); score official (or OK-VQA) VQA accuracy; write per-cell accuracy with
percentile bootstrap CIs over images (`ci_unit`; each cell's `ci` says method, unit and n) (`metrics.json`), the subsets (`subsets.json`) and a table (`report.md`) with rows
test size x shots and one column per method. Zero-shot is the row with shots 0. A selector with a
STOP token runs at `shots: adaptive`: its cell sits in the row of the shots it was trained for (its
budget), marked `adaptive`, with the number of queries given 0, 1, ... demonstrations.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from vlmlab.embed.cache import EmbeddingCache
from vlmlab.embed.registry import build_embedder
from vlmlab.errors import CheckpointError, ConfigError, DataError
from vlmlab.icl.candidates import DEFAULT_MIX, pools_for_queries
from vlmlab.icl.configs import EvalConfig, IndexConfig
from vlmlab.icl.data import load_split
from vlmlab.icl.evaluate import accuracy_interval, nested_subset, random_demos, results_markdown, retrieved_demos, size_label
from vlmlab.icl.index import SupportIndex, embed_records
from vlmlab.icl.prompts import check_backend_images, generation_request, postprocess_answer
from vlmlab.icl.stages import embedders_of, index_support, load_backend, open_sharded
from vlmlab.metrics.inference import ci_label
from vlmlab.models.base import Backend
from vlmlab.models.preflight import preflight_model
from vlmlab.progress import track


def _key(qid: str) -> int:
    return int(hashlib.sha256(qid.encode()).hexdigest()[:8], 16)


def selector_budget(folder: Path, shots: list) -> int | None:
    """The shots a STOP selector may use (its trained `shots`), None for a fixed-shots selector.

    Raises:
        ConfigError: a STOP selector without `adaptive` in `shots`, or `adaptive` for one without STOP.
    """
    from vlmlab.icl.selectors.checkpoint import read_selector_meta

    saved_config = read_selector_meta(folder)[0]
    if saved_config.stop_token and "adaptive" not in shots:
        raise ConfigError(f"{folder}: this selector has a STOP token and chooses each query's number of demonstrations (up to "
                          f"{saved_config.shots}), so fixed shots {shots} cannot apply to it; add `adaptive` to shots, e.g. [1, 2, adaptive]")
    if "adaptive" in shots and not saved_config.stop_token:
        raise ConfigError(f"{folder}: shots `adaptive` needs a selector with a STOP token (stop_token: true); this one always picks "
                          "its shots: drop `adaptive`")
    return saved_config.shots if saved_config.stop_token else None


def selector_demos(folder: Path, index: SupportIndex, icfg: IndexConfig, q_text: np.ndarray, q_image: np.ndarray, exclude: list[list[int]],
                   qids: list[str], shots: int, config: EvalConfig) -> tuple[list[list[int]], list[str]]:
    """Per query, the support positions a selector checkpoint chose from its own pool, in prompt order
    (0..`shots` of them for a STOP selector, `shots` otherwise), and the differences between its training
    data and this eval (empty unless `config.allow_mismatch`).

    The pools are drawn as in training (the checkpoint records sampler, K and mix weights) unless the
    config sets them; the embedders and the embedding matrix must be the ones it was trained on.

    Raises:
        CheckpointError: any difference (ids, embedders, embedding hash, pools), unless `allow_mismatch`.
    """
    import torch

    from vlmlab.icl.selectors.checkpoint import check_fingerprint, load_selector, read_selector_meta
    from vlmlab.icl.selectors.data import DataFingerprint, selector_provenance
    from vlmlab.icl.selectors.inference import select, until_stop
    from vlmlab.icl.selectors.records import MODALITY_PARTS

    saved_config, saved, meta = read_selector_meta(folder)
    if config.selector_reverse_seq is not None and config.selector_reverse_seq != saved_config.reverse_seq:
        raise CheckpointError(
            f"{folder}: selector_reverse_seq is {str(config.selector_reverse_seq).lower()} but this {saved_config.version} selector was trained "
            f"with reverse_seq: {str(saved_config.reverse_seq).lower()}; drop selector_reverse_seq (the checkpoint knows) or retrain"
        )
    names = MODALITY_PARTS.get(saved.modality)
    if names is None:
        raise DataError(f"{folder}: selector modality {saved.modality!r} is not one of text, image, text+image")
    icd = {"text": index.demo_matrix() if saved.icd_answers else index.text, "image": index.image}
    query = {"text": q_text, "image": q_image}
    support_emb = np.concatenate([icd[n] for n in names], axis=1)
    query_emb = np.concatenate([query[n] for n in names], axis=1)
    trained = saved.provenance or {}
    sampler = config.selector_pool or trained.get("pool_sampler") or "mix"
    if sampler.startswith("upstream:"):  # imported beams whose pools upstream drew with its own embeddings
        raise CheckpointError(f"{folder}: trained on pools of upstream's {sampler.split(':', 1)[1]}, which vlmlab cannot redraw (it ranks by "
                              "upstream's embeddings); set selector_pool (text, image, random or mix) and pass --allow-mismatch to run it on "
                              "vlmlab's pools anyway")
    k = config.selector_k or int(trained.get("pool_k") or 64)
    mix = config.selector_mix_weights or trained.get("pool_mix_weights") or dict(DEFAULT_MIX)
    provenance = selector_provenance(embedders_of(icfg), support_emb, sampler, k, mix)
    here = DataFingerprint.from_ids(saved.dataset, index.ids, support_emb.shape[1], saved.modality, saved.icd_answers, provenance)
    mismatches = check_fingerprint(folder, here, allow_mismatch=config.allow_mismatch)
    if mismatches:
        print(f"WARNING: --allow-mismatch: selector {folder} runs on data it was not trained on: {'; '.join(mismatches)}", file=sys.stderr)
    model = load_selector(folder)
    pools = np.array(pools_for_queries(index, q_text, q_image, exclude, [_key(q) for q in qids], sampler, k, config.seed, mix), dtype=np.int64)
    picks = until_stop(select(model, torch.from_numpy(query_emb), torch.from_numpy(support_emb[pools]), shots), pools.shape[1])
    if saved_config.reverse_seq:  # it learned sequences reversed: back to selection order (never with STOP)
        picks = [p[::-1] for p in picks]
    if meta.get("order", "right") == "left":  # picks come in selection order; a left beam's first pick sits last
        picks = [p[::-1] for p in picks]
    return [[int(pools[i, p]) for p in row] for i, row in enumerate(picks)], mismatches


def shot_distribution(counts: list[int], budget: int) -> dict:
    """What an adaptive (STOP) cell adds: queries per number of demonstrations given (0..budget), and the mean."""
    return {"adaptive": True, "mean_shots": float(np.mean(counts)) if counts else 0.0,
            "shot_counts": {str(n): counts.count(n) for n in range(budget + 1)}}


def adaptive_notes(cells: list[dict]) -> str:
    lines = [f"- {c['method']} (size {c['size']}, STOP, up to {c['shots']} shots): mean {c['mean_shots']:.2f} demonstrations; queries by "
             f"number given: " + ", ".join(f"{n}: {k}" for n, k in c["shot_counts"].items()) for c in cells if c.get("adaptive")]
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def eval_grid(config: EvalConfig) -> list[tuple[str, int, bool]]:
    """(method, shots, adaptive) of every cell, in `methods` order: zero-shot at 0, a STOP selector once at
    its budget (adaptively), every other method at each integer shots."""
    budget = selector_budget(config.selector, config.shots) if "selector" in config.methods and config.selector is not None else None
    grid = []
    for method in config.methods:
        if method == "zero-shot":
            grid.append((method, 0, False))
        elif method == "selector" and budget is not None:
            grid.append((method, budget, True))
        else:
            grid += [(method, int(s), False) for s in config.shots if s != "adaptive"]
    return grid


def run_eval(config: EvalConfig, out: Path | str, *, backend: Backend | None = None, overwrite: bool = False) -> Path | None:
    """Evaluate `config.methods` at `config.shots` on `config.test`; see the module docstring."""
    from vlmlab.metrics.vqa import question_accuracy

    out = Path(out)
    icfg: IndexConfig
    icfg, support, index = index_support(config.index)
    test = load_split(config.test)
    order = nested_subset(test.ids, None, config.seed)
    sizes = [None if s == "full" else int(s) for s in config.sizes]
    for s in sizes:
        nested_subset(test.ids, s, config.seed)  # validates the size
    n_eval = len(order) if None in sizes else max(s for s in sizes if s is not None)
    eval_ids = order[:n_eval]
    grid = eval_grid(config)
    max_shots = max((s for _, s, _ in grid), default=0)
    for q in eval_ids:
        if not test.get(q).answers:
            raise DataError(f"{config.test.annotations}: question {q} has no answers; evaluation needs annotations for every test question")
    support_ids = set(index.ids)
    exclude = [[index.position(q)] if q in support_ids else [] for q in eval_ids]
    if max_shots > len(index) - 1:
        raise DataError(f"shots={max_shots} is larger than the support set ({len(index)} items); lower shots")
    records = test.subset(eval_ids)
    needs_emb = any(m in ("text", "image", "selector") for m in config.methods)
    if needs_emb:
        cache = EmbeddingCache(icfg.cache_dir if icfg.cache_dir is not None else Path(config.index) / "embed_cache")
        q_text, q_image = embed_records(records, build_embedder(icfg.text_embedder, **icfg.text_embedder_options),
                                        build_embedder(icfg.image_embedder, **icfg.image_embedder_options), cache, icfg.batch_size)
    # demonstrations for every (method, shots, query): positions in the support set
    plan: list[tuple[str, int, str, list[int]]] = []
    mismatches: list[str] = []
    for method, shots, _ in grid:
        if method == "zero-shot":
            demos: list[list[int]] = [[] for _ in eval_ids]
        elif method == "random":
            demos = [random_demos(len(index), q, shots, config.seed, ex) for q, ex in zip(eval_ids, exclude)]
        elif method in ("text", "image"):
            demos = retrieved_demos(q_text if method == "text" else q_image, index.matrix(method), shots, exclude).tolist()
        else:
            assert config.selector is not None
            demos, mismatches = selector_demos(config.selector, index, icfg, q_text, q_image, exclude, eval_ids, shots, config)
        plan += [(method, shots, q, d) for q, d in zip(eval_ids, demos)]
    if backend is None:
        preflight_model(config.model)  # hub access, processor, family facts, quantization: before the run folder
    run, rank, world, barrier = open_sharded(out, config, "icl-eval", overwrite, config.device)
    mine_q = set(eval_ids[rank::world])
    todo = [p for p in plan if p[2] in mine_q and f"{p[0]}|{p[1]}|{p[2]}" not in run.done_ids()]
    started = time.perf_counter()
    if todo:
        backend = backend if backend is not None else load_backend(config.model)
        check_backend_images(backend, max(len(d) for _, _, _, d in todo), "eval")
    batches = [todo[i : i + config.batch_size] for i in range(0, len(todo), config.batch_size)]
    for batch in track(batches, f"eval (rank {rank})"):
        requests = [generation_request(f"{m}|{s}|{q}", [support.records[p] for p in d], test.get(q), config.max_new_tokens, config.prompt_format)
                    for m, s, q, d in batch]
        for (m, s, q, d), res in zip(batch, backend.generate(requests)):
            scored = postprocess_answer(res.text, config.answer_postprocess)
            acc = float(question_accuracy(scored, list(test.get(q).answers), mode=config.vqa_mode)) if res.status == "ok" else 0.0
            run.append(f"{m}|{s}|{q}", {"method": m, "shots": s, "question_id": q, "image_id": test.get(q).image_id, "demos": [index.ids[p] for p in d],
                                        "prediction": res.text if res.status != "error" else None, "status": res.status,
                                        "error": res.error, "acc": acc})
    elapsed = time.perf_counter() - started
    barrier()
    if rank != 0:
        return None
    ids_order = [f"{m}|{s}|{q}" for m, s, q, _ in plan]
    if world > 1:
        run.merge_shards(ids_order)
    by_id = {r["id"]: r for r in run.records()}
    subsets = {size_label(s, len(test)): order[: len(order) if s is None else s] for s in sizes}
    cells = []
    for label, ids in subsets.items():
        for method, shots, adaptive in grid:
            rows = [by_id[f"{method}|{shots}|{q}"] for q in ids]
            accs = [r["acc"] for r in rows]
            ci = accuracy_interval(accs, [test.get(q).image_id for q in ids], config.ci_unit, config.n_boot, config.seed)
            cells.append({"size": label, "shots": shots, "method": method, "accuracy": float(np.mean(accs)), "ci_low": ci.low, "ci_high": ci.high,
                          "n": len(accs), "n_images": len({test.get(q).image_id for q in ids}), "ci": ci.to_json(),
                          "errors": sum(r["status"] == "error" for r in rows), "empty": sum(r["status"] == "empty" for r in rows),
                          **(shot_distribution([len(r["demos"]) for r in rows], shots) if adaptive else {})})
    unit = cells[0]["ci"]["unit"] if cells else "images"
    run.write_json("subsets.json", subsets)
    run.write_metrics({"cells": cells, "test_questions": len(test), "vqa_mode": config.vqa_mode, "seconds_this_invocation": elapsed,
                       "selector_mismatch": mismatches})
    warning = f"**WARNING: the selector ran on data it was not trained on (--allow-mismatch):** {'; '.join(mismatches)}\n\n" if mismatches else ""
    model = f"model: `{config.model.ref}` ({config.model.kind}, {config.model.precision()})\n\n"
    run.write_report(f"# icl eval\n\n{warning}{model}test: `{config.test.questions}` ({len(test)} questions), support: {len(index)}, "
                     f"VQA accuracy ({config.vqa_mode}) in %, {ci_label('percentile', unit, 0.95, config.n_boot)} in brackets\n\n"
                     + results_markdown(cells, config.methods) + adaptive_notes(cells))
    errors = sum(c["errors"] for c in cells)
    run.finish("complete" if not errors else "degraded", errors=errors)
    return out
