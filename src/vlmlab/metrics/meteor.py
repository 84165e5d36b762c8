"""METEOR 1.5 through the jar shipped in pycocoevalcap: one JVM per evaluation, with a watchdog.

Same protocol and options as pycocoevalcap's `Meteor` (`-stdio -l en -norm`, `-Xmx2G`): one
`SCORE ||| refs ||| hyp` line per item returns sufficient statistics, then one `EVAL ||| stats...`
line returns a score per item followed by the corpus score (which is computed from the summed
statistics, not the mean of item scores). Unlike pycocoevalcap we stream all SCORE lines from a
writer thread instead of waiting for each reply, and a watchdog kills the JVM when it has printed
nothing for `timeout` seconds, so a hung JVM becomes a RunError instead of a hang (a slow but
working JVM on a busy machine is left alone).
"""

from __future__ import annotations

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


def meteor(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, timeout: float | None = None
) -> tuple[float, np.ndarray]:
    """Corpus METEOR and per-item METEOR, pycocoevalcap semantics.

    Args:
        hypotheses: one tokenised hypothesis per item.
        references: for each item, one or more tokenised references.
        timeout: seconds without a line of output after which the JVM counts as hung and is
            killed (start-up, which loads the paraphrase table, must also fit; default 300 s).
    """
    n = len(hypotheses)
    if timeout is None:
        timeout = 300.0
    folder = pycocoevalcap_dir() / "meteor"
    cmd = [java_executable(), *JAVA_UTF8, "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
    proc = subprocess.Popen(cmd, cwd=folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timed_out = threading.Event()
    finished = threading.Event()
    last_progress = [time.monotonic()]

    def watch() -> None:
        # a JVM that produces no line for `timeout` seconds is hung: kill it
        while not finished.wait(min(1.0, timeout / 2)):
            if time.monotonic() - last_progress[0] > timeout:
                timed_out.set()
                proc.kill()
                return

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    assert proc.stdin is not None and proc.stdout is not None
    payload = "".join(_score_line(h, r) + "\n" for h, r in zip(hypotheses, references)).encode("utf-8")

    def write() -> None:
        try:
            proc.stdin.write(payload)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        stats = [_read(proc, timed_out, timeout, last_progress).decode("utf-8").strip() for _ in range(n)]
        writer.join()
        proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode("utf-8"))
        proc.stdin.flush()
        item_scores = np.array([_parse(_read(proc, timed_out, timeout, last_progress)) for _ in range(n)])
        score = _parse(_read(proc, timed_out, timeout, last_progress))
    except (BrokenPipeError, OSError) as exc:
        raise RunError(f"METEOR (java) stopped unexpectedly: {exc}") from exc
    finally:
        finished.set()
        try:
            proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return score, item_scores


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
