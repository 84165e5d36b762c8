"""Checkpoints others can load: every folder vlmlab writes opens with stock `AutoProcessor` +
`AutoModelForImageTextToText` in a process that never imports vlmlab, and generates from one
image chat turn through the stock processor (what `transformers serve` does with it).

Processors built without their video processor (vlmlab never feeds video) are saved with the
`video_processor` section a stock save writes, so `transformers serve`/vLLM find every
sub-processor. Without torchvision (this machine) stock transformers cannot build any video
processor, so for those families the stock load must fail only on torchvision, never on a
missing file.

Besides every tiny family: a Qwen2-VL re-saved by the backend, a full fine-tune as `vlmlab train
--method full` saves it (`save_trained`), a LoRA adapter over its base, and a toy model (the
`face-rater` recipe the demo uses; run alone, this test builds it: minutes).
The toy models and most fine-tunes here are Qwen2-VL, whose stock processor needs torchvision: on a
machine without it their stock model loads and the processor fails on that import only (asserted
below); a LLaVA full fine-tune loads completely either way.
vlmlab writes no merged LoRA (no code path merges an adapter into its base), so there is none to load.

The stock loader runs under `$VLMLAB_STOCK_PYTHON` when that is set (an interpreter of another
venv, e.g. one with torchvision: benchmarks/check_with_torchvision.sh), else under this one.
With torchvision every folder must load. `$VLMLAB_STOCK_RESULTS` names a JSON file for the
per-family outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlmlab.models.tiny import TINY_FAMILIES

STOCK_LOADER = r"""
import json, sys
import PIL.Image, torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.utils import is_torchvision_available
out = {}
for folder in sys.argv[1:]:
    try:
        try:  # a LoRA adapter: the processor is its base's; transformers loads base + adapter (PEFT)
            base = json.load(open(folder + "/adapter_config.json"))["base_model_name_or_path"]
        except FileNotFoundError:
            base = folder
        model = AutoModelForImageTextToText.from_pretrained(folder)  # first: also runs where the processor cannot
        assert sum(p.numel() for p in model.parameters()) > 0
        lora_b = sum(float(p.abs().sum()) for n, p in model.named_parameters() if "lora_B" in n)
        assert (lora_b > 0) == (base != folder), lora_b  # the adapter's trained weights are in the model
        processor = AutoProcessor.from_pretrained(base)
        # what a server does next: one image chat turn through the processor, a few greedy tokens.
        # BLIP-2's stock processor drops its chat template (Blip2Processor.__init__ takes none): the tokenizer's is used.
        chat = [{"role": "user", "content": [{"type": "image", "image": PIL.Image.new("RGB", (56, 56), (200, 30, 30))},
                                             {"type": "text", "text": "What colour is it?"}]}]
        inputs = processor.apply_chat_template(chat, chat_template=processor.chat_template or processor.tokenizer.chat_template,
                                               add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
        with torch.no_grad():
            new = model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] - inputs["input_ids"].shape[1]
        assert new > 0, new
        out[folder] = ["ok", type(processor).__name__, type(model).__name__]
    except Exception as exc:
        out[folder] = ["error", type(exc).__name__, str(exc)[:300]]
out["vlmlab imported"] = "vlmlab" in sys.modules
out["torchvision"] = is_torchvision_available()
print(json.dumps(out))
"""


def stock_python() -> str:
    """The interpreter of the independent loader: `$VLMLAB_STOCK_PYTHON`, else this one."""
    return os.environ.get("VLMLAB_STOCK_PYTHON") or sys.executable


def stock_load(folders: list[Path]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([stock_python(), "-c", STOCK_LOADER, *map(str, folders)], capture_output=True, text=True,
                          timeout=600, cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def expected_subprocessors(folder: Path) -> list[str]:
    """The sub-processors the stock processor class of a folder reads (its __init__ attributes)."""
    import transformers

    name = json.loads((folder / "processor_config.json").read_text())["processor_class"]
    return [a for a in getattr(transformers, name).get_attributes() if a != "tokenizer"]


def lora_adapter(base: Path, out: Path) -> Path:
    """A LoRA adapter as `vlmlab train --method lora` saves it, with non-zero (as if trained) weights."""
    import torch

    from vlmlab.train.model_setup import load_for_training, save_trained

    model = load_for_training(base, method="lora", torch_dtype=torch.float32, lora_r=2, lora_alpha=4, lora_dropout=0.0,
                              target_modules=None, gradient_checkpointing=False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    save_trained(model, None, out, method="lora", train_config={"method": "lora"})
    return out


def full_fine_tune(base: Path, out: Path) -> Path:
    """A fully fine-tuned model as `vlmlab train --method full` saves it (weights moved as if trained)."""
    import torch

    from vlmlab.models.processor import load_processor
    from vlmlab.train.model_setup import load_for_training, save_trained

    model = load_for_training(base, method="full", torch_dtype=torch.float32, lora_r=2, lora_alpha=4, lora_dropout=0.0,
                              target_modules=None, gradient_checkpointing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.add_(0.01)
    save_trained(model, load_processor(base), out, method="full", train_config={"method": "full"})
    return out


@pytest.mark.slow  # one subprocess loads every family, a LoRA adapter and a toy model (~60-120 s under load, + the toy build when alone)
def test_every_tiny_folder_loads_with_stock_transformers(tiny_model, tmp_path: Path, tmp_path_factory) -> None:
    from vlmlab.models.hf import HFBackend
    from vlmlab.toymodels import build_toy_model
    from vlmlab_test_support import shared_basetemp

    families = [f for f in TINY_FAMILIES if not TINY_FAMILIES[f].missing()]
    folders = {f: tiny_model(f) for f in families}
    # a fine-tuned (full) model is saved through the same processor: the Qwen2-VL one, saved again
    resaved = tmp_path / "resaved-qwen2-vl"
    backend = HFBackend(folders["qwen2-vl"])
    backend.model.save_pretrained(resaved)
    backend.processor.save_pretrained(resaved)
    folders["resaved qwen2-vl"] = resaved
    folders["full fine-tune of qwen2-vl"] = full_fine_tune(folders["qwen2-vl"], tmp_path / "full-fine-tune")
    # LLaVA's processor has no video processor: its full fine-tune loads completely without torchvision too
    folders["full fine-tune of llava"] = full_fine_tune(folders["llava"], tmp_path / "full-fine-tune-llava")
    # the toy-model cache tests/toymodels and tests/demo build into: in a full run the face rater is built
    # there once (by whichever test asks first, under a file lock), so loading it here costs nothing more
    toy_root = shared_basetemp(tmp_path_factory) / "vlmlab-home" / "toymodels"
    folders["toy model face-rater"] = build_toy_model("face-rater", cache_root=toy_root, progress=False)
    for name, folder in folders.items():  # every file a stock processor reads is there
        saved = json.loads((folder / "processor_config.json").read_text())
        missing = [a for a in expected_subprocessors(folder) if a not in saved]
        assert not missing, (name, missing)
        assert (folder / "tokenizer.json").exists() and (folder / "chat_template.jinja").exists(), name
    folders["lora adapter of qwen2-vl"] = lora_adapter(folders["qwen2-vl"], tmp_path / "lora-adapter")
    result = stock_load(list(folders.values()))
    assert result.pop("vlmlab imported") is False
    torchvision = result.pop("torchvision")
    if os.environ.get("VLMLAB_STOCK_RESULTS"):  # per family: status, classes or error (for the report)
        Path(os.environ["VLMLAB_STOCK_RESULTS"]).write_text(json.dumps(
            {"python": stock_python(), "torchvision": torchvision} | {n: result[str(f)] for n, f in folders.items()}, indent=1))
    for name, folder in folders.items():
        status, kind, detail = result[str(folder)]
        needs_video = "video_processor" in expected_subprocessors(folder if name != "lora adapter of qwen2-vl" else folders["qwen2-vl"])
        if status == "ok":
            continue
        assert needs_video and not torchvision, (name, kind, detail)
        assert kind == "ImportError" and "torchvision" in detail.lower(), (name, kind, detail)  # never a missing file
