"""Helpers shared by the HTTP backend tests: images, scripted responders, request builders."""

from __future__ import annotations

import io
import threading

import PIL.Image

from vlmlab.data.images import Image
from vlmlab.models.base import GenerationRequest, StepLogprobs, Turn

FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "jitter": 0.5}  # tiny backoff so tests stay fast


def png(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Image:
    return Image.from_pil(PIL.Image.new("RGB", size, color))


def jpeg(color: tuple[int, int, int]) -> Image:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), color).save(buf, format="JPEG")
    return Image(data=buf.getvalue())


def bmp(color: tuple[int, int, int]) -> Image:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (4, 4), color).save(buf, format="BMP")
    return Image(data=buf.getvalue())


STEPS = [
    StepLogprobs("yes", -0.105, [("yes", -0.105), ("no", -2.3), ("maybe", -4.0)]),
    StepLogprobs("!", -0.01, [("!", -0.01), (".", -4.6), ("?", -6.0)]),
]


class Recorder:
    """A scripted responder that answers with the last user text and remembers what it saw."""

    def __init__(self, answer: str | None = None, steps: list[StepLogprobs] | None = None) -> None:
        self.answer = answer
        self.steps = steps
        self.calls: list[tuple[list[Turn], dict]] = []
        self._lock = threading.Lock()

    def __call__(self, conversation: list[Turn], params: dict):
        with self._lock:
            self.calls.append((conversation, params))
        text = self.answer if self.answer is not None else f"echo:{conversation[-1].text.strip()}"
        return (text, self.steps) if self.steps is not None else text


def requests_for(n: int, *, image: Image | None = None, **kwargs) -> list[GenerationRequest]:
    """`n` requests whose user text is `item-<i>` (so answers can be matched to ids)."""
    out = []
    for i in range(n):
        content = [image, f"item-{i}"] if image is not None else [f"item-{i}"]
        out.append(GenerationRequest(id=f"id-{i}", conversation=[Turn("user", content)], **kwargs))
    return out
