"""`vlmlab models check` on checkpoints written by stock transformers in a process without vlmlab.

#13 asks that folders other tools wrote work as long as they hold a standard config, processor
and chat template. Two kinds, each checked through the real CLI, for families whose processors
load without torchvision on this machine:

- vlmlab's tiny checkpoints re-saved by plain `save_pretrained` (no vlmlab code on the writing side);
- folders built from scratch by transformers + tokenizers (`foreign_models.py`): their own WordPiece
  tokenizer and chat-template format, which must also pass every conformance check.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAVE = textwrap.dedent(
    """
    import sys
    from transformers import AutoModelForImageTextToText, AutoProcessor
    src, dst = sys.argv[1], sys.argv[2]
    AutoProcessor.from_pretrained(src).save_pretrained(dst)
    AutoModelForImageTextToText.from_pretrained(src).save_pretrained(dst)
    assert not any(name.startswith("vlmlab") for name in sys.modules)
    """
)


@pytest.mark.parametrize("family", ["llava", "gemma3", "idefics3"])
def test_models_check_passes_on_a_folder_saved_by_stock_transformers(family: str, tiny_model, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vlmlab.cli import app

    dst = tmp_path / family
    saved = subprocess.run([sys.executable, "-c", SAVE, str(tiny_model(family)), str(dst)], capture_output=True, text=True,
                           env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert (tiny_model(family) / "vlmlab_tiny.json").is_file()  # the source carries vlmlab's record ...
    assert (dst / "config.json").is_file() and not (dst / "vlmlab_tiny.json").exists()  # ... the stock save does not
    checked = CliRunner().invoke(app, ["models", "check", str(dst)], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "generate_seconds" in checked.output and "score_target_tokens" in checked.output


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from foreign_models import build_foreign

    return build_foreign(tmp_path_factory.mktemp("foreign"), "llava", "gemma3", "idefics3", "git")


@pytest.mark.slow  # a subprocess builds three models (~20 s under load), then each passes the whole matrix (~5 s)
@pytest.mark.parametrize("family", ["llava", "gemma3", "idefics3"])
def test_a_folder_built_without_vlmlab_passes_models_check_and_the_matrix(family: str, foreign: dict[str, Path]) -> None:
    """Built by transformers + tokenizers alone: a WordPiece tokenizer and a `<|user|>...[END]` chat
    template vlmlab never wrote; `models check` passes and so does every conformance check."""
    import json

    from typer.testing import CliRunner

    from vlmlab.cli import app
    from vlmlab.testing.conformance import run_all

    folder = foreign[family]
    assert json.loads((folder / "tokenizer.json").read_text())["model"]["type"] == "WordPiece"
    assert "<|assistant|>" in (folder / "chat_template.jinja").read_text()
    before = sorted(p.name for p in folder.iterdir())
    checked = CliRunner().invoke(app, ["models", "check", str(folder)], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "generate_seconds" in checked.output and "score_target_tokens" in checked.output
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written into it
    results = run_all(folder)
    assert all(r == "ok" or r.startswith(("n/a", "refused")) for r in results.values()), results


def test_unknown_family_without_derivable_facts_is_one_line_naming_them(foreign: dict[str, Path], tmp_path: Path, capsys,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """GIT (written by transformers alone) is an image-text-to-text architecture vlmlab has no entry for;
    its processor names no image token and it ships no chat template. `models check` and a study say
    so in one line, naming both facts and how to supply each, and write nothing."""
    from test_preflight_cli import rating_config, run_cli

    from vlmlab.cli import main
    from vlmlab.models.families import FAMILIES

    git_folder = foreign["git"]
    assert "git" not in {f.model_type for f in FAMILIES.values()}
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in git_folder.iterdir())
    code, err = run_cli(["models", "check", str(git_folder)], capsys)
    assert code == 2 and len(err) == 1, err
    line = err[0]
    assert line.startswith(f"error: {git_folder}: model_type 'git' lacks a chat template"), line
    assert "add chat_template.jinja to the folder" in line and "default_chat_template=" in line
    assert "the image placeholder" in line and '"extra_special_tokens": {"image_token"' in line
    assert sorted(p.name for p in git_folder.iterdir()) == before and list(tmp_path.iterdir()) == []

    (tmp_path / "faces").mkdir()
    faces_dir = tmp_path / "faces" / "f"
    with pytest.raises(SystemExit):
        main(["toyworld", "generate", "faces", "--out", str(faces_dir), "--n", "6"])
    code, err = run_cli(["rating", "run", str(rating_config(tmp_path, faces_dir, {"ref": str(git_folder)}))], capsys)
    assert code == 2 and err == [line]
    assert not (tmp_path / "out").exists()
