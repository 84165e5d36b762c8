"""A checkpoint whose processor needs a library missing here (Mistral3/Pixtral: torchvision) is one
line at load, exit 2, naming the folder, the processor class and what to install (was an
ImportError traceback, exit 1). With torchvision the same family runs the conformance matrix:
benchmarks/check_with_torchvision.sh."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from vlmlab.cli import main


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_mistral3_folder_without_torchvision_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import Mistral3Config

    folder = tmp_path / "mistral3"
    # the files a Mistral3 checkpoint declares itself by (as Mistral3Config and PixtralProcessor save them)
    Mistral3Config(text_config={"num_hidden_layers": 1}, vision_config={"num_hidden_layers": 1}).save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "PixtralProcessor"}))
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SystemExit) as exc:
        main(["models", "check", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert err == [f"error: {folder}: its processor PixtralProcessor needs torchvision, which is not installed here; "
                   "pip install torchvision (the release that matches your torch, e.g. torch 2.14.1 + torchvision 0.29.1)"]
    assert sorted(p.name for p in folder.iterdir()) == before
