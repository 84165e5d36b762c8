"""SelectorData: each anchor's OWN pool, labels that point at the beam's ICDs, clear data errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vlmlab.errors import DataError
from vlmlab.icl.selectors import DataFingerprint, SelectorData


def test_two_queries_get_their_own_pools_and_labels_point_at_the_beam_icds(task, data):
    assert data.pool_ids(0) != data.pool_ids(1)
    assert data.pool_ids(0) == task.beams[0]["pool"]
    for row in (0, 1, 57):
        pool = data.pool_ids(row)
        for g, beam in enumerate(task.beams[row]["beams"]):
            labels = data.beam_positions[row, g].tolist()
            assert [pool[p] for p in labels] == beam["ids"]
        # the labels are not a function of the row number (upstream used index % K on a fixed pool)
    firsts = {tuple(data.beam_positions[r, 0].tolist()) for r in range(len(data))}
    assert len(firsts) > 20
    # pool embeddings are the index rows of the anchor's own pool
    emb = data.pool_embeddings(torch.tensor([3]))[0]
    rows = [task.support_ids.index(q) for q in task.beams[3]["pool"]]
    assert torch.equal(emb, torch.from_numpy(task.support_emb[rows]))


def test_query_embedding_is_the_anchor_row_of_the_index(task, data):
    row = task.support_ids.index(data.anchor_ids[5])
    assert torch.equal(data.query_emb[5], torch.from_numpy(task.support_emb[row]))


def test_rl_candidates_are_remapped_by_id_into_the_anchor_pool(task):
    beams = copy.deepcopy(task.beams[:2])
    rl = copy.deepcopy(task.rl[:2])
    rec = rl[0]
    rec["pool"] = list(reversed(rec["pool"]))  # same items, another order
    k = len(rec["pool"])
    for cand in rec["candidates"]:
        cand["positions"] = [k - 1 - p for p in cand["positions"]]
    rl[1]["candidates"][0]["status"] = "error"  # a scorer failure is left out, not rewarded 0
    data = SelectorData.from_records(beams, task.support_ids, task.support_emb, rl=rl)
    assert int(data.rl_mask[1].sum()) == len(rl[1]["candidates"]) - 1
    pool = data.pool_ids(0)
    for c, cand in enumerate(rec["candidates"]):
        assert [pool[p] for p in data.rl_positions[0, c].tolist()] == cand["ids"]
    assert data.rl_correct[0].tolist()[: len(rec["candidates"])] == [float(c["vqa_correct"]) for c in rec["candidates"]]


def _broken(task, edit):
    beams = copy.deepcopy(task.beams[:3])
    edit(beams)
    return beams


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: b[1]["beams"][0]["positions"].reverse(), r"line 2 \(anchor q00001, beam 0\): position .* but the ICD id is"),
        (lambda b: b[0]["pool"].append(b[0]["id"]), "anchor q00000 is in its own pool"),
        (lambda b: b[2]["pool"].__setitem__(0, "nope"), r"line 3 \(anchor q00002\): pool id nope is not in the index"),
        (lambda b: b[0]["beams"][0]["positions"].__setitem__(0, 99), "position 99 is outside the pool"),
        (lambda b: b[0]["beams"][1].pop("cumulative"), "missing key 'cumulative'"),
        (lambda b: b.append(copy.deepcopy(b[0])), "appears twice"),
    ],
)
def test_inconsistent_records_name_the_line_and_anchor(task, edit, message):
    with pytest.raises(DataError, match=message):
        SelectorData.from_records(_broken(task, edit), task.support_ids, task.support_emb)


def test_anchor_without_embedding_is_a_clear_error(task):
    beams = copy.deepcopy(task.beams[:1])
    beams[0]["id"] = "elsewhere"
    with pytest.raises(DataError, match="anchor elsewhere has no embedding"):
        SelectorData.from_records(beams, task.support_ids, task.support_emb)
    q = np.ones((1, task.support_emb.shape[1]), dtype=np.float32)
    data = SelectorData.from_records(beams, task.support_ids, task.support_emb, query_ids=["elsewhere"], query_emb=q)
    assert torch.equal(data.query_emb[0], torch.ones(task.support_emb.shape[1]))


def _write_run(tmp_path: Path, task, beams, rl=None) -> tuple[Path, Path, Path | None]:
    emb_dir = tmp_path / "index" / "embeddings"
    emb_dir.mkdir(parents=True)
    np.save(emb_dir / "text.npy", task.support_emb)
    np.save(emb_dir / "image.npy", task.support_emb[:, :4].copy())
    (emb_dir / "ids.json").write_text(json.dumps(task.support_ids))
    beams_path = tmp_path / "beams.jsonl"
    beams_path.write_text("".join(json.dumps(r) + "\n" for r in beams))
    rl_path = None
    if rl is not None:
        rl_path = tmp_path / "rl.jsonl"
        rl_path.write_text("".join(json.dumps(r) + "\n" for r in rl))
    return tmp_path / "index", beams_path, rl_path


def test_from_run_reads_the_stage_files(tmp_path, task):
    index, beams, rl = _write_run(tmp_path, task, task.beams[:10], task.rl[:10])
    data = SelectorData.from_run(index, beams, rl, dataset="toy", modality="text+image")
    assert data.embedding_dim == task.support_emb.shape[1] + 4
    assert len(data) == 10 and data.has_rl
    assert data.fingerprint == DataFingerprint.from_ids("toy", task.support_ids, data.embedding_dim, "text+image")


def test_from_run_errors_name_the_file(tmp_path, task):
    index, beams, _ = _write_run(tmp_path, task, task.beams[:3])
    with beams.open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DataError, match=r"beams.jsonl line 4 is not valid JSON"):
        SelectorData.from_run(index, beams)
    with pytest.raises(DataError, match=r"ids.json not found; run the icl index stage"):
        SelectorData.from_run(tmp_path / "nowhere", beams)


def test_left_beams_are_learned_in_selection_order(task):
    """A `left` beam puts each new ICD in front: the labels are the prompt order reversed (first pick
    = the ICD next to the query), for beams and rl candidates alike; `right` keeps prompt order."""
    beams = copy.deepcopy(task.beams[:3])
    rl = copy.deepcopy(task.rl[:3])
    right = SelectorData.from_records(beams, task.support_ids, task.support_emb, rl=rl)
    for rec in beams:
        rec["order"] = "left"
    left = SelectorData.from_records(beams, task.support_ids, task.support_emb, rl=rl)
    assert right.order == "right" and left.order == "left"
    assert torch.equal(left.beam_positions, right.beam_positions.flip(-1))
    assert torch.equal(left.rl_positions[left.rl_mask], right.rl_positions[right.rl_mask].flip(-1))
    pool = left.pool_ids(0)
    assert [pool[p] for p in left.beam_positions[0, 0].tolist()] == beams[0]["beams"][0]["ids"][::-1]
    beams[1]["order"] = "right"
    with pytest.raises(DataError, match="mixes beam orders"):
        SelectorData.from_records(beams, task.support_ids, task.support_emb)


def test_from_run_takes_the_order_from_the_beam_run_config(tmp_path, task):
    """Older beams.jsonl files have no `order` field: the beam run's config.yaml says it."""
    index, beams, _ = _write_run(tmp_path, task, task.beams[:4])
    (beams.parent / "config.yaml").write_text("order: left\nbeam_size: 3\n")
    data = SelectorData.from_run(index, beams)
    assert data.order == "left"
    pool = data.pool_ids(0)
    assert [pool[p] for p in data.beam_positions[0, 0].tolist()] == task.beams[0]["beams"][0]["ids"][::-1]


def test_icd_answers_embed_pools_as_demonstrations_and_queries_as_questions(tmp_path, task):
    """With `icd_answers`, pool items are `demo_text` (question + answer) + image rows while the
    anchor, like a test query, is its question's `text` + image row; the fingerprint records it."""
    index, beams, _ = _write_run(tmp_path, task, task.beams[:5])
    emb_dir = index / "embeddings"
    text = np.load(emb_dir / "text.npy")
    image = np.load(emb_dir / "image.npy")
    demo = np.random.default_rng(0).standard_normal(text.shape).astype(np.float32)
    with pytest.raises(DataError, match=r"demo_text.npy not found.*rebuild the index"):
        SelectorData.from_run(index, beams, modality="text+image", icd_answers=True)
    np.save(emb_dir / "demo_text.npy", demo)
    data = SelectorData.from_run(index, beams, dataset="toy", modality="text+image", icd_answers=True)
    row = task.support_ids.index(data.anchor_ids[2])
    assert torch.equal(data.query_emb[2], torch.from_numpy(np.concatenate([text[row], image[row]])))
    pool_rows = [task.support_ids.index(q) for q in data.pool_ids(2)]
    expected = np.concatenate([demo[pool_rows], image[pool_rows]], axis=1)
    assert torch.equal(data.pool_embeddings(torch.tensor([2]))[0], torch.from_numpy(expected))
    assert data.fingerprint.icd_answers
    plain = SelectorData.from_run(index, beams, dataset="toy", modality="text+image")
    assert plain.fingerprint.mismatches(data.fingerprint) == ["icd_answers: False != True"]
