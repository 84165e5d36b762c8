"""Build a toy model from its recipe, once, into a cache folder keyed by the recipe hash.

    path = build_toy_model("icl-vqa")                  # ~/.cache/vlmlab/toymodels/icl-vqa-<hash>
    backend = HFBackend(path)                          # loads like any checkpoint

How a build goes: a tiny architecture is built offline (`vlmlab.models.tiny.build_tiny`) with the
recipe's shape and seed, its processor set to the recipe's image side; then every `Stage` of the
recipe is one call of `vlmlab.train.fine_tune` (full fine-tuning) on examples from the recipe kind's
data builder, starting from the previous stage's weights (or from the `base` recipe's finished
model). Everything happens in a temporary folder next to the final one, which gets its name by one
rename when complete, so an interrupted build never leaves a half model behind and two processes
building the same recipe cannot corrupt each other (the second rename loses and its copy is
dropped). The finished folder holds the weights, processor, `vlmlab_tiny.json`, `recipe.json` and
`training.json` (per-stage loss curves, seconds, example counts).

Determinism: the data builders draw only from `recipe.data_seed`, the weights from `recipe.seed`;
`fine_tune` orders samples as a pure function of (seed, step). The same recipe on the same
machine and torch build gives the same weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from vlmlab.errors import ModelError
from vlmlab.runs import current_umask
from vlmlab.toymodels.recipes import ToyRecipe, get_recipe, recipe_hash, training_version

DONE_FILE = "training.json"


def default_cache_root() -> Path:
    """`$VLMLAB_HOME/toymodels`, with `VLMLAB_HOME` defaulting to `~/.cache/vlmlab`."""
    from vlmlab.models.loading import vlmlab_home

    return vlmlab_home() / "toymodels"


def _resolve(recipe: str | ToyRecipe) -> ToyRecipe:
    return get_recipe(recipe) if isinstance(recipe, str) else recipe


def toy_model_dir(recipe: str | ToyRecipe, cache_root: Path | None = None) -> Path:
    """Where `build_toy_model` puts (or finds) this recipe's model; nothing is built."""
    r = _resolve(recipe)
    return Path(cache_root or default_cache_root()) / f"{r.name}-{recipe_hash(r)}"


def is_built(recipe: str | ToyRecipe, cache_root: Path | None = None) -> bool:
    """True when the recipe's finished model is in the cache."""
    return (toy_model_dir(recipe, cache_root) / DONE_FILE).is_file()


def build_toy_model(recipe: str | ToyRecipe, *, cache_root: Path | None = None, progress: bool = True,
                    threads: int = 1) -> Path:
    """The folder of a toy model, built on first use (see the module docstring).

    Args:
        recipe: a built-in recipe name (`captioner`, `captioner-base`, `icl-vqa`, `face-rater`, each
            also with `-quick`) or a `ToyRecipe` (e.g. `face_rater_recipe(prompts=...)`).
        cache_root: the folder holding built models; default `default_cache_root()`.
        progress: show progress bars while training.
        threads: torch intra-op threads while building (restored afterwards). One is the default:
            these models are so small that a second thread gains little on an idle machine, and on a
            busy one (tests running in parallel) two threads were measured 10x slower per step.

    Returns:
        The model folder, loadable with `vlmlab.models.hf.HFBackend`.
    """
    r = _resolve(recipe)
    root = Path(cache_root or default_cache_root())
    final = toy_model_dir(r, root)
    if (final / DONE_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    # Two processes asking for the same recipe (the demo's workers, parallel test workers) build
    # it once: the second waits for the first and then finds it done.
    locks = root / ".locks"
    locks.mkdir(exist_ok=True)
    with FileLock(str(locks / f"{final.name}.lock")):
        if (final / DONE_FILE).is_file():
            return final
        return _build_locked(r, root, final, progress, threads)


def _build_locked(r: ToyRecipe, root: Path, final: Path, progress: bool, threads: int) -> Path:
    start_path = None
    if r.base is not None:
        start_path = build_toy_model(r.base, cache_root=root, progress=progress)
    import torch

    remove_orphans(root, final)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    os.chmod(work, 0o777 & ~current_umask())  # mkdtemp makes 0700; the published model folder must follow the umask
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model_dir = _build_into(r, work, start_path, progress)
        _publish(model_dir, final)
    finally:
        torch.set_num_threads(before)
        shutil.rmtree(work, ignore_errors=True)
    return final


def remove_orphans(root: Path, final: Path) -> list[Path]:
    """Remove work folders of this recipe left by killed builds (a SIGKILL skips `finally`; each
    left an ~11 MB orphan in the cache). Safe: it runs under the recipe's lock, so no live build
    of the same recipe owns one."""
    orphans = sorted(p for p in root.glob(f".{final.name}-*") if p.is_dir())
    for orphan in orphans:
        shutil.rmtree(orphan, ignore_errors=True)
    return orphans


def _publish(model_dir: Path, final: Path) -> None:
    try:
        model_dir.rename(final)
    except OSError:  # another process finished the same recipe first: keep theirs
        if not (final / DONE_FILE).is_file():
            raise


def _build_into(recipe: ToyRecipe, work: Path, start_path: Path | None, progress: bool) -> Path:
    """Train every stage under `work`; return the finished model folder (inside `work`)."""
    import torch

    from vlmlab.toymodels.data import stage_examples
    from vlmlab.train import fine_tune

    started = time.perf_counter()
    cpu_started = time.process_time()
    current = start_path if start_path is not None else init_model(recipe, work / "init")
    data_dir = work / "data"
    stages_log: list[dict[str, Any]] = []
    for i, stage in enumerate(recipe.stages):
        t0 = time.perf_counter()
        examples = stage_examples(recipe, stage.data, data_dir)
        t_data = time.perf_counter() - t0
        result = fine_tune(
            current, examples, work / f"stage{i}-{stage.data}", method="full", learning_rate=stage.learning_rate,
            max_steps=stage.steps, batch_size=stage.batch_size, max_length=stage.max_length, loss_on=stage.loss_on,
            warmup_ratio=stage.warmup_ratio, scheduler="cosine", seed=recipe.seed + i, save_every=10**9,
            resume=False, show_progress=progress, log_every=max(1, stage.steps // 10),
        )
        current = result.output_path
        stages_log.append({
            "data": stage.data, "examples": len(examples), "steps": result.steps, "losses": [round(x, 5) for x in result.losses],
            "first_loss": result.losses[0], "last_loss": sum(result.losses[-10:]) / len(result.losses[-10:]),
            "data_seconds": round(t_data, 2), "train_seconds": round(result.seconds, 2),
            "stage_seconds": round(time.perf_counter() - t0, 2),
        })
    out = work / "model"
    shutil.copytree(current, out)
    shutil.copy2(_tiny_meta(current, start_path, work), out / "vlmlab_tiny.json")
    (out / "recipe.json").write_text(json.dumps(
        {"recipe": recipe.model_dump(mode="json"), "hash": recipe_hash(recipe), "version": training_version(),
         "base_path": str(start_path) if start_path else None}, indent=2, sort_keys=True) + "\n")
    training = {
        "recipe": recipe.name, "hash": recipe_hash(recipe), "stages": stages_log,
        "seconds": round(time.perf_counter() - started, 2), "cpu_seconds": round(time.process_time() - cpu_started, 2),
        "torch_threads": torch.get_num_threads(),
    }
    (out / DONE_FILE).write_text(json.dumps(training, indent=1) + "\n")
    return out


def _tiny_meta(current: Path, start_path: Path | None, work: Path) -> Path:
    for folder in (work / "init", start_path):
        if folder is not None and (folder / "vlmlab_tiny.json").is_file():
            return folder / "vlmlab_tiny.json"
    raise ModelError(f"{current}: no vlmlab_tiny.json found for the toy model being built")


def init_model(recipe: ToyRecipe, out_dir: Path) -> Path:
    """The untrained tiny model of `recipe` (architecture, tokenizer, processor at the image side)."""
    from vlmlab.models.tiny import build_tiny

    build_tiny(recipe.family, out_dir, seed=recipe.seed, **recipe.shape.tiny_options())
    set_image_side(out_dir, recipe.shape.image_side)
    return out_dir


def set_image_side(model_dir: Path, side: int) -> None:
    """Make the processor resize every image to `side` x `side` pixels (a multiple of 28).

    Qwen2-VL's processor keeps the pixel count between its `size` bounds; pinning both to side^2
    gives (side/28)^2 image tokens per square image.
    """
    if side % 28:
        raise ModelError(f"image side {side} must be a multiple of 28 (patch 14 x merge 2)")
    path = model_dir / "processor_config.json"
    config = json.loads(path.read_text())
    config["image_processor"]["size"] = {"longest_edge": side * side, "shortest_edge": side * side}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    meta_path = model_dir / "vlmlab_tiny.json"
    meta = json.loads(meta_path.read_text())
    meta["image_size"] = side
    meta["image_tokens_per_image"] = (side // 28) ** 2
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
