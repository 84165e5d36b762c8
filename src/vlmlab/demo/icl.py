"""The demo's ICL study: InfoScore beam search -> a learned selector -> eval against baselines.

Each function is one resumable stage of `vlmlab.icl` run on the toy ambiguous VQA with the
`icl-vqa` toy model (scorer and answerer):

    for stage in STAGES:                            # index, candidates, beam, rl-data, train, eval
        run_icl_stage(stage, configs, layout)
    summary = icl_summary(layout); write_icl_report(layout, summary)

`icl_summary` reads the results back from the run folders: VQA accuracy per method and shots on
the held-out queries (with bootstrap CIs), and the InfoScore check on the anchors — the answer
accuracy with each anchor's best beam as demonstrations vs with random sequences from the same pool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vlmlab.demo.configs import Layout
from vlmlab.errors import RunError
from vlmlab.metrics.inference import ci_label
from vlmlab.report import Report, Table, write_report
from vlmlab.runs import atomic_write_json

STAGES = ("index", "candidates", "beam", "rl-data", "train", "eval")


def run_icl_stage(stage: str, configs: dict[str, Any], layout: Layout) -> Path:
    """Run one of `STAGES` into `layout.icl(stage)` (resumes a finished or interrupted run)."""
    from vlmlab.icl import eval_stage, stages, train_stage

    fn = {"index": stages.run_index, "candidates": stages.run_candidates, "beam": stages.run_beam,
          "rl-data": stages.run_rl_data, "train": train_stage.run_train, "eval": eval_stage.run_eval}[stage]
    done = fn(configs[stage], layout.icl(stage))
    if done is None:  # only non-zero ranks return None; the demo runs in one process
        raise RunError(f"icl {stage}: ran as a non-zero data-parallel rank; run the demo in one process")
    return Path(done)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise RunError(f"{path}: missing; the icl stage that writes it did not finish (re-run the demo to resume)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def infoscore_check(rl_raw: list[dict[str, Any]]) -> dict[str, Any]:
    """Per anchor: accuracy with its best InfoScore beam vs the mean over random sequences of its pool."""
    best, sampled = [], []
    for rec in rl_raw:
        beams = [c for c in rec["candidates"] if c["source"] == "beam" and c.get("status") != "error"]
        rand = [c["vqa_acc_score"] for c in rec["candidates"] if c["source"] == "sampled" and c.get("status") != "error"]
        if beams and rand:
            best.append(beams[0]["vqa_acc_score"])
            sampled.append(float(np.mean(rand)))
    if not best:
        return {"anchors": 0}
    diff = np.array(best) - np.array(sampled)
    rng = np.random.default_rng(0)
    boots = [float(diff[rng.integers(0, len(diff), len(diff))].mean()) for _ in range(1000)]
    return {"anchors": len(best), "beam_accuracy": float(np.mean(best)), "random_accuracy": float(np.mean(sampled)),
            "gain": float(diff.mean()), "gain_ci": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]}


def icl_summary(layout: Layout) -> dict[str, Any]:
    """Eval accuracies (method -> shots -> cell), the InfoScore check, beam and selector facts."""
    metrics_path = layout.icl("eval") / "metrics.json"
    if not metrics_path.is_file():
        raise RunError(f"{metrics_path}: missing; the icl eval stage did not finish (re-run the demo to resume)")
    cells = json.loads(metrics_path.read_text(encoding="utf-8"))["cells"]
    accuracy: dict[str, dict[str, dict[str, float]]] = {}
    for c in cells:
        accuracy.setdefault(c["method"], {})[str(c["shots"])] = {"accuracy": c["accuracy"], "ci_low": c["ci_low"],
                                                               "ci_high": c["ci_high"], "n": c["n"]}
    first_ci = cells[0].get("ci", {}) if cells else {}  # how the eval stage made its CIs (method, unit, B)
    beam = json.loads((layout.icl("beam") / "metrics.json").read_text(encoding="utf-8"))
    train_path = layout.icl("train") / "metrics.json"
    selector = json.loads(train_path.read_text(encoding="utf-8")) if train_path.is_file() else {}
    return {
        "accuracy": accuracy,
        "test_queries": cells[0]["n"] if cells else 0,
        "ci_label": ci_label(first_ci.get("method", "percentile"), first_ci.get("unit", "questions"), first_ci.get("level", 0.95),
                             first_ci.get("resamples")),
        "infoscore": infoscore_check(_read_jsonl(layout.icl("rl-data") / "rl_raw.jsonl")),
        "beam": {k: beam.get(k) for k in ("anchors", "ok", "mean_forward_passes", "mean_best_cumulative", "mean_base_prob")},
        "selector": {k: selector.get(k) for k in ("anchors", "train_anchors", "val_anchors", "steps", "final")},
    }


def write_icl_report(layout: Layout, summary: dict[str, Any]) -> dict[str, Path]:
    """`<out>/icl/report.{md,html,json}`: accuracy table and plot, InfoScore check, selector."""
    from vlmlab.report.plots import line_chart

    acc = summary["accuracy"]
    shots = sorted({int(s) for cells in acc.values() for s in cells if s != "0"})
    report = Report("ICL study: which demonstrations help the toy VQA model?")
    report.text(f"VQA accuracy on {summary['test_queries']} held-out test queries ({summary['ci_label']} in brackets). "
                "Demonstrations come from the support set, chosen by: none (zero-shot), random, text similarity (MiniLM), "
                "image similarity (pixels), or the selector trained on InfoScore beams, which sees the query's text and image "
                "and each candidate demonstration's question, answer and image.")
    columns = ["method", *(f"{s}-shot" for s in shots)]
    rows, text_rows = [], []
    for method, cells in acc.items():
        if method == "zero-shot":
            continue
        rows.append([method, *(cells.get(str(s), {}).get("accuracy") for s in shots)])
        text_rows.append([method, *(_cell_text(cells.get(str(s))) for s in shots)])
    if "zero-shot" in acc:
        zero = acc["zero-shot"]["0"]
        report.text(f"Zero-shot accuracy: {_cell_text(zero)}.")
    report.table(Table(columns, rows, caption="VQA accuracy by method and shots; best per column in bold",
                       best={c: "max" for c in columns[1:]}, digits=3))
    report.table(Table(columns, text_rows, caption=f"The same with {summary['ci_label']} confidence intervals"))
    series = {m: [acc[m].get(str(s), {}).get("accuracy", float("nan")) for s in shots] for m in acc if m != "zero-shot"}
    if "zero-shot" in acc:
        series["zero-shot"] = [acc["zero-shot"]["0"]["accuracy"]] * len(shots)
    report.figure(line_chart(shots, series, title="Toy VQA accuracy vs shots", xlabel="shots", ylabel="VQA accuracy"),
                  "icl_accuracy", caption="VQA accuracy on held-out queries by demonstration method")
    info = summary["infoscore"]
    if info.get("anchors"):
        report.heading("Do InfoScore-selected demonstrations help?")
        report.table(Table(["anchors", "accuracy with best beam", "accuracy with random pool sequences", "gain",
                            "gain, 95% percentile bootstrap over anchors, B=1000"],
                           [[info["anchors"], info["beam_accuracy"], info["random_accuracy"], info["gain"],
                             f"[{info['gain_ci'][0]:.3f}, {info['gain_ci'][1]:.3f}]"]], digits=3,
                           caption="Anchors of the beam search answered by the scorer with their best beam vs random sequences from the same pool"))
    sel = summary.get("selector") or {}
    if sel.get("final"):
        report.heading("Selector training")
        report.text(f"{sel['train_anchors']} training anchors, {sel['val_anchors']} held out, {sel['steps']} steps.")
        keys = [k for k in ("top1", "hit@5", "ndcg@10", "mrr", "set_recall", "random_top1") if k in sel["final"]]
        report.table(Table(keys, [[sel["final"][k] for k in keys]], caption="Held-out anchors: does the selector find the beam's demonstrations?", digits=3))
    paths = write_report(report, layout.icl())
    atomic_write_json(layout.icl() / "summary.json", summary)
    return paths


def _cell_text(cell: dict[str, float] | None) -> str:
    if not cell:
        return "–"
    return f"{cell['accuracy']:.3f} [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"
