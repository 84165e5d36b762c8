"""The paraphrase-table cut changes no METEOR statistic: the jar's own normaliser and the jar itself decide.

Small tables built here from the test texts keep these tests fast; the slow tests in
test_caption.py / test_caption_speedups.py check the real 5.3M-entry table against pycocoevalcap.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest
from caption_reference import messy_dataset

from vlmlab.errors import RunError
from vlmlab.metrics import meteor_index, meteor_table
from vlmlab.metrics.java import pycocoevalcap_dir, run_java
from vlmlab.metrics.meteor import _score_line, _sent_hypothesis

EDGE_CASES = [
    "the U.S.-based well-known café “quoted” it’s 3.5 dogs... x–y a--b ``hi'' a\u00a0b Mr. Smith e.g. 1,000 dog,cat",
    "a dog - friendly park ; the u.s. army , e-mail me at a.b.c. -- now... ok ' quoted ' don't can't 1990's",
    "A\u2009thin\u3000space and a\u200bzero-width one , \u212aelvin K , “ double ” ‘ single ’ –dash– ---",
    "well known U.S. based dogs are ... and so on . it 's the start of the x-ray",
]


def _texts(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Hypotheses and reference lists: messy generated captions and the edge cases, one line each."""
    preds, refs = messy_dataset(n, seed=seed)
    one_line = lambda t: " ".join(t.replace("\r", " ").replace("\n", " ").split(" "))  # noqa: E731
    hyps = [one_line(preds[k]) for k in preds] + EDGE_CASES
    ref_lists = [[one_line(r) for r in refs[k]] for k in preds] + [EDGE_CASES[::-1], EDGE_CASES[1:], EDGE_CASES[:2], EDGE_CASES]
    return hyps, ref_lists


def _jar(args: list[str], lines: list[str]) -> list[str]:
    out = run_java(
        ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", str(pycocoevalcap_dir() / "meteor" / "meteor-1.5.jar"), *args],
        input_bytes="".join(line + "\n" for line in lines).encode("utf-8"), timeout=300, what="METEOR (java)",
        cwd=pycocoevalcap_dir() / "meteor",
    )
    return out.decode("utf-8").splitlines()


def _normalised(texts: list[str]) -> list[list[str]]:
    """The jar's own `-norm` normalisation (its Normalizer, punctuation kept), lower-cased as its scorer does."""
    return [line.lower().split() for line in _jar(["edu.cmu.meteor.util.Normalizer", "en", "true"], texts)]


def _fake_index(words: list[str]) -> meteor_index.ParaphraseIndex:
    empty = np.zeros(0, np.int64)
    always = np.array([not w.isascii() for w in words])
    return meteor_index.ParaphraseIndex(
        words=words, word_id={w: i for i, w in enumerate(words)}, always=always,
        longest=max(len(w) for w in words), flat=empty, start=np.zeros(1, np.int64), phrase_len=empty,
        keys=empty, group=np.zeros(1, np.int64), order=empty,
    )


def test_possible_words_and_pairs_cover_what_the_jars_normaliser_makes():
    hyps, ref_lists = _texts(300, seed=5)
    texts = hyps + [r for refs in ref_lists for r in refs]
    normalised = _normalised(texts)
    vocab = sorted({w for line in normalised for w in line if w.isascii()})
    index = _fake_index(vocab + ["zzz-not-in-any-text"])
    n = index.n_words
    words, pairs = meteor_table.text_words(index, texts)
    needed_words = {index.word_id[w] for line in normalised for w in line if w.isascii()}
    needed_pairs = {
        n * (1 + index.word_id[a]) + index.word_id[b] for line in normalised for a, b in zip(line, line[1:]) if a.isascii() and b.isascii()
    }
    assert needed_words <= set(words.tolist())
    assert needed_pairs <= set(pairs.tolist())
    # the cases the superset exists for are really in the data
    assert {"us", "well", "known", '"', "'s", "..."} <= set(vocab)
    assert n * (1 + index.word_id["well"]) + index.word_id["known"] in needed_pairs  # "well-known": the dash became a space
    assert index.word_id["zzz-not-in-any-text"] not in set(words.tolist())


def _write_table(path: Path, entries: list[tuple[str, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(f"0.5\n{a}\n{b}\n" for a, b in entries))


def _table_for(hyps: list[str], ref_lists: list[list[str]], seed: int) -> list[tuple[str, str]]:
    """Entries that match (n-grams of a hypothesis and of its references, both ways), n-grams of one item's
    hypothesis with another item's reference, entries whose words occur but never side by side, and
    entries of words that occur nowhere, shuffled."""
    rng = random.Random(seed)
    norm_h = _normalised([_sent_hypothesis(h) for h in hyps])
    norm_r = _normalised([r for refs in ref_lists for r in refs])
    grams = lambda line: [" ".join(line[i : i + k]) for k in (1, 2, 3) for i in range(len(line) - k + 1)]  # noqa: E731
    entries, pos = [], 0
    for h, refs in zip(norm_h, ref_lists):
        for r in norm_r[pos : pos + len(refs)]:
            if h and r:
                a, b = rng.choice(grams(h)), rng.choice(grams(r))
                entries += [(a, b), (b, a)]
        pos += len(refs)
    filled = [h for h in norm_h if h]
    entries += [(rng.choice(grams(rng.choice(filled))), rng.choice(grams(r))) for r in norm_r if r]  # mostly other items'
    all_words = sorted({w for line in norm_h + norm_r for w in line})
    entries += [(" ".join(rng.sample(all_words, 2)), " ".join(rng.sample(all_words, 3))) for _ in range(300)]
    # an empty phrase sits at the trie root, which the jar never reports (an empty paraphrase hangs the jar)
    entries += [(f"nowhere{i}", rng.choice(all_words)) for i in range(100)] + [("", "empty phrase")]
    rng.shuffle(entries)
    return entries


def test_the_jar_scores_the_same_with_the_cut_table_as_with_the_whole_table(tmp_path):
    hyps, ref_lists = _texts(200, seed=9)
    table = tmp_path / "paraphrase-test.gz"
    _write_table(table, _table_for(hyps, ref_lists, seed=1))
    index = meteor_index.paraphrase_index(table, cache=tmp_path / "cache")
    kept = meteor_table.kept_entries(index, [_sent_hypothesis(h) for h in hyps], ref_lists)
    cut = tmp_path / "cut.gz"
    meteor_table.write_table(index, kept, cut)
    empty = tmp_path / "empty.gz"
    _write_table(empty, [])
    lines = [_score_line(h, refs) for h, refs in zip(hyps, ref_lists)]
    score = lambda t: _jar(["Meteor", "-", "-", "-stdio", "-l", "en", "-norm", "-a", str(t)], lines)  # noqa: E731
    whole = score(table)
    assert len(whole) == len(lines)
    assert score(cut) == whole
    corpus_wide = meteor_table._corpus_fit(index, *(set().union(*(meteor_table._text_keys(index, t).values())) for t in (
        [_sent_hypothesis(h) for h in hyps], [r for refs in ref_lists for r in refs])))
    assert 0 < kept.size < corpus_wide.size - 100  # the cut dropped entries of words from different items
    assert corpus_wide.size < len(index.phrase_len) - 300  # and, corpus-wide, those never side by side
    assert score(empty) != whole  # and the entries it kept do matter


def test_index_is_the_same_whatever_the_block_size(tmp_path, monkeypatch):
    table = tmp_path / "paraphrase-blocks.gz"
    rng = random.Random(3)
    words = ["a", "dog", "runs", "the", "café", "x-ray", "u.s.", "'s"]
    _write_table(table, [(" ".join(rng.choices(words, k=rng.randint(0, 3))), " ".join(rng.choices(words, k=rng.randint(0, 3))))
                         for _ in range(400)])
    one = meteor_index.paraphrase_index(table, cache=tmp_path / "one")
    monkeypatch.setattr(meteor_index, "_BATCH_BYTES", 50)  # many blocks, most ending inside a triple
    many = meteor_index.paraphrase_index(table, cache=tmp_path / "many")
    assert one.words == many.words
    for name in ("flat", "phrase_len", "keys", "group", "order"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name), err_msg=name)
    # every entry with a phrase is filed exactly once, under a key made of its own words
    assert sorted(np.asarray(one.order).tolist()) == [i for i, k in enumerate(one.phrase_len) if k > 0]


def test_a_broken_table_is_an_error_naming_it(tmp_path):
    table = tmp_path / "paraphrase-broken.gz"
    with gzip.open(table, "wt", encoding="utf-8") as f:
        f.write("0.5\na dog\n")  # a triple without its paraphrase line
    with pytest.raises(RunError, match="paraphrase-broken.gz"):
        meteor_index.paraphrase_index(table, cache=tmp_path / "cache")


def test_an_unwritable_cache_is_an_error_saying_what_to_do(tmp_path):
    table = tmp_path / "paraphrase-small.gz"
    _write_table(table, [("a dog", "a hound")])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    with pytest.raises(RunError, match="VLMLAB_HOME"):
        meteor_index.paraphrase_index(table, cache=blocker / "meteor")



def test_empty_hypotheses_keep_what_the_jar_needs(tmp_path):
    """Every hypothesis empty (a model that answered nothing): the cut used to index an empty side
    (IndexError in `caption run`); with one empty hypothesis side the jar still scores the same on
    the cut table as on the whole one."""
    hyps, ref_lists = _texts(40, seed=5)
    table = tmp_path / "paraphrase-test.gz"
    _write_table(table, _table_for(hyps, ref_lists, seed=2))
    index = meteor_index.paraphrase_index(table, cache=tmp_path / "cache")
    empty_hyps = [""] * len(ref_lists)
    kept = meteor_table.kept_entries(index, [_sent_hypothesis(h) for h in empty_hyps], ref_lists)
    cut = tmp_path / "cut.gz"
    meteor_table.write_table(index, kept, cut)
    lines = [_score_line(h, refs) for h, refs in zip(empty_hyps, ref_lists)]
    score = lambda t: _jar(["Meteor", "-", "-", "-stdio", "-l", "en", "-norm", "-a", str(t)], lines)  # noqa: E731
    assert score(cut) == score(table)
