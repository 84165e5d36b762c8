"""PTB tokenisation exactly as pycocoevalcap does it, in one JVM call for all texts.

pycocoevalcap's `PTBTokenizer` runs Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines
-lowerCase` on one caption per line, then drops punctuation tokens. We run the same jar with the
same options, but once for all predictions and references together (pycocoevalcap starts two JVMs)
and with the character set pinned to UTF-8.

Measured on this machine: one call tokenises 30,000 captions (~580k tokens) in ~0.9 s wall
(~0.5 s CPU with the C1-only JIT), about 0.3 s of which is JVM start-up, so reproducing the JFlex
lexer in Python would buy little and risk drifting from the reference on odd unicode.
(Two JVMs on halves were tried: on this shared machine they cost ~0.2 CPU-s and saved no wall time.)

One deliberate difference: the Java lexer also ends a line at CR, VT, FF, U+2028 and U+2029, which
makes pycocoevalcap misalign every caption after such a character; we turn them into spaces first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from vlmlab.errors import RunError
from vlmlab.metrics.java import pycocoevalcap_dir, run_java

# Tokens pycocoevalcap removes after tokenisation (pycocoevalcap/tokenizer/ptbtokenizer.py).
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\u2028\u2029]")
_JAR = "stanford-corenlp-3.4.1.jar"


@dataclass(frozen=True)
class Tokenised:
    """PTB tokens of each text.

    Attributes:
        pieces: per text, `line.split(" ")` minus punctuation, so `" ".join(pieces[i])` is exactly
            pycocoevalcap's tokenised string.
        plain: True when the JVM output holds no whitespace but single spaces between tokens, so
            that `str.split()` and `str.split(" ")` of every string equal its pieces (the usual
            case; the metrics then skip re-splitting).
    """

    pieces: Sequence[Sequence[str]]
    plain: bool

    def strings(self) -> list[str]:
        """pycocoevalcap's tokenised strings."""
        return [" ".join(p) for p in self.pieces]

    def words(self) -> Sequence[Sequence[str]]:
        """`str.split()` of each tokenised string (what BLEU and CIDEr count)."""
        return self.pieces if self.plain else [" ".join(p).split() for p in self.pieces]


def ptb_tokenize(texts: Sequence[str], *, timeout: float | None = None) -> list[str]:
    """Tokenise captions the pycocoevalcap way: lower-cased PTB tokens joined by single spaces.

    Args:
        texts: raw captions (predictions and references alike), any unicode.
        timeout: seconds before the JVM is killed (default: 300 s + 1 s per 1,000 texts).

    Returns:
        One string per input text, tokens separated by " ", punctuation tokens removed
        (possibly the empty string).
    """
    return ptb_tokens(texts, timeout=timeout).strings()


# text -> (pieces, plain line, empty line), across calls in this process; the pieces are tuples,
# handed out as they are (copying 30k lists costs more in garbage collection than in copying)
_CACHE: dict[str, tuple[tuple[str, ...], bool, bool]] = {}
_CACHE_MAX = 1_000_000
_NOT_PLAIN_LINE = re.compile(r"[^\S ]|  |^ ")
_NOT_PLAIN = re.compile(r"[^\S \n]|  |^ |\n ")  # the same, over the whole output at once
# a whole punctuation token (tokens are separated by single spaces, lines by newlines)
_PUNCT_TOKEN = re.compile(r"(?<![^ \n])(?:" + "|".join(re.escape(p) for p in sorted(PUNCTUATIONS, key=len, reverse=True)) + r")(?![^ \n])")


def ptb_tokens(texts: Sequence[str], *, timeout: float | None = None) -> Tokenised:
    """Like `ptb_tokenize` but returns token lists (see `Tokenised`), saving the re-splitting.

    Each distinct text is tokenised once per process (`-preserveLines` tokenises every line on its
    own): a study scoring several models, or both modes, against the same references runs the JVM
    only on texts it has not seen.
    """
    if not texts:
        return Tokenised([], True)
    new = [t for t in dict.fromkeys(texts) if t not in _CACHE]
    if new:
        if len(_CACHE) + len(new) > _CACHE_MAX:
            _CACHE.clear()
        _CACHE.update((t, (tuple(p), plain, empty)) for t, (p, plain, empty) in zip(new, _run_tokenizer(new, timeout)))
    hits = [_CACHE[t] for t in texts]
    if all(h[1] for h in hits):
        return Tokenised([h[0] for h in hits], True)
    # some line has other whitespace: every line keeps its `split(" ")` pieces, "" included
    return Tokenised([("",) if h[2] else h[0] for h in hits], False)


def _run_tokenizer(texts: list[str], timeout: float | None) -> list[tuple[list[str], bool, bool]]:
    """One JVM call: per text, its pieces ("" dropped on plain lines), whether its line is plain and empty."""
    jar = pycocoevalcap_dir() / "tokenizer" / _JAR
    if timeout is None:
        timeout = 300.0 + len(texts) / 1000.0
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1 or _LINE_BREAKS.search(joined.replace("\n", " ")):
        joined = "\n".join(_LINE_BREAKS.sub(" ", t) for t in texts)
    out = run_java(
        # C1-only JIT and the serial GC halve the JVM's CPU time for this short job (same output)
        ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
         "-preserveLines", "-lowerCase", "-encoding", "UTF-8"],
        input_bytes=joined.encode("utf-8"),
        timeout=timeout,
        what="PTB tokenizer (java)",
    ).decode("utf-8")
    lines = out.split("\n")
    if len(lines) < len(texts):
        # The lexer drops trailing empty lines; anything else is a real misalignment.
        missing = texts[len(lines):]
        if any(_LINE_BREAKS.sub(" ", t).strip() for t in missing):
            raise RunError(f"PTB tokenizer returned {len(lines)} lines for {len(texts)} captions; report this input")
        lines += [""] * len(missing)
    lines = lines[: len(texts)]
    # on a plain line the only "" piece is that of an empty line: drop it so pieces == str.split()
    drop_plain = PUNCTUATIONS | {""}
    if _NOT_PLAIN.search(out) is None:  # the usual case: drop punctuation tokens in one pass over the output
        rows = _PUNCT_TOKEN.sub("", "\n".join(lines)).split("\n")
        return [(row.split(), True, not line) for row, line in zip(rows, lines)]
    out_rows = []
    for line in lines:
        plain = _NOT_PLAIN_LINE.search(line) is None
        drop = drop_plain if plain else PUNCTUATIONS
        out_rows.append(([w for w in line.rstrip().split(" ") if w not in drop], plain, line.rstrip() == ""))
    return out_rows
