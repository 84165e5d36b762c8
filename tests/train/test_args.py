"""`FineTuneArgs`: validates itself, keeps today's fingerprint, and is what caption's config builds.

The golden dicts below are the `train_config.json` files `fine_tune` wrote before `FineTuneArgs`
existed (main at d7b80ec, tiny Qwen2-VL at /tmp/golden/model, the four text examples below, CPU): a
run folder or a cached toy model made then resumes only if these keys, values and fingerprints stay.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from vlmlab.errors import ConfigError
from vlmlab.models.base import Turn
from vlmlab.train import FineTuneArgs, TrainExample
from vlmlab.train.args import FIELD_NAMES, resolve_args, train_config
from vlmlab.train.examples import examples_fingerprint

COMMON = {"model_path": "/tmp/golden/model", "examples": "dd75601c1c112067", "num_examples": 4, "dtype": "float32",
          "mixed_precision": "no", "world_size": 1, "epochs": 1, "grad_accum": 1, "gradient_checkpointing": False,
          "lora_alpha": 32, "lora_dropout": 0.05, "max_grad_norm": 1.0, "max_length": 64, "max_steps": 1,
          "scheduler": "cosine", "skip_too_long": False, "weight_decay": 0.0}
GOLDEN = [
    ({"target_modules": ["q_proj", "v_proj"], "lora_r": 4, "max_steps": 1, "batch_size": 2, "max_length": 64},
     COMMON | {"batch_size": 2, "fingerprint": "5db3855a4ca4", "learning_rate": 0.0002, "lora_r": 4, "loss_on": "last",
               "method": "lora", "seed": 0, "target_modules": ["q_proj", "v_proj"], "warmup_ratio": 0.03}),
    ({"max_steps": 1, "max_length": 64},
     COMMON | {"batch_size": 8, "fingerprint": "56b31bc6076a", "learning_rate": 0.0002, "lora_r": 16, "loss_on": "last",
               "method": "lora", "seed": 0, "target_modules": None, "warmup_ratio": 0.03}),
    # the shape of a toy-model stage (`toymodels.build`): full training, every answer, its own seed
    ({"method": "full", "learning_rate": 1e-3, "max_steps": 1, "batch_size": 2, "max_length": 64, "loss_on": "all_assistant",
      "warmup_ratio": 0.1, "scheduler": "cosine", "seed": 3},
     COMMON | {"batch_size": 2, "fingerprint": "4b9371cf4fcb", "learning_rate": 0.001, "lora_r": 16, "loss_on": "all_assistant",
               "method": "full", "seed": 3, "target_modules": None, "warmup_ratio": 0.1}),
]


def golden_examples() -> list[TrainExample]:
    return [TrainExample(id=f"e{i}", conversation=[Turn("user", [f"What is {i} plus {i}?"])], target=str(2 * i)) for i in range(4)]


@pytest.mark.parametrize("overrides, expected", GOLDEN)
def test_the_fingerprint_keeps_the_keys_and_values_runs_were_written_with(overrides, expected):
    assert examples_fingerprint(golden_examples()) == COMMON["examples"]
    for args in (resolve_args(None, overrides), FineTuneArgs(**overrides)):
        config = train_config(args, model_path=COMMON["model_path"], examples=COMMON["examples"], num_examples=4,
                              dtype="float32", mixed_precision="no", world_size=1)
        assert config == expected


def test_fine_tune_takes_args_and_overrides_alike():
    base = FineTuneArgs(lora_r=4, max_steps=3)
    assert resolve_args(base, {"learning_rate": 1e-3}) == FineTuneArgs(lora_r=4, max_steps=3, learning_rate=1e-3)
    assert resolve_args(None, {}) == FineTuneArgs() and resolve_args(base, {}) == base
    assert FineTuneArgs(target_modules=["q_proj"]).target_modules == ("q_proj",)  # a list is frozen as a tuple
    assert hash(FineTuneArgs(target_modules=["q_proj"])) == hash(FineTuneArgs(target_modules=("q_proj",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.lora_r = 8  # type: ignore[misc]


def test_every_problem_is_one_line_in_fine_tunes_words():
    with pytest.raises(ConfigError) as info:
        FineTuneArgs(method="qlora", loss_on="every", scheduler="step", batch_size=0, grad_accum=0, max_length=0, epochs=0,
                     learning_rate=0.0, dtype="fp8", warmup_ratio=1.0, lora_r=0, lora_dropout=-0.1)
    assert str(info.value) == (
        "fine_tune: method must be 'lora' or 'full', got 'qlora'; loss_on must be 'last' or 'all_assistant', got 'every'; "
        "scheduler must be cosine, linear or constant, got 'step'; batch_size must be >= 1, got 0; grad_accum must be >= 1, "
        "got 0; max_length must be >= 1, got 0; epochs must be >= 1 (or give max_steps), got 0; learning_rate must be > 0, "
        "got 0.0; dtype must be auto, bfloat16, float16 or float32, got 'fp8'; warmup_ratio must be in [0, 1), got 1.0; "
        "lora_r must be >= 1, got 0; lora_dropout must be in [0, 1), got -0.1"
    )
    with pytest.raises(ConfigError, match=r"^fine_tune: max_steps must be >= 1, got 0$"):
        FineTuneArgs(max_steps=0, epochs=0)  # with max_steps the epochs do not matter
    with pytest.raises(ConfigError, match=r"^fine_tune: batch_size must be >= 1, got 0; save_every must be >= 1, got 0$"):
        resolve_args(None, {"batch_size": 0}, also_problems=["save_every must be >= 1, got 0"])


def test_an_unknown_argument_names_the_closest_one():
    with pytest.raises(ConfigError, match=r"^fine_tune: unknown argument 'lora_rank'; did you mean 'lora_r'\?$"):
        resolve_args(None, {"lora_rank": 4})
    with pytest.raises(ConfigError, match=r"^fine_tune: unknown argument 'save_evry'; did you mean 'save_every'\?$"):
        resolve_args(None, {"save_evry": 4}, other_names=("save_every", "resume"))
    with pytest.raises(ConfigError, match=r"^fine_tune: unknown argument 'zzz'; FineTuneArgs has: method, lora_r, .*, gradient_checkpointing$"):
        resolve_args(None, {"zzz": 1})


def test_fine_tune_refuses_an_unknown_argument_before_touching_the_model(tmp_path):
    from vlmlab.train import fine_tune

    with pytest.raises(ConfigError, match="unknown argument 'learnin_rate'; did you mean 'learning_rate'"):
        fine_tune(tmp_path / "no-model", golden_examples(), tmp_path / "out", learnin_rate=1e-3)
    with pytest.raises(ConfigError, match="unknown argument 'keep_checkpoint'; did you mean 'keep_checkpoints'"):
        fine_tune(tmp_path / "no-model", golden_examples(), tmp_path / "out", keep_checkpoint=1)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- caption's `finetune:` block


def _caption_accepts(name: str, value: object) -> bool:
    import pydantic

    from vlmlab.caption.config import FinetuneConfig

    try:
        FinetuneConfig.model_validate({name: value})
    except pydantic.ValidationError:
        return False
    return True


def _args_accept(name: str, value: object) -> bool:
    try:
        FineTuneArgs(**{name: value})
    except (ConfigError, TypeError):
        return False
    return True


PROBES = [-1, 0, 1, 2, 15, 16, 4096, -0.5, 0.0, 1e-9, 0.5, 0.999, 1.0, 1.5, math.inf, None, True, False,
          "lora", "full", "qlora", "last", "all_assistant", "cosine", "linear", "constant", "step",
          "auto", "bfloat16", "float16", "float32", "fp8"]


def test_captions_finetune_block_is_finetuneargs_fields_with_bounds_no_looser():
    from vlmlab.caption.config import CAPTION_ONLY_FINETUNE_KEYS, FinetuneConfig

    shared = set(FinetuneConfig.model_fields) - set(CAPTION_ONLY_FINETUNE_KEYS)
    assert shared <= set(FIELD_NAMES) and len(shared) == len(FinetuneConfig.model_fields) - 2
    looser = [(name, value) for name in sorted(shared) for value in PROBES
              if _caption_accepts(name, value) and not _args_accept(name, value)]
    assert not looser, f"caption's finetune block accepts what FineTuneArgs refuses: {looser}"
    assert not _caption_accepts("lora_r", 0) and not _caption_accepts("warmup_ratio", 1.0)  # the probes do probe


def test_captions_finetune_block_keeps_its_keys_and_defaults_so_config_hashes_stay():
    from vlmlab.caption.config import FinetuneConfig

    assert FinetuneConfig().model_dump(mode="json") == {  # printed by main at d7b80ec
        "batch_size": 8, "dtype": "auto", "enabled": True, "epochs": 1, "grad_accum": 1, "learning_rate": 0.0002,
        "lora_alpha": 32, "lora_dropout": 0.05, "lora_r": 16, "max_length": 512, "max_steps": None, "method": "lora",
        "save_every": 200, "scheduler": "cosine", "seed": 0, "skip_too_long": False, "warmup_ratio": 0.03}


def test_caption_builds_the_args_it_used_to_pass_field_by_field():
    from vlmlab.caption.config import FinetuneConfig

    ft = FinetuneConfig(lora_r=4, max_steps=7, max_length=256, seed=3, scheduler="linear")
    args = ft.fine_tune_args(target_modules=["q_proj", "v_proj"], dtype="float32")
    # what `caption.study._finetune` passed as keywords before FineTuneArgs (the rest were fine_tune's defaults)
    before = dict(method=ft.method, lora_r=ft.lora_r, lora_alpha=ft.lora_alpha, lora_dropout=ft.lora_dropout,
                  target_modules=["q_proj", "v_proj"], learning_rate=ft.learning_rate, epochs=ft.epochs,
                  max_steps=ft.max_steps, batch_size=ft.batch_size, grad_accum=ft.grad_accum, max_length=ft.max_length,
                  skip_too_long=ft.skip_too_long, seed=ft.seed, dtype="float32", warmup_ratio=ft.warmup_ratio,
                  scheduler=ft.scheduler)
    assert args == resolve_args(None, before)
    assert ft.fine_tune_args(target_modules=None, dtype="auto").target_modules is None
