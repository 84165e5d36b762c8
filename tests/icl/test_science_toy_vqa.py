"""Science on the toy VQA world, end to end through the stages, held-out test queries, with CIs.

World: `vlmlab toyworld generate vqa` (one question per image, context strength 0.9); the VLM is the
simulated `OracleVLM` (`vqa_oracle.py`: explicit questions need 0 demonstrations and any of another
attribute hurts, hints and ambiguous ones need 2 that answer their attribute), not the real toy model,
whose build takes minutes. One chain, every stage with `preset: lever-plus`: index -> candidates
(mix, K=16) -> beam -> train (a fixed-shots v2 and a STOP v2) -> eval on the test split.

(d) Upstream's ordering of methods (Lever-LM, arXiv 2312.10104, Table 1 and its text: the learned
    configurator above the similarity retrievals SITR/SIIR/STTR, those above random sampling RS):
    selector > text and image retrieval > random, each a paired difference whose 95% percentile
    bootstrap CI over images (B=2000; one question per image) lies above 0.
(b) The STOP selector (shots: adaptive) gives queries that need none fewer shots than those that need
    two, at no loss of accuracy against the fixed 2-shot selector (paired difference CI above -0.05).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vqa_oracle import OracleVLM, data_config, hidden, write_world
from vlmlab.icl.configs import BackendConfig, BeamConfig, CandidatesConfig, EvalConfig, IndexConfig, TrainStageConfig
from vlmlab.icl.eval_stage import run_eval
from vlmlab.icl.stages import read_jsonl, run_beam, run_candidates, run_index
from vlmlab.icl.train_stage import run_train
from vlmlab.metrics.inference import bootstrap_ci, proportion_ci

PRESET = {"preset": "lever-plus"}
SELECTOR = {"version": "v2", "hidden_dim": 32, "num_heads": 2, "pool_size": 16, "epochs": 12, "batch_size": 16, "val_fraction": 0.1,
            "dropout": 0.0}


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("science")
    root = write_world(tmp / "data", n=800)
    backend = OracleVLM(root)
    index = run_index(IndexConfig(support=data_config(root, "train"), text_embedder="bag-of-words", image_embedder="pixels",
                                  image_embedder_options={"size": 8}, cache_dir=tmp / "cache"), tmp / "index")
    cands = run_candidates(CandidatesConfig(index=index, sampler="mix", k=16, anchors=400, seed=0), tmp / "candidates")
    beam = run_beam(BeamConfig(**PRESET, candidates=cands, scorer=BackendConfig(ref="oracle"), beam_size=3, shots=2), tmp / "beam",
                    backend=backend)
    fixed = run_train(TrainStageConfig(**PRESET, index=index, beams=beam, selector=SELECTOR), tmp / "fixed")
    stop = run_train(TrainStageConfig(**PRESET, index=index, beams=beam, selector={**SELECTOR, "stop_token": True}), tmp / "stop")
    common = dict(**PRESET, index=index, test=data_config(root, "test"), model=BackendConfig(ref="oracle"), selector_pool="mix",
                  selector_k=16, n_boot=200)
    evals = {
        "fixed": run_eval(EvalConfig(**common, methods=["zero-shot", "random", "text", "image", "selector"], shots=[2], selector=fixed),
                          tmp / "eval-fixed", backend=backend),
        "stop": run_eval(EvalConfig(**common, methods=["selector"], shots=[2, "adaptive"], selector=stop), tmp / "eval-stop", backend=backend),
    }
    torch.set_num_threads(before)
    return {"root": root, "beam": beam, "evals": evals, "hidden": hidden(root, "test")}


def per_question(run: Path) -> dict[tuple[str, int], dict[str, dict]]:
    out: dict[tuple[str, int], dict[str, dict]] = {}
    for r in read_jsonl(run / "ledger.jsonl"):
        out.setdefault((r["method"], r["shots"]), {})[str(r["question_id"])] = r
    return out


def paired(a: dict[str, dict], b: dict[str, dict]):
    """Mean of a − b over the questions, 95% percentile bootstrap over images (B=2000)."""
    qids = sorted(a)
    diff = np.array([a[q]["acc"] - b[q]["acc"] for q in qids])
    return bootstrap_ci("mean", diff, clusters=[a[q]["image_id"] for q in qids], unit="images", resamples=2000, seed=0)


def fmt(ci) -> str:
    return f"{ci.estimate:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


@pytest.mark.slow
def test_lever_plus_preset_reproduces_upstreams_ordering_of_methods(chain) -> None:
    rows = per_question(chain["evals"]["fixed"])
    cells = {c["method"]: c for c in json.loads((chain["evals"]["fixed"] / "metrics.json").read_text())["cells"]}
    n = cells["selector"]["n"]
    print(f"\n(d) preset lever-plus, toy VQA world + OracleVLM, {n} test questions (= images), 2 shots, VQA accuracy (openflamingo) "
          "with 95% percentile bootstrap CIs over images:")
    for m in ("zero-shot", "random", "text", "image", "selector"):
        c = cells[m]
        print(f"  {m:9s} {c['accuracy']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]")
    pairs = {}
    for better, worse in (("selector", "text"), ("selector", "image"), ("text", "random"), ("image", "random")):
        pairs[(better, worse)] = paired(rows[(better, 2)], rows[(worse, 2)])
        print(f"  {better} - {worse}: {fmt(pairs[(better, worse)])}")
    for (better, worse), ci in pairs.items():
        assert ci.low > 0, f"{better} is not above {worse}: {fmt(ci)}"


@pytest.mark.slow
def test_stop_selector_gives_fewer_shots_where_none_are_needed_at_no_loss(chain) -> None:
    stop = per_question(chain["evals"]["stop"])[("selector", 2)]
    fixed = per_question(chain["evals"]["fixed"])[("selector", 2)]
    cell = json.loads((chain["evals"]["stop"] / "metrics.json").read_text())["cells"][0]
    assert cell["adaptive"] and sum(cell["shot_counts"].values()) == len(stop)
    assert cell["shot_counts"] == {str(k): sum(len(r["demos"]) == k for r in stop.values()) for k in range(3)}
    kinds = {q: chain["hidden"][q]["question_kind"] for q in stop}
    need_none = [q for q in stop if kinds[q] == "explicit"]
    need_two = [q for q in stop if kinds[q] != "explicit"]
    shots = {q: len(r["demos"]) for q, r in stop.items()}

    def mean_shots(qids: list[str]):
        return bootstrap_ci("mean", np.array([shots[q] for q in qids], float), unit="questions", resamples=2000, seed=0)

    none_ci, two_ci = mean_shots(need_none), mean_shots(need_two)
    zero = proportion_ci(sum(shots[q] == 0 for q in need_none), len(need_none))
    diff = paired(stop, fixed)
    acc = {name: float(np.mean([r["acc"] for r in rows.values()])) for name, rows in (("stop", stop), ("fixed", fixed))}
    print(f"\n(b) STOP selector (up to 2 shots) vs fixed 2-shot selector, {len(stop)} test questions: "
          f"need none (explicit, n={len(need_none)}): mean shots {none_ci.estimate:.2f} [{none_ci.low:.2f}, {none_ci.high:.2f}], "
          f"given 0 shots {zero.estimate:.2f} [{zero.low:.2f}, {zero.high:.2f}] (Wilson); need two (hint/ambiguous, n={len(need_two)}): "
          f"mean shots {two_ci.estimate:.2f} [{two_ci.low:.2f}, {two_ci.high:.2f}] (95% percentile bootstrap over questions); "
          f"accuracy STOP {acc['stop']:.3f} vs fixed {acc['fixed']:.3f}, STOP - fixed {fmt(diff)} (bootstrap over images); "
          f"shot counts {cell['shot_counts']}")
    assert none_ci.high < two_ci.low  # fewer shots where none are needed, and the intervals do not overlap
    assert zero.low > 0.5
    assert diff.low > -0.05  # no loss of accuracy (non-inferiority margin 5 points)
