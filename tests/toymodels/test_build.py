"""Building toy models: cache layout, no rebuild on the second call, atomicity, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmlab.toymodels import ModelShape, Stage, ToyRecipe, build_toy_model, is_built, recipe_hash, toy_model_dir
from vlmlab.toymodels import build as build_module

MICRO = ToyRecipe(
    name="micro", kind="icl-vqa", description="two steps of explicit VQA, for tests", data_size=60,
    shape=ModelShape(image_side=84), stages=(Stage(data="explicit", steps=2, learning_rate=1e-3, batch_size=4),),
)


@pytest.fixture(scope="module")
def micro_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(MICRO, cache_root=tmp_path_factory.mktemp("cache-a"), progress=False)


@pytest.mark.slow
def test_build_writes_a_loadable_model_with_recipe_and_training_logs(micro_path: Path) -> None:
    from vlmlab.models.base import GenerationRequest, Turn
    from vlmlab.models.hf import HFBackend
    from vlmlab.toyworld.vqa import VqaScene, draw_vqa_scene
    from vlmlab.data.images import Image

    assert micro_path.name == f"micro-{recipe_hash(MICRO)}"
    recipe = json.loads((micro_path / "recipe.json").read_text())
    assert recipe["hash"] == recipe_hash(MICRO) and recipe["recipe"]["name"] == "micro"
    training = json.loads((micro_path / "training.json").read_text())
    assert [len(s["losses"]) for s in training["stages"]] == [2] and training["seconds"] > 0
    meta = json.loads((micro_path / "vlmlab_tiny.json").read_text())
    assert meta["image_size"] == 84 and meta["image_tokens_per_image"] == 9
    # the temp build folder is removed (only the folder of per-recipe lock files stays)
    assert not [p for p in micro_path.parent.iterdir() if p.name.startswith(".") and p.name != ".locks"]

    backend = HFBackend(micro_path)
    image = Image.from_pil(draw_vqa_scene(VqaScene("red", "star", (0,), 11.0, 250)))
    result = backend.generate([GenerationRequest("q", [Turn("user", [image, "What colour is it?"])], max_new_tokens=3)])[0]
    assert result.status in ("ok", "empty"), result.error
    assert result.prompt_tokens is None or result.prompt_tokens > 9


@pytest.mark.slow
def test_second_call_uses_the_cache(micro_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> Path:
        raise AssertionError("rebuilt a cached toy model")

    monkeypatch.setattr(build_module, "_build_into", fail)
    assert build_toy_model(MICRO, cache_root=micro_path.parent) == micro_path
    assert is_built(MICRO, micro_path.parent)


@pytest.mark.slow
def test_same_recipe_gives_the_same_weights(micro_path: Path, tmp_path: Path) -> None:
    again = build_toy_model(MICRO, cache_root=tmp_path, progress=False)
    assert again != micro_path
    assert (again / "model.safetensors").read_bytes() == (micro_path / "model.safetensors").read_bytes()


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash_midway(recipe: ToyRecipe, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"half written")
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(build_module, "init_model", crash_midway)
    with pytest.raises(RuntimeError, match="killed"):
        build_toy_model(MICRO, cache_root=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".locks"]  # no half-built model, only the lock folder
    assert not is_built(MICRO, tmp_path)


def test_default_cache_root_follows_vlmlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMLAB_HOME", str(tmp_path))
    assert toy_model_dir("icl-vqa").parent == tmp_path / "toymodels"
    monkeypatch.delenv("VLMLAB_HOME")
    assert toy_model_dir("icl-vqa").parent == Path.home() / ".cache" / "vlmlab" / "toymodels"


def test_concurrent_builds_of_one_recipe_build_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    calls = []
    real = build_module._build_into

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(build_module, "_build_into", counting)
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(build_toy_model(MICRO, cache_root=tmp_path, progress=False))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and is_built(MICRO, tmp_path)


def test_orphans_of_a_killed_build_are_removed_by_the_next_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL skips `finally`: the work folder stayed in the cache (11 MB each). The next build
    of the recipe removes it; other recipes' folders are left alone."""
    final = toy_model_dir(MICRO, tmp_path)
    orphan = tmp_path / f".{final.name}-abc123"
    (orphan / "stage0-explicit").mkdir(parents=True)
    (orphan / "stage0-explicit" / "model.safetensors").write_bytes(b"x" * 100)
    other = tmp_path / ".other-recipe-0123-xyz"
    other.mkdir()

    def crash(recipe: ToyRecipe, out_dir: Path) -> Path:
        raise RuntimeError("stop after the orphan check")

    monkeypatch.setattr(build_module, "init_model", crash)
    with pytest.raises(RuntimeError, match="stop"):
        build_toy_model(MICRO, cache_root=tmp_path, progress=False)
    assert not orphan.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", other.name]


@pytest.mark.slow  # ~27 s: a killed build, its resume and an uninterrupted reference
def test_a_killed_build_resumes_from_its_last_checkpoint_to_the_same_bytes(tmp_path: Path) -> None:
    """A real build process is SIGKILLed mid-stage; the next build of the recipe resumes from the
    stage's last checkpoint (not from scratch), removes its work folder, and its weights are
    byte-identical to an uninterrupted build's (the toy models are cached by recipe hash)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sys.path.insert(0, str(Path(__file__).parent))
    from build_child import RESUMABLE

    child = Path(__file__).with_name("build_child.py")
    crash_root, marker = tmp_path / "crash", tmp_path / "paused"
    env = dict(os.environ) | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(child), str(crash_root), str(marker)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the build never reached step 5"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    work = build_module.work_dir(toy_model_dir(RESUMABLE, crash_root))
    stage = work / "stage0-explicit"
    assert sorted(p.name for p in (stage / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    assert not is_built(RESUMABLE, crash_root)

    resumed = build_toy_model(RESUMABLE, cache_root=crash_root, progress=False)
    training = json.loads((resumed / "training.json").read_text())
    assert training["stages"][0]["resumed_from_step"] == 4 and len(training["stages"][0]["losses"]) == 6
    assert sorted(p.name for p in crash_root.iterdir()) == [".locks", resumed.name]  # work folder cleaned

    reference = build_toy_model(RESUMABLE, cache_root=tmp_path / "whole", progress=False)  # no checkpoints at all
    assert json.loads((reference / "training.json").read_text())["stages"][0]["resumed_from_step"] is None
    assert (resumed / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_a_work_folder_from_another_torch_build_is_started_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints written by another torch version or device (another dtype) do not resume: the
    work folder is removed before the build starts (here: the build then crashes at init, as planned)."""
    work = build_module.work_dir(toy_model_dir(MICRO, tmp_path))
    (work / "stage0-explicit" / "checkpoints" / "step-00000025").mkdir(parents=True)
    (work / build_module.STAMP).write_text(json.dumps({"torch": "1.0.0", "cuda": True}))
    seen: list[bool] = []

    def crash_at_init(recipe: ToyRecipe, out_dir: Path) -> Path:
        seen.append((work / "stage0-explicit").exists())
        raise RuntimeError("stop here")

    monkeypatch.setattr(build_module, "init_model", crash_at_init)
    with pytest.raises(RuntimeError, match="stop here"):
        build_toy_model(MICRO, cache_root=tmp_path, progress=False)
    assert seen == [False]
