"""The study configs the demo runs, built from its plan and written as YAML a person can re-run.

The demo calls the studies' own functions with their own validated config models, so every number
it reports can be reproduced by hand: `<out>/configs/*.yaml` hold each config with the exact
command that runs it in its first line. `configs/demo/` in the repository holds the same files for
the default `--out runs/demo` (full plan); a test keeps them identical to what this module builds.

Layout of a demo folder (`out`):

    data/{panorama,vqa,faces}/     toy-world data
    models/<recipe>                toy models (links into the VLMLAB_HOME cache)
    configs/*.yaml                 the configs below
    caption/demo/                  caption study (before / after fine-tuning)
    icl/{index,candidates,beam,rl-data,train,eval}/ + icl/report.*
    rating/<model>__<variant>/<condition>/ + rating/analysis/

    configs = study_configs(Path("runs/demo"), demo_plan())
    caption_cfg = configs["caption"].config
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vlmlab.caption.config import CaptionConfig, DataConfig as CaptionData, FinetuneConfig, GenerationConfig, ImageConfig, ModelEntry, ScoringConfig
from vlmlab.config import dump_yaml
from vlmlab.demo.plan import DemoPlan
from vlmlab.icl.configs import BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, RLDataConfig, TrainStageConfig
from vlmlab.icl.data import VQADataConfig
from vlmlab.models.spec import ModelBlock
from vlmlab.rating.config import (
    CaptureConfig,
    ConditionsConfig,
    DataConfig as RatingData,
    ModelConfig,
    PriorityRule,
    PromptConfig,
    RatingConfig,
    VariantConfig,
)
from vlmlab.runs import atomic_write_text

CAPTION_STUDY = "demo"
BEFORE = "before-finetune"
AFTER = "after-lora"
RATER_NAME = "face-rater"
# Text embedder MiniLM (bundled weights) and a pixel embedder for images: both offline.
DATASET = "toy-vqa"  # recorded in the selector's data fingerprint
TEXT_EMBEDDER = "minilm"
IMAGE_EMBEDDER = "pixels"
PIXEL_SIZE = 8  # the pixel embedder's thumbnail side: 3 * 8 * 8 = 192 dimensions


@dataclass(frozen=True)
class StudyConfig:
    """One study config of the demo and the command that runs it (`{path}` = the YAML file)."""

    name: str  # file stem under configs/
    config: BaseModel
    command: str
    note: str = ""

    def yaml(self, path: Path) -> str:
        head = f"# {self.command.format(path=path)}\n"
        if self.note:
            head += "".join(f"# {line}\n" if line else "#\n" for line in self.note.splitlines())
        return head + dump_yaml(self.config)


@dataclass(frozen=True)
class Layout:
    """Paths inside a demo folder."""

    out: Path

    @property
    def data(self) -> Path:
        return self.out / "data"

    def model(self, recipe: str) -> Path:
        return self.out / "models" / recipe

    @property
    def configs(self) -> Path:
        return self.out / "configs"

    @property
    def caption(self) -> Path:
        return self.out / "caption"

    def icl(self, stage: str = "") -> Path:
        return self.out / "icl" / stage if stage else self.out / "icl"

    @property
    def rating(self) -> Path:
        return self.out / "rating"

    @property
    def state(self) -> Path:
        return self.out / "demo"


def _vqa(layout: Layout, split: str) -> VQADataConfig:
    root = layout.data / "vqa"
    return VQADataConfig(questions=root / f"{split}_questions.json", annotations=root / f"{split}_annotations.json", images=root)


def caption_config(layout: Layout, plan: DemoPlan) -> CaptionConfig:
    """The captioner-base toy model zero-shot ("before") and LoRA fine-tuned ("after") on toy panoramas."""
    s = plan.caption
    model = layout.model(plan.captioner)
    return CaptionConfig(
        name=CAPTION_STUDY, out_dir=layout.caption,
        data=CaptionData(train=layout.data / "panorama" / "train.tsv", test=layout.data / "panorama" / "test.tsv",
                         max_train_rows=s.max_train_rows, max_test_pairs=s.max_test_pairs),
        models=[ModelEntry(name=BEFORE, ref=str(model), finetune=False), ModelEntry(name=AFTER, ref=str(model))],
        image=ImageConfig(policy="squash", size=112),
        finetune=FinetuneConfig(method="lora", lora_r=s.lora_r, lora_alpha=2 * s.lora_r, lora_dropout=0.0,
                                learning_rate=s.learning_rate, max_steps=s.steps, batch_size=s.batch_size, max_length=256,
                                save_every=max(10, s.steps // 2), seed=plan.seed, scheduler="constant", warmup_ratio=0.0),
        generation=GenerationConfig(max_new_tokens=s.max_new_tokens, batch_size=16, seed=plan.seed),
        scoring=ScoringConfig(headline="grouped", metrics=list(s.metrics)),
    )


def icl_configs(layout: Layout, plan: DemoPlan) -> dict[str, BaseModel]:
    """Stage configs index -> candidates -> beam -> rl-data -> train -> eval on the toy VQA.

    Pools are the K text-nearest support items (MiniLM), in training and at eval: the selector
    re-ranks the text retriever's candidates using the query's image too, which is what it can add
    over text similarity on this data (the hidden attribute depends on the image context). It sees
    pool items as demonstrations (question + answer), so it can tell which attribute each answers.
    Beams are ranked by cumulative InfoScore: upstream's marginal ranking prefers a useless first
    demonstration followed by a good one (the second then adds the most), which teaches a selector
    noise at the first position. InfoScore covers the answer tokens only (`score_eos=False`): the
    demo's recorded results were measured so, and its toy answers are single tokens.
    """
    s = plan.icl
    model = ModelBlock(ref=str(layout.model(plan.icl_model)), batch_size=s.batch_size)
    return {
        "index": IndexConfig(support=_vqa(layout, "train"), text_embedder=TEXT_EMBEDDER, image_embedder=IMAGE_EMBEDDER,
                             image_embedder_options={"size": PIXEL_SIZE}),
        "candidates": CandidatesConfig(index=layout.icl("index"), sampler="text", k=s.k, anchors=s.anchors, seed=plan.seed),
        "beam": BeamConfig(candidates=layout.icl("candidates"), scorer=model, beam_size=s.beam_size, shots=s.shots,
                           order="left", rank_by="cumulative", score_eos=False, batch_size=s.batch_size),
        "rl-data": RLDataConfig(beams=layout.icl("beam"), n_sampled=s.rl_sampled, seed=plan.seed, max_new_tokens=4,
                                batch_size=s.batch_size),
        "train": TrainStageConfig(index=layout.icl("index"), beams=layout.icl("beam"), modality="text+image", icd_answers=True,
                                  dataset=DATASET, selector=selector_fields(plan)),
        "eval": EvalConfig(index=layout.icl("index"), test=_vqa(layout, "test"), model=model, methods=list(s.methods),
                           shots=list(s.eval_shots), sizes=[s.eval_queries], seed=plan.seed, selector=layout.icl("train"),
                           selector_pool="text", selector_k=s.k, max_new_tokens=4, batch_size=s.batch_size, n_boot=500),
    }


def selector_fields(plan: DemoPlan) -> dict[str, Any]:
    """The selector trained on the beams (`SelectorConfig` fields; the width comes from the index)."""
    s = plan.icl
    return {"version": s.selector_version, "hidden_dim": s.selector_hidden, "num_heads": 2, "pool_size": s.k, "shots": s.shots,
            "epochs": s.selector_epochs, "batch_size": 16, "val_fraction": 0.1, "seed": plan.seed, "data_seed": plan.seed,
            "ce_beams": 1}


def rating_config(layout: Layout, plan: DemoPlan) -> RatingConfig:
    """The face-rater toy model; priority 1 = context-carry sweep + one run of every other mode."""
    from vlmlab.toymodels import get_recipe

    s = plan.rating
    trained = get_recipe(plan.rater).prompts  # ask in the words the face-rater was trained on
    assert trained is not None, f"toy recipe {plan.rater} has no prompts"
    prompts = PromptConfig(emotion=trained.emotion, valence=trained.valence, arousal=trained.arousal,
                           single_shot=trained.single_shot,
                           **{k: v for k, v in (("text_only_valence", trained.text_only_valence),
                                                ("text_only_arousal", trained.text_only_arousal)) if v is not None})
    rules = [PriorityRule(priority=1, mode=["context-carry"])]
    rules += [PriorityRule(priority=1, mode=[m], temperature=[0.0], repeat=[0]) for m in s.modes if m != "context-carry"]
    return RatingConfig(
        name="demo", out=layout.rating, data=RatingData(ratings=layout.data / "faces" / "ratings.csv", group_column="group"),
        models=[ModelConfig(name=RATER_NAME, ref=str(layout.model(plan.rater)), kind="hf", batch_size=s.batch_size,
                            variants=[VariantConfig(name="fp32")])],
        emotions=list(trained.emotions), prompts=prompts,
        conditions=ConditionsConfig(modes=list(s.modes), temperatures=list(s.temperatures), repeats=s.repeats,
                                    priority_rules=rules, default_priority=2),
        capture=CaptureConfig(top_logprobs=s.top_logprobs, max_new_tokens=24),
        batch_size=s.batch_size, seed=plan.seed,
    )


_DATA_NOTE = "Data and toy models are made by `vlmlab demo` (under {out}/data and {out}/models)."


def study_configs(out: Path, plan: DemoPlan) -> dict[str, StudyConfig]:
    """Every study config of the demo, keyed by file stem, with its command."""
    layout = Layout(Path(out))
    note = _DATA_NOTE.format(out=out)
    icl = icl_configs(layout, plan)
    configs = {"caption": StudyConfig("caption", caption_config(layout, plan), "vlmlab caption run {path}", note)}
    for stage in ("index", "candidates", "beam", "rl-data", "train", "eval"):
        name = f"icl_{stage.replace('-', '_')}"
        configs[name] = StudyConfig(name, icl[stage], f"vlmlab icl {stage} {{path}} --out {layout.icl(stage)}", note)
    configs["rating"] = StudyConfig("rating", rating_config(layout, plan), "vlmlab rating run {path} --priority 1", note)
    return configs


def write_study_configs(folder: Path, out: Path, plan: DemoPlan) -> dict[str, Path]:
    """Write `study_configs(out, plan)` as `<folder>/<name>.yaml`; returns the paths."""
    folder = Path(folder)
    paths = {}
    for name, study in study_configs(out, plan).items():
        path = folder / f"{name}.yaml"
        atomic_write_text(path, study.yaml(path))
        paths[name] = path
    return paths
