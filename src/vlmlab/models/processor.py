"""Loading a checkpoint's processor without its video processor, and saving it so that stock
transformers loads it again.

vlmlab never feeds video, and in transformers 5.x the video processors of Qwen2-VL, InternVL,
SmolVLM, ... need torchvision; `load_processor` drops them. The workaround lives here, at load
time only: `image_only_processor_class` writes the `video_processor` section a stock save would,
so the saved folder is a stock folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmlab.errors import ModelError


def image_only_processor_class(base: type) -> type:
    """A subclass of a processor class without its video processor.

    In transformers 5.x the Qwen2-VL/Qwen2.5-VL/InternVL processors require a video processor that
    needs torchvision. vlmlab never feeds video, so we drop it. The subclass keeps the base class's
    name, so `save_pretrained` writes a `processor_class` that stock transformers can load.
    """

    import inspect

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
    from transformers.processing_utils import ProcessorMixin

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
    import re

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


def _processor_class_name(path: Path) -> str | None:
    """The processor class a checkpoint declares (newer repos: processor_config.json; older:
    preprocessor_config.json or tokenizer_config.json), else the one transformers maps its
    model_type to."""
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        f = path / name
        if f.exists():
            try:
                cls_name = json.loads(f.read_text()).get("processor_class")
            except json.JSONDecodeError as exc:
                raise ModelError(f"{f}: not valid JSON ({exc})") from None
            if cls_name:
                return cls_name
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    return PROCESSOR_MAPPING_NAMES.get(model_type)


def load_processor(path: str | Path, *, default_chat_template: str | None = None, require_chat_template: bool = True) -> Any:
    """Load the processor of a local checkpoint folder, without a video processor.

    The chat template is the processor's, else the tokenizer's, else `default_chat_template`
    (the registry's family default, e.g. BLIP-2's, which ships none). `require_chat_template=False`
    leaves a missing one to the caller (`open_checkpoint` reports it with every other missing fact).

    Raises:
        ModelError: no processor can be found or loaded; the message names the folder.
    """
    import transformers

    path = Path(path)
    cls_name = _processor_class_name(path)
    if cls_name is None:
        raise ModelError(f"{path}: no processor_class in its configs and no known model_type; is this a vision-language checkpoint?")
    cls = getattr(transformers, cls_name, None)
    if cls is None:
        raise ModelError(f"{path}: processor class {cls_name!r} is not in transformers {transformers.__version__}; upgrade transformers")
    if "video_processor" in cls.get_attributes():
        cls = image_only_processor_class(cls)
    try:
        processor = cls.from_pretrained(path)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: cannot load processor {cls_name} ({type(exc).__name__}: {exc})") from None
    if not getattr(processor, "chat_template", None):
        processor.chat_template = getattr(processor.tokenizer, "chat_template", None) or default_chat_template
    if not processor.chat_template and require_chat_template:
        raise ModelError(f"{path}: the processor has no chat template; add chat_template.jinja to the checkpoint folder")
    return processor


