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

Once per installed table an index is built (~10 s, ~100 MB under `$VLMLAB_HOME/meteor/`): every
entry is filed under its rarest word or neighbour pair, so that a cut reads only the entries filed
under pairs and words that occur (memory-mapped), in ~20-100 ms. The jar ignores each entry's first
line (a probability it never parses), so the cut writes "1" there.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from itertools import product
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from vlmlab.errors import RunError
from vlmlab.metrics.java import pycocoevalcap_dir

INDEX_VERSION = 2
_BATCH_BYTES = 8 << 20
_JAVA_TOKEN = re.compile(r"[^ \t\n\r\f]+")  # java.util.StringTokenizer's delimiters
_SEGMENT = re.compile(r"[0-9A-Za-z]+|.", re.S)
_SIMPLE = re.compile(r"[0-9a-z]+(?: [0-9a-z]+)*")  # normalised as it is: no segment to split or map
_PER_CHAR = str.maketrans({"`": "'", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"})
_MERGES = (("''", '"'), ("--", "-"), (".", ""))  # in the normaliser's order


def paraphrase_file() -> Path:
    """The English paraphrase table shipped with pycocoevalcap's METEOR jar."""
    return pycocoevalcap_dir() / "meteor" / "data" / "paraphrase-en.gz"


def cache_home() -> Path:
    """`$VLMLAB_HOME/meteor` (the root of `vlmlab.models.loading.vlmlab_home`, without importing the model stack)."""
    home = os.environ.get("VLMLAB_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "vlmlab") / "meteor"


@dataclass(frozen=True)
class ParaphraseIndex:
    """The table's entries and their filing keys (big arrays memory-mapped from the cache).

    Attributes:
        words: the table's distinct words; word ids index this list.
        word_id: id of each word.
        always: per word id, True for words with a non-ASCII character (present everywhere).
        longest: length of the longest ASCII word (longer runs of text cannot be table words).
        flat: word ids of every entry in the table's order (phrase words, then paraphrase words).
        start: offset of each entry in `flat` (one more than entries).
        phrase_len: number of phrase words of each entry (the rest are paraphrase words).
        keys: the distinct filing keys, ascending: a word id w, `n_words * (1 + a) + b` for the
            neighbour pair (a, b), or -1 for entries of non-ASCII words only.
        group: entries filed under keys[k] are order[group[k]:group[k + 1]].
        order: entry numbers sorted by filing key (the table's order within a key).
    """

    words: list[str]
    word_id: dict[str, int]
    always: np.ndarray
    longest: int
    flat: np.ndarray
    start: np.ndarray
    phrase_len: np.ndarray
    keys: np.ndarray
    group: np.ndarray
    order: np.ndarray

    @property
    def n_words(self) -> int:
        return len(self.words)

    @cached_property
    def word_array(self) -> np.ndarray:
        """The words as a numpy object array (for gathering many at once)."""
        return np.array(self.words, dtype=object)


_LOADED: dict[Path, ParaphraseIndex] = {}


def paraphrase_index(source: Path | None = None, cache: Path | None = None) -> ParaphraseIndex:
    """The index of `source` (default: pycocoevalcap's table), built into `cache` on first use (~10 s)."""
    source = (source or paraphrase_file()).resolve()
    stat = source.stat()
    folder = (cache or cache_home()) / f"{source.stem}-{stat.st_size}-{stat.st_mtime_ns}-v{INDEX_VERSION}"
    if folder in _LOADED:
        return _LOADED[folder]
    if not (folder / "index.json").is_file():
        _build_atomically(source, folder)
    words = (folder / "words.txt").read_bytes().decode("utf-8").split("\n")
    phrase_len, para_len = np.load(folder / "phrase_len.npy"), np.load(folder / "para_len.npy")
    start = np.zeros(phrase_len.size + 1, np.int64)
    np.cumsum(phrase_len + para_len.astype(np.int64), out=start[1:])
    always = np.fromiter((not w.isascii() for w in words), dtype=bool, count=len(words))
    index = ParaphraseIndex(
        words=words,
        word_id={w: i for i, w in enumerate(words)},
        always=always,
        longest=max((len(w) for w, a in zip(words, always) if not a), default=0),
        flat=np.load(folder / "flat.npy", mmap_mode="r"),
        start=start,
        phrase_len=phrase_len,
        keys=np.load(folder / "keys.npy"),
        group=np.load(folder / "group.npy"),
        order=np.load(folder / "order.npy", mmap_mode="r"),
    )
    _LOADED[folder] = index
    return index


def text_words(index: ParaphraseIndex, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the table words these texts can hold, and keys of their possible neighbour pairs (see the module doc)."""
    word_id, n = index.word_id, index.n_words
    words: set[int] = set()
    pairs: set[int] = set()
    tokens: dict[str, _Token] = {}
    for text in dict.fromkeys(texts):
        if _SIMPLE.fullmatch(text):  # normalised as it is (the usual case after PTB tokenisation)
            ids = [word_id.get(t) for t in text.split(" ")]
            words.update(i for i in ids if i is not None)
            pairs.update(n * (1 + a) + b for a, b in zip(ids, ids[1:]) if a is not None and b is not None)
            continue
        infos = []
        for token in _JAVA_TOKEN.findall(text):
            info = tokens.get(token)
            if info is None:
                info = tokens[token] = _token(token, word_id, n, index.longest)
            infos.append(info)
            words |= info.words
            pairs |= info.pairs
        for i, left in enumerate(infos):
            for right in infos[i + 1 :]:
                pairs.update(n * (1 + x) + y for x, y in product(left.last, right.first))
                if not right.vanish:
                    break
    return np.fromiter(words, np.int64, len(words)), np.sort(np.fromiter(pairs, np.int64, len(pairs)))


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


def kept_entries(index: ParaphraseIndex, hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Numbers (ascending: the table's order) of the entries that can match between these texts."""
    hyp_words, hyp_pairs = text_words(index, hypotheses)
    ref_words, ref_pairs = text_words(index, references)
    query = np.unique(np.concatenate([[-1], hyp_words, ref_words, hyp_pairs, ref_pairs]))
    found = np.flatnonzero(_member(index.keys, query))
    entries = np.sort(np.asarray(index.order[_ranges(index.group[found], index.group[found + 1])], dtype=np.int64))
    in_hyp, in_ref = index.always.copy(), index.always.copy()
    in_hyp[hyp_words], in_ref[ref_words] = True, True
    for use_pairs in (False, True):  # words first (a cheap mask), then neighbour pairs of the survivors
        if entries.size == 0:
            return entries
        lo, hi = index.start[entries], index.start[entries + 1]
        lengths = hi - lo
        words = np.asarray(index.flat[_ranges(lo, hi)], dtype=np.int64)
        entry_of = np.repeat(np.arange(entries.size), lengths)
        in_phrase = _positions(lengths) < np.repeat(index.phrase_len[entries], lengths)
        ok_hyp, ok_ref = in_hyp[words], in_ref[words]
        if use_pairs:  # a position is fine when its word is, and so is the pair it starts within its phrase
            nxt = np.append(words[1:], 0)
            inner = np.append((entry_of[1:] == entry_of[:-1]) & (in_phrase[1:] == in_phrase[:-1]), False)
            inner &= ~index.always[words] & ~index.always[nxt]
            keys = index.n_words * (1 + words[inner]) + nxt[inner]
            ok_hyp[inner] &= _member(keys, hyp_pairs)
            ok_ref[inner] &= _member(keys, ref_pairs)

        def fits(ok: np.ndarray, part: np.ndarray) -> np.ndarray:
            return np.bincount(entry_of, weights=part & ~ok, minlength=entries.size) == 0

        keep = (fits(ok_ref, in_phrase) & fits(ok_hyp, ~in_phrase)) | (fits(ok_hyp, in_phrase) & fits(ok_ref, ~in_phrase))
        entries = entries[keep]
    return entries


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


def _build_atomically(source: Path, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=folder.name + ".build-", dir=folder.parent))
    try:
        _build(source, work)
        try:
            work.rename(folder)
        except OSError:  # another process finished first: its index is the same
            if not (folder / "index.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(source: Path, out: Path) -> None:
    """Parse the table (triples of lines: probability, phrase, paraphrase) and file its entries."""
    vocab: dict[bytes, int] = {}
    flats, phrase_lens, para_lens = [], [], []
    for block in _triple_blocks(source):
        lines = block.split(b"\n")[:-1]
        phrases, paras = lines[1::3], lines[2::3]
        phrase_lens.append(np.fromiter(map(len, map(bytes.split, phrases)), dtype=np.int64, count=len(phrases)))
        para_lens.append(np.fromiter(map(len, map(bytes.split, paras)), dtype=np.int64, count=len(paras)))
        both: list[bytes] = [b""] * (2 * len(phrases))
        both[0::2], both[1::2] = phrases, paras
        del lines, phrases, paras
        tokens = b" ".join(both).split()
        del both
        for word in dict.fromkeys(tokens):
            if word not in vocab:
                vocab[word] = len(vocab)
        flats.append(np.fromiter(map(vocab.__getitem__, tokens), dtype=np.int32, count=len(tokens)))
    words = [w.decode("utf-8", "replace") for w in vocab]
    n = max(len(words), 1)
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int32)
    del flats
    phrase_len = np.concatenate(phrase_lens) if phrase_lens else np.zeros(0, np.int64)
    para_len = np.concatenate(para_lens) if para_lens else np.zeros(0, np.int64)
    if phrase_len.size and max(int(phrase_len.max()), int(para_len.max())) > 255:
        raise RunError(f"{source}: a phrase of more than 255 words in the paraphrase table; report this file")
    if n * (n + 1) >= 1 << 62:
        raise RunError(f"{source}: too many distinct words in the paraphrase table ({n}); report this file")
    lengths = phrase_len + para_len
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    nonempty = np.flatnonzero(lengths > 0)  # entries of no words occupy no positions
    always = np.fromiter((not w.isascii() for w in words), dtype=bool, count=len(words))
    # per position: does it open an entry, is it in the phrase part, is (it, next) a pair of ASCII words of one part
    delta = np.zeros(flat.size + 1, np.int8)  # +1 where a phrase opens, -1 where its paraphrase does
    delta[starts[nonempty]] += 1
    delta[starts[nonempty] + phrase_len[nonempty]] -= 1
    in_phrase = np.cumsum(delta[:-1], dtype=np.int8).astype(bool)
    opens = np.zeros(flat.size, bool)
    opens[starts[nonempty]] = True
    ascii_word = ~always[flat]
    inner = np.zeros(flat.size, bool)
    inner[:-1] = ~opens[1:] & (in_phrase[1:] == in_phrase[:-1]) & ascii_word[:-1] & ascii_word[1:]
    del delta, in_phrase, opens
    # rank words and pairs by how many positions hold them; file each entry under its rarest one
    word_count = np.bincount(flat, minlength=n)  # (a 64-bit copy of flat, briefly)
    at = np.flatnonzero(inner)
    del inner
    key = flat[at].astype(np.uint32 if n * (n + 1) < 1 << 32 else np.int64)  # n * (1 + a) + b, in place
    key += 1
    key *= n
    np.add(key, flat[1:][at], out=key, casting="unsafe")  # word ids are >= 0
    pair_keys, pair_count = _counted(key)
    counts = np.concatenate([word_count, pair_count])
    rank = np.empty(counts.size, np.int32)
    rank[np.argsort(counts, kind="stable")] = np.arange(counts.size, dtype=np.int32)
    none = np.int32(counts.size)
    word_rank = np.where(ascii_word, rank[flat], none)
    pair_rank = np.full(flat.size, none, np.int32)
    for lo in range(0, at.size, _BATCH_BYTES):  # the pair number of each position, a block at a time
        pair_rank[at[lo : lo + _BATCH_BYTES]] = rank[n + np.searchsorted(pair_keys, key[lo : lo + _BATCH_BYTES])]
    del at, key, ascii_word
    best = np.minimum(np.minimum.reduceat(word_rank, starts[nonempty]), np.minimum.reduceat(pair_rank, starts[nonempty]))
    del word_rank, pair_rank
    # an entry with an empty phrase sits at the trie's root, which the jar never reports: left out
    filed = phrase_len[nonempty] > 0
    entries, best = nonempty[filed], best[filed]
    by_rank = np.argsort(rank)  # rank -> word id, or n + pair number
    key_of = np.concatenate([np.arange(n, dtype=np.int64), pair_keys.astype(np.int64), [-1]])
    filing = key_of[np.where(best == none, counts.size, by_rank[np.minimum(best, none - 1)])]
    by_key = np.argsort(filing, kind="stable")
    keys, first = np.unique(filing[by_key], return_index=True)
    np.save(out / "flat.npy", flat.astype(np.uint16 if n <= 1 << 16 else np.uint32))
    np.save(out / "phrase_len.npy", phrase_len.astype(np.uint8))
    np.save(out / "para_len.npy", para_len.astype(np.uint8))
    np.save(out / "order.npy", entries[by_key].astype(np.int32))
    np.save(out / "keys.npy", keys.astype(np.int64))
    np.save(out / "group.npy", np.append(first, by_key.size).astype(np.int64))
    (out / "words.txt").write_bytes("\n".join(words).encode("utf-8"))
    stat = source.stat()
    meta = {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "entries": int(lengths.size),
            "filed": int(entries.size), "words": len(words), "keys": int(keys.size), "version": INDEX_VERSION}
    (out / "index.json").write_text(json.dumps(meta, indent=1))


def _counted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of x and how often each occurs (one sorted copy; np.unique needs three arrays more)."""
    ordered = np.sort(x)
    if ordered.size == 0:
        return ordered, np.zeros(0, np.int64)
    first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[first], np.diff(np.append(first, ordered.size))


def _triple_blocks(source: Path) -> Iterator[bytes]:
    """The decompressed table in blocks of whole (probability, phrase, paraphrase) triples."""
    pending = b""
    with gzip.open(source, "rb") as f:
        while True:
            data = f.read(_BATCH_BYTES)
            if b"\r" in data or b"\x0b" in data:  # where Java's readLine / StringTokenizer and bytes.split would differ
                raise RunError(f"{source}: unexpected CR or VT characters in the paraphrase table; report this file")
            if not data:
                break
            pending += data
            cut, newlines = len(pending), pending.count(b"\n")
            if newlines < 3:
                continue
            for _ in range(newlines % 3 + 1):  # back to the newline that closes the last whole triple
                cut = pending.rfind(b"\n", 0, cut)
            yield pending[: cut + 1]
            pending = pending[cut + 1 :]
    if pending:
        pending += b"" if pending.endswith(b"\n") else b"\n"
        if pending.count(b"\n") % 3:
            raise RunError(f"{source}: the paraphrase table does not hold whole (probability, phrase, paraphrase) triples")
        yield pending
