"""Eval with a selector checkpoint: picks come from the query's own pool; other data is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from icl_toy import data_config
from vlmlab.errors import CheckpointError
from vlmlab.icl.configs import BackendConfig, EvalConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.index import SupportIndex


def _checkpoint(folder: Path, ids: list[str], dim: int, order: str | None = None) -> Path:
    from vlmlab.icl.selectors.checkpoint import save_selector
    from vlmlab.icl.selectors.config import SelectorConfig
    from vlmlab.icl.selectors.data import DataFingerprint
    from vlmlab.icl.selectors.registry import build_selector

    model = build_selector(SelectorConfig(version="v1", embedding_dim=dim, hidden_dim=16, pool_size=8, shots=2))
    return save_selector(model, folder, DataFingerprint.from_ids("toy", ids, dim, "text"), extra={"order": order} if order else None)


def test_selector_eval_uses_each_query_pool(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    index = SupportIndex.load(index_run)
    ckpt = _checkpoint(tmp_path / "sel", index.ids, index.text.shape[1])
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector", "text"], shots=[1, 2],
                     selector=ckpt, selector_pool="text", selector_k=4, n_boot=20)
    out = run_eval(cfg, tmp_path / "eval", backend=toy_backend)
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    sel = {(r["shots"], r["question_id"]): r["demos"] for r in ledger if r["method"] == "selector"}
    text = {(r["shots"], r["question_id"]): r["demos"] for r in ledger if r["method"] == "text"}
    # with the pool = the 4 most text-similar items, every selector pick lies in that pool
    from vlmlab.embed import build_embedder
    from vlmlab.icl.data import load_split
    from vlmlab.icl.index import nearest

    test = load_split(data_config(toy_test))
    q_text = build_embedder("bag-of-words").embed([r.question for r in test.records])
    top4 = nearest(q_text, index.text, 4)
    pools = {r.question_id: {index.ids[p] for p in row} for r, row in zip(test.records, top4)}
    for (shots, qid), demos in sel.items():
        assert len(demos) == shots == len(set(demos))
        assert set(demos) <= pools[qid]
    assert len({tuple(v) for v in sel.values()}) > 1  # different queries, different pools and picks
    assert set(text) == set(sel)


def test_selector_from_other_data_is_refused(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    index = SupportIndex.load(index_run)
    ckpt = _checkpoint(tmp_path / "sel", [f"other{i}" for i in range(len(index))], index.text.shape[1])
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[1],
                     selector=ckpt, selector_k=4, n_boot=20)
    with pytest.raises(CheckpointError, match="trained on other data"):
        run_eval(cfg, tmp_path / "eval", backend=toy_backend)


def test_selector_trained_on_left_beams_puts_its_first_pick_next_to_the_query(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    """Picks come in selection order; a left beam's first pick is last in the prompt, so the eval
    reverses them for a checkpoint whose meta says `order: left` (same weights otherwise)."""
    index = SupportIndex.load(index_run)
    demos = {}
    for order in ("right", "left"):
        ckpt = _checkpoint(tmp_path / f"sel-{order}", index.ids, index.text.shape[1], order)
        cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[1, 3],
                         selector=ckpt, selector_pool="text", selector_k=4, n_boot=20)
        out = run_eval(cfg, tmp_path / f"eval-{order}", backend=toy_backend)
        ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
        demos[order] = {(r["shots"], r["question_id"]): r["demos"] for r in ledger}
    assert demos["left"].keys() == demos["right"].keys()
    for key, right in demos["right"].items():
        assert demos["left"][key] == right[::-1]
    assert any(len(set(v)) == 3 for v in demos["left"].values())
