"""Image-classifier baselines of the rating study: any Hugging Face image-classification checkpoint.

A dedicated facial-expression (FER) classifier is the baseline a reviewer asks for beside the VLMs.
Hub FER models (ViT, ConvNeXt, ...) are `AutoModelForImageClassification` checkpoints; their labels
("anger", "happiness", "LABEL_3") are not the study's words, so each baseline states its label map
explicitly in the config, and a classifier label the map leaves out is an error before anything
runs. The PIL/numpy image processor (`backend="pil"`) is used, so no torchvision is needed.

Each baseline writes one run folder shaped like a VLM condition
(`<out>/<name>__classifier/classifier__t0__r0`, stage `rating.condition`), so `vlmlab rating
analyze` puts it in the same tables as the VLMs and the human raters.

    baselines:
      - name: fer-vit
        ref: path/or/hub-id            # an image-classification checkpoint
        label_map: {anger: angry, happiness: happy, sadness: sad, fear: fearful, surprise: surprised, neutral: neutral}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vlmlab.errors import DataError
from vlmlab.progress import progress_bar
from vlmlab.rating.config import BaselineConfig, RatingConfig
from vlmlab.runs import Run


def check_label_map(labels: Sequence[str], label_map: dict[str, str], where: str) -> None:
    """Every classifier label must be mapped (one line naming the missing ones)."""
    missing = [label for label in labels if label not in label_map]
    if missing:
        raise DataError(f"{where}: label_map leaves classifier label(s) {', '.join(repr(m) for m in missing)} unmapped; "
                        f"map each of {', '.join(repr(lab) for lab in labels)} to one of the study's emotions")
    extra = sorted(set(label_map) - set(labels))
    if extra:
        raise DataError(f"{where}: label_map names {', '.join(repr(e) for e in extra)}, which the classifier does not have; its labels: {', '.join(labels)}")


def classifier_labels(ref: str) -> list[str]:
    """The checkpoint's labels in class order, from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        raise DataError(f"{ref}: not a loadable image-classification checkpoint ({str(exc).splitlines()[0]})") from None
    return [str(config.id2label[i]) for i in range(len(config.id2label))]


class ImageClassifierRater:
    """Emotion labels (and mapped probabilities) from an image-classification checkpoint."""

    def __init__(self, ref: str, label_map: dict[str, str], emotions: Sequence[str]):
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.labels = classifier_labels(ref)
        check_label_map(self.labels, label_map, ref)
        self.label_map, self.emotions = dict(label_map), list(emotions)
        self.processor = AutoImageProcessor.from_pretrained(ref, backend="pil")
        self.model = AutoModelForImageClassification.from_pretrained(ref).eval()
        self._torch = torch

    def classify(self, images: Sequence[Any]) -> list[dict[str, Any]]:
        """One dict per PIL image: raw label, mapped emotion, probabilities summed per emotion."""
        inputs = self.processor(images=list(images), return_tensors="pt")
        with self._torch.no_grad():
            probs = self._torch.softmax(self.model(**inputs).logits.float(), dim=-1).numpy()
        out = []
        for row in probs:
            top = int(np.argmax(row))
            by_emotion = {e: 0.0 for e in self.emotions}
            for label, p in zip(self.labels, row):
                by_emotion[self.label_map[label]] = by_emotion.get(self.label_map[label], 0.0) + float(p)
            out.append({"label": self.labels[top], "emotion": self.label_map[self.labels[top]],
                        "probs": {e: round(p, 6) for e, p in by_emotion.items()}})
        return out


def baseline_dir(out: Path, baseline: BaselineConfig) -> Path:
    return Path(out) / f"{baseline.name}__classifier" / "classifier__t0__r0"


def baseline_config(study: RatingConfig, baseline: BaselineConfig) -> dict[str, Any]:
    """The baseline run's identity, shaped like a VLM condition's so the analysis reads both."""
    from vlmlab.rating.conditions import data_identity

    return {"stage": "rating.condition", "data": data_identity(study),
            "model": {"name": baseline.name, "ref": baseline.ref, "kind": "classifier", "base_url": None},
            "variant": {"name": "default", "options": {}}, "mode": "classifier", "temperature": 0.0, "repeat": 0,
            "seed": study.seed, "emotions": list(study.emotions), "label_map": dict(baseline.label_map)}


def check_baselines(study: RatingConfig) -> None:
    """Label maps against each checkpoint's labels, before any model loads or any run starts."""
    for baseline in study.baselines:
        check_label_map(classifier_labels(baseline.ref), baseline.label_map, f"baselines: {baseline.name}")


def run_baselines(study: RatingConfig, items: Sequence[Any], *, overwrite: bool = False) -> list[Path]:
    """Classify every pending item with every baseline; returns their run folders."""
    folders = []
    for baseline in study.baselines:
        run = Run.open(baseline_dir(study.out, baseline), baseline_config(study, baseline), stage="rating.condition", overwrite=overwrite)
        pending = run.pending(items)
        if pending:
            rater = ImageClassifierRater(baseline.ref, baseline.label_map, study.emotions)
            with progress_bar() as progress:
                task = progress.add_task(f"baseline {baseline.name}", total=len(pending))
                for start in range(0, len(pending), baseline.batch_size):
                    chunk = pending[start : start + baseline.batch_size]
                    for item, result in zip(chunk, rater.classify([item.image.load() for item in chunk])):
                        run.append(item.id, {"image_id": item.id, "group": item.group,
                                             "human": {"emotion": item.emotion, "valence": item.valence, "arousal": item.arousal},
                                             "status": "ok", "emotion": result["emotion"], "valence": None, "arousal": None,
                                             "answers": {"emotion": {"label": result["label"], "probs": result["probs"], "status": "ok"}}})
                    progress.advance(task, len(chunk))
        run.finish("complete", item_status={"ok": len(run.records())})
        folders.append(run.dir)
    return folders
