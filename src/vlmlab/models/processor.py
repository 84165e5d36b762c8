"""Loading a checkpoint's processor without its video processor, and saving it so that stock
transformers loads it again.

vlmlab never feeds video, and in transformers 5.x the video processors of Qwen2-VL, InternVL,
SmolVLM, ... need torchvision; `load_processor` drops them, at load time only. The workaround
(`image_only_processor_class`, which also makes a save write the `video_processor` section a stock
save would, so the saved folder is a stock folder) lives in `vlmlab._compat`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlmlab._compat import image_only_processor_class
from vlmlab.errors import ModelError


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


