"""`vlmlab toymodels` through the real entry point: the recipe table, a cached build, a typo."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.toymodels import build as build_module
from vlmlab.toymodels import recipe_hash, get_recipe, toy_model_dir


def test_list_shows_every_recipe_with_its_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["toymodels", "list", "--cache-root", str(tmp_path)])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "icl-vqa-quick" in out and recipe_hash(get_recipe("face-rater")) in out


def test_build_prints_the_cached_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = toy_model_dir("face-rater-quick", tmp_path)
    folder.mkdir(parents=True)
    (folder / build_module.DONE_FILE).write_text("{}")
    monkeypatch.setattr(build_module, "_build_into", lambda *a, **k: pytest.fail("rebuilt a cached model"))
    with pytest.raises(SystemExit) as exit_info:
        main(["toymodels", "build", "face-rater-quick", "--cache-root", str(tmp_path)])
    assert exit_info.value.code in (0, None)
    assert capsys.readouterr().out.strip() == str(folder)


def test_unknown_recipe_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["toymodels", "build", "icl-vga", "--cache-root", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean 'icl-vqa'" in err and len(err.strip().splitlines()) == 1
