"""METEOR's paraphrase table cut down to what one run can use, so that its JVM starts in ~0.5 s instead of ~10 s.

Why: METEOR 1.5 spends almost all of its start-up turning the 5.3M entries of `paraphrase-en.gz`
into a trie (with `-m 'exact stem synonym'` it starts in 0.4 s). A run's captions can use only a
few thousand of those entries.

Why the cut changes no score (read from the jar's `ParaphraseMatcher` and `ParaphraseTransducer`):
an entry (phrase R, paraphrase P) yields a match only where R is a run of consecutive words of one
sentence of a (hypothesis, reference) pair and P a run of the other. Entries that never match add
nothing (a word missing from the trie maps to -1, which equals no entry word), and the kept
entries stay in the table's order, so the matches and their order are the same. We keep an entry
when R fits the reference side and P the hypothesis side, or the other way round, where a side
"fits" a phrase when each of its words is a possible word of that side and each pair of
neighbouring words a possible neighbour pair. The possible words are a superset of what the jar's
`-norm` normaliser (Moses-like) can make of the texts, because it only:

- splits tokens (tokens are separated by " \\t\\n\\r\\f", java.util.StringTokenizer's delimiters),
- maps ` ‘ ’ to ', “ ” to ", – to -, and merges '' into " and -- into -,
- deletes dots inside a word (U.S. -> US), and the scorer then lower-cases (a non-ASCII character
  can become ASCII: the Kelvin sign, split off as a word of its own, becomes "k"),
- turns some characters into spaces: "-" between letters, non-ASCII spaces.

So a possible word is any run of a token's segments (a segment: a run of ASCII letters/digits or
one other character), also with those merges and deletions; neighbours are two runs with only
spaces, "-" or non-ASCII characters between them. Table words with a non-ASCII character count as
present everywhere, so that Java's and Python's unicode rules never matter.

The fit is checked item by item: an entry stays if its phrase fits one side of some item (its
hypothesis, or the union of its references) and its paraphrase the other side of the same item
(QuIC-360's test split: 3,653 of 5.3M entries; fitting the whole corpus' words would keep 85k).
Candidates come from the index (`meteor_index`), a cut takes ~0.1-0.9 s. The jar ignores each
entry's first line (a probability it never parses), so the cut writes "1" there.
"""


from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from itertools import chain, product
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vlmlab.metrics.meteor_index import ParaphraseIndex

_JAVA_TOKEN = re.compile(r"[^ \t\n\r\f]+")  # java.util.StringTokenizer's delimiters
_SEGMENT = re.compile(r"[0-9A-Za-z]+|.", re.S)
_SIMPLE = re.compile(r"[0-9a-z]+(?: [0-9a-z]+)*")  # normalised as it is: no segment to split or map
_PER_CHAR = str.maketrans({"`": "'", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"})
_MERGES = (("''", '"'), ("--", "-"), (".", ""))  # in the normaliser's order


def text_words(index: ParaphraseIndex, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the table words these texts can hold, and keys of their possible neighbour pairs (see the module doc)."""
    keys = set().union(*_text_keys(index, list(texts)).values())
    found = np.fromiter(keys, np.int64, len(keys))
    return found[found < index.n_words], np.sort(found[found >= index.n_words])


def _text_keys(index: ParaphraseIndex, texts: Sequence[str]) -> dict[str, set[int]]:
    """Per distinct text, its possible table words (ids < n) and neighbour pairs (n * (1 + a) + b)."""
    word_id, n = index.word_id, index.n_words
    tokens: dict[str, _Token] = {}
    out: dict[str, set[int]] = {}
    for text in dict.fromkeys(texts):
        if _SIMPLE.fullmatch(text):  # normalised as it is (the usual case after PTB tokenisation)
            ids = list(map(word_id.get, text.split(" ")))
            keys = {n * (1 + a) + b for a, b in zip(ids, ids[1:]) if a is not None and b is not None}
            keys.update(ids)
            keys.discard(None)  # type: ignore[arg-type]
            out[text] = keys
            continue
        keys = set()
        infos = []
        for token in _JAVA_TOKEN.findall(text):
            info = tokens.get(token)
            if info is None:
                info = tokens[token] = _token(token, word_id, n, index.longest)
            infos.append(info)
            keys |= info.words
            keys |= info.pairs
        for i, left in enumerate(infos):
            for right in infos[i + 1 :]:
                keys.update(n * (1 + x) + y for x, y in product(left.last, right.first))
                if not right.vanish:
                    break
        out[text] = keys
    return out


@dataclass(frozen=True)
class _Token:
    """What one whitespace token can become: its words, those that can open or close it, its inner pairs."""

    words: frozenset[int]
    first: frozenset[int]
    last: frozenset[int]
    pairs: frozenset[int]
    vanish: bool  # every segment may turn into a space


def _token(token: str, word_id: dict[str, int], n: int, longest: int) -> _Token:
    words: set[int] = set()
    first: set[int] = set()
    last: set[int] = set()
    pairs: set[int] = set()
    # the normaliser splits before the scorer lower-cases, so segments are found first and lower-cased
    # one by one (the Kelvin sign is its own segment, then "k")
    original = _SEGMENT.findall(token.translate(_PER_CHAR))
    gap = [s == "-" or not s.isascii() for s in original]
    vanish = all(gap)
    segments = [s.lower() for s in original]
    ending: list[set[int]] = [set() for _ in segments]  # ids of the runs ending at each segment
    starting: list[set[int]] = [set() for _ in segments]
    for a in range(len(segments)):
        run = ""
        for b in range(a, len(segments)):
            run += segments[b]
            if len(run) - run.count(".") - run.count("'") // 2 - run.count("-") // 2 > longest:
                break  # every form of a longer run is longer than any table word
            for form in _forms(run):
                i = word_id.get(form)
                if i is not None:
                    ending[b].add(i)
                    starting[a].add(i)
    for b, ids in enumerate(ending):
        words |= ids
        for c in range(b + 1, len(segments)):
            pairs.update(n * (1 + x) + y for x, y in product(ids, starting[c]))
            if not gap[c]:
                break
    for c in range(len(segments)):  # a token opens with a run after segments that may vanish
        first |= starting[c]
        if not gap[c]:
            break
    for b in reversed(range(len(segments))):
        last |= ending[b]
        if not gap[b]:
            break
    return _Token(frozenset(words), frozenset(first), frozenset(last), frozenset(pairs), vanish)


def _forms(run: str) -> set[str]:
    forms = {run}
    for old, new in _MERGES:
        forms |= {f.replace(old, new) for f in forms if old in f}
    return forms


def kept_entries(index: ParaphraseIndex, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Numbers (ascending: the table's order) of the entries that can match within some item.

    Args:
        index: the table's index.
        hypotheses: one hypothesis per item, as sent to the jar.
        references: the references of each item.
    """
    keys_of = _text_keys(index, list(hypotheses) + [r for refs in references for r in refs])
    hyp_items = [keys_of[h] for h in hypotheses]
    ref_items = [set().union(*(keys_of[r] for r in refs)) for refs in references]
    entries = _corpus_fit(index, set().union(*hyp_items), set().union(*ref_items))
    return _item_fit(index, entries, hyp_items, ref_items)


def _split_keys(index: ParaphraseIndex, keys: set[int]) -> tuple[np.ndarray, np.ndarray]:
    found = np.fromiter(keys, np.int64, len(keys))
    return found[found < index.n_words], np.sort(found[found >= index.n_words])


def _corpus_fit(index: ParaphraseIndex, hyp_keys: set[int], ref_keys: set[int]) -> np.ndarray:
    """Entries whose phrase fits one side of the whole corpus and whose paraphrase fits the other."""
    hyp_words, hyp_pairs = _split_keys(index, hyp_keys)
    ref_words, ref_pairs = _split_keys(index, ref_keys)
    query = np.unique(np.concatenate([[-1], hyp_words, ref_words, hyp_pairs, ref_pairs]))
    found = np.flatnonzero(_member(index.keys, query))
    entries = np.sort(np.asarray(index.order[_ranges(index.group[found], index.group[found + 1])], dtype=np.int64))
    in_hyp, in_ref = index.always.copy(), index.always.copy()
    in_hyp[hyp_words], in_ref[ref_words] = True, True
    for use_pairs in (False, True):  # words first (a cheap mask), then neighbour pairs of the survivors
        if entries.size == 0:
            return entries
        e = _EntryWords(index, entries)
        ok_hyp, ok_ref = in_hyp[e.words], in_ref[e.words]
        if use_pairs:  # a position is fine when its word is, and so is the pair it starts within its part
            ok_hyp[e.inner] &= _member(e.pair_keys, hyp_pairs)
            ok_ref[e.inner] &= _member(e.pair_keys, ref_pairs)

        def fits(ok: np.ndarray, part: np.ndarray) -> np.ndarray:
            return np.bincount(e.entry_of, weights=part & ~ok, minlength=entries.size) == 0

        phrase = e.in_phrase
        keep = (fits(ok_ref, phrase) & fits(ok_hyp, ~phrase)) | (fits(ok_hyp, phrase) & fits(ok_ref, ~phrase))
        entries = entries[keep]
    return entries


class _EntryWords:
    """The words of some entries, position by position, and the ASCII pairs inside each part."""

    def __init__(self, index: ParaphraseIndex, entries: np.ndarray) -> None:
        lo, hi = index.start[entries], index.start[entries + 1]
        lengths = hi - lo
        self.words = np.asarray(index.flat[_ranges(lo, hi)], dtype=np.int64)
        self.entry_of = np.repeat(np.arange(entries.size), lengths)
        self.in_phrase = _positions(lengths) < np.repeat(index.phrase_len[entries], lengths)
        nxt = np.append(self.words[1:], 0)
        inner = np.append((self.entry_of[1:] == self.entry_of[:-1]) & (self.in_phrase[1:] == self.in_phrase[:-1]), False)
        self.inner = inner & ~index.always[self.words] & ~index.always[nxt]
        self.pair_keys = index.n_words * (1 + self.words[self.inner]) + nxt[self.inner]


class _Side:
    """The keys of each item on one side (hypotheses, or the union of each item's references)."""

    def __init__(self, items: list[set[int]], span: int) -> None:
        item = np.repeat(np.arange(len(items), dtype=np.int64), [len(k) for k in items])
        key = np.fromiter(chain.from_iterable(items), np.int64, item.size)
        self.span = span
        self.pairs = np.sort(item * span + key)  # (item, key) as one number
        order = np.argsort(key, kind="stable")
        self.key, self.item = key[order], item[order]  # key -> items

    def has(self, item: np.ndarray, key: np.ndarray) -> np.ndarray:
        return _member(item * self.span + key, self.pairs)

    def items_of(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.searchsorted(self.key, key), np.searchsorted(self.key, key, side="right")


def _holds(phrase_side: _Side, para_side: _Side, on_phrase: np.ndarray, item: np.ndarray, key: np.ndarray) -> np.ndarray:
    out = np.empty(key.size, bool)
    out[on_phrase] = phrase_side.has(item[on_phrase], key[on_phrase])
    out[~on_phrase] = para_side.has(item[~on_phrase], key[~on_phrase])
    return out


def _clipped_take(items: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`items[at]` with `at` clipped into range (the rows np.where discards may point past the end);
    a side no item holds (every hypothesis empty) gives -1s, which no kept row reads."""
    return items[np.minimum(at, items.size - 1)] if items.size else np.full(at.shape, -1, dtype=np.int64)


def _item_fit(index: ParaphraseIndex, entries: np.ndarray, hyp_items: list[set[int]], ref_items: list[set[int]]) -> np.ndarray:
    """Of these entries, those whose phrase fits one sentence side of some item and paraphrase the other.

    Every entry's keys are its ASCII words and pairs. Per orientation, its key held by the fewest
    items gives the candidate items; an entry stays if one candidate holds all of its keys, on the
    right sides. An entry with no ASCII key at all stays.
    """
    if entries.size == 0:
        return entries
    n = index.n_words
    span = n * (n + 1)
    hyp, ref = _Side(hyp_items, span), _Side(ref_items, span)
    e = _EntryWords(index, entries)
    ascii_word = ~index.always[e.words]
    row_entry = np.concatenate([e.entry_of[ascii_word], e.entry_of[e.inner]])
    order = np.argsort(row_entry, kind="stable")
    row_entry = row_entry[order]
    row_key = np.concatenate([e.words[ascii_word], e.pair_keys])[order]
    row_phrase = np.concatenate([e.in_phrase[ascii_word], e.in_phrase[e.inner]])[order]
    per_entry = np.bincount(row_entry, minlength=entries.size)
    first_row = np.cumsum(per_entry) - per_entry
    keep = per_entry == 0
    has_rows = np.flatnonzero(per_entry > 0)
    two_rows = has_rows[per_entry[has_rows] > 1]
    uniq, inverse = np.unique(row_key, return_inverse=True)  # sorted, so the searches below are cheap
    for phrase_side, para_side in ((ref, hyp), (hyp, ref)):
        lo, hi = np.empty(row_key.size, np.int64), np.empty(row_key.size, np.int64)
        for side, rows in ((phrase_side, row_phrase), (para_side, ~row_phrase)):
            side_lo, side_hi = side.items_of(uniq)
            lo[rows], hi[rows] = side_lo[inverse[rows]], side_hi[inverse[rows]]
        count = hi - lo
        # each entry's rows by how few items hold them: the rarest gives the candidate items, the
        # next one is checked first; an entry whose rarest row no item holds cannot fit
        by_count = np.lexsort((count, row_entry))
        anchor = by_count[first_row[has_rows]]
        probe = np.full(entries.size, -1)
        probe[two_rows] = by_count[first_row[two_rows] + 1]
        anchor = anchor[count[anchor] > 0]
        cand_entry = np.repeat(row_entry[anchor], count[anchor])
        if cand_entry.size == 0:
            continue
        at = _ranges(lo[anchor], hi[anchor])
        on_phrase = np.repeat(row_phrase[anchor], count[anchor])
        cand_item = np.where(on_phrase, _clipped_take(phrase_side.item, at), _clipped_take(para_side.item, at))
        probed = probe[cand_entry]
        ok = probed < 0
        rows = probed[~ok]
        ok[~ok] = _holds(phrase_side, para_side, row_phrase[rows], cand_item[~ok], row_key[rows])
        cand_entry, cand_item = cand_entry[ok], cand_item[ok]
        # then every key of the candidate's entry in the candidate item
        c = np.repeat(np.arange(cand_entry.size), per_entry[cand_entry])
        rows = _ranges(first_row[cand_entry], first_row[cand_entry] + per_entry[cand_entry])
        held = _holds(phrase_side, para_side, row_phrase[rows], cand_item[c], row_key[rows])
        bad = np.bincount(c, weights=~held, minlength=cand_entry.size)
        keep[cand_entry[bad == 0]] = True
    return entries[keep]


def write_table(index: ParaphraseIndex, entries: np.ndarray, path: Path) -> None:
    """Write these entries, in this order, as a METEOR paraphrase file (gzip, the jar's format)."""
    lo, hi = index.start[entries], index.start[entries + 1]
    tokens = index.word_array[np.asarray(index.flat[_ranges(lo, hi)], dtype=np.int64)].tolist()
    ends = np.cumsum(hi - lo).tolist()
    mids = (np.cumsum(hi - lo) - (hi - lo) + index.phrase_len[entries]).tolist()
    out, a = [], 0
    for m, b in zip(mids, ends):
        out.append("1\n" + " ".join(tokens[a:m]) + "\n" + " ".join(tokens[m:b]) + "\n")
        a = b
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write("".join(out).encode("utf-8"))


def _member(x: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if sorted_set.size == 0:
        return np.zeros(x.shape, bool)
    at = np.minimum(np.searchsorted(sorted_set, x), sorted_set.size - 1)
    return sorted_set[at] == x


def _positions(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., len - 1 for each length, concatenated."""
    return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each pair."""
    lengths = np.asarray(ends - starts, dtype=np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + _positions(lengths)
