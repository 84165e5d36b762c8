"""Running the Java tools that COCO caption evaluation depends on (PTB tokenizer, METEOR, SPICE).

All three jars ship inside the `pycocoevalcap` package; this module finds them and runs `java`
with a deadline, so that a missing JVM or a hung process becomes a `RunError`, never a hang.
Every call pins the JVM's character set to UTF-8 so that results do not depend on the locale.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vlmlab.errors import RunError

JAVA_UTF8 = ["-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-Dsun.stderr.encoding=UTF-8"]


def pycocoevalcap_dir() -> Path:
    """The installed `pycocoevalcap` package folder (holds the jars)."""
    try:
        import pycocoevalcap
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RunError("pycocoevalcap is not installed; run `pip install pycocoevalcap`") from exc
    # a namespace package (no __init__.py) in the PyPI release, so use __path__
    return Path(list(pycocoevalcap.__path__)[0]).resolve()


def java_executable() -> str:
    """Path of `java`, or a RunError saying how to get it (Java 11+ is needed)."""
    java = shutil.which("java")
    if java is None:
        raise RunError("`java` not found on PATH; install a Java runtime (e.g. `apt-get install openjdk-17-jre-headless`)")
    return java


def run_java(args: list[str], *, input_bytes: bytes, timeout: float, what: str, cwd: Path | None = None) -> bytes:
    """Run `java ARGS` with INPUT on stdin and return stdout; a RunError on failure or timeout.

    Args:
        args: arguments after `java` (classpath, class or -jar, options).
        input_bytes: bytes written to the process's stdin.
        timeout: seconds before the process is killed and a RunError is raised.
        what: a short name for error messages ("PTB tokenizer").
        cwd: working folder of the process.
    """
    cmd = [java_executable(), *JAVA_UTF8, *args]
    try:
        proc = subprocess.run(
            cmd, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        raise RunError(f"{what} did not finish within {timeout:.0f} s and was killed; raise the timeout") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["(no stderr)"]
        raise RunError(f"{what} failed with exit code {proc.returncode}: {tail[0]}")
    return proc.stdout
