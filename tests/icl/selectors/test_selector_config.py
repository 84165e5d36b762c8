"""SelectorConfig: version-dependent defaults, and mistakes caught before training."""

from __future__ import annotations

import pydantic
import pytest

from vlmlab.config import validate_config
from vlmlab.errors import ConfigError
from vlmlab.icl.selectors import SelectorConfig


def test_version_defaults_are_resolved():
    assert SelectorConfig(version="v0", embedding_dim=8).num_layers == 2
    assert SelectorConfig(version="v1", embedding_dim=8).num_layers == 0
    assert SelectorConfig(version="v2", embedding_dim=8).num_layers == 1
    assert SelectorConfig(version="v2", embedding_dim=8).ranking_loss == "none"
    assert SelectorConfig(version="v3", embedding_dim=8).ranking_loss == "listwise"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"version": "v1", "num_layers": 2}, "num_layers must be 0 for v1"),
        ({"version": "v2", "num_layers": 0}, "num_layers must be >= 1"),
        ({"version": "v2", "ranking_loss": "listwise"}, "ranking_loss is a v3/v4 feature"),
        ({"version": "v3", "ranking_loss": "none"}, "needs ranking_loss"),
        ({"version": "v3", "kl_beta": 0.5}, "kl_beta only apply to v4"),
        ({"version": "v2", "hidden_dim": 30, "num_heads": 4}, "divisible by num_heads"),
        ({"version": "v1", "shots": 9, "pool_size": 8}, "shots 9 > pool_size 8"),
    ],
)
def test_inconsistent_settings_are_rejected(fields, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        SelectorConfig(embedding_dim=8, **fields)


def test_resolved_dump_reloads_to_the_same_config():
    for version in ("v0", "v1", "v2", "v3", "v4"):
        cfg = SelectorConfig(version=version, embedding_dim=8)
        assert SelectorConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_unknown_key_and_version_are_config_errors():
    with pytest.raises(ConfigError, match="num_layer"):
        validate_config({"version": "v2", "embedding_dim": 8, "num_layer": 2}, SelectorConfig, "train.yaml")
    with pytest.raises(ConfigError, match="version"):
        validate_config({"version": "v5", "embedding_dim": 8}, SelectorConfig, "train.yaml")
