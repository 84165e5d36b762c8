"""Caption metrics against pycocoevalcap itself: messy generated text and real QuIC-360 captions."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from caption_reference import pycoco_scores, read_quic_excerpt

from vlmlab.cli import main
from vlmlab.errors import ConfigError, DataError, RunError
from vlmlab.metrics.caption import parse_metrics, score_captions
from vlmlab.metrics.meteor import meteor
from vlmlab.metrics.ptb import ptb_tokenize

NGRAM_KEYS = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"]


def _assert_close(ours, ref, keys, tol):
    ids = ref["_ids"]
    assert ours.item_ids == [str(i) for i in ids]
    for key in keys:
        corpus, items = ref[key]
        assert ours.scores[key] == pytest.approx(corpus, abs=tol), key
        np.testing.assert_allclose(ours.per_item[key], np.asarray(items, dtype=float), atol=tol, rtol=0, err_msg=key)


@pytest.mark.slow  # pycocoevalcap itself needs ~10-25 s on these 3,000 items
def test_bleu_rouge_cider_equal_pycocoevalcap_on_3000_messy_items(messy_3000):
    preds, refs, ref = messy_3000
    ours = score_captions(preds, refs, metrics=["BLEU", "ROUGE-L", "CIDEr"])
    assert ours.n == 3000 and ours.mode == "grouped"
    _assert_close(ours, ref, NGRAM_KEYS, 1e-9)
    # the generator makes empty and punctuation-only predictions; they are counted, not dropped
    assert ours.stats["empty_predictions"] == sum(1 for p in preds.values() if not p.strip()) > 0


@pytest.mark.slow
def test_meteor_equals_pycocoevalcap_on_3000_messy_items_through_the_cli(messy_3000, tmp_path, capsys):
    """One METEOR JVM each (they cost ~10 s of start-up apiece), so this also checks the CLI contract
    with the default metrics."""
    preds, refs, _ = messy_3000
    ref = pycoco_scores(preds, refs, meteor=True)
    pred_file, ref_file = tmp_path / "pred.jsonl", tmp_path / "refs.jsonl"
    pred_file.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in preds.items()))
    ref_file.write_text("".join(json.dumps({"id": k, "references": v}) + "\n" for k, v in refs.items()))
    with pytest.raises(SystemExit) as info:
        main(["score", "caption", str(pred_file), str(ref_file), "--per-item"])
    assert (info.value.code or 0) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "grouped" and out["n"] == 3000
    assert "SPICE" in out and (out["SPICE"] is not None or out["SPICE_reason"])
    for key, tol in [("METEOR", 1e-6), ("BLEU-4", 1e-9), ("ROUGE-L", 1e-9), ("CIDEr", 1e-9)]:
        corpus, items = ref[key]
        assert out[key] == pytest.approx(corpus, abs=tol), key
        ours_items = np.array([out["per_item"][str(i)][key] for i in ref["_ids"]])
        np.testing.assert_allclose(ours_items, np.asarray(items, dtype=float), atol=tol, rtol=0, err_msg=key)


@pytest.mark.parametrize("mode", ["grouped", "per-row"])
def test_quic360_excerpt_matches_pycocoevalcap(mode):
    rows, grouped = read_quic_excerpt()
    pairs = list(grouped)
    # a prediction per pair: a reference of the next pair (realistic text, imperfect match)
    preds = {p: grouped[pairs[(i + 1) % len(pairs)]][i % 5] for i, p in enumerate(pairs)}
    if mode == "grouped":
        ref_preds, ref_refs = preds, grouped
    else:
        ref_preds, ref_refs = {}, {}
        for p in pairs:
            for k, r in enumerate(grouped[p]):
                ref_preds[f"{p}#{k}"] = preds[p]
                ref_refs[f"{p}#{k}"] = [r]
    ref = pycoco_scores(ref_preds, ref_refs)
    ours = score_captions(preds, grouped, mode=mode, metrics=["BLEU", "ROUGE-L", "CIDEr"])
    assert ours.mode == mode and ours.n == (len(pairs) if mode == "grouped" else len(rows))
    _assert_close(ours, ref, NGRAM_KEYS, 1e-9)
    assert ours.stats["mean_reference_tokens"] > ours.stats["mean_prediction_tokens"] * 0.5
    assert ours.stats["token_ratio"] == pytest.approx(
        ours.stats["mean_prediction_tokens"] / ours.stats["mean_reference_tokens"]
    )


def test_empty_predictions_are_scored_and_counted():
    preds = {"a": "", "b": "a dog runs on the grass", "c": "   ", "d": "..."}
    refs = {k: ["a dog runs on the grass .", "the dog is running"] for k in preds}
    ours = score_captions(preds, refs, metrics=["BLEU", "ROUGE-L", "CIDEr"])
    ref = pycoco_scores(preds, refs)
    _assert_close(ours, ref, NGRAM_KEYS, 1e-9)
    assert ours.stats["empty_predictions"] == 2 and ours.stats["empty_prediction_rate"] == 0.5
    assert ours.per_item["BLEU-1"][0] < 1e-9 and ours.per_item["BLEU-1"][1] > 0.9


def test_spice_is_null_with_a_reason_when_corenlp_jars_are_missing():
    from vlmlab.metrics.spice import spice_unavailable_reason

    reason = spice_unavailable_reason()
    if reason is None:
        pytest.skip("Stanford CoreNLP jars are installed; SPICE runs for real here")
    out = score_captions({"a": "a cat"}, {"a": ["a cat sits"]}, metrics=["SPICE", "BLEU"]).to_dict()
    assert out["SPICE"] is None and "stanford-corenlp-3.6.0" in out["SPICE_reason"]
    assert out["BLEU-1"] > 0


def test_missing_ids_are_an_error_listing_them_unless_allowed():
    preds = {"a": "x", "b": "y", "z1": "q"}
    refs = {"a": ["x"], "b": ["y"], "c": ["w"]}
    with pytest.raises(DataError) as info:
        score_captions(preds, refs, metrics=["BLEU"])
    assert "'z1'" in str(info.value) and "'c'" in str(info.value) and "--allow-missing" in str(info.value)
    out = score_captions(preds, refs, metrics=["BLEU"], allow_missing=True)
    assert out.item_ids == ["a", "b"]
    assert out.missing == {"predictions_without_references": ["z1"], "references_without_prediction": ["c"]}


def test_metric_names_are_checked_with_a_suggestion():
    assert parse_metrics(["bleu,cider", "rouge-l"]) == ["BLEU", "CIDEr", "ROUGE-L"]
    with pytest.raises(ConfigError, match="did you mean 'CIDEr'"):
        parse_metrics(["cidr"])
    with pytest.raises(ConfigError, match="per-row"):
        score_captions({"a": "x"}, {"a": ["x"]}, mode="rows")


def test_ptb_tokenizer_keeps_one_line_per_caption():
    texts = ['A man,  riding a "horse"!', "", "x\ry\u2028z", "Café naïve 3.5 dogs... it's", "", ""]
    out = ptb_tokenize(texts)
    assert out == ["a man riding a horse", "", "x y z", "café naïve 3.5 dogs it 's", "", ""]


def test_meteor_watchdog_turns_a_hung_jvm_into_an_error():
    from vlmlab.metrics.meteor import _SHARED

    _SHARED.close()  # a cold JVM cannot answer within 0.05 s (it starts in ~0.4 s on a cut table): the watchdog must fire
    start = time.monotonic()
    with pytest.raises(RunError, match="did not finish"):
        meteor(["a dog"] * 50, [["a dog runs"]] * 50, timeout=0.05)
    assert time.monotonic() - start < 20


def test_tokenised_words_fall_back_to_str_split_when_not_plain():
    from vlmlab.metrics.ptb import Tokenised

    odd = Tokenised([["a\u00a0b", "c"], ["", "d"]], plain=False)
    assert odd.strings() == ["a\u00a0b c", " d"]
    assert odd.words() == [["a", "b", "c"], ["d"]]
    plain = Tokenised([["a", "b"], []], plain=True)
    assert plain.words() == [["a", "b"], []] and plain.strings() == ["a b", ""]
