"""`vlmlab icl eval` end to end on a tiny Gemma3 with upstream's scoring: `vqa_mode: openflamingo` and
`answer_postprocess: lever-plus`. Every ledger accuracy is what the OpenFlamingo metric gives on the generation
cut as upstream's `postprocess_vqa_generation` cuts it, and every cell is the mean of its questions.

The untrained model's generations match no toy answer, so a first run's generations become the human
answers of half the test questions (4 of 10 annotators) and a second run, which generates the same text
(greedy; annotations are never in the prompt), scores them: accuracies are not all 0. (Gemma3 because its
untrained generations differ between prompts. None holds one of the cut's markers, so the second test,
with a scorer that talks on after its answer, shows that eval cuts before it scores; the cut itself is checked
against upstream's code in `test_lever_plus_preset.py`.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from icl_toy import data_config
from vlmlab.icl.configs import BackendConfig, EvalConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.stages import read_jsonl
from vlmlab.metrics.vqa import question_accuracy


def upstream_cut(text: str) -> str:
    """Upstream's `postprocess_vqa_generation` (open_mmicl/metrics/vqa_metrics.py), written out here."""
    return re.split(", ", re.split("Question|Answer|Short", text, maxsplit=1)[0], maxsplit=1)[0]


@pytest.mark.slow
def test_eval_accuracies_are_the_openflamingo_metric_on_the_cut_generations(tmp_path: Path, index_run: Path, toy_test, tiny_root: Path) -> None:
    from vlmlab.models.tiny import tiny_model_path

    model = BackendConfig(ref=str(tiny_model_path("gemma3", tiny_root)), dtype="float32")
    base = dict(index=index_run, model=model, methods=["zero-shot", "random", "text"], shots=[1, 2], vqa_mode="openflamingo",
                answer_postprocess="lever-plus", prompt_format="lever-plus", max_new_tokens=12, n_boot=50)
    first = run_eval(EvalConfig(**base, test=data_config(toy_test)), tmp_path / "first")
    rows = read_jsonl(first / "ledger.jsonl")
    # half the questions get the zero-shot generation's cut as 4 of their 10 human answers
    said = {r["question_id"]: upstream_cut(r["prediction"]) for r in rows if r["method"] == "zero-shot"}
    annotations = json.loads(Path(toy_test["annotations"]).read_text())
    for i, ann in enumerate(annotations["annotations"]):
        if i % 2 == 0 and said.get(str(ann["question_id"]), "").strip():
            for a in ann["answers"][:4]:
                a["answer"] = said[str(ann["question_id"])]
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    out = run_eval(EvalConfig(**base, test=data_config({**toy_test, "annotations": tmp_path / "annotations.json"})), tmp_path / "second")
    humans = {str(a["question_id"]): [x["answer"] for x in a["answers"]] for a in annotations["annotations"]}
    rows = read_jsonl(out / "ledger.jsonl")
    assert {r["id"]: r["prediction"] for r in rows} == {r["id"]: r["prediction"] for r in read_jsonl(first / "ledger.jsonl")}
    for r in rows:
        assert r["status"] == "ok" and r["acc"] == pytest.approx(question_accuracy(upstream_cut(r["prediction"]), humans[r["question_id"]],
                                                                                    mode="openflamingo"), abs=1e-12), r["id"]
    cells = json.loads((out / "metrics.json").read_text())["cells"]
    assert {(c["method"], c["shots"]) for c in cells} == {("zero-shot", 0), ("random", 1), ("random", 2), ("text", 1), ("text", 2)}
    for c in cells:
        accs = [r["acc"] for r in rows if r["method"] == c["method"] and r["shots"] == c["shots"]]
        assert c["accuracy"] == pytest.approx(float(np.mean(accs)), abs=1e-12) and c["n"] == len(accs)
    zero = [r["acc"] for r in rows if r["method"] == "zero-shot"]
    assert 0 < np.mean(zero) < 1  # the planted answers score, the others do not
    assert len({r["prediction"] for r in rows}) > 1


def test_eval_scores_the_cut_generation(tmp_path: Path, index_run: Path, toy_test, toy_backend) -> None:
    """A model that talks on after its answer ("red, then Question: ...") is right after upstream's cut, wrong without it."""
    from vlmlab.models.base import GenerationResult

    class Chatty:
        supports_score = True

        def generate(self, requests):
            return [GenerationResult(id=r.id, status="ok", text=f"{r_.text}, I think. Question: why") for r, r_ in
                    zip(requests, toy_backend.generate(requests))]

    accs = {}
    for name, post, backend in (("cut", "lever-plus", Chatty()), ("uncut", "none", Chatty()), ("quiet", "none", toy_backend)):
        out = run_eval(EvalConfig(index=index_run, test=data_config(toy_test), model=BackendConfig(ref="x"), methods=["zero-shot"], shots=[1],
                                  vqa_mode="openflamingo", answer_postprocess=post, n_boot=20), tmp_path / name, backend=backend)
        rows = read_jsonl(out / "ledger.jsonl")
        accs[name] = float(np.mean([r["acc"] for r in rows]))
        if backend is not toy_backend:
            assert all(r["prediction"].endswith(", I think. Question: why") for r in rows)  # the ledger keeps what was generated
    assert accs["uncut"] == 0.0 and accs["cut"] == accs["quiet"] > 0, accs
