"""METEOR 1.5 through the jar shipped in pycocoevalcap: one JVM per process, started early, with a watchdog.

Same protocol and options as pycocoevalcap's `Meteor` (`-stdio -l en -norm`, `-Xmx2G`): one
`SCORE ||| refs ||| hyp` line per item returns sufficient statistics, then one `EVAL ||| stats...`
line returns a score per item followed by the corpus score (which is computed from the summed
statistics, not the mean of item scores). The JVM keeps no state between EVALs, so one JVM serves
every call in a process, as pycocoevalcap's `Meteor` object serves every `compute_score`.

Where the time goes: start-up loads the 62 MB paraphrase table (most of a JVM's CPU time for a few
thousand items), then each item is aligned against each reference. So:

- `start_meteor()` launches the JVM without waiting; `score_captions` calls it before the PTB
  tokenizer, so the table loads while tokenisation and the numpy metrics run;
- the JVM is kept for the life of the process (closed at exit): a study scoring several models or
  both modes pays the start-up once;
- all SCORE lines are streamed from a writer thread instead of one round trip per item.

What this cannot change: the jar's own work, the same as pycocoevalcap's. Measured here (2 shared
cores, 2026-12): start-up ~13.5 CPU-s, then ~5.5 CPU-s per 1,000 items of 5 references; at 5,000 x 5
that is ~90% of our CPU time with METEOR, so all metrics together are ~1.2x pycocoevalcap in CPU
(`benchmarks/bench_caption_metrics.py`). Going further needs the jar's work itself cut (e.g. a
paraphrase table filtered to the run's vocabulary, or a checked native aligner).

A watchdog kills the JVM when it has printed nothing for `timeout` seconds, so a hung JVM becomes
a RunError instead of a hang (a slow but working JVM on a busy machine is left alone); the next
call starts a fresh one.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
import time
from typing import Sequence

import numpy as np

from vlmlab.errors import RunError
from vlmlab.metrics.java import JAVA_UTF8, java_executable, pycocoevalcap_dir


def _score_line(hypothesis: str, references: Sequence[str]) -> str:
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))


class MeteorJVM:
    """One METEOR JVM, started on demand and reused; calls are serialised by a lock."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Launch the JVM if none is running (returns at once; it loads its tables meanwhile)."""
        with self._start_lock:
            if self._owner != os.getpid():  # a forked child never talks to its parent's JVM
                self._proc, self._owner = None, os.getpid()
            if self._proc is not None and self._proc.poll() is None:
                return
            cmd = [java_executable(), *JAVA_UTF8, "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
            self._proc = subprocess.Popen(cmd, cwd=pycocoevalcap_dir() / "meteor", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)

    def close(self) -> None:
        """Stop the JVM (the next call starts a new one)."""
        with self._start_lock:
            proc, self._proc = self._proc, None
        if proc is None or self._owner != os.getpid():
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]], timeout: float) -> tuple[float, np.ndarray]:
        """Corpus and per-item METEOR (see `meteor`)."""
        with self._lock:
            self.start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            n = len(hypotheses)
            timed_out, finished = threading.Event(), threading.Event()
            last_progress = [time.monotonic()]

            def watch() -> None:
                # a JVM that produces no line for `timeout` seconds is hung: kill it
                while not finished.wait(min(1.0, timeout / 2)):
                    if time.monotonic() - last_progress[0] > timeout:
                        timed_out.set()
                        proc.kill()
                        return

            payload = "".join(_score_line(h, r) + "\n" for h, r in zip(hypotheses, references)).encode("utf-8")

            def write() -> None:
                try:
                    proc.stdin.write(payload)  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                except (BrokenPipeError, OSError):
                    pass

            threading.Thread(target=watch, daemon=True).start()
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            ok = False
            try:
                stats = [_read(proc, timed_out, timeout, last_progress).decode("utf-8").strip() for _ in range(n)]
                writer.join()
                proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
                proc.stdin.flush()
                item_scores = np.array([_parse(_read(proc, timed_out, timeout, last_progress)) for _ in range(n)])
                score = _parse(_read(proc, timed_out, timeout, last_progress))
                ok = True
            except (BrokenPipeError, OSError) as exc:
                raise RunError(f"METEOR (java) stopped unexpectedly: {exc}") from exc
            finally:
                finished.set()
                if not ok:  # a half-read protocol cannot be resumed: never reuse this JVM
                    self.close()
            return score, item_scores


_SHARED = MeteorJVM()
atexit.register(_SHARED.close)


def start_meteor() -> None:
    """Start the process's METEOR JVM in the background (idempotent); call it before other work."""
    _SHARED.start()


def meteor(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float | None = None
) -> tuple[float, np.ndarray]:
    """Corpus METEOR and per-item METEOR, pycocoevalcap semantics, on the process's shared JVM.

    Args:
        hypotheses: one tokenised hypothesis per item.
        references: for each item, one or more tokenised references.
        timeout: seconds without a line of output after which the JVM counts as hung and is
            killed (start-up, which loads the paraphrase table, must also fit; default 300 s).
    """
    if not hypotheses:
        raise RunError("METEOR needs at least one item")
    return _SHARED.score(hypotheses, references, 300.0 if timeout is None else timeout)


def _read(proc: subprocess.Popen, timed_out: threading.Event, timeout: float, last_progress: list[float]) -> bytes:
    line = proc.stdout.readline()  # type: ignore[union-attr]
    last_progress[0] = time.monotonic()
    if not line:
        if timed_out.is_set():
            raise RunError(f"METEOR (java) did not finish: no output for {timeout:.0f} s, so it was killed; raise the timeout")
        raise RunError("METEOR (java) exited early; check that `java -jar meteor-1.5.jar` runs and has 2 GB of memory")
    return line


def _parse(line: bytes) -> float:
    try:
        return float(line.strip())
    except ValueError as exc:
        raise RunError(f"METEOR (java) returned an unexpected line: {line[:80]!r}") from exc
