"""The rating study's config: data, models with variants, prompts, and a conditions matrix.

A condition is one (model variant, prompt mode, temperature, repeat). `priority_rules` give each
condition a priority, so `vlmlab rating run CONFIG --priority 1` runs the minimum set a reviewer
must see and `--priority 9` runs everything. Each condition is its own resumable run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from vlmlab.config import StrictModel
from vlmlab.models.backend_checks import capture_problems
from vlmlab.models.spec import ModelBlock

PromptMode = Literal["context-carry", "single-shot", "text-only"]

DEFAULT_EMOTIONS = ["happy", "sad", "angry", "fearful", "surprised", "neutral"]


class DataConfig(StrictModel):
    ratings: Path  # CSV/TSV/JSONL of human ratings (image_id, emotion, valence, arousal, rater_id, groups...)
    format: Literal["ratings", "fer2013", "affectnet"] = "ratings"  # or a FER-2013 CSV / an AffectNet annotation CSV
    images: Path | None = None  # image root; defaults to the ratings file's folder
    group_column: str | None = "group"  # the column whose false-positive rates are compared
    limit: int | None = None  # first N images only (a smoke run)


class VariantConfig(StrictModel):
    """One way to load a model, e.g. fp16 vs 4-bit: model-block fields this variant changes.

    Unset fields keep the model's; `options` are merged over the model's `options`. The variant's
    resolved block is validated with the config, so an option typo stops before anything loads.
    """

    name: str = "default"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = None
    device_map: str | None = None
    adapter: Path | None = None
    quantization: Literal["int8", "int4", "8bit", "4bit"] | None = None
    batch_size: int | None = Field(None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(ModelBlock):
    """A model of the study: the shared model block (`vlmlab.models.spec`), a table label, variants."""

    name: str  # a label for tables
    variants: list[VariantConfig] = Field(default_factory=lambda: [VariantConfig()])

    @model_validator(mode="after")
    def _check_variants(self) -> "ModelConfig":
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r}: variant names must be unique, got {names}")
        for variant in self.variants:
            try:
                self.block(variant)
            except ValueError as exc:
                raise ValueError(f"model {self.name!r}, variant {variant.name!r}: {_first_message(exc)}") from None
        return self

    def block(self, variant: VariantConfig) -> ModelBlock:
        """The model block this variant loads: the model's fields, overridden by the variant's."""
        fields = {k: getattr(self, k) for k in ModelBlock.model_fields}
        fields |= {k: v for k, v in variant.model_dump(exclude={"name", "options"}).items() if v is not None}
        fields["options"] = {**self.options, **variant.options}
        return ModelBlock(**fields)


def _first_message(exc: ValueError) -> str:
    """The message of a validation error without pydantic's framing."""
    import pydantic

    if isinstance(exc, pydantic.ValidationError):
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


class BaselineConfig(StrictModel):
    """An image-classification checkpoint rating emotions beside the VLMs (see `rating.baselines`)."""

    name: str  # a label for tables
    ref: str  # a local checkpoint folder or hub id (AutoModelForImageClassification + its image processor)
    label_map: dict[str, str]  # every classifier label -> one of the study's emotions
    batch_size: int = Field(16, ge=1)


class PromptConfig(StrictModel):
    """Prompt templates; `{emotions}` lists the categories, `{emotion}` is the given label."""

    emotion: str = "Which emotion does this face show? Answer with one word from: {emotions}."
    valence: str = "Rate the valence of this facial expression from 1 (very negative) to 9 (very positive). Answer with one number."
    arousal: str = "Rate the arousal of this facial expression from 1 (very calm) to 9 (very excited). Answer with one number."
    single_shot: str = (
        'Look at this face. Answer with JSON only: {{"emotion": one of {emotions}, "valence": 1-9, "arousal": 1-9}}.'
    )
    text_only_valence: str = "The facial expression is {emotion}. Rate the valence from 1-9. Answer with one number."
    text_only_arousal: str = "The facial expression is {emotion}. Rate the arousal from 1-9. Answer with one number."
    system: str | None = None


class CaptureConfig(StrictModel):
    top_logprobs: int = Field(10, ge=0, le=50)
    # Stop at the first answer without logprobs (a server that ignores the field) instead of
    # recording the condition as "logprobs: unavailable".
    require_logprobs: bool = False
    hidden_layers: list[int] = Field(default_factory=list)
    hidden_pool: Literal["image", "text", "last"] = "last"
    max_new_tokens: int = Field(24, ge=1)


class PriorityRule(StrictModel):
    """Conditions matching every listed axis get this priority (the smallest matching wins)."""

    priority: int = Field(ge=1)
    model: list[str] | None = None
    variant: list[str] | None = None
    mode: list[PromptMode] | None = None
    temperature: list[float] | None = None
    repeat: list[int] | None = None


class ConditionsConfig(StrictModel):
    modes: list[PromptMode] = Field(default_factory=lambda: ["context-carry"])
    temperatures: list[float] = Field(default_factory=lambda: [0.0])
    repeats: int = Field(1, ge=1)
    priority_rules: list[PriorityRule] = Field(default_factory=list)
    default_priority: int = Field(1, ge=1)

    @field_validator("temperatures")
    @classmethod
    def _non_negative(cls, values: list[float]) -> list[float]:
        if any(t < 0 for t in values):
            raise ValueError("temperatures must be >= 0")
        return values


class RatingConfig(StrictModel):
    """# vlmlab rating run CONFIG [--priority N]"""

    name: str = "rating"
    out: Path = Path("runs/rating")
    data: DataConfig
    models: list[ModelConfig] = Field(default_factory=list)
    baselines: list[BaselineConfig] = Field(default_factory=list)  # image classifiers (e.g. FER models)
    emotions: list[str] = Field(default_factory=lambda: list(DEFAULT_EMOTIONS))
    prompts: PromptConfig = PromptConfig()
    conditions: ConditionsConfig = ConditionsConfig()
    capture: CaptureConfig = CaptureConfig()
    batch_size: int = Field(8, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _unique_models(self) -> "RatingConfig":
        names = [m.name for m in self.models]
        if not names and not self.baselines:
            raise ValueError("models: list at least one model (or a classifier under baselines)")
        if len(set(names)) != len(names):
            raise ValueError(f"models: names must be unique, got {names}")
        if self.capture.require_logprobs and self.capture.top_logprobs == 0:
            raise ValueError("capture.require_logprobs needs capture.top_logprobs > 0")
        without_image = ["text-only"] if "text-only" in self.conditions.modes else []
        for model in self.models:
            problems = capture_problems(model.kind, top_logprobs=self.capture.top_logprobs, hidden_layers=self.capture.hidden_layers,
                                        hidden_pool=self.capture.hidden_pool, prompts_without_image=without_image)
            if problems:
                raise ValueError(f"model {model.name!r} ({model.kind}): {problems[0]}")
        baseline_names = [b.name for b in self.baselines]
        if len(set(baseline_names)) != len(baseline_names) or set(baseline_names) & set(names):
            raise ValueError(f"baselines: names must be unique and differ from the models' names, got {baseline_names}")
        for b in self.baselines:
            wrong = sorted({v for v in b.label_map.values() if v not in self.emotions})
            if wrong:
                raise ValueError(f"baselines: {b.name}: label_map maps to {wrong}, which are not among the study's emotions {self.emotions}")
        return self
