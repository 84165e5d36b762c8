"""A bad image stops `caption run` at data preparation, before any model loads or trains.

The guard refuses every way `caption run` reaches a model: vlmlab's own entry points (the
checkpoint lookup that builds `tiny-*` models, `open_checkpoint`, `load_backend`, `fine_tune`) and
transformers' / PEFT's `from_pretrained` (training loads its model through transformers directly).
An earlier version patched `vlmlab.models.registry.load_backend`, which `caption run` never calls,
so it could not fail; `test_the_guard_stops_a_run_whose_images_are_good` shows this one trips on
the path a run really takes, at each of its two layers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from cli_support import decompression_bomb, error_line, run_cli
from vlmlab.toyworld import generate

REPO = Path(__file__).resolve().parents[2]


class ModelLoaded(BaseException):
    """Raised by the guard; a BaseException so that no `except Exception` in the run hides it."""


def _vlmlab_targets() -> list[tuple[object, str]]:
    import vlmlab.models.hf as hf
    import vlmlab.models.loading as loading
    import vlmlab.models.tiny as tiny
    import vlmlab.train as train

    return [(loading, "checkpoint_location"), (loading, "load_backend"), (tiny, "tiny_model_path"),
            (hf, "open_checkpoint"), (hf, "HFBackend"), (train, "fine_tune")]


def _library_targets() -> list[tuple[object, str]]:
    import peft
    import transformers

    classes = [transformers.PreTrainedModel, transformers.ProcessorMixin, transformers.PretrainedConfig,
               transformers.PreTrainedTokenizerBase, transformers.AutoModelForImageTextToText, transformers.AutoModel,
               transformers.AutoProcessor, transformers.AutoConfig, transformers.AutoTokenizer,
               transformers.AutoImageProcessor, peft.PeftModel]
    return [(cls, "from_pretrained") for cls in classes]


def guard(monkeypatch: pytest.MonkeyPatch, targets: list[tuple[object, str]]) -> None:
    for owner, name in targets:
        label = f"{getattr(owner, '__name__', owner)}.{name}"

        def refuse(*args: object, _label: str = label, **kwargs: object) -> None:
            raise ModelLoaded(f"{_label} was called before the images were checked")

        monkeypatch.setattr(owner, name, classmethod(refuse) if isinstance(owner, type) and name == "from_pretrained" else refuse)


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    return lambda: guard(monkeypatch, _vlmlab_targets() + _library_targets())


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy caption config and 20 toy panoramas in a fresh folder (the cwd); returns the folder."""
    monkeypatch.chdir(tmp_path)
    generate("panorama", tmp_path / "data/toy/panorama", n=20, seed=0)
    shutil.copy(REPO / "configs/caption/toy.yaml", tmp_path / "toy.yaml")
    return tmp_path


def _first_test_image(root: Path) -> Path:
    rows = (root / "data/toy/panorama/test.tsv").read_text().splitlines()
    return root / "data/toy/panorama" / rows[1].split("\t")[0]


@pytest.mark.parametrize("damage, problem", [
    ("empty", "0 bytes"), ("truncated", "corrupt or truncated"), ("text", "not an image file"),
    ("bomb", "image too large to decode safely"),
])
def test_bad_image_is_caught_before_any_model(damage: str, problem: str, study: Path, no_model_loads: Callable[[], None],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    image = _first_test_image(study)
    raw = image.read_bytes()
    image.write_bytes({"empty": b"", "truncated": raw[: len(raw) // 3], "text": b"not an image",
                       "bomb": decompression_bomb()}[damage])
    no_model_loads()
    code, out, err = run_cli(["caption", "run", "toy.yaml"], capsys)
    message = error_line(err)
    assert code == 2
    assert message.startswith("error: data/toy/panorama/test.tsv:2") and image.name in message and problem in message
    run = study / "runs/caption/toy-panorama"
    assert not run.exists() or [p.name for p in run.iterdir()] in ([], ["_shared_data"])
    assert not (run / "_shared_data").exists() or [p.name for p in (run / "_shared_data").iterdir()] in ([], ["images"])
    assert not list(run.glob("_shared_data/images/*/*"))  # no prepared image either


@pytest.mark.parametrize("layer", ["vlmlab", "transformers"])
def test_the_guard_stops_a_run_whose_images_are_good(layer: str, study: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tiny_qwen2_vl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With good images the run gets past data preparation and the guard must trip: it is not vacuous.

    `transformers`: only the library's `from_pretrained` are refused and the model is a local tiny
    checkpoint, so vlmlab's own lookup runs and the first library load trips the guard.
    """
    guard(monkeypatch, _vlmlab_targets() + _library_targets() if layer == "vlmlab" else _library_targets())
    first = "vlmlab.models.loading.checkpoint_location" if layer == "vlmlab" else r"\w+\.from_pretrained"
    with pytest.raises(ModelLoaded, match=f"^{first} was called before the images were checked"):
        run_cli(["caption", "run", "toy.yaml", "--no-human", "--set", f"models.0.ref={tiny_qwen2_vl}"], capsys)
    assert (study / "runs/caption/toy-panorama/_shared_data/data.json").is_file()  # data preparation finished first
