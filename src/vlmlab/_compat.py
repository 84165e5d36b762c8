"""Every workaround of a library's private API or internal behaviour, in one place.

Each one names the library version it was written against and why it exists, and
`tests/test_compat.py` holds, per workaround, a test that asserts the upstream limitation still
exists (and that the workaround still works). When a library fixes it, that test fails and says
which workaround to delete.

- `image_only_processor_class` + `add_video_processor_config` (transformers 5.25): processors of
  Qwen2-VL, Qwen2.5-VL, InternVL, SmolVLM, ... load a video processor that needs torchvision, and
  `ProcessorMixin` reads `__init__.__code__.co_varnames` to pass saved options, so the subclass
  dropping the video processor must be built with real parameters (`exec`).
- `with_image_processor` (transformers 5.25): processors run their image processor on every call;
  the image-input cache swaps it, for one call, on a shallow copy of the processor.

Private APIs that public ones replaced (no workaround left; `tests/test_compat.py` pins the public
one where it could drift from what the library does):

- accelerate's process-wide `AcceleratorState` refuses a second mixed-precision mode in one
  process; `fine_tune` used to reset it (private `_reset_state`) and now runs half precision as
  `torch.autocast` instead.
- `checkpoint.model_class` read `AutoModelForImageTextToText._model_mapping` (transformers 5.25);
  the same mapping is public as `transformers.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING`.
- `sources` checked datasets' private `Dataset._indices` to flatten a select/shuffle (datasets
  5.2); `dataset.with_format("arrow")[:]` gives the selected rows through the public API.

Not a private API, so not here: `prefix_scoring.shared_prefix` swaps a decoder's `forward` on the
instance for one call and restores whatever was there (accelerate's hooks put one on the instance).
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path
from typing import Any


def image_only_processor_class(base: type) -> type:
    """A subclass of a processor class without its video processor (transformers 5.25).

    In transformers 5.x the Qwen2-VL/Qwen2.5-VL/InternVL/SmolVLM processors require a video
    processor that needs torchvision. vlmlab never feeds video, so we drop it. The subclass keeps the
    base class's name, so `save_pretrained` writes a `processor_class` that stock transformers can
    load, and the saved folder gets the `video_processor` section a stock save writes.
    """
    from transformers.processing_utils import ProcessorMixin

    # Keep the base's parameters (minus video_processor) as real parameters: ProcessorMixin reads
    # `__init__.__code__.co_varnames` to pass saved options (e.g. InternVL's image_seq_length)
    # and saves exactly those parameters, so a `**kwargs`-only wrapper would silently drop them.
    params = [
        p for n, p in inspect.signature(base.__init__).parameters.items()
        if n not in ("self", "video_processor") and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    names = [p.name for p in params]
    defaults = {p.name: (None if p.default is p.empty else p.default) for p in params}
    source = (
        f"def __init__(self, {', '.join(f'{n}=_defaults[{n!r}]' for n in names)}, **kwargs):\n"
        f"    _base.__init__(self, video_processor=None, {', '.join(f'{n}={n}' for n in names)}, **kwargs)\n"
    )
    namespace: dict[str, Any] = {"_defaults": defaults, "_base": base}
    exec(source, namespace)  # noqa: S102 - builds a fixed-shape wrapper from the base's own parameter names
    __init__ = namespace["__init__"]

    def save_pretrained(self: Any, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        out = base.save_pretrained(self, save_directory, *args, **kwargs)
        add_video_processor_config(Path(save_directory))
        return out

    # SmolVLM's apply_chat_template override reads video-processor defaults (frames, fps) even
    # for image-only chats; without a video processor the shared ProcessorMixin rendering is used.
    return type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__,
                                         "apply_chat_template": ProcessorMixin.apply_chat_template,
                                         "save_pretrained": save_pretrained})


def _video_processor_class(image_processor_type: str, processor_class: str) -> str | None:
    """The video processor class a stock save would name: transformers' own inference rule
    (`ImageProcessor` -> `VideoProcessor`, as `AutoVideoProcessor` does), else the class of the
    `video_processing_*` module of a model type using `processor_class` (InternVL). Looked up in
    the source: without torchvision the classes are dummies and the auto mapping is empty."""
    import transformers
    from transformers.models.auto.configuration_auto import model_type_to_module_name
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    models = Path(transformers.__file__).parent / "models"
    inferred = re.sub(r"(Pil|Fast)$", "", image_processor_type).replace("ImageProcessor", "VideoProcessor")
    pattern = re.compile(rf"^class {re.escape(inferred)}\(", flags=re.M)
    if any(pattern.search(f.read_text()) for f in models.glob("*/video_processing_*.py")):
        return inferred
    for model_type, name in PROCESSOR_MAPPING_NAMES.items():
        module = model_type_to_module_name(model_type)
        source = models / module / f"video_processing_{module}.py"
        if name == processor_class and source.exists():
            found = re.findall(r"^class (\w+VideoProcessor)\(", source.read_text(), flags=re.M)
            if found:
                return found[-1]
    return None


def add_video_processor_config(folder: Path) -> None:
    """Complete a saved processor that was built without its video processor, so that stock
    `AutoProcessor.from_pretrained` (and `transformers serve`, vLLM) finds every sub-processor:
    `processor_config.json` gets the `video_processor` section a stock save writes, built from the
    image processor's settings (the video processors of these families share them)."""
    config_file = folder / "processor_config.json"
    config = json.loads(config_file.read_text())
    if "video_processor" in config or "image_processor" not in config:
        return
    video_class = _video_processor_class(config["image_processor"].get("image_processor_type", ""), config.get("processor_class", ""))
    if video_class is None:
        return
    video = {k: v for k, v in config["image_processor"].items() if k != "image_processor_type"}
    config["video_processor"] = video | {"video_processor_type": video_class}
    tmp = config_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tmp.replace(config_file)


def with_image_processor(processor: Any, image_processor: Any) -> Any:
    """A shallow copy of `processor` whose `image_processor` is `image_processor` (transformers 5.25).

    A processor call runs its image processor on every image of every call, and has no parameter
    for image inputs computed earlier; it reaches the image processor through the
    `image_processor` attribute at call time. So everything else (placeholder expansion,
    tokenisation, token-type ids) stays the processor's own code, and the original is untouched.
    """
    proxy = copy.copy(processor)
    proxy.image_processor = image_processor
    return proxy
