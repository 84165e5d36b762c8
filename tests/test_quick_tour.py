"""The README's Quick tour is a tested script: every `vlmlab` line of its block runs, in order.

The commands are read from README.md itself, so the tour and the test cannot drift apart. They
run in a fresh folder holding only what a clone ships (`configs/`, `examples/`, the ICL example
configs), so a command that needs a file the tour never makes fails here. Sizes are made smaller
by appending options to a few commands (`QUICK`), never by changing what a command reads; the
one exception is the toy-model build (minutes of training, covered by tests/toymodels), which is
replaced by `toymodels list`.
"""

from __future__ import annotations

import shlex
import shutil
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
REPLACED: dict[tuple[str, ...], list[str]] = {("toymodels", "build"): ["toymodels", "list"]}


def tour_commands(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The `vlmlab ...` lines of the first bash block under '## Quick tour', comments removed."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Quick tour"):]
    block = section[section.index("```bash") + len("```bash"):]
    block = block[:block.index("```")]
    commands = []
    for line in block.splitlines():
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


@pytest.mark.slow
def test_quick_tour_runs_in_a_fresh_clone(tmp_path, monkeypatch, capsys):
    for rel in ("configs", "examples", "src/vlmlab/icl/examples"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path / "home"))
    for argv in tour_commands():
        argv = quick(argv)
        code = run_cli(argv)
        out = capsys.readouterr()
        assert code == 0, f"`vlmlab {shlex.join(argv)}` exited {code}: {out.err[-2000:]}"
    assert (tmp_path / "runs" / "combined-report.md").is_file()
    assert (tmp_path / "runs" / "icl" / "eval-b" / "run.json").is_file()
