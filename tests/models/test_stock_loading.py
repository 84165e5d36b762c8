"""Checkpoints others can load: every folder vlmlab writes opens with stock `AutoProcessor` +
`AutoModelForImageTextToText` in a process that never imports vlmlab.

Processors built without their video processor (vlmlab never feeds video) are saved with the
`video_processor` section a stock save writes, so `transformers serve`/vLLM find every
sub-processor. Without torchvision (this machine) stock transformers cannot build any video
processor, so for those families the stock load must fail only on torchvision, never on a
missing file; the with-torchvision load is in benchmarks/gpu_matrix.sh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vlmlab.models.tiny import TINY_FAMILIES

STOCK_LOADER = r"""
import json, sys
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.utils import is_torchvision_available
out = {}
for folder in sys.argv[1:]:
    try:
        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder)
        assert sum(p.numel() for p in model.parameters()) > 0
        out[folder] = ["ok", type(processor).__name__, type(model).__name__]
    except Exception as exc:
        out[folder] = ["error", type(exc).__name__, str(exc)[:300]]
out["vlmlab imported"] = "vlmlab" in sys.modules
out["torchvision"] = is_torchvision_available()
print(json.dumps(out))
"""


def stock_load(folders: list[Path]) -> dict:
    proc = subprocess.run([sys.executable, "-c", STOCK_LOADER, *map(str, folders)], capture_output=True, text=True,
                          timeout=600, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def expected_subprocessors(folder: Path) -> list[str]:
    """The sub-processors the stock processor class of a folder reads (its __init__ attributes)."""
    import transformers

    name = json.loads((folder / "processor_config.json").read_text())["processor_class"]
    return [a for a in getattr(transformers, name).get_attributes() if a != "tokenizer"]


@pytest.mark.slow  # one subprocess loads every family (~40 s under load)
def test_every_tiny_folder_loads_with_stock_transformers(tiny_model, tmp_path: Path) -> None:
    from vlmlab.models.hf import HFBackend

    families = [f for f in TINY_FAMILIES if not TINY_FAMILIES[f].missing()]
    folders = {f: tiny_model(f) for f in families}
    # a fine-tuned (full) model is saved through the same processor: the Qwen2-VL one, saved again
    resaved = tmp_path / "resaved-qwen2-vl"
    backend = HFBackend(folders["qwen2-vl"])
    backend.model.save_pretrained(resaved)
    backend.processor.save_pretrained(resaved)
    folders["resaved qwen2-vl"] = resaved
    for name, folder in folders.items():  # every file a stock processor reads is there
        saved = json.loads((folder / "processor_config.json").read_text())
        missing = [a for a in expected_subprocessors(folder) if a not in saved]
        assert not missing, (name, missing)
        assert (folder / "tokenizer.json").exists() and (folder / "chat_template.jinja").exists(), name
    result = stock_load(list(folders.values()))
    assert result.pop("vlmlab imported") is False
    torchvision = result.pop("torchvision")
    for name, folder in folders.items():
        status, kind, detail = result[str(folder)]
        needs_video = "video_processor" in expected_subprocessors(folder)
        if status == "ok":
            continue
        assert needs_video and not torchvision, (name, kind, detail)
        assert kind == "ImportError" and "torchvision" in detail.lower(), (name, kind, detail)  # never a missing file
