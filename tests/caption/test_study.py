"""The caption study end to end on toy panoramas with a tiny Qwen2-VL, through the real CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vlmlab.cli import main


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_multi_model_run_where_one_model_fails(write_config, tiny_caption_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-checkpoint"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "not_a_vlm"}')
    config = write_config(models=[
        {"name": "broken", "path": str(broken), "finetune": False},
        {"name": "tiny", "path": str(tiny_caption_model), "finetune": False},
        {"name": "typo", "ref": "qwen2-vl-2bb", "finetune": False},
    ])
    code = run_cli("caption", "run", str(config), "--max-tokens", "5")
    assert code == 1  # some model failed; the others' results are kept
    study = tmp_path / "runs" / "study"
    info = {name: json.loads((study / f"{name}_img56_tok5" / "model.json").read_text()) for name in ("broken", "tiny", "typo")}
    assert info["broken"]["status"] == "failed" and "not_a_vlm" in info["broken"]["error"]
    assert (study / "broken_img56_tok5" / "error.txt").read_text().startswith("Traceback")
    assert info["typo"]["status"] == "failed" and "did you mean 'qwen2-vl-2b'" in info["typo"]["error"]
    assert info["tiny"]["status"] in ("complete", "degraded")

    # the good model: shared data, predictions through the ledger, metrics in both modes
    shared = study / "_shared_data"
    assert len(read_csv(shared / "test.csv")) == 4 and len(read_csv(shared / "train.csv")) == 48 * 5
    predictions = read_csv(study / "tiny_img56_tok5" / "generate" / "predictions.csv")
    assert [r["id"] for r in predictions] == [r["id"] for r in read_csv(shared / "test.csv")]
    assert all(r["status"] in ("ok", "empty") for r in predictions)
    metrics = json.loads((study / "tiny_img56_tok5" / "score" / "metrics.json").read_text())
    assert metrics["headline_mode"] == "per-row" and set(metrics["modes"]) == {"grouped", "per-row"}
    assert metrics["modes"]["per-row"]["n"] == 4 * 5 and metrics["modes"]["grouped"]["n"] == 4
    assert metrics["max_new_tokens"] == 5 and metrics["image"]["policy"] == "squash"
    human = json.loads((study / "human" / "metrics.json").read_text())
    assert human["pairs"] == 4 and human["modes"]["per-row"]["n"] == 4 * 5 * 4

    # the report: the good model and the human row scored, the failed models listed with their errors
    main_rows = read_csv(study / "main_metrics.csv")
    assert [r["model"] for r in main_rows] == ["tiny", "human (leave-one-out)"]
    assert float(main_rows[1]["CIDEr"]) == pytest.approx(human["modes"]["per-row"]["CIDEr"], abs=1e-4)
    assert [r["model"] for r in read_csv(study / "bleu.csv")] == ["tiny", "human (leave-one-out)"]
    stats = read_csv(study / "token_stats.csv")
    assert stats[0]["model"] == "tiny" and float(stats[0]["ref tokens"]) > 0
    report = (study / "report.md").read_text()
    assert "Failed or unfinished models" in report and "not_a_vlm" in report and "qwen2-vl-2bb" in report
    assert (study / "caption_scores.png").read_bytes().startswith(b"\x89PNG")

    # `vlmlab caption report DIR` regenerates the same tables from the run folders alone
    (study / "main_metrics.csv").unlink()
    assert run_cli("caption", "report", str(study), "--out", str(tmp_path / "again")) == 0
    assert read_csv(tmp_path / "again" / "main_metrics.csv") == main_rows

    # re-running only the good model resumes: nothing is generated again, the report is rebuilt
    ledger = (study / "tiny_img56_tok5" / "generate" / "ledger.jsonl").read_text()
    assert run_cli("caption", "run", str(config), "--max-tokens", "5", "--models", "tiny") == 0
    assert (study / "tiny_img56_tok5" / "generate" / "ledger.jsonl").read_text() == ledger


def test_lora_fine_tuning_inside_the_study_and_the_length_guard(write_config, tiny_caption_model: Path, tmp_path: Path) -> None:
    ft = {"enabled": True, "method": "lora", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    config = write_config(
        models=[{"name": "tiny", "path": str(tiny_caption_model), "target_modules": ["q_proj", "v_proj"]}],
        data={"max_train_rows": 16}, finetune={**ft, "max_steps": 2, "batch_size": 4, "max_length": 64},
        scoring={"metrics": ["BLEU"], "human": False},
    )
    assert run_cli("caption", "run", str(config), "--max-tokens", "4") == 0
    model_dir = tmp_path / "runs" / "study" / "tiny_img56_tok4"
    info = json.loads((model_dir / "model.json").read_text())
    assert info["finetune"]["method"] == "lora" and info["finetune"]["steps"] == 2
    assert (model_dir / "finetune" / "adapter" / "adapter_model.safetensors").is_file()
    gen_config = (model_dir / "generate" / "config.yaml").read_text()
    assert info["finetune"]["fingerprint"] in gen_config  # predictions are tied to this adapter

    # a sample longer than max_length fails this model with a message naming the sample and the length needed
    short = write_config(name="short", models=[{"name": "tiny", "path": str(tiny_caption_model)}], data={"max_train_rows": 16},
                         finetune={**ft, "max_steps": 2, "batch_size": 4, "max_length": 16}, scoring={"metrics": ["BLEU"], "human": False})
    assert run_cli("caption", "run", str(short), "--max-tokens", "4") == 1
    error = json.loads((tmp_path / "runs" / "short" / "tiny_img56_tok4" / "model.json").read_text())["error"]
    assert "training sample" in error and "max_length is 16" in error and "image tokens" in error


def test_cubemap_passes_several_views_of_each_panorama(write_config, tiny_caption_model: Path, tmp_path: Path) -> None:
    records = {}
    for policy in ("squash", "cubemap"):
        config = write_config(name=policy, image={"policy": policy, "size": 56}, data={"max_test_pairs": 2},
                              scoring={"metrics": ["BLEU"], "human": False})
        assert run_cli("caption", "run", str(config), "--max-tokens", "2") == 0
        ledger = tmp_path / "runs" / policy / "tiny_img56_tok2" / "generate" / "ledger.jsonl"
        records[policy] = [json.loads(line) for line in ledger.read_text().splitlines()]
    views = sorted((tmp_path / "runs" / "cubemap" / "_shared_data" / "images" / "cubemap-56-v4-fov90").glob("*.png"))
    assert len(views) == 2 * 4 and {p.stem.split("_")[-1] for p in views} == {"front", "right", "back", "left"}
    per_image = 4  # the tiny Qwen2-VL: (56/28)^2 image tokens per 56x56 image
    for squash, cube in zip(records["squash"], records["cubemap"]):
        assert squash["status"] != "error" and cube["status"] != "error"
        assert cube["prompt_tokens"] - squash["prompt_tokens"] >= 3 * per_image  # three more images in the prompt


def test_training_prompt_is_the_generation_prompt_and_only_the_caption_carries_loss(toy_data: Path, tiny_caption_model: Path,
                                                                                     tmp_path: Path) -> None:
    from vlmlab.caption.data import build_conversation, prepare_shared_data
    from vlmlab.caption.images import ImagePreparer
    from vlmlab.models.hf_encode import encode_conversation
    from vlmlab.models.processor import load_processor
    from vlmlab.train import TrainExample, encode_example

    shared = prepare_shared_data(toy_data / "test.tsv", tmp_path / "shared", train=toy_data / "train.tsv", max_train_rows=3)
    prep = ImagePreparer(shared.folder / "images", policy="cubemap", size=56)
    processor = load_processor(tiny_caption_model)
    row = shared.train[0]
    conversation = build_conversation(prep(row.image), row.query)  # what the study builds for both stages
    inference = encode_conversation(processor, conversation)
    train = encode_example(processor, TrainExample(id=row.id, conversation=conversation, target=row.references[0]))
    n = inference.input_ids.shape[0]
    assert train.input_ids[:n].tolist() == inference.input_ids.tolist()  # byte-for-byte the generation prompt
    assert train.num_image_tokens == 4 * 4  # four cubemap views, none truncated
    supervised = train.input_ids[train.labels != -100]
    assert (train.labels[:n] == -100).all()  # prompt and image tokens carry no loss
    text = processor.tokenizer.decode(supervised)
    assert text.startswith(row.references[0]) and text[len(row.references[0]):].strip() == "<|im_end|>"


def test_a_one_image_family_refuses_cubemap_before_training(tiny_model, tiny_caption_model: Path) -> None:
    from vlmlab.caption.study import check_image_count
    from vlmlab.errors import ModelError

    blip2 = tiny_model("blip2")  # images per prompt are derived from the checkpoint's processor and template
    check_image_count(blip2, 1)
    with pytest.raises(ModelError, match="at most 1 image.*image.policy squash or pad"):
        check_image_count(blip2, 4)
    check_image_count(tiny_caption_model, 6)  # Qwen2-VL takes several images


def test_report_of_a_folder_without_runs_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("caption", "report", str(tmp_path / "missing")) == 2
    (tmp_path / "empty").mkdir()
    assert run_cli("caption", "report", str(tmp_path / "empty")) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "run `vlmlab caption run` first" in err
