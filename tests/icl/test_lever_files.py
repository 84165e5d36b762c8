"""Upstream Lever-LM / Lever-Plus files, laid out by upstream's own writers (tests/icl/files/README.md).

The files' ids are ROW POSITIONS in the toy support split (`toy_support`, the same split the
upstream writers were run on). Expected prompt orders come from what upstream's `get_info_score`
actually scored (`scored_prompts-*.json`), never from our code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from icl_toy import data_config
from vlmlab.cli import main
from vlmlab.errors import CheckpointError
from vlmlab.icl.lever_lm import support_sha256
from vlmlab.icl.selectors.records import read_jsonl

FILES = Path(__file__).parent / "files"
POOLS = FILES / "sampler_cache-RandSampler-anchor_sample_num:6-candidate_num:6.json"
RL_DATA = FILES / "rl_data.json"


def beams_file(order: str, shots: int) -> Path:
    return FILES / (f"vqa-toy_vqa-stub_scorer-RandSampler-scorer:infoscore-construct_order:{order}-beam_size:3-few_shot:{shots}"
                    "-candidate_num:6-sample_num:6.json")


def cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    code = exc.value.code or 0
    return code, capsys.readouterr().err.strip()


def support_ids(index_run: Path) -> list[str]:
    return json.loads((index_run / "embeddings" / "ids.json").read_text())


@pytest.fixture
def reversed_index(tmp_path: Path, toy_support) -> Path:
    """An index of the same 45 questions in reverse row order: every row exists but holds another question."""
    from vlmlab.icl.configs import IndexConfig
    from vlmlab.icl.stages import run_index

    questions = json.loads(toy_support["questions"].read_text())
    questions["questions"].reverse()
    path = tmp_path / "reversed_questions.json"
    path.write_text(json.dumps(questions))
    cfg = IndexConfig(support=data_config({**toy_support, "questions": path}), text_embedder="bag-of-words", image_embedder="pixels",
                      cache_dir=tmp_path / "cache")
    return run_index(cfg, tmp_path / "reversed_index")


def test_the_files_refer_to_this_support_split(index_run: Path) -> None:
    recorded = (FILES / "README.md").read_text()
    assert support_sha256(support_ids(index_run)) in recorded  # the toy split upstream's rows were taken from


@pytest.mark.parametrize("order,shots", [("left", 2), ("left", 3), ("right", 2), ("right", 3)])
def test_import_gives_the_prompts_upstream_scored(tmp_path: Path, index_run: Path, capsys, order: str, shots: int) -> None:
    code, err = cli(["icl", "import-lever-lm", beams_file(order, shots), tmp_path / "imp", "--index", index_run, "--pools", POOLS], capsys)
    assert code == 0, err
    ids = support_ids(index_run)
    scored = json.loads((FILES / f"scored_prompts-construct_order:{order}-few_shot:{shots}.json").read_text())
    upstream = json.loads(beams_file(order, shots).read_text())
    cache = json.loads(POOLS.read_text())
    records = read_jsonl(tmp_path / "imp" / "beams.jsonl")
    assert [r["id"] for r in records] == [ids[int(k)] for k in upstream]
    for rec, (row, entry) in zip(records, upstream.items()):
        assert rec["order"] == order
        assert rec["pool"] == [ids[r] for r in cache[row]]
        assert len(rec["beams"]) == len(scored[row]) == 3
        for beam, expected, score in zip(rec["beams"], scored[row], entry["score_list"]):
            assert beam["ids"] == [ids[r] for r in expected["scored_prompt"][:-1]]  # prompt order, as upstream scored it
            assert [rec["pool"][p] for p in beam["positions"]] == beam["ids"]
            assert beam["marginal"] == score and beam["cumulative"] is None
    meta = json.loads((tmp_path / "imp" / "lever_lm_import.json").read_text())
    assert meta["construct_order"] == order and meta["support_ids_sha256"] == support_sha256(ids)


def test_left_and_right_files_differ_in_prompt_order(tmp_path: Path, index_run: Path, capsys) -> None:
    """Same search results read with the other construct_order give the reversed prompts, so a swap is caught."""
    for order in ("left", "right"):
        code, err = cli(["icl", "import-lever-lm", beams_file("left", 2), tmp_path / order, "--index", index_run, "--order", order], capsys)
        assert code == (0 if order == "left" else 2)
        if order == "right":
            assert "construct_order disagrees" in err and "file name says left" in err
    data = json.loads(beams_file("left", 2).read_text())
    (tmp_path / "renamed.json").write_text(json.dumps(data))
    assert cli(["icl", "import-lever-lm", tmp_path / "renamed.json", tmp_path / "r", "--index", index_run, "--order", "right"], capsys)[0] == 0
    left = read_jsonl(tmp_path / "left" / "beams.jsonl")
    right = read_jsonl(tmp_path / "r" / "beams.jsonl")
    assert [[b["ids"][::-1] for b in r["beams"]] for r in right] == [[b["ids"] for b in r["beams"]] for r in left]


def test_bad_upstream_files_are_one_line_exit_2_and_write_nothing(tmp_path: Path, index_run: Path, capsys) -> None:
    data = json.loads(beams_file("left", 2).read_text())
    first = next(iter(data))
    data[first]["id_list"][1][0] = 999
    bad = tmp_path / "vqa-construct_order:left-bad.json"
    bad.write_text(json.dumps(data))
    cases = [
        (["icl", "import-lever-lm", bad, tmp_path / "o1", "--index", index_run], ["999", str(bad), "maps to no row"]),
        (["icl", "import-lever-lm", beams_file("right", 3), tmp_path / "o2", "--index", index_run, "--order", "left"], ["construct_order disagrees"]),
        (["icl", "import-lever-lm", beams_file("left", 2), tmp_path / "o3", "--index", index_run, "--row-order", "nope"], ["row order"]),
        (["icl", "import-lever-lm", beams_file("left", 2), tmp_path / "o4", "--index", index_run, "--candidates", tmp_path], ["candidates.jsonl"]),
        (["icl", "import-lever-lm", beams_file("left", 2), tmp_path / "o5.jsonl", "--index", index_run], ["give a folder"]),
    ]
    for args, needles in cases:
        code, err = cli(args, capsys)
        assert code == 2 and len(err.splitlines()) == 1, err
        for needle in needles:
            assert needle in err
        assert not Path(args[3]).exists()
    no_name = tmp_path / "plain.json"
    no_name.write_text(json.dumps(data))
    code, err = cli(["icl", "import-lever-lm", no_name, tmp_path / "o5", "--index", index_run], capsys)
    assert code == 2 and "construct_order unknown" in err and not (tmp_path / "o5").exists()


@pytest.mark.parametrize("order,shots", [("left", 2), ("right", 2), ("left", 3), ("right", 3)])
def test_export_reproduces_the_upstream_file(tmp_path: Path, index_run: Path, reversed_index: Path, capsys, order: str, shots: int) -> None:
    src = beams_file(order, shots)
    assert cli(["icl", "import-lever-lm", src, tmp_path / "imp", "--index", index_run, "--pools", POOLS], capsys)[0] == 0
    out = tmp_path / "back.json"
    code, err = cli(["icl", "export-lever-lm", tmp_path / "imp", out], capsys)
    assert code == 0, err
    assert json.loads(out.read_text()) == json.loads(src.read_text())
    assert list(json.loads(out.read_text())) == list(json.loads(src.read_text()))
    side = json.loads((tmp_path / "back.vlmlab.json").read_text())
    assert side["construct_order"] == order
    # read back as upstream's trainer does: x = id_list[-1], ICDs id_list[:-1], all rows of its index dataset
    ids = support_ids(index_run)
    records = {r["id"]: r for r in read_jsonl(tmp_path / "imp" / "beams.jsonl")}
    for anchor_row, entry in json.loads(out.read_text()).items():
        rec = records[ids[int(anchor_row)]]
        for seq, beam in zip(entry["id_list"], rec["beams"]):
            assert ids[seq[-1]] == rec["id"]
            # upstream's prompt: `left` id_list[:-1]; `right` id_list[1:-1] + [id_list[0]] (its get_info_score)
            prompt = [ids[r] for r in seq[:-1]] if order == "left" else [ids[r] for r in seq[1:-1] + seq[:1]]
            assert prompt == beam["ids"]
    # a file recorded for these rows is refused for other rows
    code, err = cli(["icl", "import-lever-lm", out, tmp_path / "again", "--index", reversed_index], capsys)
    assert code == 2 and "another support set" in err and not (tmp_path / "again").exists()


def test_beam_stage_writes_row_positions(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend) -> None:
    from vlmlab.icl.configs import BackendConfig, BeamConfig
    from vlmlab.icl.stages import run_beam

    ids = support_ids(index_run)
    for order in ("left", "right"):
        beam_dir = run_beam(BeamConfig(candidates=candidates_run, scorer=BackendConfig(ref="x"), beam_size=2, shots=2, order=order),
                            tmp_path / order, backend=toy_backend)
        up = json.loads((beam_dir / "lever_lm.json").read_text())
        for rec in read_jsonl(beam_dir / "beams.jsonl"):
            entry = up[str(ids.index(rec["id"]))]
            for seq, beam in zip(entry["id_list"], rec["beams"]):
                picks = [ids[r] for r in seq[:-1]]  # upstream prepends: newest pick first
                chosen = [rec["pool"][p] for p in beam["positions"]]
                assert picks == (chosen if order == "left" else chosen[::-1])
            assert entry["score_list"] == [b["marginal"] for b in rec["beams"]]


def test_imported_upstream_beams_train_and_eval(tmp_path: Path, index_run: Path, toy_test, toy_backend, capsys) -> None:
    """import -> `vlmlab icl train` -> eval of the trained selector, on the upstream-written file, with no overrides:
    the import records upstream's one beam score (marginal) and its pools (RandSampler, candidate_num 6 = vlmlab's
    `random`, K=6), so eval draws such pools; other pools are still refused."""
    from vlmlab.icl.configs import BackendConfig, EvalConfig
    from vlmlab.icl.eval_stage import run_eval

    assert cli(["icl", "import-lever-lm", beams_file("left", 2), tmp_path / "imp", "--index", index_run, "--pools", POOLS], capsys)[0] == 0
    record = json.loads((tmp_path / "imp" / "lever_lm_import.json").read_text())
    assert (record["beam_score"], record["pool_sampler"], record["pool_k"]) == ("marginal", "random", 6)
    cfg = tmp_path / "train.yaml"
    selector = {"version": "v3", "hidden_dim": 16, "pool_size": 6, "epochs": 2, "batch_size": 2, "val_fraction": 0.34, "ce_beams": 3}
    cfg.write_text(yaml.safe_dump({"index": str(index_run), "beams": str(tmp_path / "imp"), "selector": selector}))
    code, err = cli(["icl", "train", cfg, "--out", tmp_path / "train"], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "train" / "selector.json").read_text())
    assert meta["order"] == "left" and meta["config"]["beam_score"] == "marginal"
    assert (meta["data"]["provenance"]["pool_sampler"], meta["data"]["provenance"]["pool_k"]) == ("random", 6)
    ecfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[1, 2],
                      selector=tmp_path / "train", n_boot=20)
    out = run_eval(ecfg, tmp_path / "eval", backend=toy_backend)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {(c["shots"], c["method"]) for c in metrics["cells"]} == {(1, "selector"), (2, "selector")} and metrics["selector_mismatch"] == []
    # pools of another sampler than the one upstream drew them with: refused, or run loudly with --allow-mismatch
    other = ecfg.model_copy(update={"selector_pool": "text"})
    with pytest.raises(CheckpointError, match="pool_sampler"):
        run_eval(other, tmp_path / "eval-refused", backend=toy_backend)
    assert not (tmp_path / "eval-refused").exists()
    out = run_eval(other.model_copy(update={"allow_mismatch": True}), tmp_path / "eval-other", backend=toy_backend)
    assert any("pool_sampler" in m for m in json.loads((out / "metrics.json").read_text())["selector_mismatch"])


def test_pools_upstream_drew_by_similarity_cannot_be_redrawn(tmp_path: Path, index_run: Path, toy_test, toy_backend, capsys) -> None:
    """A TextSimSampler cache ranked by upstream's own embeddings: recorded as such, and eval says it cannot redraw it."""
    import shutil

    from vlmlab.icl.configs import BackendConfig, EvalConfig
    from vlmlab.icl.eval_stage import run_eval

    pools = tmp_path / "sampler_cache-TextSimSampler-anchor_sample_num:6-candidate_num:6.json"
    shutil.copy(POOLS, pools)
    assert cli(["icl", "import-lever-lm", beams_file("left", 2), tmp_path / "imp", "--index", index_run, "--pools", pools], capsys)[0] == 0
    assert json.loads((tmp_path / "imp" / "lever_lm_import.json").read_text())["pool_sampler"] == "upstream:TextSimSampler"
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"index": str(index_run), "beams": str(tmp_path / "imp"),
                                   "selector": {"version": "v2", "hidden_dim": 16, "pool_size": 6, "epochs": 1, "batch_size": 2}}))
    assert cli(["icl", "train", cfg, "--out", tmp_path / "train"], capsys)[0] == 0
    ecfg = EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["selector"], shots=[1],
                      selector=tmp_path / "train", n_boot=20)
    with pytest.raises(CheckpointError, match="upstream's TextSimSampler, which vlmlab cannot redraw"):
        run_eval(ecfg, tmp_path / "eval", backend=toy_backend)


def test_lever_plus_import_and_export_round_trip(tmp_path: Path, index_run: Path, reversed_index: Path, capsys) -> None:
    code, err = cli(["icl", "import-lever-plus", RL_DATA, tmp_path / "rl", "--index", index_run], capsys)
    assert code == 0, err
    ids = support_ids(index_run)
    upstream = json.loads(RL_DATA.read_text())
    records = read_jsonl(tmp_path / "rl" / "rl.jsonl")
    rows = [k for k in upstream if k != "_meta"]
    assert [r["id"] for r in records] == [ids[int(k)] for k in rows]
    for rec, row in zip(records, rows):
        cands = upstream[row]["pointer_candidates"]
        assert str(upstream[row]["query"]["question_id"]) == rec["id"]
        assert [c["ids"] for c in rec["candidates"]] == [[ids[r] for r in c["pointer"]] for c in cands]
        assert [[rec["pool"][p] for p in c["positions"]] for c in rec["candidates"]] == [c["ids"] for c in rec["candidates"]]
        assert [c["vqa_correct"] for c in rec["candidates"]] == [bool(c["vqa_correct"]) for c in cands]
        assert [c["vqa_acc_score"] for c in rec["candidates"]] == [c["vqa_acc_score"] for c in cands]
        assert [c["answer"] for c in rec["candidates"]] == [c["vqa_pred_answer"] for c in cands]
        assert [c["source"] for c in rec["candidates"]] == ["beam" if c["gen_method"] == "beam" else "sampled" for c in cands]
    out = tmp_path / "back.json"
    code, err = cli(["icl", "export-lever-plus", tmp_path / "rl", out], capsys)
    assert code == 0, err
    back = json.loads(out.read_text())
    assert back["_meta"].pop("vlmlab")["support_ids_sha256"] == support_sha256(ids)
    assert back == upstream
    assert [list(c) for c in back[rows[0]]["pointer_candidates"]] == [list(c) for c in upstream[rows[0]]["pointer_candidates"]]
    assert out.read_text() == json.dumps({"_meta": {**upstream["_meta"], "vlmlab": json.loads(out.read_text())["_meta"]["vlmlab"]},
                                          **{k: v for k, v in upstream.items() if k != "_meta"}}, indent=2)
    # the export records its rows: read with other rows, it is refused
    code, err = cli(["icl", "import-lever-plus", out, tmp_path / "x", "--index", reversed_index], capsys)
    assert code == 2 and "another support set" in err and not (tmp_path / "x").exists()


def test_lever_plus_rows_that_name_other_questions_are_refused(tmp_path: Path, index_run: Path, reversed_index: Path, capsys) -> None:
    """Read with another row order, the rows exist but hold other questions: the query block catches it."""
    code, err = cli(["icl", "import-lever-plus", RL_DATA, tmp_path / "rl", "--index", reversed_index], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and str(RL_DATA) in err and "question_id" in err
    assert not (tmp_path / "rl").exists()
    data = json.loads(RL_DATA.read_text())
    row = next(k for k in data if k != "_meta")
    data[row]["pointer_candidates"][0]["pointer"] = [3, 4500]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    code, err = cli(["icl", "import-lever-plus", bad, tmp_path / "rl2", "--index", index_run], capsys)
    assert code == 2 and "4500" in err and str(bad) in err and not (tmp_path / "rl2").exists()


def test_question_id_row_order_sorts_numerically() -> None:
    """Upstream's hub loader sorts by question id (`ds.sort("question_id")`): numerically, not as text."""
    from vlmlab.icl.lever_lm import SupportRows

    rows = SupportRows(["100", "9", "10"], "question_id")
    assert rows.ids == ["9", "10", "100"] and rows.qid(2, "f") == "100" and rows.row("9", "f") == 0
    assert SupportRows(["100", "9", "10"]).qid("0", "f") == "100"
