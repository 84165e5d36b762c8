"""Config values that used to pass validation and fail minutes later (or never): one line, exit 2.

Run through the real CLI: the study must stop at config validation, before any model loads, so
the run folder is never created.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.config import load_yaml_text

REPO = Path(__file__).resolve().parents[1]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err.strip()


@pytest.fixture
def caption_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "configs/caption/toy.yaml", tmp_path / "toy.yaml")
    return tmp_path / "toy.yaml"


@pytest.mark.parametrize("override, message", [
    ("finetune.learning_rate=inf", "key 'finetune.learning_rate': Input should be a finite number (got 'inf')"),
    ("finetune.learning_rate=.nan", "key 'finetune.learning_rate': Input should be a finite number"),
    ("finetune.learning_rate=0", "key 'finetune.learning_rate': Input should be greater than 0"),
    ("image.size=100000000", "key 'image.size': Input should be less than or equal to 4096 (got 100000000)"),
    ("generation.max_new_tokens=1000000000000", "key 'generation.max_new_tokens': at most 32768 (got 1000000000000)"),
    ("finetune.seed=-1", "key 'finetune.seed': a seed must be an integer from 0 to 4294967295 (got -1)"),
    ("generation.seed=4294967296", "key 'generation.seed': a seed must be an integer from 0 to 4294967295"),
])
def test_caption_numeric_ranges(override: str, message: str, caption_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(["caption", "run", str(caption_config), "--set", override], capsys)
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(f"error: {caption_config}: ") and message in err
    assert not (caption_config.parent / "runs").exists()


def test_seed_minus_one_in_an_icl_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    config = REPO / "src/vlmlab/icl/examples/candidates.yaml"
    code, err = _cli(["icl", "candidates", str(config), "--set", "seed=-1", "--out", "runs/c"], capsys)
    assert code == 2 and err.count("\n") == 0 and "key 'seed': a seed must be an integer from 0 to 4294967295 (got -1)" in err
    assert not (tmp_path / "runs").exists()


def test_duplicate_yaml_key_names_line_and_key(caption_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = caption_config.read_text()
    caption_config.write_text(text.replace("  max_steps: 400", "  max_steps: 4\n  max_steps: 400", 1))
    line = caption_config.read_text().splitlines().index("  max_steps: 4") + 2  # the second one
    code, err = _cli(["caption", "run", str(caption_config)], capsys)
    assert code == 2
    assert err == f"error: {caption_config}: line {line} invalid YAML: duplicate key 'max_steps' (first on line {line - 1}); keep one of them"
    assert not (caption_config.parent / "runs").exists()


def test_duplicate_keys_only_within_one_mapping() -> None:
    assert load_yaml_text("a: {x: 1}\nb: {x: 2}\nbase: &b {k: 1}\nuse: {<<: *b, k: 2}\n") == {
        "a": {"x": 1}, "b": {"x": 2}, "base": {"k": 1}, "use": {"k": 2}}
    with pytest.raises(Exception, match="duplicate key 'x'"):
        load_yaml_text("a:\n  x: 1\n  x: 2\n")
