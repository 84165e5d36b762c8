"""The caption config: example configs validate, typos are named, CLI shortcuts are overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.caption.config import CaptionConfig, cli_overrides, select_models
from vlmlab.config import load_config
from vlmlab.errors import ConfigError

CONFIGS = sorted((Path(__file__).parents[2] / "configs" / "caption").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_validates_and_names_its_command(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# vlmlab caption run ") and str(path.relative_to(path.parents[2])) in first
    config = load_config(path, CaptionConfig)
    assert config.models and config.model_dir(config.models[0]).name.endswith(f"_img{config.image.size}_tok{config.generation.max_new_tokens}")


def test_examples_exist() -> None:
    assert {p.name for p in CONFIGS} >= {"quic360.yaml", "toy.yaml"}


def test_cli_shortcuts_become_overrides_and_name_the_folder(tmp_path: Path) -> None:
    path = CONFIGS[0]
    config = load_config(path, CaptionConfig, cli_overrides(image_size=448, max_tokens=64, max_length=1024, epochs=2))
    assert (config.image.size, config.generation.max_new_tokens, config.finetune.max_length, config.finetune.epochs) == (448, 64, 1024, 2)
    assert config.model_dir(config.models[0]) == Path(config.out_dir) / config.name / f"{config.models[0].name}_img448_tok64"


def test_all_problems_of_a_config_are_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ndata: {test: t.tsv}\nmodels: [{name: a}, {name: a}]\nimage: {polcy: pad}\n"
        "generation: {max_new_tokens: 0}\nscoring: {metrics: [CIDEr, BLUE]}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad, CaptionConfig)
    text = str(info.value)
    assert "image.polcy" in text and "did you mean 'policy'" in text and "generation.max_new_tokens" in text
    bad.write_text("name: x\ndata: {test: t.tsv}\nmodels: [{name: a}, {name: a}]\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        load_config(bad, CaptionConfig)
    bad.write_text("name: x\ndata: {test: t.tsv}\nmodels: [{name: a}]\nscoring: {metrics: [BLUE]}\nfinetune: {enabled: false}\n")
    with pytest.raises(ConfigError, match="did you mean 'BLEU'"):
        load_config(bad, CaptionConfig)
    bad.write_text("name: x\ndata: {test: t.tsv}\nmodels: [{name: a}]\n")  # fine-tuning on, no training data
    with pytest.raises(ConfigError, match="data.train"):
        load_config(bad, CaptionConfig)


def test_select_models_by_name_with_a_hint() -> None:
    config = load_config(CONFIGS[0], CaptionConfig)
    names = [m.name for m in config.models]
    assert [m.name for m in select_models(config, None)] == names
    assert [m.name for m in select_models(config, [names[1], names[0]])] == [names[1], names[0]]
    with pytest.raises(ConfigError, match="did you mean"):
        select_models(config, [names[0] + "x"])
