"""Model names users type, local folders, and the one `load_backend` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.errors import ModelError
from vlmlab.models.families import FAMILIES, lora_targets
from vlmlab.models.loading import load_backend
from vlmlab.models.names import ModelSpec, get_spec, list_specs, register
from vlmlab.models.tiny import TINY_FAMILIES

USER_NAMES = ["qwen2-vl-2b", "qwen2.5-vl-3b", "internvl3.5-1b", "internvl3.5-2b", "gemma3-4b", "blip2-opt-2.7b", "smolvlm", "llava"]


def test_every_user_name_is_registered_with_its_family_facts() -> None:
    names = {s.name for s in list_specs()}
    assert set(USER_NAMES) <= names
    for name in USER_NAMES:
        spec = get_spec(name)
        assert spec.hf_id and "/" in spec.hf_id
    assert get_spec("gemma3-4b").dtype == "bfloat16"
    assert get_spec("qwen2-vl-2b").family.model_type == "qwen2_vl"
    assert get_spec("smolvlm").family.model_type == "idefics3"
    assert get_spec("tiny-gemma3").dtype == "float32"


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ModelError, match="did you mean 'qwen2-vl-2b'"):
        get_spec("qwen2-vl-2")
    with pytest.raises(ModelError, match="unknown model"):
        get_spec("zzzzzz")


def test_the_import_path_the_readme_documents_still_works() -> None:
    """README "Python API": `from vlmlab.models.registry import load_backend` (and the name table)."""
    import vlmlab.models.loading as loading
    import vlmlab.models.names as names
    from vlmlab.models import registry

    assert registry.load_backend is loading.load_backend and registry.check_model is loading.check_model
    assert registry.get_spec is names.get_spec and registry.register is names.register and registry.FAMILIES is FAMILIES


def test_duplicate_name_is_an_error() -> None:
    with pytest.raises(ModelError, match="already registered"):
        register(ModelSpec("llava", "x/y", FAMILIES["llava"]))


def test_local_folder_family_comes_from_its_config(tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    spec = get_spec(str(tiny_qwen2_vl))
    assert spec.family.family == "qwen2-vl" and spec.tiny and spec.path == tiny_qwen2_vl
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert get_spec(str(tmp_path)).family.family == "bert"  # unknown families take the generic path
    with pytest.raises(ModelError, match="model_type 'bert' is not an image-text-to-text architecture"):
        load_backend(tmp_path)


def test_load_backend_builds_tiny_names_and_loads_folders(tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    b = load_backend(tiny_qwen2_vl, batch_size=2)
    assert b.name == "hf" and b.batch_size == 2 and b.describe()["dtype"] == "float32"
    t = load_backend("tiny-idefics3", tiny_root=tmp_path)
    assert t.spec.family.family == "idefics3"
    with pytest.raises(ModelError, match="unknown backend kind"):
        load_backend("x", kind="grpc")  # type: ignore[arg-type]


def test_cli_models_list_tiny_and_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vlmlab.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "300", "VLMLAB_HOME": str(tmp_path / "home")}
    listed = runner.invoke(app, ["models", "list"], env=env)
    assert listed.exit_code == 0 and "qwen2.5-vl-3b" in listed.output and "google/gemma-3-4b-it" in listed.output
    rows = family_rows(listed.output)  # `vlmlab.models.support`'s rows, which the conformance matrix holds to behaviour
    assert list(rows) == list(TINY_FAMILIES)
    # facts of the architectures themselves: BLIP-2 puts one image's query tokens before the text and
    # ships no chat template; IDEFICS (Flamingo) takes interleaved prompts and adapts its gated
    # cross-attention layers too; Qwen3-VL's deepstack features keep it out of the vision cache
    assert rows["blip2"]["images/prompt"] == "1" and rows["blip2"]["overrides"] == "default_chat_template"
    assert rows["idefics"]["interleaved"] == "yes" and rows["llava"]["interleaved"] == "no"
    assert rows["idefics"]["LoRA"] == "56 linear" and rows["llava"]["LoRA"] == "28 linear"  # 4 layers x (7 + 7 gated x-attn)
    assert rows["qwen3-vl"]["vision cache"] == "no" and rows["qwen3-vl"]["overrides"] == "vision_cache"
    assert rows["qwen2-vl"]["vision cache"] == "yes" and rows["qwen2-vl"]["images/prompt"] == "any"
    if TINY_FAMILIES["mistral3"].missing():
        assert rows["mistral3"]["needs"] == "torchvision" and rows["mistral3"]["LoRA"] == "?"
    [cache] = (tmp_path / "home" / "tiny").glob("support-*.json")
    written = cache.stat().st_mtime_ns
    assert runner.invoke(app, ["models", "list"], env=env).output == listed.output  # read back from the cache
    assert cache.stat().st_mtime_ns == written
    built = runner.invoke(app, ["models", "tiny", "gemma3", "--out", str(tmp_path / "g"), "--seed", "1"])
    assert built.exit_code == 0, built.output
    assert (tmp_path / "g" / "model.safetensors").exists()
    checked = runner.invoke(app, ["models", "check", str(tmp_path / "g")], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "generate_seconds" in checked.output and "score_target_tokens" in checked.output


def family_rows(output: str) -> dict[str, dict[str, str]]:
    """The families table of `vlmlab models list`: family -> support column -> cell."""
    from vlmlab.models.support import SUPPORT_COLUMNS

    table = output[output.index("families ("):]
    lines = [[c.strip() for c in line.strip("│┃ ").split("│" if "│" in line else "┃")] for line in table.splitlines()
             if line.startswith(("│", "┃"))]
    head, *body = lines
    return {cells[0]: {c: cells[head.index(c)] for c in SUPPORT_COLUMNS} for cells in body}


def test_cli_unknown_model_is_one_line_and_exit_2(capsys) -> None:
    from vlmlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", "check", "qwen2-vl2b"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean 'qwen2-vl-2b'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("family,per_layer", [("qwen2-vl", 7), ("llava", 7), ("idefics3", 7), ("gemma3", 7), ("internvl", 7), ("blip2", 6)])
def test_lora_targets_are_the_language_model_only(family: str, per_layer: int, tiny_model) -> None:
    import re

    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model(family))
    pattern = lora_targets(model)
    hit = [n for n, m in model.named_modules() if re.fullmatch(pattern, n)]
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "vis" in n]
    n_layers = model.config.get_text_config().num_hidden_layers
    assert len(hit) == per_layer * n_layers  # q k v o + gate up down (OPT: fc1 fc2) per decoder layer
    assert all(isinstance(dict(model.named_modules())[n], torch.nn.Linear) for n in hit)
    assert not [n for n in hit if "vision" in n or "visual" in n]
    assert linear and not set(linear) & set(hit)  # the vision tower has projections; none adapted
