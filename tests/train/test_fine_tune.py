"""fine_tune end to end on a tiny Qwen2-VL: LoRA touches only the adapter, full training learns,
gradient accumulation is exact, finished runs are returned, mismatched runs are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlmlab.errors import DataError, RunError
from vlmlab.train import StepLog, fine_tune

LORA = dict(method="lora", target_modules=["q_proj", "v_proj"], lora_r=4, lora_alpha=8, lora_dropout=0.0)


def base_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_lora_changes_the_adapter_and_not_the_base(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    before = base_weights(tiny_qwen)
    result = fine_tune(tiny_qwen, examples, tmp_path / "ft", **LORA, learning_rate=1e-2, max_steps=4,
                       batch_size=4, max_length=64, warmup_ratio=0.0, show_progress=False)
    assert result.output_path == tmp_path / "ft" / "adapter" and result.steps == 4 and len(result.losses) == 4
    adapter = load_file(str(result.output_path / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it trained
    # the base checkpoint on disk is untouched, and the trained model's base layers equal it
    after_file = base_weights(tiny_qwen)
    assert before.keys() == after_file.keys() and all(torch.equal(before[k], after_file[k]) for k in before)
    plain = AutoModelForImageTextToText.from_pretrained(tiny_qwen).state_dict()
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(tiny_qwen), result.output_path)
    peft_base = {k.removeprefix("base_model.model.").replace(".base_layer", ""): v
                 for k, v in model.state_dict().items() if "lora_" not in k}
    assert peft_base.keys() == plain.keys()
    assert all(torch.equal(peft_base[k], plain[k]) for k in plain)
    assert any(".base_layer" in k for k in model.state_dict())  # the adapter did wrap layers
    assert json.loads((result.output_path / "train_config.json").read_text())["method"] == "lora"


def test_full_training_learns_and_the_hf_backend_generates_it(tiny_qwen: Path, colour_images, examples, tmp_path: Path) -> None:
    from vlmlab.models.base import GenerationRequest, Turn
    from vlmlab.models.hf import HFBackend

    logs: list[StepLog] = []
    result = fine_tune(tiny_qwen, examples, tmp_path / "full", method="full", learning_rate=1e-2, max_steps=40,
                       batch_size=8, max_length=64, warmup_ratio=0.1, scheduler="constant", log_every=10,
                       on_log=logs.append, show_progress=False)
    assert [log.step for log in logs] == [10, 20, 30, 40]
    # measured: 6.49 at step 1, 0.07 at step 40
    assert sum(result.losses[-5:]) / 5 < 0.1 * result.losses[0], result.losses
    out = result.output_path
    assert (out / "model.safetensors").is_file() and (out / "processor_config.json").is_file()
    assert not (tmp_path / "full" / "checkpoints").exists()  # removed once the result is saved
    # The trained folder loads like any checkpoint; the inference prompt is the training prompt, and the
    # model learned to answer AND to stop (the end-of-turn token carried loss).
    backend = HFBackend(out)
    requests = [GenerationRequest(c, [Turn("user", [im, "What is the colour?"])], max_new_tokens=8)
                for c, im in colour_images.items()]
    assert [(r.id, r.text, r.status) for r in backend.generate(requests)] == [(c, c, "ok") for c in colour_images]


def test_gradient_accumulation_equals_a_big_batch(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    common = dict(**LORA, learning_rate=1e-2, max_steps=2, max_length=64, warmup_ratio=0.0, show_progress=False)
    big = fine_tune(tiny_qwen, examples, tmp_path / "big", batch_size=8, grad_accum=1, **common)
    acc = fine_tune(tiny_qwen, examples, tmp_path / "acc", batch_size=2, grad_accum=4, **common)
    assert acc.losses == pytest.approx(big.losses, rel=1e-5)
    a = load_file(str(big.output_path / "adapter_model.safetensors"))
    b = load_file(str(acc.output_path / "adapter_model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_finished_run_is_returned_and_a_different_one_refused(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    kw = dict(**LORA, learning_rate=1e-2, max_steps=2, batch_size=4, max_length=64, show_progress=False)
    first = fine_tune(tiny_qwen, examples, tmp_path / "ft", **kw)
    calls: list[StepLog] = []
    again = fine_tune(tiny_qwen, examples, tmp_path / "ft", **kw, on_log=calls.append)
    assert again == first and calls == []  # nothing retrained
    with pytest.raises(RunError, match=r"different setup \(differs in: learning_rate\)"):
        fine_tune(tiny_qwen, examples, tmp_path / "ft", **(kw | {"learning_rate": 1e-3}))
    with pytest.raises(RunError, match="differs in: examples"):
        fine_tune(tiny_qwen, examples[:-1], tmp_path / "ft", **kw)
    fresh = fine_tune(tiny_qwen, examples, tmp_path / "ft", **(kw | {"learning_rate": 1e-3}), resume=False)
    assert fresh.losses[0] == pytest.approx(first.losses[0]) and fresh.losses[1] != first.losses[1]


def test_too_long_sample_stops_before_training(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    kw = dict(**LORA, learning_rate=1e-2, max_steps=1, batch_size=4, show_progress=False)
    with pytest.raises(DataError, match=r"training sample 'ex0' needs \d+ tokens \(4 of them image tokens\)"):
        fine_tune(tiny_qwen, examples, tmp_path / "ft", max_length=10, **kw)
    assert not (tmp_path / "ft" / "adapter").exists()


def test_default_lora_targets_are_the_language_model_projections(tiny_qwen: Path) -> None:
    from transformers import AutoModelForImageTextToText

    from vlmlab.models.families import lora_targets
    from vlmlab.train.model_setup import load_for_training

    model = load_for_training(tiny_qwen, method="lora", torch_dtype=torch.float32, lora_r=4, lora_alpha=8,
                              lora_dropout=0.0, target_modules=None, gradient_checkpointing=False)
    import re

    pattern = lora_targets(AutoModelForImageTextToText.from_pretrained(tiny_qwen))
    adapted = {n.removeprefix("base_model.model.").rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert adapted and all(re.fullmatch(pattern, name) for name in adapted)
    assert {name.rsplit(".", 1)[-1] for name in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("visual" in name for name in adapted)  # the vision tower is not adapted
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_bfloat16_autocast_trains_and_float16_needs_a_gpu(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    from vlmlab.errors import ConfigError
    from vlmlab.train.model_setup import resolve_dtype

    result = fine_tune(tiny_qwen, examples, tmp_path / "bf16", **LORA, dtype="bfloat16", learning_rate=1e-2,
                       max_steps=2, batch_size=4, max_length=64, show_progress=False)
    assert result.dtype == "bfloat16" and all(l == l for l in result.losses)
    if not torch.cuda.is_available():
        assert resolve_dtype("auto", tiny_qwen) == (torch.float32, "no")
        with pytest.raises(ConfigError, match="float16 needs a GPU"):
            resolve_dtype("float16", tiny_qwen)


def test_one_process_trains_float32_then_bfloat16_then_float32_again(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    """Several models of a study train in one process with different dtypes (accelerate's process-wide
    state would refuse a second precision); bfloat16 autocast takes effect and leaves nothing behind.
    Full training keeps float32 weights, so only autocast can make the bfloat16 run differ."""
    args = dict(method="full", learning_rate=1e-3, max_steps=2, batch_size=4, max_length=64, warmup_ratio=0.0, show_progress=False)
    first = fine_tune(tiny_qwen, examples, tmp_path / "fp32-a", **args, dtype="float32")
    half = fine_tune(tiny_qwen, examples, tmp_path / "bf16", **args, dtype="bfloat16")
    again = fine_tune(tiny_qwen, examples, tmp_path / "fp32-b", **args, dtype="float32")
    assert half.dtype == "bfloat16" and half.losses != first.losses  # the forward really ran in bfloat16
    assert again.losses == first.losses
    files = [load_file(str(r.output_path / "model.safetensors")) for r in (first, again)]
    assert files[0].keys() == files[1].keys() and all(torch.equal(files[0][k], files[1][k]) for k in files[0])


def test_episodes_train_on_every_answer_and_reencoding_changes_nothing(tiny_qwen: Path, colour_images, tmp_path: Path) -> None:
    from vlmlab.models.base import Turn
    from vlmlab.train import TrainExample

    im, colours = colour_images, list(colour_images)
    episodes = [
        TrainExample(f"ep{i}", [
            Turn("user", [im[colours[i % 4]], "What about this one?"]), Turn("assistant", colours[i % 4]),
            Turn("user", [im[colours[(i + 1) % 4]], "What about this one?"]),
        ], colours[(i + 1) % 4])
        for i in range(8)
    ]
    kw = dict(**LORA, loss_on="all_assistant", learning_rate=1e-2, max_steps=3, batch_size=4, max_length=64,
              show_progress=False)
    kept = fine_tune(tiny_qwen, episodes, tmp_path / "kept", **kw)
    # keep nothing in memory: every batch is re-encoded from the images, with identical results
    again = fine_tune(tiny_qwen, episodes, tmp_path / "reencoded", keep_encoded_bytes=0, **kw)
    assert kept.losses == again.losses and kept.steps == 3
    last_only = fine_tune(tiny_qwen, episodes, tmp_path / "last", **(kw | {"loss_on": "last"}))
    assert last_only.losses[0] != kept.losses[0]  # the demonstration answers carry loss too


def test_bad_arguments_are_reported_together_before_loading(tiny_qwen: Path, examples, tmp_path: Path) -> None:
    from vlmlab.errors import ConfigError, ModelError

    with pytest.raises(ConfigError, match=r"method must be 'lora' or 'full', got 'qlora'; batch_size must be >= 1, got 0"):
        fine_tune(tiny_qwen, examples, tmp_path / "x", method="qlora", batch_size=0, show_progress=False)
    with pytest.raises(ModelError, match="no config.json"):
        fine_tune(tmp_path, examples, tmp_path / "x", show_progress=False)
