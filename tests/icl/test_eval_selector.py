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


def _checkpoint(folder: Path, ids: list[str], dim: int, order: str | None = None, index_run: Path | None = None,
                sampler: str = "text", k: int = 4, tweak=None, **selector) -> Path:
    """A v1 selector for the text embeddings of `index_run`, trained (as recorded) on `sampler` pools of `k`."""
    from vlmlab.icl.configs import IndexConfig
    from vlmlab.icl.selectors.checkpoint import save_selector
    from vlmlab.icl.selectors.config import SelectorConfig
    from vlmlab.icl.selectors.data import DataFingerprint, selector_provenance
    from vlmlab.icl.selectors.registry import build_selector
    from vlmlab.icl.stages import embedders_of, upstream_config

    provenance = None
    if index_run is not None:
        icfg = upstream_config(index_run, IndexConfig, "index")
        provenance = selector_provenance(embedders_of(icfg), SupportIndex.load(index_run).text, sampler, k, None)
    model = build_selector(SelectorConfig(**{"version": "v1", "embedding_dim": dim, "hidden_dim": 16, "pool_size": 8, "shots": 2, **selector}))
    if tweak is not None:
        tweak(model)
    return save_selector(model, folder, DataFingerprint.from_ids("toy", ids, dim, "text", provenance=provenance),
                         extra={"order": order} if order else None)


def test_selector_eval_uses_each_query_pool(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    index = SupportIndex.load(index_run)
    ckpt = _checkpoint(tmp_path / "sel", index.ids, index.text.shape[1], index_run=index_run)
    cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector", "text"], shots=[1, 2],
                     selector=ckpt, n_boot=20)  # pools as the checkpoint records: text, K=4
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
        ckpt = _checkpoint(tmp_path / f"sel-{order}", index.ids, index.text.shape[1], order, index_run=index_run)
        cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[1, 3],
                         selector=ckpt, selector_pool="text", selector_k=4, n_boot=20)
        out = run_eval(cfg, tmp_path / f"eval-{order}", backend=toy_backend)
        ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
        demos[order] = {(r["shots"], r["question_id"]): r["demos"] for r in ledger}
    assert demos["left"].keys() == demos["right"].keys()
    for key, right in demos["right"].items():
        assert demos["left"][key] == right[::-1]
    assert any(len(set(v)) == 3 for v in demos["left"].values())


def _eval_yaml(tmp_path: Path, index: Path, toy_test, ckpt: Path, **extra) -> Path:
    import yaml

    cfg = tmp_path / "eval.yaml"
    test = data_config(toy_test).model_dump(mode="json")
    cfg.write_text(yaml.safe_dump({"index": str(index), "test": test, "model": {"ref": "x"}, "methods": ["selector"], "shots": [1],
                                   "selector": str(ckpt), "n_boot": 20, **extra}))
    return cfg


def _cli(args: list[str], capsys) -> tuple[int, str]:
    from vlmlab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_selector_on_an_index_with_other_embeddings_of_the_same_width_is_refused(tmp_path: Path, index_run: Path, toy_test, capsys) -> None:
    """Same ids, same width, other embedding values (another embedder): refused with one line, exit 2,
    no run folder; `--allow-mismatch` runs it, warns on stderr, and records the difference."""
    import shutil

    import numpy as np

    index = SupportIndex.load(index_run)
    ckpt = _checkpoint(tmp_path / "sel", index.ids, index.text.shape[1], index_run=index_run)
    other = tmp_path / "other-index"
    shutil.copytree(index_run, other)
    text = np.load(other / "embeddings" / "text.npy")
    np.save(other / "embeddings" / "text.npy", text[:, ::-1].copy())  # same shape, another "embedder"
    cfg = _eval_yaml(tmp_path, other, toy_test, ckpt)
    code, err = _cli(["icl", "eval", str(cfg), "--out", str(tmp_path / "eval")], capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1
    assert "trained on other data" in lines[0] and "embeddings_sha256" in lines[0] and "--allow-mismatch" in lines[0]
    assert not (tmp_path / "eval").exists()


def test_selector_on_other_pools_is_refused_unless_allowed(tmp_path: Path, index_run: Path, toy_test, toy_backend, capsys, monkeypatch) -> None:
    index = SupportIndex.load(index_run)
    ckpt = _checkpoint(tmp_path / "sel", index.ids, index.text.shape[1], index_run=index_run, sampler="text", k=4)
    for change, key in (({"selector_k": 6}, "pool_k: 4 != 6"), ({"selector_pool": "mix"}, "pool_sampler: 'text' != 'mix'")):
        cfg = _eval_yaml(tmp_path, index_run, toy_test, ckpt, **change)
        code, err = _cli(["icl", "eval", str(cfg), "--out", str(tmp_path / "eval")], capsys)
        assert code == 2 and key in err and len(err.strip().splitlines()) == 1
    # allowed: it runs, says so loudly, and the run records what differed
    import vlmlab.icl.eval_stage as eval_stage

    monkeypatch.setattr(eval_stage, "load_backend", lambda cfg: toy_backend)
    monkeypatch.setattr(eval_stage, "preflight_model", lambda *a, **k: None)  # the scripted backend has no checkpoint
    cfg = _eval_yaml(tmp_path, index_run, toy_test, ckpt, selector_k=6)
    code, err = _cli(["icl", "eval", str(cfg), "--out", str(tmp_path / "eval"), "--allow-mismatch"], capsys)
    assert code == 0 and "WARNING" in err and "pool_k: 4 != 6" in err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["selector_mismatch"] == ["pool_k: 4 != 6"]
    assert "WARNING" in (tmp_path / "eval" / "report.md").read_text()


def test_reverse_seq_picks_are_reversed_back_and_a_wrong_claim_is_refused(tmp_path: Path, index_run: Path, toy_test, toy_backend, capsys) -> None:
    """A selector trained with `reverse_seq` emits sequences reversed; eval turns them back (same weights
    otherwise). Saying `selector_reverse_seq: true` for a v0 checkpoint trained without it: one line, exit 2."""
    import torch

    index = SupportIndex.load(index_run)
    demos = {}
    for rev in (False, True):
        torch.manual_seed(0)
        ckpt = _checkpoint(tmp_path / f"sel-{rev}", index.ids, index.text.shape[1], index_run=index_run, version="v0", reverse_seq=rev)
        cfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[3],
                         selector=ckpt, n_boot=20)
        out = run_eval(cfg, tmp_path / f"eval-{rev}", backend=toy_backend)
        demos[rev] = {r["question_id"]: r["demos"] for r in (json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines())}
    assert demos[True] == {q: d[::-1] for q, d in demos[False].items()}
    cfg = _eval_yaml(tmp_path, index_run, toy_test, tmp_path / "sel-False", selector_reverse_seq=True)
    code, err = _cli(["icl", "eval", str(cfg), "--out", str(tmp_path / "eval-claim")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "v0 selector was trained with reverse_seq: false" in err and not (tmp_path / "eval-claim").exists()


def test_a_stop_selector_needs_adaptive_shots(tmp_path: Path, index_run: Path, toy_test, toy_backend, capsys) -> None:
    """`vlmlab icl eval` of a STOP selector with fixed shots is a one-line exit 2; with `adaptive` each query
    gets 0..2 demonstrations from its own pool, and the cell counts them."""
    import yaml

    from vlmlab.cli import main

    index = SupportIndex.load(index_run)
    import torch

    def like_a_question(model) -> None:  # an untrained STOP item always wins; make it look like one support question
        with torch.no_grad():
            model.stop_item.copy_(model.item_encoder(torch.from_numpy(index.text[3:4]))[0])

    ckpt = _checkpoint(tmp_path / "stop", index.ids, index.text.shape[1], index_run=index_run, stop_token=True, tweak=like_a_question)
    plain = _checkpoint(tmp_path / "plain", index.ids, index.text.shape[1], index_run=index_run)
    cfg = {"index": str(index_run), "test": {k: str(v) for k, v in data_config(toy_test).model_dump().items()}, "model": {"ref": "x"},
           "methods": ["selector", "random"], "shots": [1, 2], "selector": str(ckpt), "n_boot": 20}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    for overrides, needle in (([], "has a STOP token"), (["selector=" + str(plain), "shots=[1,adaptive]"], "needs a selector with a STOP token"),
                              (["methods=[random]", "shots=[1,adaptive]"], "add method `selector`")):
        with pytest.raises(SystemExit) as exc:
            main(["icl", "eval", str(tmp_path / "eval.yaml"), "--out", str(tmp_path / "refused"), *sum((["--set", o] for o in overrides), [])])
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1 and needle in err, err
        assert not (tmp_path / "refused").exists()
    out = run_eval(EvalConfig.model_validate({**cfg, "shots": [1, "adaptive"]}), tmp_path / "eval", backend=toy_backend)
    cells = json.loads((out / "metrics.json").read_text())["cells"]
    assert [(c["method"], c["shots"], c.get("adaptive", False)) for c in cells] == [("selector", 2, True), ("random", 1, False)]
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    counts = [len(r["demos"]) for r in ledger if r["method"] == "selector"]
    assert cells[0]["shot_counts"] == {str(n): counts.count(n) for n in range(3)} and sum(counts) / len(counts) == cells[0]["mean_shots"]
    assert all(len(set(r["demos"])) == len(r["demos"]) <= 2 for r in ledger if r["method"] == "selector")
    assert len(set(counts)) > 1, counts  # some queries stop earlier than others
    assert "STOP, up to 2 shots" in (out / "report.md").read_text()
