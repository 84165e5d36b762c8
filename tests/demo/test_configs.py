"""Every shipped config under configs/ validates; configs/demo/ equals what the demo runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from vlmlab.config import load_config

ROOT = Path(__file__).parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def config_class(command: str) -> type[BaseModel]:
    """The config model of the command in a config's first-line comment (`vlmlab caption run ...`)."""
    from vlmlab.caption.config import CaptionConfig
    from vlmlab.icl import configs as icl
    from vlmlab.rating.config import RatingConfig

    words = command.split()
    assert words[0] == "vlmlab", f"first line must be the command that runs the config, got {command!r}"
    key = " ".join(words[1:3])
    table = {
        "caption run": CaptionConfig, "rating run": RatingConfig, "icl index": icl.IndexConfig,
        "icl candidates": icl.CandidatesConfig, "icl beam": icl.BeamConfig, "icl rl-data": icl.RLDataConfig,
        "icl eval": icl.EvalConfig, "icl train": icl.TrainStageConfig,
    }
    if key not in table:
        pytest.skip(f"no config model known for `{command}`")
    return table[key]


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_shipped_config_validates(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"#\s*(vlmlab .*)", first)
    assert match, f"{path}: the first line must be a comment holding the command that runs it"
    command = match.group(1)
    rel = str(path.relative_to(ROOT))
    assert rel in command or path.name in command, f"{path}: the command does not name the file: {command}"
    load_config(path, config_class(command))


def test_configs_demo_are_what_the_demo_runs() -> None:
    from vlmlab.demo.configs import study_configs
    from vlmlab.demo.plan import demo_plan

    shipped = {p.stem: p for p in (ROOT / "configs" / "demo").glob("*.yaml")}
    built = study_configs(Path("runs/demo"), demo_plan())
    assert set(shipped) == set(built)
    for name, study in built.items():
        expected = study.yaml(Path("configs/demo") / f"{name}.yaml")
        assert shipped[name].read_text(encoding="utf-8") == expected, (
            f"configs/demo/{name}.yaml is stale; regenerate it with "
            "`python -c 'from vlmlab.demo.configs import write_study_configs as w; from vlmlab.demo.plan import demo_plan as p; "
            "from pathlib import Path as P; w(P(\"configs/demo\"), P(\"runs/demo\"), p())'`"
        )
