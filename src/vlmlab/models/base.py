"""The one model protocol every backend implements, and the typed requests it takes.

Studies speak only in `Turn`s (role + a list of strings and `Image`s). Each backend turns those
into its own format (the processor's chat template for HF, `image_url` parts for OpenAI-compatible
servers, `images` for Ollama), so no study ever builds a model-specific prompt string.

Results never carry error strings as text: a failed item has `status="error"` and `error` set, an
empty or whitespace-only generation has `status="empty"`; only `status="ok"` text may be scored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from vlmlab.data.images import Image

Role = Literal["system", "user", "assistant"]
Status = Literal["ok", "empty", "error"]
LogprobSource = Literal["raw", "processed"]
HiddenPool = Literal["image", "text", "last"]
Content = Union[str, Image]


@dataclass(frozen=True)
class Turn:
    """One conversation turn; `content` interleaves text and images in order."""

    role: Role
    content: tuple[Content, ...]

    def __init__(self, role: Role, content: Sequence[Content] | str) -> None:
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"Turn role must be system, user or assistant, got {role!r}")
        items = (content,) if isinstance(content, (str, Image)) else tuple(content)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "content", items)

    @property
    def images(self) -> list[Image]:
        return [c for c in self.content if isinstance(c, Image)]

    @property
    def text(self) -> str:
        """The text parts joined (images left out), for logs and text-only backends."""
        return "".join(c for c in self.content if isinstance(c, str))


def conversation_images(conversation: Sequence[Turn]) -> list[Image]:
    """All images of a conversation in prompt order."""
    return [im for turn in conversation for im in turn.images]


def conversation_key(conversation: Sequence[Turn]) -> list:
    """A JSON-able description of a conversation with images replaced by content hashes."""
    return [
        [t.role, [c if isinstance(c, str) else {"image": c.sha256} for c in t.content]]
        for t in conversation
    ]


@dataclass
class GenerationRequest:
    """Ask for a continuation of `conversation` (which ends with a user turn)."""

    id: str
    conversation: list[Turn]
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int | None = None
    top_logprobs: int = 0  # k alternatives per generated step; 0 = no logprobs
    hidden_layers: tuple[int, ...] = ()  # decoder layers whose states to return (negative = from the end)
    hidden_pool: HiddenPool = "last"  # mean over image tokens, text tokens, or the last prompt token

    def cache_key(self) -> str:
        """Hash of everything that determines the result (id excluded)."""
        payload = {
            "conv": conversation_key(self.conversation),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "top_logprobs": self.top_logprobs,
            "hidden_layers": list(self.hidden_layers),
            "hidden_pool": self.hidden_pool,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class StepLogprobs:
    """Log-probabilities at one generated step: the chosen token and the top-k alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]]  # (token text, logprob), best first
    token_id: int | None = None
    top_ids: list[int] | None = None


@dataclass
class GenerationResult:
    id: str
    status: Status
    text: str = ""
    error: str | None = None
    logprobs: list[StepLogprobs] | None = None
    # "raw": log-softmax of the model's logits; "processed": after temperature/top-p were applied.
    logprob_source: LogprobSource | None = None
    hidden_states: dict[int, np.ndarray] | None = None  # layer -> pooled vector (hidden_size,)
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    seconds: float | None = None

    @staticmethod
    def status_for(text: str) -> Status:
        """An empty or whitespace-only generation is `empty`, never `ok`."""
        return "ok" if text.strip() else "empty"


@dataclass
class ScoreRequest:
    """Teacher-forced log-probabilities of `target` as the assistant's reply to `conversation`."""

    id: str
    conversation: list[Turn]  # ends with the user turn the target answers
    target: str
    # also score the template's end-of-turn token(s) after the target (Lever-Plus `add_eos_token=True`):
    # without it, "2" is not penalised for continuing as "20"
    score_end_of_turn: bool = False

    def cache_key(self) -> str:
        payload: dict = {"conv": conversation_key(self.conversation), "target": self.target}
        if self.score_end_of_turn:  # only then, so keys of earlier caches stay valid
            payload["end_of_turn"] = True
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ScoreResult:
    id: str
    status: Status
    token_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0))  # one per target token
    token_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def sum_logprob(self) -> float:
        return float(np.sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float:
        if len(self.token_logprobs) == 0:
            raise ValueError(f"score result {self.id!r} has no target tokens (status={self.status})")
        return float(np.mean(self.token_logprobs))


@runtime_checkable
class Backend(Protocol):
    """What every backend provides. Batching, retries and caching are the backend's business."""

    name: str
    supports_score: bool
    # The most images one prompt may hold (BLIP-2: 1), or None when any number is fine or only the
    # server knows (HTTP backends). Studies that put several images in one prompt (ICL
    # demonstrations) read it to refuse a model up front instead of failing every item.
    max_images_per_prompt: int | None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, same order. Never raises for a single bad item."""
        ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """One result per request, same order. Raises `ModelError` if the backend cannot score."""
        ...
