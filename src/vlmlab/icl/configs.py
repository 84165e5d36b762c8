"""Validated configs of the ICL stages (YAML -> pydantic, unknown keys are errors).

Each stage points at the run folder of the stage before it (`index:`, `candidates:`, `beams:`),
and reads that folder's resolved `config.yaml` to find the data, so the chain index -> candidates
-> beam -> rl-data is reproducible from the last config alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from vlmlab.config import StrictModel
from vlmlab.icl.candidates import DEFAULT_MIX, check_sampler
from vlmlab.icl.data import VQADataConfig
from vlmlab.icl.evaluate import check_method


class BackendConfig(StrictModel):
    """A model behind the backend protocol: `load_backend(ref, kind, **options)`."""

    ref: str
    kind: str = "hf"
    options: dict[str, Any] = Field(default_factory=dict)


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
    """Stage `beam`: InfoScore beam search per anchor with a scorer VLM."""

    candidates: Path
    scorer: BackendConfig
    beam_size: int = Field(5, ge=1)
    shots: int = Field(2, ge=1)
    order: Literal["left", "right"] = "left"
    rank_by: Literal["marginal", "cumulative"] = "marginal"
    batch_size: int = Field(16, ge=1)
    device: str = "cpu"  # for data-parallel ranks


class RLDataConfig(StrictModel):
    """Stage `rl-data`: beams + sampled sequences answered by the scorer, VQA-scored, balanced."""

    beams: Path
    scorer: BackendConfig | None = None  # default: the beam run's scorer
    n_sampled: int = Field(8, ge=0)
    seed: int = 0
    max_new_tokens: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    vqa_mode: Literal["official", "okvqa"] = "official"
    correct_threshold: float = Field(0.5, ge=0.0, le=1.0)  # 0.5 = at least 2 of 10 annotators agree
    top_positives: int = Field(5, ge=0)
    top_negatives: int = Field(5, ge=0)
    min_positives: int = Field(1, ge=0)


class EvalConfig(StrictModel):
    """Stage `eval`: VQA accuracy of demonstration choices at 1..N shots."""

    index: Path
    test: VQADataConfig
    model: BackendConfig
    methods: list[str] = Field(default_factory=lambda: ["zero-shot", "random", "text", "image"])
    shots: list[int] = Field(default_factory=lambda: [1, 2, 3, 4])
    sizes: list[Union[int, Literal["full"]]] = Field(default_factory=lambda: ["full"])
    seed: int = 0
    selector: Path | None = None  # selector checkpoint folder, for method `selector`
    selector_pool: Literal["text", "image", "random", "mix"] = "mix"
    selector_k: int = Field(64, ge=1)
    max_new_tokens: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    vqa_mode: Literal["official", "okvqa"] = "official"
    n_boot: int = Field(1000, ge=10)
    ci_unit: Literal["image", "question"] = "image"  # bootstrap unit of the CIs; questions sharing an image are not independent
    device: str = "cpu"

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
    def _shots(cls, v: list[int]) -> list[int]:
        if any(s < 1 for s in v):
            raise ValueError("shots must be >= 1 (zero-shot is the method `zero-shot`)")
        return sorted(set(v))

    @model_validator(mode="after")
    def _selector(self) -> "EvalConfig":
        if "selector" in self.methods and self.selector is None:
            raise ValueError("method `selector` needs `selector:` (a selector checkpoint folder)")
        return self


class TrainStageConfig(StrictModel):
    """Stage `train`: a selector (v0–v4) from the index embeddings, beams and (for v4) rl-data.

    `selector` holds `SelectorConfig` fields; `embedding_dim` may be left out (it is read from
    the index for the chosen modality).
    """

    index: Path
    beams: Path  # beam run folder (holding beams.jsonl)
    rl: Path | None = None  # rl-data run folder (holding rl.jsonl); needed for v4
    modality: Literal["text", "image", "text+image"] = "text+image"
    icd_answers: bool = True  # pool items embedded as demonstrations (question + answer); queries never show an answer
    dataset: str = "toy-vqa"
    selector: dict[str, Any] = Field(default_factory=lambda: {"version": "v2"})

    @model_validator(mode="after")
    def _selector(self) -> "TrainStageConfig":
        from vlmlab.icl.selectors.config import SelectorConfig

        fields = {"embedding_dim": 1, **self.selector}
        try:
            config = SelectorConfig.model_validate(fields)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            first = str(exc).splitlines()
            raise ValueError(f"selector: {first[1] if len(first) > 1 else first[0]} ({first[-1].strip()})") from None
        if config.uses_rl and self.rl is None:
            raise ValueError(f"selector version {config.version} trains on rl-data: set `rl:` to an rl-data run folder")
        return self
