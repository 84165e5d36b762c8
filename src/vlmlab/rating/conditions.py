"""The conditions matrix: models × variants × prompt modes × temperatures × repeats, with priorities;
and `ConditionRun`, one condition's finished run folder as the analysis reads it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vlmlab.errors import DataError
from vlmlab.models.spec import ModelBlock
from vlmlab.rating.config import ModelConfig, PriorityRule, PromptMode, RatingConfig, VariantConfig
from vlmlab.runs import read_ledger


@dataclass(frozen=True)
class Condition:
    model: ModelConfig
    variant: VariantConfig
    mode: PromptMode
    temperature: float
    repeat: int
    priority: int

    @property
    def name(self) -> str:
        """Stable folder name: `<model>__<variant>/<mode>__t<temperature>__r<repeat>`."""
        return f"{self.model.name}__{self.variant.name}/{self.mode}__t{self.temperature:g}__r{self.repeat}"

    @property
    def block(self) -> ModelBlock:
        """The model block this condition loads (the model's, with its variant applied)."""
        return self.model.block(self.variant)

    def seed(self, base_seed: int) -> int:
        """One seed per (study seed, repeat): repeats differ, re-runs of a repeat are identical."""
        return base_seed * 1000 + self.repeat

    def config(self, study: RatingConfig) -> dict[str, Any]:
        """Everything that determines this condition's results (its run folder's identity)."""
        return {
            "stage": "rating.condition",
            "data": data_identity(study),
            "model": {"name": self.model.name, **self.block.model_dump(mode="json")},  # precision included
            "variant": self.variant.model_dump(mode="json", exclude_none=True),
            "mode": self.mode,
            "temperature": self.temperature,
            "repeat": self.repeat,
            "seed": self.seed(study.seed),
            "emotions": list(study.emotions),
            "prompts": study.prompts.model_dump(mode="json"),
            "capture": study.capture.model_dump(mode="json"),
        }


def data_identity(study: RatingConfig) -> dict[str, Any]:
    """The data block of a condition's identity; the default format is left out so that runs made
    before FER-2013/AffectNet support keep their identity (and resume)."""
    data = study.data.model_dump(mode="json")
    if data.get("format") == "ratings":
        data.pop("format")
    return data


def _matches(rule: PriorityRule, model: str, variant: str, mode: str, temperature: float, repeat: int) -> bool:
    checks = [
        (rule.model, model),
        (rule.variant, variant),
        (rule.mode, mode),
        (rule.temperature, temperature),
        (rule.repeat, repeat),
    ]
    return all(allowed is None or value in allowed for allowed, value in checks)


def expand_conditions(study: RatingConfig) -> list[Condition]:
    """Every condition of the study, in a stable order, each with its priority."""
    out = []
    c = study.conditions
    for model in study.models:
        for variant in model.variants:
            for mode in c.modes:
                for temperature in c.temperatures:
                    # At temperature 0 repeats are identical by construction; one is enough.
                    repeats = 1 if temperature == 0 else c.repeats
                    for repeat in range(repeats):
                        matching = [r.priority for r in c.priority_rules if _matches(r, model.name, variant.name, mode, temperature, repeat)]
                        priority = min(matching) if matching else c.default_priority
                        out.append(Condition(model, variant, mode, temperature, repeat, priority))
    return out


def select_conditions(conditions: list[Condition], max_priority: int | None) -> list[Condition]:
    return [c for c in conditions if max_priority is None or c.priority <= max_priority]


def request_seed(condition_seed: int, item_id: str, question: str) -> int:
    """A per-request seed derived from the condition's seed, stable across processes."""
    digest = hashlib.sha256(f"{condition_seed}|{item_id}|{question}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def condition_dir(out: Path, condition: Condition) -> Path:
    return Path(out) / condition.name


@dataclass
class ConditionRun:
    folder: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def label(self) -> str:
        c = self.config
        return f"{c['model']['name']}/{c['variant']['name']}/{c['mode']}/t{c['temperature']:g}/r{c['repeat']}"

    @property
    def family(self) -> tuple[str, str, str]:
        """(model, variant, mode): conditions that differ only in temperature/repeat."""
        c = self.config
        return (c["model"]["name"], c["variant"]["name"], c["mode"])


def load_condition(folder: Path) -> ConditionRun:
    folder = Path(folder)
    config_path = folder / "config.yaml"
    if not config_path.exists():
        raise DataError(f"{folder}: not a rating run folder (no config.yaml)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or config.get("stage") != "rating.condition":
        raise DataError(f"{folder}: not a rating condition run (stage {config.get('stage') if isinstance(config, dict) else None!r})")
    records = read_ledger(folder / "ledger.jsonl")
    if not records:
        raise DataError(f"{folder}: no rated items yet; run `vlmlab rating run` first")
    return ConditionRun(folder, config, records)
