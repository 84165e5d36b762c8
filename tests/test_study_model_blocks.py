"""Every study's models are the one `ModelBlock`: an option typo is one line naming the file and
key (exit 2, nothing written, nothing loaded), and the precision lands in the run's config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vlmlab.cli import main

# A typo of a real HFBackend parameter in each study's model block (caption's sits on the entry,
# rating's on a variant, which is merged over the model's block).
STUDIES = {
    "caption": (["caption", "run"], {"name": "s", "data": {"test": "t.tsv"}, "models": [{"name": "tiny-qwen2-vl", "options": {"max_lenght": 9}}]},
                "key 'models.0': unknown option 'max_lenght' for the hf backend; did you mean 'max_length'?"),
    "rating": (["rating", "run"], {"data": {"ratings": "r.csv"}, "models": [
                   {"name": "m", "ref": "tiny-qwen2-vl", "variants": [{"name": "fp32", "options": {"vision_cach": True}}]}]},
               "key 'models.0': model 'm', variant 'fp32': unknown option 'vision_cach' for the hf backend; did you mean 'vision_cache'?"),
    "icl beam": (["icl", "beam"], {"candidates": "cands", "scorer": {"ref": "tiny-qwen2-vl", "options": {"max_lenght": 9}}},
                 "key 'scorer': unknown option 'max_lenght' for the hf backend; did you mean 'max_length'?"),
    "icl eval": (["icl", "eval"], {"index": "index", "test": {"questions": "q.json", "annotations": "a.json", "images": "."},
                                   "model": {"kind": "openai", "ref": "qwen", "base_url": "http://127.0.0.1:9/v1",
                                             "options": {"timeuot": 5}}},
                 "key 'model': unknown option 'timeuot' for the openai backend; did you mean 'timeout'?"),
}


@pytest.mark.parametrize("study", list(STUDIES))
def test_option_typo_is_one_line_before_anything_loads(study: str, tmp_path: Path, monkeypatch, capsys) -> None:
    command, config, expected = STUDIES[study]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path / "home"))  # a tiny model built here would show up
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    out = ["--out", str(tmp_path / "out")] if command[0] == "icl" else []
    with pytest.raises(SystemExit) as info:
        main([*command, "study.yaml", *out])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: study.yaml: {expected}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # no output folder, no tiny model built


def test_block_fields_under_options_are_refused_with_the_fix(tmp_path: Path, capsys) -> None:
    """The pre-block ICL form (`options: {batch_size: 16}`) says where the key now lives."""
    (tmp_path / "beam.yaml").write_text(yaml.safe_dump({"candidates": "c", "scorer": {"ref": "tiny-qwen2-vl", "options": {"batch_size": 16}}}))
    with pytest.raises(SystemExit) as info:
        main(["icl", "beam", str(tmp_path / "beam.yaml"), "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'beam.yaml'}: key 'scorer': model option 'batch_size' belongs in the model block itself, not under options"


def test_rating_variant_overrides_the_model_block_and_its_precision_is_recorded() -> None:
    from vlmlab.rating.conditions import expand_conditions
    from vlmlab.rating.config import RatingConfig

    study = RatingConfig.model_validate({"data": {"ratings": "r.csv"}, "models": [
        {"name": "m", "ref": "tiny-qwen2-vl", "dtype": "bfloat16", "batch_size": 4, "options": {"max_length": 64},
         "variants": [{"name": "bf16"}, {"name": "int4", "quantization": "int4", "options": {"vision_cache": False}}]}]})
    bf16, int4 = expand_conditions(study)
    assert (bf16.block.dtype, bf16.block.quantization, bf16.block.batch_size) == ("bfloat16", None, 4)
    assert (int4.block.dtype, int4.block.quantization) == ("bfloat16", "int4")
    assert int4.block.backend_options() == {"dtype": "bfloat16", "batch_size": 4, "quantization": "int4", "max_length": 64, "vision_cache": False}
    recorded = int4.config(study)["model"]
    assert (recorded["name"], recorded["dtype"], recorded["quantization"]) == ("m", "bfloat16", "int4")
    assert bf16.config(study)["model"]["quantization"] is None and bf16.config(study)["variant"] == {"name": "bf16", "options": {}}


def test_caption_entry_block_loads_the_finetuned_folder_with_the_entry_precision(tmp_path: Path) -> None:
    from vlmlab.caption.config import ModelEntry

    entry = ModelEntry.model_validate({"name": "q", "path": "base-folder", "dtype": "float32", "quantization": "int8"})
    assert entry.ref == "base-folder"  # `path:` (the pre-block key) is read as ref
    assert ModelEntry.model_validate({"name": "tiny-qwen2-vl"}).ref == "tiny-qwen2-vl"
    block = entry.block(ref=tmp_path / "merged", adapter=None, batch_size=3, max_length=128)
    assert block.backend_options() == {"dtype": "float32", "batch_size": 3, "quantization": "int8", "max_length": 128}
    assert block.ref == str(tmp_path / "merged") and block.precision() == "float32, int8"
    with pytest.raises(ValueError, match="caption study fine-tunes and checks checkpoints, so its models are kind hf"):
        ModelEntry.model_validate({"name": "s", "kind": "openai", "ref": "x", "base_url": "http://127.0.0.1:9/v1"})


def test_rating_report_model_lines_show_precision(tmp_path: Path) -> None:
    from vlmlab.rating.analysis import ConditionRun, model_rows
    from vlmlab.rating.conditions import expand_conditions
    from vlmlab.rating.config import RatingConfig

    study = RatingConfig.model_validate({"data": {"ratings": "r.csv"}, "models": [
        {"name": "m", "ref": "tiny-qwen2-vl", "variants": [{"name": "fp32", "dtype": "float32"}, {"name": "q", "quantization": "int4"}]},
        {"name": "s", "kind": "ollama", "ref": "llava", "base_url": "http://127.0.0.1:9"}]})
    runs = [ConditionRun(tmp_path, c.config(study), []) for c in expand_conditions(study)]
    old = {"model": {"name": "old", "ref": "x", "kind": "hf", "base_url": None}, "variant": {"name": "default", "options": {}}}
    runs.append(ConditionRun(tmp_path, old, []))  # a run from before the model block: no precision recorded
    assert model_rows(runs) == [["m/fp32", "tiny-qwen2-vl", "hf", "float32"], ["m/q", "tiny-qwen2-vl", "hf", "auto, int4"],
                                ["s/default", "llava", "ollama", "server"], ["old/default", "x", "hf", "–"]]


def test_readme_model_block_example_validates_in_every_study() -> None:
    """The README's model-block example is a valid caption and rating `models:` entry and ICL scorer."""
    from vlmlab.caption.config import CaptionConfig
    from vlmlab.icl.configs import BeamConfig
    from vlmlab.rating.config import RatingConfig

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## One model block", 1)[1]
    [entry] = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])["models"]
    caption = CaptionConfig.model_validate({"name": "s", "data": {"test": "t.tsv", "train": "tr.tsv"}, "models": [entry]})
    rating = RatingConfig.model_validate({"data": {"ratings": "r.csv"}, "models": [entry]})
    beam = BeamConfig.model_validate({"candidates": "c", "scorer": {k: v for k, v in entry.items() if k != "name"}})
    for block in (caption.models[0], rating.models[0], beam.scorer):
        assert (block.ref, block.precision(), block.options) == ("tiny-qwen2-vl", "float32, int4", {"max_length": 2048})


def test_ollama_blocks_take_ollamas_own_options() -> None:
    """`think`, `image_tokens`, `extra_options` are Ollama parameters (the README's rating variant
    `options: {think: true}`); a typo of one is caught with its did-you-mean."""
    from vlmlab.models.spec import ModelBlock

    server = {"kind": "ollama", "ref": "llava", "base_url": "http://127.0.0.1:9"}
    block = ModelBlock(**server, options={"think": True, "image_tokens": 256, "extra_options": {"num_ctx": 4096}})
    assert block.backend_options() == {"model": "llava", "think": True, "image_tokens": 256, "extra_options": {"num_ctx": 4096}}
    with pytest.raises(ValueError, match="unknown option 'thnik' for the ollama backend; did you mean 'think'"):
        ModelBlock(**server, options={"thnik": True})
    with pytest.raises(ValueError, match="unknown option 'think' for the openai backend"):
        ModelBlock(**server | {"kind": "openai"}, options={"think": True})
