"""Checkpoints: safetensors + selector.json; strict loading names the offending keys."""

from __future__ import annotations

import json

import pytest
import torch

from vlmlab.errors import CheckpointError
from vlmlab.icl.selectors import (
    DataFingerprint,
    build_selector,
    load_selector,
    load_weights_strict,
    save_selector,
    select,
)

FP = DataFingerprint.from_ids("synthetic", ["a", "b"], 16, "text")


@pytest.mark.parametrize("version", ["v0", "v2"])
def test_round_trip_gives_the_same_selector(make_config, tmp_path, version):
    model = build_selector(make_config(version, seed=3))
    save_selector(model, tmp_path, FP)
    assert (tmp_path / "selector.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, no pickle
    loaded = load_selector(tmp_path, config=make_config(version, seed=3, lr=0.1), fingerprint=FP)
    query, pool = torch.randn(4, 16), torch.randn(4, 16, 16)
    assert torch.equal(select(model, query, pool, 2), select(loaded, query, pool, 2))
    meta = json.loads((tmp_path / "selector.json").read_text())
    assert meta["config"]["version"] == version and meta["data"]["dataset"] == "synthetic"


def test_num_layers_mismatch_names_the_keys(make_config, tmp_path):
    save_selector(build_selector(make_config("v2", num_layers=1)), tmp_path, FP)
    with pytest.raises(CheckpointError, match=r"config mismatch in num_layers \(saved 1, requested 3\)"):
        load_selector(tmp_path, config=make_config("v2", num_layers=3))
    three = build_selector(make_config("v2", num_layers=3))
    with pytest.raises(CheckpointError, match=r"missing keys cross_layers\.1\.\* \(18 keys\), cross_layers\.2\.\* \(18 keys\)"):
        load_weights_strict(three, tmp_path / "selector.safetensors")
    save_selector(three, tmp_path / "three", FP)
    one = build_selector(make_config("v2", num_layers=1))
    with pytest.raises(CheckpointError, match=r"unexpected keys cross_layers\.1\.\* \(18 keys\)"):
        load_weights_strict(one, tmp_path / "three" / "selector.safetensors")
    wide = build_selector(make_config("v2", num_layers=1, hidden_dim=64))
    with pytest.raises(CheckpointError, match=r"shape mismatch cross_layers.0.ff.0.bias \(64,\) vs \(128,\)"):
        load_weights_strict(wide, tmp_path / "selector.safetensors")


def test_checkpoint_for_other_data_is_refused(make_config, tmp_path):
    save_selector(build_selector(make_config("v1")), tmp_path, FP)
    other = DataFingerprint.from_ids("vqav2", ["a", "b", "c"], 16, "text")
    with pytest.raises(CheckpointError, match=r"trained on other data \(dataset: 'synthetic' != 'vqav2'; support_ids_sha256"):
        load_selector(tmp_path, fingerprint=other)


def test_damaged_checkpoints_are_clear_errors(make_config, tmp_path):
    with pytest.raises(CheckpointError, match="selector.json not found"):
        load_selector(tmp_path)
    save_selector(build_selector(make_config("v1")), tmp_path, FP)
    (tmp_path / "selector.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be read as safetensors"):
        load_selector(tmp_path)
    (tmp_path / "selector.json").write_text(json.dumps({"format": "vlmlab-selector/1", "config": {"version": "v9"}, "data": {}}))
    with pytest.raises(CheckpointError, match="invalid config"):
        load_selector(tmp_path)


def test_one_missing_key_is_named_and_a_wrong_dtype_is_refused(make_config, tmp_path):
    """A single missing key is named in full (not `cross_layers.0.* (1 keys)`), and a float16 or
    int64 tensor is an error naming the key and both dtypes instead of a silent cast."""
    from safetensors.torch import save_file

    model = build_selector(make_config("v2", num_layers=1))
    save_selector(model, tmp_path, FP)
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    key = next(k for k in state if k.startswith("cross_layers.0.") and k.endswith("weight"))
    save_file({k: v for k, v in state.items() if k != key}, str(tmp_path / "one-missing.safetensors"))
    with pytest.raises(CheckpointError, match=rf"missing keys {key.replace('.', chr(92) + '.')}$"):
        load_weights_strict(build_selector(make_config("v2", num_layers=1)), tmp_path / "one-missing.safetensors")
    half = {**state, key: state[key].half()}
    save_file(half, str(tmp_path / "half.safetensors"))
    with pytest.raises(CheckpointError, match=rf"dtype mismatch \(saved vs expected\) {key.replace('.', chr(92) + '.')} float16 vs float32"):
        load_weights_strict(build_selector(make_config("v2", num_layers=1)), tmp_path / "half.safetensors")
    ints = {**state, key: state[key].long()}
    save_file(ints, str(tmp_path / "int.safetensors"))
    with pytest.raises(CheckpointError, match="int64 vs float32"):
        load_weights_strict(build_selector(make_config("v2", num_layers=1)), tmp_path / "int.safetensors")


def test_provenance_differences_are_named_key_by_key():
    from vlmlab.icl.selectors.data import selector_provenance

    emb = torch.randn(2, 16).numpy()
    base = selector_provenance({"text": "minilm", "text_options": {}}, emb, "mix", 8, {"random": 0.5, "text": 0.5})
    saved = DataFingerprint.from_ids("synthetic", ["a", "b"], 16, "text", provenance=base)
    other_emb = DataFingerprint.from_ids("synthetic", ["a", "b"], 16, "text",
                                         provenance=selector_provenance({"text": "minilm", "text_options": {}}, emb * 2, "mix", 8,
                                                                        {"random": 0.5, "text": 0.5}))
    assert [d.split(":")[0] for d in saved.mismatches(other_emb)] == ["embeddings_sha256"]
    other_mix = DataFingerprint.from_ids("synthetic", ["a", "b"], 16, "text",
                                         provenance=selector_provenance({"text": "minilm", "text_options": {}}, emb, "mix", 8, {"random": 1.0}))
    assert [d.split(":")[0] for d in saved.mismatches(other_mix)] == ["pool_mix_weights"]
    assert saved.mismatches(DataFingerprint.from_ids("synthetic", ["a", "b"], 16, "text", provenance=dict(base))) == []
    assert "not recorded" in FP.mismatches(saved)[0]  # an old checkpoint cannot vouch for its embedder
