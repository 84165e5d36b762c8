"""`preset: lever-plus` and `upstream_version`: upstream Lever-Plus semantics through the real CLI on the toy world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main
from vlmlab.config import load_config
from vlmlab.errors import ConfigError
from vlmlab.icl.configs import BeamConfig, EvalConfig, RLDataConfig, TrainStageConfig
from vlmlab.icl.prompts import LEVER_PLUS_SYSTEM_PROMPT
from vlmlab.icl.stages import read_jsonl


class Recording:
    """The toy backend, keeping every conversation it was sent."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.supports_score, self.seen = inner, "toy", True, []

    def score(self, requests):
        self.seen += [r.conversation for r in requests]
        return self.inner.score(requests)

    def generate(self, requests):
        self.seen += [r.conversation for r in requests]
        return self.inner.generate(requests)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


def test_preset_resolves_upstream_semantics(tmp_path: Path) -> None:
    beam = load_config(_write(tmp_path / "b.yaml", {"preset": "lever-plus", "candidates": "c", "scorer": {"ref": "m"}}), BeamConfig)
    assert (beam.prompt_format, beam.score_eos, beam.order, beam.rank_by) == ("lever-plus", True, "left", "marginal")
    rl = load_config(_write(tmp_path / "r.yaml", {"preset": "lever-plus", "beams": "b"}), RLDataConfig)
    assert (rl.correct_threshold, rl.correct_comparison, rl.vqa_mode, rl.prompt_format) == (0.0, ">", "openflamingo", "lever-plus")
    assert rl.answer_postprocess == "lever-plus"
    ev = load_config(_write(tmp_path / "e.yaml", {"preset": "lever-plus", "index": "i", "test": {"questions": "q", "annotations": "a", "images": "."},
                                                 "model": {"ref": "m"}}), EvalConfig)
    assert (ev.prompt_format, ev.vqa_mode, ev.answer_postprocess) == ("lever-plus", "openflamingo", "lever-plus")
    train = load_config(_write(tmp_path / "t.yaml", {"preset": "lever-plus", "upstream_version": "v3", "index": "i", "beams": "b", "rl": "r"}),
                        TrainStageConfig)
    sel = train.selector
    assert sel["version"] == "v4" and sel["ranking_loss"] == "none"  # upstream v3 = RCE + GRPO = vlmlab v4
    assert (sel["num_layers"], sel["ce_beams"], sel["ppo_ratio_reference"], sel["advantage_std_floor"]) == (3, "all", "supervised", 0.1)
    # an explicit key wins over the preset
    own = load_config(_write(tmp_path / "t2.yaml", {"preset": "lever-plus", "index": "i", "beams": "b", "selector": {"version": "v2", "num_layers": 1}}),
                      TrainStageConfig)
    assert own.selector["num_layers"] == 1 and own.selector["ce_beams"] == "all"
    # without the preset nothing changes: vlmlab's defaults
    plain = load_config(_write(tmp_path / "r2.yaml", {"beams": "b"}), RLDataConfig)
    assert (plain.correct_threshold, plain.correct_comparison, plain.prompt_format) == (0.5, ">=", "chat")


@pytest.mark.parametrize("name,options", [
    ("v4", {}), ("v4-2", {}), ("v4-3", {"diversity": "mmr"}), ("v4-4", {"candidate_self_attention": True, "diversity": "mmr"}),
    ("v4-5", {"scoring": "additive"}), ("v4-7", {"diversity": "dpp"}), ("v4-10", {"stop_token": True}),
])
def test_upstream_v4_names_map_to_the_pointer_options(tmp_path: Path, name: str, options: dict) -> None:
    """Upstream's v4 and v4-N (pointer_selector_v4_N_rl.py: its v3 recipe, RCE then GRPO, with the v4-N network; v4-4's
    class also carries v4-3's MMR, v4-5's default attention_type is additive) resolve to vlmlab v4 with the option."""
    from vlmlab.icl.selectors.config import SelectorConfig

    train = load_config(_write(tmp_path / "t.yaml", {"upstream_version": name, "index": "i", "beams": "b", "rl": "r"}), TrainStageConfig)
    config = SelectorConfig.model_validate({"embedding_dim": 8, **train.selector})
    assert (config.version, config.ranking_loss) == ("v4", "none")
    defaults = {"diversity": "none", "candidate_self_attention": False, "scoring": "cosine", "stop_token": False}
    assert {k: getattr(config, k) for k in defaults} == {**defaults, **options}


def test_bad_names_are_one_line_errors(tmp_path: Path, capsys) -> None:
    cases = [
        ({"index": "i", "beams": "b", "rl": "r", "selector": {"version": "v4", "reward_mode": "hard_plus_sotf"}}, "did you mean 'hard_plus_soft'"),
        ({"index": "i", "beams": "b", "upstream_version": "v4-6"}, "upstream_version 'v4-6' is not available: coverage"),
        ({"index": "i", "beams": "b", "upstream_version": "v4-1"}, "upstream_version 'v4-1' is not available: its query update is a learned scalar gate"),
        ({"index": "i", "beams": "b", "upstream_version": "v4-33"}, "not an upstream Lever-Plus version; did you mean 'v4-3'"),
        ({"index": "i", "beams": "b", "preset": "leverplus"}, "preset"),
        ({"index": "i", "beams": "b", "upstream_version": "v3", "selector": {"version": "v2"}}, "upstream_version v3 is vlmlab version v4"),
    ]
    for data, message in cases:
        path = _write(tmp_path / "t.yaml", data)
        with pytest.raises(ConfigError, match=message):
            load_config(path, TrainStageConfig)
        assert _cli(["icl", "train", str(path), "--out", str(tmp_path / "never")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message.split("'")[0] in err[0]
        assert not (tmp_path / "never").exists()


def test_lever_plus_chain_through_the_cli(tmp_path: Path, candidates_run: Path, index_run: Path, toy_backend, monkeypatch) -> None:
    """beam -> rl-data -> train (upstream v3) with `preset: lever-plus`: upstream's prompt, EOS
    recorded, correct = accuracy > 0, every beam a CE target, 3 cross-attention layers."""
    import vlmlab.icl.stages as stages

    backend = Recording(toy_backend)
    monkeypatch.setattr(stages, "load_backend", lambda cfg: backend)
    monkeypatch.setattr(stages, "preflight_model", lambda *a, **k: None)  # the scripted backend has no checkpoint
    beam_cfg = _write(tmp_path / "beam.yaml", {"preset": "lever-plus", "candidates": str(candidates_run), "scorer": {"ref": "toy"},
                                               "beam_size": 3, "shots": 2})
    assert _cli(["icl", "beam", str(beam_cfg), "--out", str(tmp_path / "beam")]) == 0
    conv = backend.seen[0]
    assert conv[0].role == "system" and conv[0].text == LEVER_PLUS_SYSTEM_PROMPT
    assert all(t.text.startswith("Question:") and t.text.endswith(" Short answer:") for t in conv if t.role == "user")
    beams = read_jsonl(tmp_path / "beam" / "beams.jsonl")
    assert all(r["prompt_format"] == "lever-plus" and r["score_eos"] is True and r["order"] == "left" for r in beams)

    rl_cfg = _write(tmp_path / "rl.yaml", {"preset": "lever-plus", "beams": str(tmp_path / "beam"), "n_sampled": 4, "min_positives": 0})
    assert _cli(["icl", "rl-data", str(rl_cfg), "--out", str(tmp_path / "rl")]) == 0
    raw = [c for r in read_jsonl(tmp_path / "rl" / "rl_raw.jsonl") for c in r["candidates"]]
    assert all(c["vqa_correct"] == (c["vqa_acc_score"] > 0) for c in raw)
    assert all(c["beam_score"] is not None and 0 < c["vqa_gt_prob"] <= 1 for c in raw)
    assert "VQA accuracy > 0.0 (openflamingo)" in (tmp_path / "rl" / "report.md").read_text()

    train_cfg = _write(tmp_path / "train.yaml", {
        "preset": "lever-plus", "upstream_version": "v3", "index": str(index_run), "beams": str(tmp_path / "beam"), "rl": str(tmp_path / "rl"),
        "selector": {"hidden_dim": 16, "pool_size": 8, "epochs": 1, "rce_epochs": 1, "grpo_epochs": 1, "batch_size": 4, "val_fraction": 0.25}})
    assert _cli(["icl", "train", str(train_cfg), "--out", str(tmp_path / "train")]) == 0
    meta = json.loads((tmp_path / "train" / "selector.json").read_text())
    assert meta["config"]["version"] == "v4" and meta["config"]["num_layers"] == 3 and meta["config"]["ce_beams"] == "all"
    assert meta["upstream_version"] == "v3" and meta["preset"] == "lever-plus"
    assert meta["beams"] == {"score_eos": True, "prompt_format": "lever-plus"}


@pytest.mark.parametrize(("generated", "expected"), [
    # expected values produced by running upstream's postprocess_vqa_generation (open_mmicl/metrics/vqa_metrics.py)
    ("red", "red"), ("red Question: what", "red "), ("blue, green", "blue"), ("two Short answer: 3", "two "),
    ("Answer: yes", ""), ("a cat,dog, bird", "a cat,dog"), (" circle\nQuestion:", " circle\n"), ("", ""),
])
def test_answer_postprocess_matches_upstream(generated: str, expected: str) -> None:
    from vlmlab.icl.prompts import postprocess_answer

    assert postprocess_answer(generated, "lever-plus") == expected
    assert postprocess_answer(generated, "none") == generated
