"""The speed-ups of caption scoring change nothing: METEOR on a cut paraphrase table, on reused and
split JVMs, equals the jar as pycocoevalcap runs it; the per-process tokenisation cache equals a
fresh tokenisation."""

from __future__ import annotations

import numpy as np
import pytest
from caption_reference import messy_dataset, read_quic_excerpt

from vlmlab.errors import RunError
from vlmlab.metrics import meteor as meteor_mod
from vlmlab.metrics import ptb
from vlmlab.metrics.caption import score_captions


def _fresh_tokens(texts):
    saved = dict(ptb._CACHE)
    ptb._CACHE.clear()
    try:
        return ptb.ptb_tokens(texts)
    finally:
        ptb._CACHE.clear()
        ptb._CACHE.update(saved)


def test_cached_tokenisation_equals_one_fresh_call():
    preds, refs = messy_dataset(150, seed=3)
    texts = list(preds.values()) + [r for rs in refs.values() for r in rs]
    odd = ["a\u00a0b  c", "", "   ", "x\ty", "A man,  riding a \"horse\"!", "", "plain words ."]
    ptb._CACHE.clear()
    fresh_all = _fresh_tokens(texts + odd)
    fresh_plain = _fresh_tokens(texts[:40])
    # warm the cache in pieces, in another order, with repeats; then every mix must equal a fresh call
    ptb.ptb_tokens(texts[100:] + texts[:10])
    ptb.ptb_tokens(odd + texts[5:60] + texts[5:60])
    before = len(ptb._CACHE)
    mixed = ptb.ptb_tokens(texts + odd)
    assert (mixed.pieces, mixed.plain) == (fresh_all.pieces, fresh_all.plain)
    plain = ptb.ptb_tokens(texts[:40])
    assert (plain.pieces, plain.plain) == (fresh_plain.pieces, fresh_plain.plain)
    assert len(ptb._CACHE) == len(set(texts + odd)) >= before
    assert mixed.words() == fresh_all.words() and mixed.strings() == fresh_all.strings()


def test_a_second_meteor_jvm_only_for_enough_work_and_a_free_core(monkeypatch):
    monkeypatch.setattr(meteor_mod.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(meteor_mod.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert meteor_mod.default_jobs(25_000) == 2
    assert meteor_mod.default_jobs(500) == 1  # a second start-up would cost more than it saves
    monkeypatch.setattr(meteor_mod.os, "getloadavg", lambda: (1.6, 0.5, 0.5))
    assert meteor_mod.default_jobs(25_000) == 1  # no free core: it would only add start-up and warm-up
    monkeypatch.setattr(meteor_mod.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(meteor_mod.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert meteor_mod.default_jobs(25_000) == 1


def _pycoco_meteor(items: list[tuple[dict, dict]]):
    """pycocoevalcap's own PTBTokenizer + Meteor (one Meteor object, one compute_score per set)."""
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    scorer, out = Meteor(), []
    for preds, refs in items:
        tok = PTBTokenizer()
        gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
        res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
        score, per_item = scorer.compute_score(gts, res)
        out.append((float(score), np.asarray(per_item, dtype=float), list(gts)))
    del scorer
    return out


@pytest.mark.slow  # pycocoevalcap's METEOR start-up (~10 s on a quiet machine)
def test_meteor_on_cut_tables_and_split_jvms_equals_the_jar_as_pycocoevalcap_runs_it():
    rows, grouped = read_quic_excerpt()
    pairs = list(grouped)
    quic_preds = {p: grouped[pairs[(i + 1) % len(pairs)]][i % 5] for i, p in enumerate(pairs)}
    per_row_preds = {f"{p}#{k}": quic_preds[p] for p in pairs for k in range(len(grouped[p]))}
    per_row_refs = {f"{p}#{k}": [r] for p in pairs for k, r in enumerate(grouped[p])}
    messy_preds, messy_refs = messy_dataset(300, seed=11)
    expected = _pycoco_meteor([(quic_preds, grouped), (per_row_preds, per_row_refs), (messy_preds, messy_refs)])

    # a JVM killed by the watchdog is replaced on the next call, never reused half-read
    meteor_mod._SHARED.close()
    with pytest.raises(RunError, match="did not finish"):
        meteor_mod.meteor(["a dog"] * 5, [["a dog runs"]] * 5, timeout=0.05)
    grouped_scores = score_captions(quic_preds, grouped, mode="grouped", metrics=["METEOR", "BLEU"])
    pids = meteor_mod._SHARED.pids()
    per_row_scores = score_captions(quic_preds, grouped, mode="per-row", metrics=["METEOR"])
    assert meteor_mod._SHARED.pids() == pids  # the same texts: the JVM and its table serve both modes
    results = [
        grouped_scores,
        per_row_scores,
        score_captions(messy_preds, messy_refs, metrics=["METEOR", "CIDEr", "ROUGE-L"], meteor_jobs=1),
        score_captions(messy_preds, messy_refs, metrics=["METEOR"], meteor_jobs=2),
    ]
    assert len(meteor_mod._SHARED.pids()) == 2
    for ours, (score, per_item, ids) in zip(results, expected + expected[-1:]):
        assert ours.n == len(ids)
        assert abs(ours.scores["METEOR"] - score) <= 1e-6
        np.testing.assert_allclose(ours.per_item["METEOR"], per_item, atol=1e-6, rtol=0)
    # two JVMs and one EVAL over their statistics give exactly the one-JVM result
    assert results[3].scores["METEOR"] == results[2].scores["METEOR"]
    np.testing.assert_array_equal(results[3].per_item["METEOR"], results[2].per_item["METEOR"])
