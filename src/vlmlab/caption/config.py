"""The caption study's config: data, models, image strategy, fine-tuning, generation, scoring.

One YAML file describes a whole comparison (several models, identical settings); the CLI flags
`--models`, `--image-size`, `--max-tokens`, `--max-length`, `--epochs` are shortcuts for `--set`
overrides of the keys below. Every problem in the file is reported at once, before a model loads.

    name: quic360-baseline
    data: {train: data/train.tsv, test: data/test.tsv, images: data/panos}
    models: [{name: qwen2-vl-2b}, {name: gemma3-4b, dtype: bfloat16}]
    image: {policy: squash, size: 256}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

from pydantic import Field, field_validator, model_validator

from vlmlab.config import StrictModel
from vlmlab.errors import ConfigError
from vlmlab.models.spec import ModelBlock
from vlmlab.registry import did_you_mean

if TYPE_CHECKING:
    from vlmlab.train.args import FineTuneArgs

ImagePolicy = Literal["squash", "pad", "cubemap", "none"]
ScoreMode = Literal["grouped", "per-row"]


class DataConfig(StrictModel):
    """Caption tables in the QuIC-360 layout (`url`/`path`, `query`, `annotation`; one reference per row)."""

    train: Path | None = None  # None: no fine-tuning data (zero-shot only)
    test: Path
    images: Path | None = None  # image root; defaults to each table's folder
    url_map: Path | None = None  # url -> local file for `url` columns
    max_train_rows: int | None = Field(None, ge=1)  # first N training rows (a smoke run)
    max_test_pairs: int | None = Field(None, ge=1)  # first N (image, query) test pairs


class ModelEntry(ModelBlock):
    """One model of the comparison: the shared model block (`vlmlab.models.spec`) plus the study's fields.

    `name` names the model's run folder; it is also the model (a registry name such as
    `qwen2-vl-2b`) when `ref` is not given. `ref` is a registry name, tiny name or checkpoint folder
    (`path:` is still read as `ref`). `finetune: false` evaluates it zero-shot even when the study
    fine-tunes (a "before" row). `batch_size` left out: `generation.batch_size`.
    """

    name: str
    finetune: bool | None = None  # None: the study's finetune.enabled
    target_modules: list[str] | None = None  # LoRA targets; None: the family's from the registry
    batch_size: int | None = Field(None, ge=1)  # type: ignore[assignment]  # None: generation.batch_size

    @model_validator(mode="before")
    @classmethod
    def _ref_from_name(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        path = data.pop("path", None)
        if path is not None and data.get("ref") is not None:
            raise ValueError(f"model {data.get('name')!r}: give ref (a registry name or checkpoint folder) or path, not both")
        if data.get("ref") is None:
            data["ref"] = str(path) if path is not None else data.get("name")
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in "\\\0") or value.startswith("."):
            raise ValueError(f"model name {value!r} cannot be used as a folder name")
        return value

    @model_validator(mode="after")
    def _hf_only(self) -> "ModelEntry":
        if self.kind != "hf":
            raise ValueError(f"model {self.name!r}: the caption study fine-tunes and checks checkpoints, so its models are kind hf")
        return self

    def block(self, *, ref: str | Path, adapter: Path | None, batch_size: int, max_length: int | None) -> ModelBlock:
        """The block generation loads: this entry at `ref` (the fine-tuned folder or the base)."""
        fields = {k: getattr(self, k) for k in ModelBlock.model_fields}
        options = {"max_length": max_length, **self.options} if max_length is not None else dict(self.options)
        return ModelBlock(**fields | {"ref": str(ref), "adapter": adapter if adapter is not None else self.adapter,
                                      "batch_size": batch_size, "options": options})


class ImageConfig(StrictModel):
    """How an ERP panorama (or any image) is fed: `squash` to size x size (the baseline), `pad`
    keeping its aspect ratio, `cubemap` = `views` perspective views of `fov` degrees passed as
    several images, `none` = the processor decides."""

    policy: ImagePolicy = "squash"
    size: int = Field(256, ge=8, le=4096)  # square side in pixels (also each cubemap view's side; bounded: 10^8 was a MemoryError)
    pad_aspect: float = Field(2.0, gt=0)  # `pad`: the canvas is size*pad_aspect x size (2:1 for ERP)
    views: Literal[4, 6] = 4  # `cubemap`: 4 horizontal faces, or 6 with up and down
    fov: float = Field(90.0, gt=10, lt=170)  # `cubemap`: field of view of each view, degrees


class PromptConfig(StrictModel):
    """The user turn: the image(s), then `template` with `{query}` filled in."""

    template: str = "{query}"
    empty_query: str = "Describe the image."  # used for `{query}` when a row has no query


class FinetuneConfig(StrictModel):
    """The `finetune:` block: `FineTuneArgs` fields (identical for every model of the study) plus
    `enabled` and `save_every`. Its keys and defaults are the config's (they enter its hash); a test
    checks every other key is a `FineTuneArgs` field whose bounds here are no looser."""

    enabled: bool = True
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    learning_rate: float = Field(2e-4, gt=0)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(512, ge=16)
    skip_too_long: bool = False
    save_every: int = Field(200, ge=1)
    seed: int = 0
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"

    def fine_tune_args(self, *, target_modules: Sequence[str] | None, dtype: str) -> FineTuneArgs:
        """The `FineTuneArgs` of one model: this block plus the model's LoRA targets and dtype."""
        from vlmlab.train.args import FineTuneArgs  # here: loading a config imports no torch

        shared = {name: getattr(self, name) for name in type(self).model_fields if name not in CAPTION_ONLY_FINETUNE_KEYS}
        targets = tuple(target_modules) if target_modules is not None else None
        return FineTuneArgs(**(shared | {"target_modules": targets, "dtype": dtype}))


# `finetune:` keys that are not `FineTuneArgs` fields: whether to train, and a run-control keyword.
CAPTION_ONLY_FINETUNE_KEYS = ("enabled", "save_every")


class GenerationConfig(StrictModel):
    max_new_tokens: int = Field(128, ge=1)
    batch_size: int = Field(8, ge=1)
    temperature: float = Field(0.0, ge=0)  # 0 = greedy
    seed: int = 0
    max_length: int | None = Field(None, ge=16)  # prompts longer than this are errors (never truncated)


class ScoringConfig(StrictModel):
    """Both modes are always computed; `headline` is the one tables lead with (recorded in metrics.json)."""

    headline: ScoreMode = "per-row"
    metrics: list[str] = Field(default_factory=lambda: ["BLEU", "METEOR", "ROUGE-L", "CIDEr", "SPICE"])
    human: bool = True  # the leave-one-out human reference row


class CaptionConfig(StrictModel):
    """A whole caption study; see the module docstring for an example."""

    name: str
    out_dir: Path = Path("runs/caption")
    data: DataConfig
    models: list[ModelEntry] = Field(min_length=1)
    image: ImageConfig = Field(default_factory=ImageConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    tiny_root: Path | None = None  # where `tiny-*` registry models are built (default $VLMLAB_HOME/tiny)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value.strip() or "/" in value or value.startswith("."):
            raise ValueError(f"study name {value!r} cannot be used as a folder name")
        return value

    @model_validator(mode="after")
    def _check(self) -> "CaptionConfig":
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {', '.join(dupes)}")
        if any(self.wants_finetune(m) for m in self.models) and self.data.train is None:
            raise ValueError("fine-tuning needs data.train; set it, or finetune.enabled: false")
        self.metrics_canonical()  # a typo in scoring.metrics is reported with the others
        return self

    def wants_finetune(self, model: ModelEntry) -> bool:
        return self.finetune.enabled if model.finetune is None else model.finetune

    def metrics_canonical(self) -> list[str]:
        from vlmlab.metrics.caption import parse_metrics

        try:
            return parse_metrics(self.scoring.metrics)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def study_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def model_dir(self, model: ModelEntry) -> Path:
        """`<out_dir>/<name>/<model>_img<size>_tok<max-tokens>/` (a path-safe model name)."""
        safe = model.name.replace("/", "--")
        return self.study_dir() / f"{safe}_img{self.image.size}_tok{self.generation.max_new_tokens}"


def select_models(config: CaptionConfig, names: list[str] | None) -> list[ModelEntry]:
    """The config's models named in `names` (all when None); an unknown name is a ConfigError with a hint."""
    if not names:
        return list(config.models)
    known = {m.name: m for m in config.models}
    out = []
    for name in names:
        if name not in known:
            close = did_you_mean(name, known)
            hint = f"; {close}" if close else ""
            raise ConfigError(f"--models: {name!r} is not a model of this config ({', '.join(known)}){hint}")
        out.append(known[name])
    return out


def cli_overrides(*, image_size: int | None = None, max_tokens: int | None = None, max_length: int | None = None,
                  epochs: int | None = None) -> list[str]:
    """The CLI shortcut flags as `--set` overrides."""
    out = []
    if image_size is not None:
        out.append(f"image.size={image_size}")
    if max_tokens is not None:
        out.append(f"generation.max_new_tokens={max_tokens}")
    if max_length is not None:
        out.append(f"finetune.max_length={max_length}")
    if epochs is not None:
        out.append(f"finetune.epochs={epochs}")
    return out
