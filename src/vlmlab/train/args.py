"""`FineTuneArgs`: what a fine-tuning run learns with, as one frozen value that checks itself.

Like PEFT's `LoraConfig`, the arguments are a dataclass that validates itself in `__post_init__`
(every problem in one `ConfigError` line), so a notebook, caption's config and the toy-model
recipes build the same value, and the run's fingerprint hashes exactly these fields. What only
steers a run (how often to checkpoint, whether to resume, progress output) is not here: it is a
keyword of `fine_tune` and never changes the weights.

    args = FineTuneArgs(method="lora", lora_r=8, learning_rate=1e-4, max_steps=200)
    fine_tune(model, examples, out, args, save_every=50)
    fine_tune(model, examples, out, lora_r=8, max_steps=200)       # the same: overrides of the defaults
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Literal, Mapping, Sequence

from vlmlab.errors import ConfigError
from vlmlab.registry import did_you_mean

Method = Literal["lora", "full"]
LossOn = Literal["last", "all_assistant"]
DtypeName = Literal["auto", "bfloat16", "float16", "float32"]
SchedulerName = Literal["cosine", "linear", "constant"]


@dataclass(frozen=True)
class FineTuneArgs:
    """The arguments of a fine-tuning run that decide its weights (all of them enter the fingerprint).

    Attributes:
        method: "lora" (PEFT adapter on `target_modules`, base frozen) or "full" (all weights train).
        lora_r, lora_alpha, lora_dropout: the LoRA adapter's rank, scale and dropout.
        target_modules: LoRA targets (module names or one PEFT regex); None: the language model's
            attention/MLP projections, found in the module tree (`families.lora_targets`).
        learning_rate, weight_decay: AdamW's; max_grad_norm: gradient clipping (0 turns it off).
        epochs / max_steps: train `epochs` passes, or exactly `max_steps` optimizer steps if given.
        batch_size: samples per micro-batch per process; one step sees batch_size*grad_accum*processes.
        max_length: the longest sample allowed, image tokens included; longer ones are a `DataError`
            (or skipped and counted with `skip_too_long`). Nothing is ever truncated.
        loss_on: "last" (the target) or "all_assistant" (every assistant answer, for ICL episodes).
        seed: seeds the sample order and the model's dropout/LoRA init.
        dtype: "auto" (the family's dtype on GPU, float32 on CPU), "bfloat16", "float16" (GPU only)
            or "float32"; half precision runs as autocast.
        warmup_ratio, scheduler: linear warm-up over this share of the steps, then cosine/linear/constant.
        gradient_checkpointing: recompute activations in the backward pass (less memory, slower).
    """

    method: Method = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | str | None = None
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 2048
    skip_too_long: bool = False
    loss_on: LossOn = "last"
    seed: int = 0
    dtype: DtypeName = "auto"
    warmup_ratio: float = 0.03
    scheduler: SchedulerName = "cosine"
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):  # a list from a caller or a config: frozen as a tuple
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        problems = args_problems(self.__dict__)
        if problems:
            raise ConfigError("fine_tune: " + "; ".join(problems))

    def fingerprint_fields(self) -> dict[str, Any]:
        """The fields as the fingerprint hashes them (JSON values: `target_modules` as a list)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.target_modules, tuple):
            out["target_modules"] = list(self.target_modules)
        return out


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FineTuneArgs))


def args_problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of these field values, each worded as `fine_tune` has always worded it."""
    problems = []
    if values["method"] not in ("lora", "full"):
        problems.append(f"method must be 'lora' or 'full', got {values['method']!r}")
    if values["loss_on"] not in ("last", "all_assistant"):
        problems.append(f"loss_on must be 'last' or 'all_assistant', got {values['loss_on']!r}")
    if values["scheduler"] not in ("cosine", "linear", "constant"):
        problems.append(f"scheduler must be cosine, linear or constant, got {values['scheduler']!r}")
    for name in ("batch_size", "grad_accum", "max_length"):
        if values[name] < 1:
            problems.append(f"{name} must be >= 1, got {values[name]}")
    if values["max_steps"] is None and values["epochs"] < 1:
        problems.append(f"epochs must be >= 1 (or give max_steps), got {values['epochs']}")
    if values["max_steps"] is not None and values["max_steps"] < 1:
        problems.append(f"max_steps must be >= 1, got {values['max_steps']}")
    if not values["learning_rate"] > 0:
        problems.append(f"learning_rate must be > 0, got {values['learning_rate']}")
    # Checked later (after the model loaded) before FineTuneArgs existed; same words, now up front.
    if values["dtype"] not in ("auto", "bfloat16", "float16", "float32"):
        problems.append(f"dtype must be auto, bfloat16, float16 or float32, got {values['dtype']!r}")
    if not 0.0 <= values["warmup_ratio"] < 1.0:
        problems.append(f"warmup_ratio must be in [0, 1), got {values['warmup_ratio']}")
    if values["lora_r"] < 1:
        problems.append(f"lora_r must be >= 1, got {values['lora_r']}")
    if not 0.0 <= values["lora_dropout"] < 1.0:
        problems.append(f"lora_dropout must be in [0, 1), got {values['lora_dropout']}")
    return problems


def resolve_args(args: FineTuneArgs | None, overrides: Mapping[str, Any], *, also_problems: Sequence[str] = (),
                 other_names: Iterable[str] = ()) -> FineTuneArgs:
    """`args` (default `FineTuneArgs()`) with `overrides` replaced, as `fine_tune` receives them.

    Every problem is in one `ConfigError` line: an unknown override (with a "did you mean" among
    the fields and `other_names`, the caller's own keywords), each bad value, then the caller's
    `also_problems` (e.g. `save_every`).
    """
    base = args if args is not None else FineTuneArgs()
    unknown = [key for key in overrides if key not in FIELD_NAMES]
    if unknown:
        names = (*FIELD_NAMES, *other_names)
        parts = []
        for key in unknown:
            hint = did_you_mean(key, names)
            parts.append(f"unknown argument {key!r}; " + (hint or f"FineTuneArgs has: {', '.join(FIELD_NAMES)}"))
        raise ConfigError("fine_tune: " + "; ".join(parts))
    values = {name: getattr(base, name) for name in FIELD_NAMES} | dict(overrides)
    problems = args_problems(values) + list(also_problems)
    if problems:
        raise ConfigError("fine_tune: " + "; ".join(problems))
    return replace(base, **overrides)


def train_config(args: FineTuneArgs, *, model_path: str, examples: str, num_examples: int, dtype: str,
                 mixed_precision: str, world_size: int) -> dict[str, Any]:
    """What a run's `train_config.json` records, with its `fingerprint` (12 hex digits).

    The keys and values are those of every fine-tuning run vlmlab has written (a golden test pins
    them), so run folders and cached toy models made before `FineTuneArgs` existed still resume.

    Args:
        model_path: the base checkpoint folder, resolved.
        examples: `examples_fingerprint` of the training samples; num_examples: how many.
        dtype: the resolved weight dtype (`float32`, not `auto`); mixed_precision: `no`, `bf16`, `fp16`.
        world_size: processes training together.
    """
    config = {"model_path": model_path, "examples": examples, "num_examples": num_examples}
    config |= args.fingerprint_fields()
    config |= {"dtype": dtype, "mixed_precision": mixed_precision, "world_size": world_size}
    config["fingerprint"] = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    return config
