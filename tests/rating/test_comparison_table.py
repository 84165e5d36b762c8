"""One study, three kinds of rater in one table: a VLM behind a (fake) HTTP server, a Hugging Face
image classifier (FER-style baseline, a tiny random ViT) and the human raters themselves."""

from __future__ import annotations

import json

import yaml

from vlmlab.testing import serve
from rating_helpers import FER_LABEL_MAP, ScriptedRater, make_faces, run_cli, tiny_vit_classifier

HEADING = "## VLMs, classifier baselines and human raters"


def _table_rows(report: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table after `heading`, as lists of cells."""
    lines = report[report.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _ci(e: dict) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def test_vlm_classifier_and_humans_share_one_table(tmp_path):
    ratings, truth = make_faces(tmp_path / "faces", n_per_cell=2, raters=3)
    classifier = tiny_vit_classifier(tmp_path / "tiny-fer-vit")
    with serve(ScriptedRater(truth, fp_b=0.5), api="openai") as server:
        config = {"out": str(tmp_path / "out"), "data": {"ratings": str(ratings)},
                  "models": [{"name": "vlm", "ref": "fake", "kind": "openai", "base_url": server.url}],
                  "baselines": [{"name": "fer-vit", "ref": str(classifier), "label_map": FER_LABEL_MAP, "batch_size": 8}],
                  "capture": {"top_logprobs": 0}, "batch_size": 8}
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(config))
        assert run_cli(["rating", "run", str(path)]) == 0
    analysis = json.loads((tmp_path / "out" / "analysis" / "analysis.json").read_text())
    rows = {row[0]: row for row in _table_rows((tmp_path / "out" / "analysis" / "report.md").read_text(), HEADING)}
    vlm, fer = "vlm/default/context-carry/t0/r0", "fer-vit/default/classifier/t0/r0"
    human = "human raters (each vs the others)"
    assert set(rows) == {vlm, fer, human}
    assert (rows[vlm][1], rows[fer][1], rows[human][1]) == ("VLM", "baseline (classifier)", "human")
    for label in (vlm, fer):  # each row shows its condition's numbers: n, accuracy [CI], kappa [CI]
        emotion = analysis["conditions"][label]["emotion"]
        assert rows[label][2:5] == [str(emotion["n"]), _ci(emotion["accuracy"]), _ci(emotion["kappa"])]
    agreement = analysis["mixed_models"]["human_agreement"]
    assert rows[human][2:4] == [str(agreement["emotion"]["n"]), _ci(agreement["emotion"]["accuracy"])]
    assert rows[human][5] == _ci(agreement["valence"]["pearson"])
    assert analysis["conditions"][fer]["kind"] == "classifier" and analysis["conditions"][vlm]["kind"] == "openai"
    assert rows[vlm][7] != "–"  # the scripted VLM calls B's neutral faces angry: an FPR difference with its CI
