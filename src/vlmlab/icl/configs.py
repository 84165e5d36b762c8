"""Validated configs of the ICL stages (YAML -> pydantic, unknown keys are errors).

Each stage points at the run folder of the stage before it (`index:`, `candidates:`, `beams:`),
and reads that folder's resolved `config.yaml` to find the data, so the chain index -> candidates
-> beam -> rl-data is reproducible from the last config alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

import pydantic
from pydantic import Field, field_validator, model_validator

from vlmlab.config import StrictModel
from vlmlab.icl.candidates import DEFAULT_MIX, check_sampler
from vlmlab.icl.data import VQADataConfig
from vlmlab.icl.evaluate import check_method
from vlmlab.icl.presets import apply_stage_preset, check_preset, resolve_selector
from vlmlab.icl.prompts import AnswerPostprocess, PromptFormat
from vlmlab.models.spec import ModelBlock

Preset = Literal["vlmlab", "lever-plus"]


def check_vqa_mode(mode: str) -> str:
    """A VQA metric mode `vlmlab.metrics.vqa` knows (`official`, `okvqa`, `openflamingo`, ...)."""
    from vlmlab.metrics.vqa import MODES

    if mode not in MODES:
        raise ValueError(f"unknown vqa_mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


# The scorer / evaluated model of a stage is the one model block every study shares
# (`vlmlab.models.spec.ModelBlock`); the old name stays importable.
BackendConfig = ModelBlock


class IndexConfig(StrictModel):
    """Stage `index`: embed the support set once."""

    support: VQADataConfig
    text_embedder: str = "minilm"
    text_embedder_options: dict[str, Any] = Field(default_factory=dict)
    image_embedder: str = "pixels"
    image_embedder_options: dict[str, Any] = Field(default_factory=dict)
    cache_dir: Path | None = None  # default: <run>/embed_cache
    batch_size: int = Field(32, ge=1)


class CandidatesConfig(StrictModel):
    """Stage `candidates`: a pool of K support items per anchor."""

    index: Path
    sampler: str = "mix"
    k: int = Field(64, ge=1)
    anchors: int = Field(800, ge=1)
    seed: int = 0
    mix_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX))

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: str) -> str:
        return check_sampler(v)


class BeamConfig(StrictModel):
    """Stage `beam`: InfoScore beam search per anchor with a scorer VLM.

    `score_eos` (default true, upstream): InfoScore covers the answer and the end-of-turn token(s)
    after it; false scores the answer tokens only. `prompt_format`: `chat` or `lever-plus`.
    """

    preset: Preset = "vlmlab"
    candidates: Path
    scorer: ModelBlock
    beam_size: int = Field(5, ge=1)
    shots: int = Field(2, ge=1)
    order: Literal["left", "right"] = "left"
    rank_by: Literal["marginal", "cumulative"] = "marginal"
    score_eos: bool = True
    prompt_format: PromptFormat = "chat"
    batch_size: int = Field(16, ge=1)
    device: str = "cpu"  # for data-parallel ranks

    _preset = model_validator(mode="before")(lambda data: apply_stage_preset(data, "beam"))


class RLDataConfig(StrictModel):
    """Stage `rl-data`: beams + sampled sequences answered by the scorer, VQA-scored, balanced.

    A candidate is correct when its VQA accuracy `correct_comparison` `correct_threshold`: vlmlab's
    default `>= 0.5` (at least 2 of 10 annotators agree), upstream Lever-Plus `> 0`.
    """

    preset: Preset = "vlmlab"
    beams: Path
    scorer: ModelBlock | None = None  # default: the beam run's scorer
    # where candidates come from: the beam search, random sequences (`n_sampled`), the pool's most
    # text-similar items, a selector's own beams / temperature samples (upstream Lever-Plus, `selector:`)
    sources: list[Literal["beams", "random", "retrieval", "selector-beams", "selector-samples"]] = Field(
        default_factory=lambda: ["beams", "random"])
    selector: Path | None = None
    # earlier RL data (rl-data run folders or imported upstream folders) whose candidates for these anchors are answered
    # again by this scorer; the right ones join as source `mined` (upstream mine_positive_samples.py)
    mine_from: list[Path] = Field(default_factory=list)
    selector_beams: int = Field(5, ge=1)
    selector_temperatures: list[float] = Field(default_factory=lambda: [1.0, 1.3])
    selector_samples: int = Field(2, ge=1)
    n_sampled: int = Field(8, ge=0)
    seed: int = 0
    max_new_tokens: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    vqa_mode: str = "official"
    correct_threshold: float = Field(0.5, ge=0.0, le=1.0)  # 0.5 = at least 2 of 10 annotators agree
    correct_comparison: Literal[">=", ">"] = ">="
    prompt_format: PromptFormat = "chat"
    answer_postprocess: AnswerPostprocess = "none"  # `lever-plus`: upstream's cut of the generation before scoring
    top_positives: int = Field(5, ge=0)
    top_negatives: int = Field(5, ge=0)
    min_positives: int = Field(1, ge=0)
    require_negatives: bool = False  # keep only queries with both positives and negatives (upstream)
    positive_ratio: tuple[float, float] | None = None  # e.g. [0.4, 0.6]: drop queries whose balanced set is outside it

    _preset = model_validator(mode="before")(lambda data: apply_stage_preset(data, "rl-data"))

    @model_validator(mode="after")
    def _sources(self) -> "RLDataConfig":
        if any(s.startswith("selector") for s in self.sources) and self.selector is None:
            raise ValueError("sources selector-beams / selector-samples need `selector:` (a selector checkpoint folder)")
        if len(set(self.sources)) != len(self.sources) or not self.sources:
            raise ValueError("sources must be a non-empty list without repeats")
        if self.positive_ratio is not None and not 0.0 <= self.positive_ratio[0] <= self.positive_ratio[1] <= 1.0:
            raise ValueError("positive_ratio must be [low, high] with 0 <= low <= high <= 1")
        if any(t <= 0 for t in self.selector_temperatures):
            raise ValueError("selector_temperatures must be > 0")
        return self

    _vqa_mode = field_validator("vqa_mode")(lambda v: check_vqa_mode(v))


class EvalConfig(StrictModel):
    """Stage `eval`: VQA accuracy of demonstration choices at 1..N shots.

    `shots` may hold `adaptive`: a selector with a STOP token (`stop_token`) then chooses each query's
    number of demonstrations, up to the shots it was trained for (its cell reports the distribution);
    integer shots are for the other methods. A STOP selector needs `adaptive`, other methods integers.

    `selector_pool`, `selector_k`, `selector_mix_weights` default to the pools the selector was
    trained on (its checkpoint records them); a different value, index or embedder is refused unless
    `allow_mismatch` (CLI `--allow-mismatch`), which warns and records the differences in metrics.json.
    """

    preset: Preset = "vlmlab"
    index: Path
    test: VQADataConfig
    model: ModelBlock
    methods: list[str] = Field(default_factory=lambda: ["zero-shot", "random", "text", "image"])
    shots: list[Union[int, Literal["adaptive"]]] = Field(default_factory=lambda: [1, 2, 3, 4])
    sizes: list[Union[int, Literal["full"]]] = Field(default_factory=lambda: ["full"])
    seed: int = 0
    selector: Path | None = None  # selector checkpoint folder, for method `selector`
    selector_pool: Literal["text", "image", "random", "mix"] | None = None
    selector_k: int | None = Field(None, ge=1)
    selector_mix_weights: dict[str, float] | None = None
    selector_reverse_seq: bool | None = None  # None: as the checkpoint was trained (it records reverse_seq)
    allow_mismatch: bool = False
    prompt_format: PromptFormat = "chat"
    answer_postprocess: AnswerPostprocess = "none"  # `lever-plus`: upstream's cut of the generation before scoring
    max_new_tokens: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    vqa_mode: str = "official"
    n_boot: int = Field(1000, ge=10)
    ci_unit: Literal["image", "question"] = "image"  # bootstrap unit of the CIs; questions sharing an image are not independent
    device: str = "cpu"

    _preset = model_validator(mode="before")(lambda data: apply_stage_preset(data, "eval"))
    _vqa_mode = field_validator("vqa_mode")(lambda v: check_vqa_mode(v))

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[str]) -> list[str]:
        for m in v:
            check_method(m)
        if len(set(v)) != len(v):
            raise ValueError("methods must not repeat")
        return v

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: list[int | str]) -> list[int | str]:
        ints = sorted({int(s) for s in v if s != "adaptive"})
        if any(s < 1 for s in ints):
            raise ValueError("shots must be >= 1 (zero-shot is the method `zero-shot`)")
        return [*ints, *(["adaptive"] if "adaptive" in v else [])]

    @model_validator(mode="after")
    def _selector(self) -> "EvalConfig":
        if "selector" in self.methods and self.selector is None:
            raise ValueError("method `selector` needs `selector:` (a selector checkpoint folder)")
        if "adaptive" in self.shots and "selector" not in self.methods:
            raise ValueError("shots `adaptive` is for a selector with a STOP token; add method `selector` or drop `adaptive`")
        fixed = [m for m in self.methods if m not in ("zero-shot", "selector")]
        if fixed and self.shots == ["adaptive"]:
            raise ValueError(f"methods {', '.join(fixed)} need integer shots besides `adaptive`, e.g. shots: [1, 2, adaptive]")
        return self


class TrainStageConfig(StrictModel):
    """Stage `train`: a selector (v0–v4) from the index embeddings, beams and (for v4) rl-data.

    `selector` holds `SelectorConfig` fields; `embedding_dim` may be left out (it is read from
    the index for the chosen modality). `upstream_version` names the selector by upstream
    Lever-Plus's versions (its v3 = RCE + GRPO = vlmlab v4); `preset: lever-plus` fills upstream's
    selector defaults (see `vlmlab.icl.presets`). Both are resolved into `selector` at load time.
    """

    preset: Preset = "vlmlab"
    upstream_version: str | None = None
    index: Path
    beams: Path  # beam run folder (holding beams.jsonl)
    rl: Path | None = None  # rl-data run folder (holding rl.jsonl); needed for v4
    modality: Literal["text", "image", "text+image"] = "text+image"
    icd_answers: bool = True  # pool items embedded as demonstrations (question + answer); queries never show an answer
    dataset: str = "toy-vqa"
    selector: dict[str, Any] = Field(default_factory=lambda: {"version": "v2"})

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("preset") not in (None, "vlmlab") or data.get("upstream_version") is not None):
            check_preset(str(data.get("preset", "vlmlab")))
            data = {**data, "selector": resolve_selector(dict(data.get("selector") or ({} if data.get("upstream_version") else {"version": "v2"})), str(data.get("preset", "vlmlab")),
                                                        data.get("upstream_version"))}
        return data

    @model_validator(mode="after")
    def _selector(self) -> "TrainStageConfig":
        from vlmlab.icl.selectors.config import SelectorConfig

        fields = {"embedding_dim": 1, **self.selector}
        try:
            config = SelectorConfig.model_validate(fields)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(selector)"
            raise ValueError(f"selector: {where}: {str(err['msg']).removeprefix('Value error, ')}") from None
        if config.uses_rl and self.rl is None:
            raise ValueError(f"selector version {config.version} trains on rl-data: set `rl:` to an rl-data run folder")
        return self
