"""Tiny offline checkpoints: deterministic, real architectures, sensible tokenizers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.errors import ModelError
from vlmlab.models.processor import load_processor
from vlmlab.models.tiny import TINY_FAMILIES, build_tiny, recipe_hash, tiny_model_path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_build_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    a = _files(build_tiny("qwen2-vl", tmp_path / "a", seed=3, num_layers=2))
    b = _files(build_tiny("qwen2-vl", tmp_path / "b", seed=3, num_layers=2))
    c = _files(build_tiny("qwen2-vl", tmp_path / "c", seed=4, num_layers=2))
    assert a.keys() == b.keys() and "model.safetensors" in a and "tokenizer.json" in a
    assert a == b
    assert a["model.safetensors"] != c["model.safetensors"]
    assert a["tokenizer.json"] == c["tokenizer.json"]


@pytest.mark.parametrize("family", list(TINY_FAMILIES))
def test_every_family_is_a_real_architecture_with_its_template(family: str, tiny_model) -> None:
    if TINY_FAMILIES[family].missing():  # Pixtral's processor imports torchvision: a one-line error says so
        with pytest.raises(ModelError, match=f"tiny {family}: its processor needs torchvision"):
            tiny_model(family)
        return
    path = tiny_model(family)
    cfg = json.loads((path / "config.json").read_text())
    meta = json.loads((path / "vlmlab_tiny.json").read_text())
    assert meta["family"] == family and meta["recipe_hash"] == recipe_hash(family)
    # IdeficsForVisionText2Text: IDEFICS keeps its Flamingo-era class name
    assert cfg["architectures"][0].endswith(("ForConditionalGeneration", "ForVisionText2Text"))
    proc = load_processor(path)
    assert proc.chat_template
    tok = proc.tokenizer
    for d in "123456789":
        assert len(tok(d, add_special_tokens=False)["input_ids"]) == 1, d
    for word in ("red", " red", " circle", " happy", " square", " blue"):
        assert len(tok(word, add_special_tokens=False)["input_ids"]) == 1, word
    for special in tok.all_special_tokens:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special


def test_tiny_model_path_builds_once(tmp_path: Path) -> None:
    first = tiny_model_path("llava", tmp_path, num_layers=1)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny_model_path("llava", tmp_path, num_layers=1)
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp
    assert tiny_model_path("llava", tmp_path, num_layers=2) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_unknown_family_and_option_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="did you mean 'qwen2-vl'"):
        build_tiny("qwen2vl", tmp_path)
    with pytest.raises(ModelError, match="num_layer"):
        build_tiny("qwen2-vl", tmp_path, num_layer=2)


def test_processor_class_is_found_without_processor_config(tiny_model, tmp_path: Path) -> None:
    """Older checkpoints declare no processor_class: the model_type decides, video is dropped."""
    import shutil

    src = tiny_model("qwen2-vl")
    dst = tmp_path / "old"
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "processor_config.json").read_text())
    (dst / "processor_config.json").unlink()
    (dst / "preprocessor_config.json").write_text(json.dumps(cfg["image_processor"]))
    proc = load_processor(dst)
    assert type(proc).__name__ == "Qwen2VLProcessor" and not hasattr(proc, "video_processor")
    assert proc.image_processor.size.longest_edge == 56 * 56  # max_pixels, as transformers 5 stores it


def test_folder_without_chat_template_is_a_clear_error(tiny_model, tmp_path: Path) -> None:
    import shutil

    dst = tmp_path / "notemplate"
    shutil.copytree(tiny_model("llava"), dst)
    (dst / "chat_template.jinja").unlink()
    tok_cfg = json.loads((dst / "tokenizer_config.json").read_text())
    tok_cfg.pop("chat_template", None)
    (dst / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    with pytest.raises(ModelError, match="no chat template"):
        load_processor(dst)
