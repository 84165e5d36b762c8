"""The README's Quick tour is a tested script: every `vlmlab` line of its block runs, in order,
in a fresh clone.

The commands are read from README.md itself, so the tour and the test cannot drift apart. They
run in a copy of the repository made with `git archive` of the current commit (plus uncommitted
changes to tracked files, via `git stash create`, so that a developer tests what they are about
to commit): only what a clone holds is there, so a command that needs a file the tour never makes,
or one that was never committed, fails here.

The commands run in this process (`vlmlab.cli.main`), not as 30 processes of the installed
program: measured, a process per command took 9 min on the loaded 2-core machine (3.4 CPU-min,
mostly importing torch and transformers 20 times) against about 70 s in-process.
`test_tour_block_runs_in_bash_from_the_clone` runs a few lines of the block as written through
bash (`source .venv/bin/activate`, the installed `vlmlab`) to cover what in-process cannot.

Sizes are made smaller by appending options to a few commands (`QUICK`), never by changing what
a command reads. One command is changed: `toymodels build icl-vqa` (minutes of training, covered
by tests/toymodels) builds `icl-vqa-quick`, the same command and code on a recipe with fewer steps.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Appended to the command whose first words match (longest match wins): sizes only.
QUICK: dict[tuple[str, ...], list[str]] = {
    ("toyworld", "generate", "vqa"): ["--n", "200"],
    ("toyworld", "generate", "panorama"): ["--n", "40"],
    ("toyworld", "generate", "faces"): ["--n", "30"],
    ("caption", "run"): ["--set", "finetune.max_steps=2", "--set", "finetune.save_every=1", "--set", "finetune.batch_size=4",
                         "--set", "data.max_train_rows=16", "--set", "data.max_test_pairs=4"],
    ("icl", "candidates"): ["--set", "anchors=8", "--set", "k=8"],
    ("icl", "beam"): ["--set", "beam_size=2"],
    ("icl", "rl-data"): ["--set", "n_sampled=2"],
    ("icl", "train"): ["--set", "selector.epochs=1", "--set", "selector.pool_size=8"],
    ("icl", "eval"): ["--set", "shots=[1]", "--set", "sizes=[8]"],
}
REPLACED: dict[tuple[str, ...], list[str]] = {("toymodels", "build", "icl-vqa"): ["toymodels", "build", "icl-vqa-quick"]}


def tour_block(readme: Path = REPO / "README.md") -> list[str]:
    """The lines of the first bash block under '## Quick tour'."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Quick tour"):]
    block = section[section.index("```bash") + len("```bash"):]
    return block[:block.index("```")].splitlines()


def tour_commands(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The `vlmlab ...` lines of the tour block, comments removed."""
    commands = []
    for line in tour_block(readme):
        words = shlex.split(line, comments=True)
        if words and words[0] == "vlmlab":
            commands.append(words[1:])
        elif words:
            assert words[:2] == ["source", ".venv/bin/activate"], f"tour line the test cannot run: {line!r}"
    return commands


def quick(argv: list[str]) -> list[str]:
    from vlmlab.report.browser import find_chromium

    if "--png" in argv and find_chromium() is None:  # the screenshot needs Chromium (scripts/test.sh installs it)
        argv = [a for a in argv if a != "--png"]
    for table, mode in ((REPLACED, "replace"), (QUICK, "append")):
        matches = [k for k in table if tuple(argv[:len(k)]) == k]
        if matches:
            key = max(matches, key=len)
            return list(table[key]) if mode == "replace" else argv + table[key]
    return argv


def run_cli(argv: list[str]) -> int:
    from vlmlab.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_tour_block_is_parsed_whole():
    commands = tour_commands()
    assert len(commands) >= 25
    firsts = [c[0] for c in commands]
    for group in ("toyworld", "data", "models", "toymodels", "score", "caption", "icl", "runs", "rating"):
        assert group in firsts
    # the real-model examples are outside the offline tour
    assert not any("faces.yaml" in " ".join(c) or "quic360.yaml" in " ".join(c) for c in commands)


def test_quick_overrides_match_tour_commands():
    """Every quick-size entry still matches a tour command (a renamed command would drop it silently)."""
    commands = tour_commands()
    for key in list(QUICK) + list(REPLACED):
        assert any(tuple(c[:len(key)]) == key for c in commands), key


def tour_script(readme: Path = REPO / "README.md") -> str:
    """The tour block as a bash script, `vlmlab` lines made quick (`quick`), everything else as written."""
    lines = ["set -euo pipefail"]
    for line in tour_block(readme):
        words = shlex.split(line, comments=True)
        if words and words[0] == "vlmlab":
            line = shlex.join(["vlmlab", *quick(words[1:])])
            lines += [f"echo {shlex.quote('$ ' + line)} >&2", line]
        elif words:
            lines.append(line)
    return "\n".join(lines) + "\n"


def fresh_clone(dest: Path) -> Path:
    """The tracked files of the current commit (and of uncommitted changes to tracked files) in `dest`."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        tree = git("stash", "create") or git("rev-parse", "HEAD")
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", tree], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}); the tour needs one to make a fresh clone")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.mark.slow
def test_quick_tour_runs_in_a_fresh_clone(tmp_path, monkeypatch, capsys):
    clone = fresh_clone(tmp_path / "clone")
    assert not (clone / "data").exists() and not (clone / "runs").exists() and not (clone / "models").exists()
    monkeypatch.chdir(clone)
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path / "home"))
    for argv in tour_commands():
        argv = quick(argv)
        code = run_cli(argv)
        out = capsys.readouterr()
        assert code == 0, f"`vlmlab {shlex.join(argv)}` exited {code}: {out.err[-2000:]}"
    assert (clone / "runs" / "combined-report.md").is_file()
    assert (clone / "runs" / "icl" / "eval-b" / "run.json").is_file()
    assert (tmp_path / "home" / "toymodels").is_dir()  # the toy model was really built


def test_tour_block_runs_in_bash_from_the_clone(tmp_path: Path) -> None:
    """Lines of the block as a user types them, in bash, with the installed vlmlab importing the
    clone's code: `source .venv/bin/activate`, `vlmlab --help`, a data generator, a scorer."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file():
        pytest.skip("the tour sources .venv/bin/activate; run the tests from the project's venv (scripts/test.sh)")
    clone = fresh_clone(tmp_path / "clone")
    (clone / ".venv").symlink_to(venv)  # what `bash scripts/demo.sh` or `scripts/test.sh` would have made
    script = tour_script().splitlines()
    picked = [line for line in script if not line.startswith(("vlmlab", "echo"))]  # set -e, source .venv/bin/activate
    picked += [line for line in script if line.startswith(("vlmlab --help", "vlmlab toyworld generate faces", "vlmlab score vqa"))]
    assert len(picked) == 5, picked
    (clone / "head.sh").write_text("\n".join(picked) + "\npython -c 'import vlmlab; print(vlmlab.__file__)'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env |= {"VLMLAB_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(clone / "src"), "NO_COLOR": "1"}
    proc = subprocess.run(["bash", "head.sh"], cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Usage: vlmlab" in proc.stdout and (clone / "data/faces/ratings.csv").is_file()
    assert Path(proc.stdout.strip().splitlines()[-1]).is_relative_to(clone / "src")  # the clone's code ran
