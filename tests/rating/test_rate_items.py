"""`rate_items` is usable without a study config: plain typed arguments, the same ledger as `run_study`."""

from __future__ import annotations

from vlmlab.rating.config import CaptureConfig, PromptConfig, RatingConfig
from vlmlab.rating.run import _volatile, plan_study, rate_items, run_study
from vlmlab.runs import Run
from rating_helpers import EMOTIONS, ScriptedRater, make_faces


def test_rate_items_from_plain_arguments_writes_the_study_ledger_byte_for_byte(tmp_path):
    ratings, truth = make_faces(tmp_path / "faces", n_per_cell=2, raters=2)
    study = RatingConfig.model_validate({"out": str(tmp_path / "out"), "data": {"ratings": str(ratings)}, "models": [{"name": "s", "ref": "s"}],
                                         "conditions": {"temperatures": [1.0]}, "capture": {"top_logprobs": 3, "max_new_tokens": 6},
                                         "batch_size": 5, "seed": 3})
    [folder] = run_study(study, backend_factory=lambda c: ScriptedRater(truth, fp_b=0.5))
    items, [condition] = plan_study(study, resolve_models=False)
    run = Run.open(tmp_path / "direct", condition.config(study), stage="rating.condition", volatile=_volatile(condition))  # as run_study opens it
    rate_items(ScriptedRater(truth, fp_b=0.5), condition, items, run, prompts=PromptConfig(), emotions=EMOTIONS,
               capture=CaptureConfig(top_logprobs=3, max_new_tokens=6), batch_size=5, seed=3 * 1000 + 0)
    assert (tmp_path / "direct" / "ledger.jsonl").read_bytes() == (folder / "ledger.jsonl").read_bytes()
    saved = sorted(p.name for p in (folder / "logprobs").iterdir())
    assert saved and saved == sorted(p.name for p in (tmp_path / "direct" / "logprobs").iterdir())
    for name in saved:
        assert (tmp_path / "direct" / "logprobs" / name).read_bytes() == (folder / "logprobs" / name).read_bytes()
