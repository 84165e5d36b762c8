"""What is kept of each generation besides its text: top-k logprobs (NPZ) and hidden states.

The probability mass a model puts on the tokens "1".."9" at the step where it wrote its rating is
the "dark knowledge" behind the argmax: a model that always answers 5 may still spread its mass
over 3–7. `digit_distribution` reads it from the top-k alternatives of that step; the mass outside
the top-k is unknown, so the captured mass is reported beside the normalised distribution.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from vlmlab.metrics.agreement import rating_distribution
from vlmlab.models.base import StepLogprobs
from vlmlab.runs import atomic_write_bytes

_DIGIT = re.compile(r"^\s*([1-9])\s*$")


def rating_step(steps: Sequence[StepLogprobs], value: int) -> int | None:
    """Index of the first generated step whose token is the digit `value`."""
    for i, step in enumerate(steps):
        match = _DIGIT.match(step.token)
        if match and int(match.group(1)) == value:
            return i
    return None


def digit_distribution(step: StepLogprobs) -> tuple[np.ndarray, float]:
    """(probabilities of 1..9 normalised over the digits in the top-k, total mass on those digits).

    Raises DataError when no digit is among the top-k (the caller then records no distribution).
    """
    top = {token: logprob for token, logprob in reversed(step.top or [(step.token, step.logprob)])}
    mass = float(sum(np.exp(lp) for token, lp in top.items() if _DIGIT.match(token)))
    return rating_distribution(top), mass


def logprob_arrays(prefix: str, steps: Sequence[StepLogprobs], k: int) -> dict[str, np.ndarray]:
    """Per-step chosen token/logprob and a [T, k] block of the top alternatives (padded)."""
    t = len(steps)
    top_lp = np.full((t, k), -np.inf, dtype=np.float32)
    top_tok = np.full((t, k), "", dtype=object)
    for i, step in enumerate(steps):
        for j, (token, lp) in enumerate(step.top[:k]):
            top_lp[i, j] = lp
            top_tok[i, j] = token
    return {
        f"{prefix}/tokens": np.array([s.token for s in steps], dtype=str),
        f"{prefix}/logprobs": np.array([s.logprob for s in steps], dtype=np.float32),
        f"{prefix}/top_tokens": top_tok.astype(str),
        f"{prefix}/top_logprobs": top_lp,
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomic NPZ without pickles (strings stored as unicode arrays)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
