"""`run_demo`: toy data -> toy models -> caption, ICL and rating studies -> one report.

The story, stage by stage (each timed; finished stages are skipped on a re-run):

1. `data`: toy panoramas, ambiguous VQA and faces (`vlmlab.toyworld`) under `<out>/data`;
2. `model:<recipe>`: the three toy models, built once into the `VLMLAB_HOME` cache and linked
   under `<out>/models`;
3. `caption`: the caption study (before / after LoRA fine-tuning);
4. `icl:index` ... `icl:eval`: the ICL study's stages and the selector, then its report;
5. `rating`, `rating:analysis`: the rating study's priority-1 conditions and the analysis;
6. the report at the top of `<out>` (always rebuilt), `summary.json` and `timings.json`.

Resume is data: `<out>/demo/` is a run folder whose config is the plan plus the toy models'
recipe hashes, and whose ledger holds one line per finished stage (seconds and result). The study
stages resume on their own too (their run folders), so a crash mid-stage loses little.

    result = run_demo(Path("runs/demo"), quick=True)
    result.report["html"], result.timings["total_seconds"]
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vlmlab.demo.configs import Layout, study_configs, write_study_configs
from vlmlab.demo.plan import DemoPlan, demo_plan
from vlmlab.errors import RunError
from vlmlab.runs import Run, atomic_write_json
from vlmlab.toymodels import is_built

# Folders the demo writes under <out>; `overwrite` removes exactly these.
DEMO_FOLDERS = ("demo", "data", "models", "configs", "caption", "icl", "rating", "figures")


@dataclass
class DemoResult:
    """What a demo run produced.

    Attributes:
        out: the demo folder.
        summary: headline numbers per study (also `<out>/summary.json`).
        timings: seconds per stage and in total (also `<out>/timings.json`).
        report: paths of `report.md`, `report.html`, `report.json` and, with Chromium, `report.png`.
        skipped: stages finished by an earlier run and not run again.
    """

    out: Path
    summary: dict[str, Any]
    timings: dict[str, Any]
    report: dict[str, Path]
    skipped: list[str] = field(default_factory=list)


def _recipe_hashes(plan: DemoPlan) -> dict[str, str]:
    from vlmlab.toymodels import recipe_hash
    from vlmlab.toymodels.recipes import get_recipe

    return {name: recipe_hash(get_recipe(name)) for name in plan.recipes().values()}


def link_model(source: Path, link: Path) -> None:
    """Make `link` point at the built model `source` (a symlink; a copy where links are not possible)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == source.resolve():
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    try:
        link.symlink_to(source.resolve(), target_is_directory=True)
    except OSError:  # a file system without symlinks
        shutil.copytree(source, link)


def _clear(out: Path) -> None:
    for name in DEMO_FOLDERS:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


class _Stages:
    """The demo's stage ledger in one process: skip finished stages, time and record the others."""

    def __init__(self, state: Run) -> None:
        self.state = state
        self.done = {r["id"]: r for r in state.records()}
        self.timings: dict[str, float] = {}
        self.skipped: list[str] = []

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if name in self.done:
            self.skipped.append(name)
            self.timings[name] = self.done[name]["seconds"]
            return self.done[name].get("result")
        _say(f"demo: {name}")
        t0 = time.perf_counter()
        value = fn()
        seconds = round(time.perf_counter() - t0, 2)
        self.state.append(name, {"seconds": seconds, "result": value})
        self.timings[name] = seconds
        return value

    def model(self, recipe: str, layout: Layout, cache_root: Path | None) -> None:
        """Build (first use) or find the toy model and link it; always asked of the cache, so a
        cleared cache is rebuilt. Timed in this invocation (about 0 s when cached)."""
        name = f"model:{recipe}"
        cached = is_built(recipe, cache_root)
        if not cached:
            _say(f"demo: {name} (first use: training the toy model)")
        t0 = time.perf_counter()
        link_model(Path(build_model(recipe, layout, cache_root)), layout.model(recipe))
        self.timings[name] = round(time.perf_counter() - t0, 2)
        if cached:
            self.skipped.append(name)


def _state_config(plan: DemoPlan) -> dict[str, Any]:
    return {"plan": plan.model_dump(mode="json"), "toy_models": _recipe_hashes(plan)}


# The three studies are independent chains (toy model -> study stages); the longest goes first.
CHAINS = ("icl", "caption", "rating")


def run_chain(chain: str, out: Path, plan: DemoPlan, cache_root: Path | None, threads: int | None = None) -> dict[str, Any]:
    """One study from its toy model to its summary; runs in the demo's process or in a worker.

    Returns `{"result": <study summary>, "timings": {stage: seconds}, "skipped": [stages]}`.
    """
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    layout = Layout(out)
    configs = study_configs(out, plan)
    stages = _Stages(Run.open(layout.state, _state_config(plan), stage="demo"))
    if chain == "caption":
        from vlmlab.demo.caption import run_caption

        stages.model(plan.captioner, layout, cache_root)
        result = stages.run("caption", lambda: run_caption(configs["caption"].config))
    elif chain == "icl":
        from vlmlab.demo import icl

        stages.model(plan.icl_model, layout, cache_root)
        cfgs = {k.removeprefix("icl_").replace("_", "-"): v.config for k, v in configs.items() if k.startswith("icl_")}
        for name in icl.STAGES:
            stages.run(f"icl:{name}", lambda name=name: str(icl.run_icl_stage(name, cfgs, layout)))
        result = icl.icl_summary(layout)
        icl.write_icl_report(layout, result)
    elif chain == "rating":
        from vlmlab.demo import rating

        stages.model(plan.rater, layout, cache_root)
        cfg = configs["rating"].config
        folders = [Path(p) for p in stages.run("rating", lambda: [str(p) for p in rating.run_rating(cfg)])]

        def analyse() -> list[dict[str, Any]]:
            rating.analyze_rating(cfg, folders)
            effects = rating.planted_effects(cfg, folders, layout.data / "faces" / "truth.json")
            rating.write_planted_report(layout.rating / "planted_effects", effects)
            return effects

        result = rating.rating_summary(cfg, stages.run("rating:analysis", analyse))
    else:
        raise ValueError(f"unknown demo chain {chain!r}; one of {', '.join(CHAINS)}")
    return {"result": result, "timings": stages.timings, "skipped": stages.skipped}


def run_demo(out: Path | str = Path("runs/demo"), quick: bool = False, seed: int = 0, *, overwrite: bool = False,
             png: bool = True, cache_root: Path | None = None, workers: int = 3) -> DemoResult:
    """Run all three studies on the toy world into `out` and write one report.

    Args:
        out: the demo folder (created; a re-run with the same settings resumes).
        quick: the small plan (about a minute) instead of the full one (about five minutes).
        seed: the one seed of the demo (data, pools, sampling, training, bootstrap).
        overwrite: start over when `out` holds a demo run with other settings (its demo folders
            are deleted); without it such a folder is an error.
        png: screenshot the report with headless Chromium when it is installed.
        cache_root: where toy models are built (default `$VLMLAB_HOME/toymodels`).
        workers: processes running the three independent studies, each with one torch thread
            (tiny models gain more from processes than from threads); 1 runs them one after
            another in this process.

    Raises:
        RunError: `out` holds a demo with other settings, or a study failed (re-run to resume).
    """
    started = time.perf_counter()
    out = Path(out)
    plan = demo_plan(quick=quick, seed=seed)
    layout = Layout(out)
    state_config = _state_config(plan)
    if overwrite:
        _clear(out)
    try:
        state = Run.open(layout.state, state_config, stage="demo")
    except RunError:
        raise RunError(f"{out}: holds a demo run with other settings (plan, seed or toy models differ); "
                       "pass --overwrite to start over or choose another --out") from None
    write_study_configs(layout.configs, out, plan)
    main = _Stages(state)
    main.run("data", lambda: make_data(layout, plan))
    chains = _run_chains(out, plan, cache_root, workers)
    timings = dict(main.timings)
    skipped = list(main.skipped)
    for chain in CHAINS:
        timings.update(chains[chain]["timings"])
        skipped += chains[chain]["skipped"]
    hashes = state_config["toy_models"]
    summary = {"plan": plan.model_dump(mode="json"), "toy_models": hashes, **{c: chains[c]["result"] for c in CHAINS}}
    atomic_write_json(out / "summary.json", summary)
    stages_wall = round(time.perf_counter() - started, 2)
    t0 = time.perf_counter()
    timing_doc: dict[str, Any] = {"stages": dict(timings), "total_seconds": round(sum(timings.values()), 2),
                                  "wall_seconds": stages_wall, "workers": workers, "skipped": skipped, "quick": plan.quick}
    state.finish("complete", total_seconds=timing_doc["total_seconds"])
    report = _write_report(out, summary, timing_doc, png)
    timings["report"] = round(time.perf_counter() - t0, 2)
    timing_doc.update(stages=dict(timings), total_seconds=round(sum(timings.values()), 2),
                      wall_seconds=round(time.perf_counter() - started, 2))
    atomic_write_json(out / "timings.json", timing_doc)
    return DemoResult(out=out, summary=summary, timings=timing_doc, report=report, skipped=skipped)


def _run_chains(out: Path, plan: DemoPlan, cache_root: Path | None, workers: int) -> dict[str, dict[str, Any]]:
    """The three study chains, in `workers` processes (1: one after another in this process)."""
    if workers <= 1:
        return {c: run_chain(c, out, plan, cache_root) for c in CHAINS}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process that has torch threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {c: pool.submit(run_chain, c, out, plan, cache_root, 1) for c in CHAINS}
        return {c: f.result() for c, f in futures.items()}


def _write_report(out: Path, summary: dict[str, Any], timings: dict[str, Any], png: bool) -> dict[str, Path]:
    from vlmlab.demo.summary import write_demo_report

    return write_demo_report(out, summary, timings, png=png)


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]{text}[/bold cyan]", highlight=False)


def make_data(layout: Layout, plan: DemoPlan) -> dict[str, Any]:
    """Generate the three toy data sets the demo needs (deterministic given the plan's seed)."""
    from vlmlab.toyworld import generate

    sizes = {"panorama": plan.caption.panoramas, "vqa": plan.icl.questions, "faces": plan.rating.faces}
    counts = {}
    options = {"vqa": {"context_strength": plan.icl.context_strength} if plan.icl.context_strength is not None else None}
    for kind, n in sizes.items():
        manifest = generate(kind, layout.data / kind, n=n, seed=plan.seed, overwrite=True, options=options.get(kind))
        counts[kind] = manifest.counts
    return counts


def build_model(recipe: str, layout: Layout, cache_root: Path | None) -> str:
    """Build (or find in the cache) the toy model `recipe`; returns its cache folder."""
    from vlmlab.toymodels import build_toy_model

    return str(build_toy_model(recipe, cache_root=cache_root))
