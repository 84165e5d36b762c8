"""An index of METEOR's paraphrase table, built once per installed table, for cutting it per run (`meteor_table`).

The jar reads `paraphrase-en.gz` (5.3M entries: a probability line, a phrase, a paraphrase) into a
trie at every start (~10 CPU-s). The index keeps the entries' words as ids in memory-mappable
arrays under `$VLMLAB_HOME/meteor/` (~100 MB; building it on first use takes ~15-20 CPU-s and
1.5 GB of memory; another pycocoevalcap install, i.e. another file size or mtime, gets a new
index) and files every entry under its rarest ASCII word or rarest pair of neighbouring ASCII
words, so that a cut reads only the entries filed under keys its texts hold.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from vlmlab.errors import RunError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: concurrent first builds both build, the rename settles it
    fcntl = None  # type: ignore[assignment]
from vlmlab.metrics.java import pycocoevalcap_dir

INDEX_VERSION = 2
_BATCH_BYTES = 8 << 20


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
    """The index of `source` (default: pycocoevalcap's table), built into `cache` on first use (~15-20 CPU-s)."""
    source = (source or paraphrase_file()).resolve()
    stat = source.stat()
    folder = (cache or cache_home()) / f"{source.stem}-{stat.st_size}-{stat.st_mtime_ns}-v{INDEX_VERSION}"
    if folder in _LOADED:
        return _LOADED[folder]
    if not (folder / "index.json").is_file():
        _build_once(source, folder)
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


def _build_once(source: Path, folder: Path) -> None:
    """Build the index unless another process is building it (then wait for that one: same result)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = open(folder.parent / f"{folder.name}.lock", "w")  # noqa: SIM115 - held until the build ends
    except OSError as exc:
        raise RunError(f"cannot write METEOR's paraphrase index under {folder.parent} ({exc.strerror}); "
                       "set VLMLAB_HOME to a writable folder") from exc
    with lock:
        if fcntl is not None:  # POSIX: one builder at a time (the lock dies with its process)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "index.json").is_file():
            _build_atomically(source, folder)


def _build_atomically(source: Path, folder: Path) -> None:
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
