"""METEOR 1.5 through the jar shipped in pycocoevalcap, on a paraphrase table cut to the run, on 1-2 JVMs.

Same protocol and options as pycocoevalcap's `Meteor` (`-stdio -l en -norm`, `-Xmx2G`): one
`SCORE ||| refs ||| hyp` line per item returns sufficient statistics, then one `EVAL ||| stats...`
line returns a score per item followed by the corpus score (computed from the summed statistics).

Where pycocoevalcap's time goes, and what we do about it (measured on 2 shared cores, see
`benchmarks/results/caption_metrics.md`):

- start-up: ~10 CPU-s, nearly all of it building a trie of the 5.3M-entry paraphrase table. We
  start the jar with `-a` pointing at the table cut to the entries this run's texts can use
  (`meteor_table`, exact by construction and tested against the full table): ~0.3-0.5 CPU-s.
  The first METEOR run of an installation builds the table's index once (`meteor_index`:
  ~15-20 CPU-s, ~100 MB under `$VLMLAB_HOME/meteor`).
- per item, the jar aligns the hypothesis with each reference (normalising, stemming, WordNet
  synonyms, paraphrases, a beam search): 0.15-0.6 ms per hypothesis-reference pair with the C1
  JIT, more for longer captions (synthetic 5,000 x 5: ~4 CPU-s; QuIC-360's 1,211 items: ~3.5).
  That work is the jar's own and is now most of the time; we only make it cheaper to run: the
  C1-only JIT and the serial GC (C2 compiled more than it saved at every size measured; Java's
  floating point is strict, so results do not depend on the JIT), identical SCORE lines sent
  once, and the lines split across two JVMs when a second core is free (statistics are per item,
  so one EVAL over the concatenated statistics gives exactly the single-JVM result).

JVMs are kept for the process and reused while their table covers the next call's entries (a
study scoring both modes of one model); otherwise new ones start with a new cut (~0.5 CPU-s each).
A watchdog kills a JVM that has printed nothing for `timeout` seconds, so a hung JVM becomes a
RunError instead of a hang; the next call starts fresh ones.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vlmlab.errors import RunError
from vlmlab.metrics.java import JAVA_UTF8, java_executable, pycocoevalcap_dir
from vlmlab.metrics.meteor_index import paraphrase_index
from vlmlab.metrics.meteor_table import kept_entries, write_table

DEFAULT_TIMEOUT = 300.0
# (hypothesis, reference) alignments: ~0.1-0.6 ms each (longer captions cost more), a JVM start ~0.5 CPU-s
_SECOND_JVM_ALIGNMENTS = 4_000  # from here a second JVM saves more wall time than its start-up costs
_C2_ALIGNMENTS = 150_000  # per JVM; only beyond it does C2's compiled code repay its compilation (measured)
_BASE_FLAGS = ["-XX:+UseSerialGC", "-Xmx2G"]


def _score_line(hypothesis: str, references: Sequence[str]) -> str:
    return " ||| ".join(("SCORE", " ||| ".join(references), _sent_hypothesis(hypothesis)))


def _sent_hypothesis(hypothesis: str) -> str:
    """The hypothesis as pycocoevalcap sends it."""
    return hypothesis.replace("|||", "").replace("  ", " ")


class MeteorJVM:
    """One METEOR process reading a given paraphrase table; its calls are serialised by the pool's lock."""

    def __init__(self, table: Path, entries: np.ndarray, fast_start: bool) -> None:
        self.entries = entries
        self.fast_start = fast_start
        self.owner = os.getpid()
        flags = ["-XX:TieredStopAtLevel=1", *_BASE_FLAGS] if fast_start else _BASE_FLAGS
        cmd = [java_executable(), *JAVA_UTF8, *flags, "-jar", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm",
               "-a", str(table)]
        self.proc = subprocess.Popen(cmd, cwd=pycocoevalcap_dir() / "meteor", stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def covers(self, entries: np.ndarray) -> bool:
        return bool(np.isin(entries, self.entries, assume_unique=True).all())

    def close(self) -> None:
        if self.owner != os.getpid():  # a forked child never touches its parent's JVM
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def exchange(self, payload: bytes, n_lines: int, timeout: float) -> list[bytes]:
        """Write `payload` (from a thread, so a full pipe cannot deadlock) and read `n_lines` answers."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        timed_out, finished = threading.Event(), threading.Event()
        last_progress = [time.monotonic()]

        def watch() -> None:
            # a JVM that produces no line for `timeout` seconds is hung: kill it
            while not finished.wait(min(1.0, timeout / 2)):
                if time.monotonic() - last_progress[0] > timeout:
                    timed_out.set()
                    proc.kill()
                    return

        def write() -> None:
            try:
                proc.stdin.write(payload)  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except (BrokenPipeError, OSError):
                pass

        threading.Thread(target=watch, daemon=True).start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            out = []
            for _ in range(n_lines):
                line = proc.stdout.readline()
                last_progress[0] = time.monotonic()
                if not line:
                    if timed_out.is_set():
                        raise RunError(f"METEOR (java) did not finish: no output for {timeout:.0f} s, so it was killed; raise the timeout")
                    raise RunError("METEOR (java) exited early; check that `java -jar meteor-1.5.jar` runs and has 2 GB of memory")
                out.append(line)
            writer.join()
            return out
        finally:
            finished.set()


class MeteorPool:
    """The process's METEOR JVMs: reused while their table covers a call, replaced otherwise."""

    def __init__(self) -> None:
        self._jvms: list[MeteorJVM] = []
        self._lock = threading.Lock()
        self._io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="meteor")
        self._tmp: Path | None = None
        self._owner_of_tmp = os.getpid()
        self._table: Path | None = None  # the newest cut; removed once its JVMs have read it

    def close(self) -> None:
        """Stop every JVM (the next call starts new ones)."""
        jvms, self._jvms = self._jvms, []
        for jvm in jvms:
            jvm.close()
        if self._tmp is not None and self._owner_of_tmp == os.getpid():
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def pids(self) -> list[int]:
        """Process ids of the running JVMs (for tests)."""
        return [j.proc.pid for j in self._jvms if j.alive()]

    def submit(self, lines: list[str], entries: np.ndarray, alignments: int, jobs: int, timeout: float) -> Future:
        """Start (or reuse) `jobs` JVMs covering `entries` now; score `lines` in the background."""
        self._lock.acquire()
        try:
            jvms = self._acquire(entries, jobs, alignments // jobs > _C2_ALIGNMENTS)
        except BaseException:
            self._lock.release()
            raise
        return self._io.submit(self._score_and_release, jvms, lines, timeout)

    def _acquire(self, entries: np.ndarray, jobs: int, steady: bool) -> list[MeteorJVM]:
        keep = [j for j in self._jvms if j.alive() and j.fast_start != steady and j.covers(entries)][:jobs]
        for jvm in self._jvms:
            if jvm not in keep:
                jvm.close()
        missing = jobs - len(keep)
        if missing:
            if self._tmp is None or self._owner_of_tmp != os.getpid():
                self._tmp, self._owner_of_tmp = Path(tempfile.mkdtemp(prefix="vlmlab-meteor-")), os.getpid()
            table = self._tmp / f"paraphrase-{time.monotonic_ns()}.gz"
            write_table(paraphrase_index(), entries, table)
            self._table = table
            keep += [MeteorJVM(table, entries, fast_start=not steady) for _ in range(missing)]
        self._jvms = keep
        return keep

    def _score_and_release(self, jvms: list[MeteorJVM], lines: list[str], timeout: float) -> tuple[float, np.ndarray]:
        ok = False
        try:
            result = self._score(jvms, lines, timeout)
            ok = True
            return result
        finally:
            if not ok:  # a half-read protocol cannot be resumed: never reuse these JVMs
                for jvm in jvms:
                    jvm.close()
                self._jvms = [j for j in self._jvms if j not in jvms]
            if self._table is not None:  # every JVM has answered (so read its table) or is gone
                self._table.unlink(missing_ok=True)
                self._table = None
            self._lock.release()

    def _score(self, jvms: list[MeteorJVM], lines: list[str], timeout: float) -> tuple[float, np.ndarray]:
        unique = list(dict.fromkeys(lines))  # identical items are aligned once
        bounds = np.linspace(0, len(unique), len(jvms) + 1).round().astype(int)
        chunks = [unique[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        tasks: list[Callable[[], list[bytes]]] = [
            (lambda jvm=jvm, chunk=chunk: jvm.exchange("".join(c + "\n" for c in chunk).encode("utf-8"), len(chunk), timeout))
            for jvm, chunk in zip(jvms, chunks)
        ]
        results: list[list[bytes] | None] = [None] * len(tasks)
        errors: list[BaseException] = []

        def run(k: int) -> None:
            try:
                results[k] = tasks[k]()
            except BaseException as exc:  # re-raised below, on the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(1, len(tasks))]
        for t in threads:
            t.start()
        run(0)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        stats_of = dict(zip(unique, (s.decode("utf-8").strip() for r in results for s in r or [])))
        eval_line = "EVAL ||| " + " ||| ".join(stats_of[line] for line in lines) + "\n"
        answers = jvms[0].exchange(eval_line.encode("utf-8"), len(lines) + 1, timeout)
        parsed = np.array([_parse(a) for a in answers])
        return float(parsed[-1]), parsed[:-1]


_SHARED = MeteorPool()
atexit.register(_SHARED.close)


def default_jobs(alignments: int) -> int:
    """Two JVMs when there is enough work to pay for the second start and a core is free for it.

    On a busy machine a second JVM only adds its start-up and JIT warm-up (measured at load 4 on 2
    cores: +0.6 CPU-s and no wall time saved at 5,000 x 5), so the 1-minute load average decides.
    """
    cores = os.cpu_count() or 1
    try:
        free = cores - os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): assume the cores are ours
        free = cores
    return 2 if cores >= 2 and free >= 1.0 and alignments >= _SECOND_JVM_ALIGNMENTS else 1


def meteor_async(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float | None = None, jobs: int | None = None
) -> Future:
    """Cut the table and start the JVMs now; a Future of (corpus METEOR, per-item METEOR).

    Args mean what they do in `meteor`. The calling thread is free as soon as this returns (the
    JVMs' input and output run on threads), e.g. for BLEU and CIDEr.
    """
    if not hypotheses:
        raise RunError("METEOR needs at least one item")
    if len(hypotheses) != len(references):
        raise RunError(f"METEOR got {len(hypotheses)} hypotheses but {len(references)} reference lists")
    lines = [_score_line(h, r) for h, r in zip(hypotheses, references)]
    n_unique = len(set(lines))
    alignments = sum(len(r) for r in references) * n_unique // len(lines)
    jobs = max(1, min(jobs if jobs is not None else default_jobs(alignments), n_unique))
    entries = kept_entries(paraphrase_index(), [_sent_hypothesis(h) for h in hypotheses], references)
    return _SHARED.submit(lines, entries, alignments, jobs, DEFAULT_TIMEOUT if timeout is None else timeout)


def meteor(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float | None = None, jobs: int | None = None
) -> tuple[float, np.ndarray]:
    """Corpus METEOR and per-item METEOR, pycocoevalcap semantics (equal to its jar to the printed digits).

    Args:
        hypotheses: one tokenised hypothesis per item.
        references: for each item, one or more tokenised references.
        timeout: seconds without a line of output after which a JVM counts as hung and is killed
            (default 300 s).
        jobs: JVMs to split the items across (default: 2 from 4,000 hypothesis-reference pairs
            on when a core is free, see `default_jobs`).
    """
    return meteor_async(hypotheses, references, timeout=timeout, jobs=jobs).result()


def _parse(line: bytes) -> float:
    try:
        return float(line.strip())
    except ValueError as exc:
        raise RunError(f"METEOR (java) returned an unexpected line: {line[:80]!r}") from exc
