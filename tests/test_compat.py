"""`vlmlab._compat`: each workaround's upstream limitation still exists, and the workaround works.

When one of the `*_still_*` tests fails, the library has fixed what the workaround works around:
delete the workaround (its docstring names the library version it was written for) and this test.
The last tests pin the public APIs that replaced private ones (`_compat`'s docstring lists them).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from vlmlab import _compat


@pytest.fixture(scope="module")
def internvl(tiny_model) -> Path:
    return tiny_model("internvl")


def _stock_class(folder: Path) -> type:
    import transformers

    return getattr(transformers, json.loads((folder / "processor_config.json").read_text())["processor_class"])


def test_stock_processors_still_need_torchvision_for_their_video_processor(tiny_qwen2_vl, internvl):
    """transformers 5.25: the stock Qwen2-VL / InternVL processors cannot load without torchvision."""
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        pytest.skip("torchvision is installed here: the stock processors load, so the limitation cannot show")
    for folder in (tiny_qwen2_vl, internvl):
        with pytest.raises(ImportError, match="VideoProcessor requires the Torchvision library"):
            _stock_class(folder).from_pretrained(folder)
        processor = _compat.image_only_processor_class(_stock_class(folder)).from_pretrained(folder)
        assert getattr(processor, "video_processor", None) is None and processor.image_processor is not None


def test_processor_mixin_still_reads_init_code_not_its_signature(internvl):
    """transformers 5.25: saved options reach `__init__` only through `__init__.__code__.co_varnames`.

    A plain wrapper that declares the right signature (`__signature__`) loses InternVL's saved
    `image_seq_length` (4 in the tiny folder; the class default is 256), which is why
    `image_only_processor_class` builds its `__init__` with `exec`. If this fails, replace the
    `exec` with such a wrapper.
    """
    base = _stock_class(internvl)
    assert json.loads((internvl / "processor_config.json").read_text())["image_seq_length"] == 4
    sig = inspect.signature(base.__init__)

    def __init__(self, *args, **kwargs):
        base.__init__(self, *args, video_processor=None, **kwargs)

    __init__.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "video_processor"])
    plain = type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__})
    assert plain.from_pretrained(internvl).image_seq_length == 256  # the saved option was dropped
    assert _compat.image_only_processor_class(base).from_pretrained(internvl).image_seq_length == 4


def test_a_saved_image_only_processor_loads_with_stock_transformers_settings(internvl, tmp_path):
    """The save hook writes the `video_processor` section a stock save writes (stock loaders need it)."""
    processor = _compat.image_only_processor_class(_stock_class(internvl)).from_pretrained(internvl)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "InternVLProcessor" and saved["image_seq_length"] == 4
    assert saved["video_processor"]["video_processor_type"] == "InternVLVideoProcessor"
    image = {k: v for k, v in saved["image_processor"].items() if k != "image_processor_type"}
    assert {k: saved["video_processor"][k] for k in image} == image


def test_processors_still_rerun_the_image_processor_and_reach_it_by_attribute(tiny_qwen2_vl, colour_image_factory, monkeypatch):
    """transformers 5.25: a processor call runs its image processor on every image of every call
    (no cache, no parameter for earlier outputs), through `self.image_processor` at call time.

    The first half failing means upstream caches image inputs: delete `ImageInputCache` and
    `with_image_processor`. The second half failing means the swap no longer reaches the
    processor: `ImageInputCache` silently stops caching and must change.
    """
    from vlmlab.models.base import Turn
    from vlmlab.models.hf_encode import render_prompt
    from vlmlab.models.processor import load_processor

    processor = load_processor(tiny_qwen2_vl)
    image = colour_image_factory((200, 30, 30))
    text = render_prompt(processor, [Turn("user", [image, "What colour?"])])
    calls: list[str] = []
    inner = processor.image_processor.preprocess
    monkeypatch.setattr(processor.image_processor, "preprocess", lambda *a, **k: calls.append("original") or inner(*a, **k))
    first = processor(text=[text], images=[image.load()], return_tensors="pt")
    second = processor(text=[text], images=[image.load()], return_tensors="pt")
    assert calls == ["original", "original"]
    assert second["pixel_values"].equal(first["pixel_values"])

    class Counting:
        def __init__(self, wrapped):
            self.wrapped = wrapped

        def __call__(self, *args, **kwargs):
            calls.append("swapped")
            return self.wrapped(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.wrapped, name)

    proxy = _compat.with_image_processor(processor, Counting(processor.image_processor))
    swapped = proxy(text=[text], images=[image.load()], return_tensors="pt")
    assert calls[2:] == ["swapped", "original"] and processor.image_processor is not proxy.image_processor
    assert swapped["pixel_values"].equal(first["pixel_values"]) and swapped["input_ids"].equal(first["input_ids"])


def test_the_public_image_text_to_text_mapping_is_the_one_the_auto_class_loads_with(tiny_qwen2_vl):
    """transformers 5.25: `checkpoint.model_class` reads `MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING` (public)
    instead of `AutoModelForImageTextToText._model_mapping`. If this fails, the class vlmlab names for a
    checkpoint is no longer the class `AutoModelForImageTextToText` builds: look up the new mapping."""
    import transformers

    from vlmlab.models.checkpoint import model_class

    assert transformers.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING is transformers.AutoModelForImageTextToText._model_mapping
    loaded = transformers.AutoModelForImageTextToText.from_pretrained(tiny_qwen2_vl)
    assert model_class(tiny_qwen2_vl) is type(loaded) is transformers.Qwen2VLForConditionalGeneration
