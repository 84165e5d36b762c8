"""A Hugging Face image classifier as a rater: a tiny random ViT built offline, through the real CLI."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from vlmlab.cli import main
from vlmlab.runs import read_ledger
from rating_helpers import make_faces

LABELS = ["anger", "happiness", "neutral", "sadness"]
LABEL_MAP = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit") / "tiny-fer-vit"
    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=24, num_labels=4, initializer_range=1.0, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    model = ViTForImageClassification(config)
    with torch.no_grad():  # spread the logits so the argmax differs between images
        model.classifier.weight.mul_(50.0)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(folder)
    return folder


def write_study(tmp_path, ratings, classifier, label_map) -> str:
    config = {"out": str(tmp_path / "out"), "data": {"ratings": str(ratings)}, "models": [],
              "baselines": [{"name": "fer-vit", "ref": str(classifier), "label_map": label_map, "batch_size": 5}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_classifier_baseline_rates_through_the_cli(tmp_path, classifier):
    ratings, faces = make_faces(tmp_path / "faces", n_per_cell=1, raters=2)
    with pytest.raises(SystemExit) as info:
        main(["rating", "run", write_study(tmp_path, ratings, classifier, LABEL_MAP)])
    assert info.value.code in (0, None)
    records = read_ledger(tmp_path / "out" / "fer-vit__classifier" / "classifier__t0__r0" / "ledger.jsonl")
    assert len(records) == len(faces)
    # The same checkpoint called directly: argmax label, mapped.
    model = ViTForImageClassification.from_pretrained(classifier).eval()
    processor = ViTImageProcessor.from_pretrained(classifier)
    import PIL.Image

    images = [PIL.Image.open(tmp_path / "faces" / "images" / f"{r['image_id']}.png").convert("RGB") for r in records]
    with torch.no_grad():
        logits = model(**processor(images=images, return_tensors="pt")).logits
    expected = [LABEL_MAP[LABELS[int(i)]] for i in logits.argmax(-1)]
    assert [r["emotion"] for r in records] == expected
    probs = torch.softmax(logits, -1)
    for i, r in enumerate(records):
        assert r["answers"]["emotion"]["label"] == LABELS[int(logits[i].argmax())]
        got = r["answers"]["emotion"]["probs"]
        assert [got[LABEL_MAP[l]] for l in LABELS] == pytest.approx(probs[i].tolist(), abs=1e-5)
    analysis = json.loads((tmp_path / "out" / "analysis" / "analysis.json").read_text())
    assert analysis["conditions"]["fer-vit/default/classifier/t0/r0"]["kind"] == "classifier"
    report = (tmp_path / "out" / "analysis" / "report.md").read_text()
    assert "baseline (classifier)" in report and "human raters (each vs the others)" in report


def test_unmapped_classifier_label_is_one_line_error(tmp_path, classifier, capsys):
    ratings, _ = make_faces(tmp_path / "faces", n_per_cell=1, raters=2)
    partial = {k: v for k, v in LABEL_MAP.items() if k != "sadness"}
    with pytest.raises(SystemExit) as info:
        main(["rating", "run", write_study(tmp_path, ratings, classifier, partial)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "label_map leaves classifier label(s) 'sadness' unmapped" in err[0]
    assert not (tmp_path / "out").exists()


def test_label_map_to_an_unknown_emotion_is_a_config_error(tmp_path, classifier, capsys):
    ratings, _ = make_faces(tmp_path / "faces", n_per_cell=1, raters=2)
    with pytest.raises(SystemExit) as info:
        main(["rating", "run", write_study(tmp_path, ratings, classifier, {**LABEL_MAP, "sadness": "gloomy"})])
    assert info.value.code == 2
    assert "gloomy" in capsys.readouterr().err
