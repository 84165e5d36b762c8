"""Stage `train`: fit a selector on the beams (and rl-data) of the earlier stages.

The run folder holds the resolved config, the checkpoint (`selector.safetensors` +
`selector.json`), the CSV logs, `metrics.json` (held-out top-k / NDCG / MRR) and a report with the
loss curve. A re-run after a crash resumes from the last finished epoch (see `train_selector`) and gives the same checkpoint; a
finished run is not trained again.
"""

from __future__ import annotations

from pathlib import Path

from vlmlab.errors import ConfigError
from vlmlab.icl.configs import TrainStageConfig
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.icl.selectors.data import SelectorData
from vlmlab.icl.selectors.train import train_selector
from vlmlab.icl.stages import imported_beams, read_jsonl, training_provenance
from vlmlab.report import Report, Table, write_report
from vlmlab.report.plots import line_chart
from vlmlab.runs import Run, read_run_info


def run_train(config: TrainStageConfig, out: Path | str, *, overwrite: bool = False) -> Path:
    """Train the selector and write its run folder; returns the folder (the checkpoint lives in it)."""
    rl_path = Path(config.rl) / "rl.jsonl" if config.rl is not None else None
    data = SelectorData.from_run(config.index, Path(config.beams) / "beams.jsonl", rl_path, dataset=config.dataset, modality=config.modality,
                                 icd_answers=config.icd_answers, provenance=training_provenance(config.index, config.beams))
    # imported Lever-LM beams carry upstream's one score, the marginal: rank by it unless the config says otherwise
    upstream = {"beam_score": "marginal"} if imported_beams(config.beams).get("beam_score") == "marginal" else {}
    selector = SelectorConfig.model_validate({"embedding_dim": data.embedding_dim, **upstream, **config.selector})
    if selector.ranking_loss != "none" and selector.beam_score == "cumulative" and bool(data.beam_cumulative[data.beam_mask].isnan().any()):
        raise ConfigError(f"{config.beams}: its beams have no cumulative InfoScore (imported from Lever-LM, which keeps only the last step's "
                          "marginal); set selector.beam_score: marginal")
    run = Run.open(out, config, stage="icl.train", overwrite=overwrite)
    if read_run_info(run.dir).get("status") == "complete" and (run.dir / "selector.safetensors").exists():
        return run.dir
    first = next(iter(read_jsonl(Path(config.beams) / "beams.jsonl")), {})
    beams = {"score_eos": first.get("score_eos", False), "prompt_format": first.get("prompt_format", "chat")}
    report = train_selector(selector, data, run.dir, extra={"beams": beams, "preset": config.preset, "upstream_version": config.upstream_version})
    final = {k: v for k, v in report.final.items() if isinstance(v, (int, float))}
    run.write_metrics({"final": final, "anchors": len(data), "train_anchors": report.train_anchors, "val_anchors": report.val_anchors,
                       "steps": len(report.steps), "seconds": report.seconds})
    doc = Report(f"ICL selector {selector.version} ({config.modality})")
    doc.table(Table(["metric", "value"], [[k, v] for k, v in final.items()], caption="held-out anchors"))
    steps = [s for s in report.steps if "loss" in s]
    if len(steps) > 1:
        doc.figure(line_chart(list(range(1, len(steps) + 1)), {"loss": [s["loss"] for s in steps]}, title="training loss", xlabel="step", ylabel="loss"), "loss")
    write_report(doc, run.dir)
    run.finish("complete")
    return run.dir
