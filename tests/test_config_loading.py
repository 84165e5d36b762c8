"""Strict configs: unknown keys, wrong types, missing values, overrides and matrix sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.config import StrictModel, config_hash, expand_matrix, load_config, load_sweep
from vlmlab.errors import ConfigError


class Train(StrictModel):
    num_layers: int = 1
    lr: float = 1e-4


class Model(StrictModel):
    name: str
    dtype: str = "auto"


class Study(StrictModel):
    out: str
    model: Model
    train: Train = Train()
    temperature: float = 0.0
    repeat: int = 0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, "out: runs/x\nmodel: {name: tiny}\ntrain: {num_layers: 2}\n"), Study)
    assert cfg.train.num_layers == 2 and cfg.model.dtype == "auto"


def test_unknown_key_names_file_key_and_closest(tmp_path):
    path = write(tmp_path, "out: x\nmodel: {name: tiny}\ntrain: {num_layer: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, Study)
    msg = str(err.value)
    assert str(path) in msg and "train.num_layer" in msg and "did you mean 'num_layers'" in msg
    assert "\n" not in msg


def test_wrong_type_and_missing_are_reported_together(tmp_path):
    path = write(tmp_path, "model: {name: tiny}\ntrain: {num_layers: many}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, Study)
    msg = str(err.value)
    assert "missing required key 'out'" in msg
    assert "train.num_layers" in msg and "'many'" in msg


def test_bad_yaml_names_line(tmp_path):
    path = write(tmp_path, "out: x\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"study.yaml: line \d+ invalid YAML"):
        load_config(path, Study)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", Study)


def test_set_overrides_are_typed_and_nested(tmp_path):
    path = write(tmp_path, "out: x\nmodel: {name: tiny}\n")
    cfg = load_config(path, Study, ["train.num_layers=3", "model.dtype=bfloat16", "temperature=0.7"])
    assert cfg.train.num_layers == 3 and cfg.model.dtype == "bfloat16" and cfg.temperature == 0.7


def test_set_unknown_key_is_an_error(tmp_path):
    path = write(tmp_path, "out: x\nmodel: {name: tiny}\n")
    with pytest.raises(ConfigError, match="unknown key 'train.num_layer'"):
        load_config(path, Study, ["train.num_layer=3"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, Study, ["train.num_layers"])


def test_hash_is_stable_and_order_free():
    a = Study(out="x", model=Model(name="m"), temperature=0.5)
    b = Study.model_validate({"temperature": 0.5, "model": {"name": "m"}, "out": "x"})
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(Study(out="x", model=Model(name="m"), temperature=0.6))


def test_matrix_expands_with_stable_names(tmp_path):
    path = write(
        tmp_path,
        "out: x\nmodel: {name: a}\nmatrix:\n  model.name: [a, b]\n  temperature: [0, 0.7]\n  repeat: [0, 1, 2]\n",
    )
    sweep = load_sweep(path, Study)
    assert len(sweep) == 12
    names = [name for name, _ in sweep]
    assert len(set(names)) == 12 and names[0] == "name=a,temperature=0,repeat=0"
    assert {c.model.name for _, c in sweep} == {"a", "b"}
    assert len({config_hash(c) for _, c in sweep}) == 12
    assert names == [name for name, _ in load_sweep(path, Study)]


def test_matrix_string_values_stay_strings():
    runs = expand_matrix({"model": {"name": "x"}, "matrix": {"model.name": ["0.7", "yes"]}})
    assert [r["model"]["name"] for _, r in runs] == ["0.7", "yes"]


def test_matrix_errors_reported_before_running(tmp_path):
    path = write(tmp_path, "out: x\nmodel: {name: a}\nmatrix:\n  temperature: [0, hot]\n")
    with pytest.raises(ConfigError, match="temperature=hot"):
        load_sweep(path, Study)
    with pytest.raises(ConfigError, match="non-empty list"):
        expand_matrix({"matrix": {"temperature": 3}})
