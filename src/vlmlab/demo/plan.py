"""What the demo runs and how big: one frozen `DemoPlan` per mode (full or `--quick`).

The sizes aim at under five minutes for the whole demo on a 2-core CPU (first-time toy model
builds included; the three studies run side by side) and under one for `--quick`, while each study
still shows its effect. Measured on a quiet 2-core machine with an empty toy-model cache: full plan
290 s wall (builds: icl-vqa 196 s, face-rater 244 s, captioner-base 91 s, side by side; ICL beam
search over 160 anchors 27 s, ICL eval 24 s, caption study 36 s, rating 23 s, report 9 s); about
105 s once the toy models are cached; `--quick` 54 s. The face-rater needs its 400 steps (at 300
its answers stop tracking the faces: kappa 0.10). See `benchmarks/bench_demo.py`.
Everything random in the demo draws from `seed` (toy data, candidate pools, sampling, selector
training, bootstrap CIs).

    plan = demo_plan(quick=True, seed=0)
    plan.model_dump()          # recorded in <out>/demo/config.yaml; its hash decides resume
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaptionSizes(_Frozen):
    """Caption study: toy panoramas, the `captioner-base` toy model before and after LoRA fine-tuning."""

    panoramas: int = Field(ge=10)  # images generated (60/20/20 train/val/test by image, 3 queries each)
    max_train_rows: int = Field(ge=1)  # (image, query, reference) training rows
    max_test_pairs: int = Field(ge=1)  # held-out (image, query) pairs scored
    steps: int = Field(ge=1)  # fine-tuning optimiser steps
    learning_rate: float = Field(gt=0)
    lora_r: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    metrics: tuple[str, ...] = ("BLEU", "ROUGE-L", "CIDEr")  # METEOR and SPICE start slow JVMs


class IclSizes(_Frozen):
    """ICL study: toy ambiguous VQA, the `icl-vqa` toy model as InfoScore scorer and answerer."""

    questions: int = Field(ge=30)  # VQA questions generated (train = support set, test = held-out queries)
    # P(favoured attribute | image context) of ambiguous questions (`toyworld.vqa.attribute_prior`):
    # 0.9 rather than the default 0.65-0.70, so what a selector that sees the image can gain is
    # learnable from a demo-sized set of anchors (the wording alone still says nothing).
    context_strength: float | None = Field(0.9, ge=0.25, le=1.0)
    anchors: int = Field(ge=2)  # support questions given a beam search
    k: int = Field(ge=2)  # candidate pool per anchor
    beam_size: int = Field(ge=1)
    shots: int = Field(2, ge=1)  # demonstrations per beam
    rl_sampled: int = Field(ge=0)  # random sequences per anchor answered in rl-data
    selector_version: str = "v3"
    selector_epochs: int = Field(ge=1)
    selector_hidden: int = Field(64, ge=8)
    eval_queries: int = Field(ge=2)  # held-out test questions
    eval_shots: tuple[int, ...] = (1, 2, 3, 4)
    methods: tuple[str, ...] = ("zero-shot", "random", "text", "image", "selector")
    batch_size: int = Field(32, ge=1)


class RatingSizes(_Frozen):
    """Rating study: toy faces, the `face-rater` toy model, a temperature x repeat sweep."""

    faces: int = Field(ge=18)
    modes: tuple[str, ...] = ("context-carry", "single-shot", "text-only")
    temperatures: tuple[float, ...] = (0.0, 1.0)
    repeats: int = Field(2, ge=1)
    top_logprobs: int = Field(10, ge=0)
    batch_size: int = Field(32, ge=1)


class DemoPlan(_Frozen):
    """Everything that decides the demo's results (sizes, toy model recipes, seed)."""

    quick: bool
    seed: int = 0
    captioner: str  # toy model recipe names (`vlmlab.toymodels`)
    icl_model: str
    rater: str
    caption: CaptionSizes
    icl: IclSizes
    rating: RatingSizes

    def recipes(self) -> dict[str, str]:
        """Role -> toy model recipe name."""
        return {"captioner": self.captioner, "icl": self.icl_model, "rater": self.rater}


def demo_plan(quick: bool = False, seed: int = 0) -> DemoPlan:
    """The demo's plan: full (about five minutes) or quick (about one minute, smaller everything)."""
    if quick:
        return DemoPlan(
            quick=True, seed=seed, captioner="captioner-base-quick", icl_model="icl-vqa-quick", rater="face-rater-quick",
            caption=CaptionSizes(panoramas=60, max_train_rows=96, max_test_pairs=18, steps=12, learning_rate=2e-3, lora_r=16,
                                 batch_size=8, max_new_tokens=12),
            icl=IclSizes(questions=300, anchors=24, k=8, beam_size=2, rl_sampled=2, selector_epochs=10, eval_queries=30,
                         eval_shots=(1, 2)),
            rating=RatingSizes(faces=36, modes=("context-carry", "text-only"), temperatures=(0.0, 1.0), repeats=2, top_logprobs=5),
        )
    return DemoPlan(
        quick=False, seed=seed, captioner="captioner-base", icl_model="icl-vqa", rater="face-rater",
        caption=CaptionSizes(panoramas=200, max_train_rows=480, max_test_pairs=60, steps=120, learning_rate=5e-3, lora_r=16,
                             batch_size=8, max_new_tokens=16),
        icl=IclSizes(questions=900, anchors=160, k=10, beam_size=2, rl_sampled=2, selector_epochs=20, eval_queries=120),
        rating=RatingSizes(faces=120),
    )
