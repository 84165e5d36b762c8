"""InfoScore: how much a demonstration raises the probability of the right answer.

`P(y|C,x) = exp(mean log p(answer tokens))` — the geometric-mean token probability of the query's
answer `y` after context `C`, read from the backend's `score()` (which returns the log-probs of
exactly the target tokens, located through the model's own chat template).
`IS(c|S,x) = P(y|c⊕S⊕x) − P(y|S⊕x)`: the gain from adding `c` to the already chosen `S`.

`answer_probabilities` streams any number of score requests through the backend in chunks of
`batch_size` and counts the forward passes it caused, so callers can batch the candidates of all
beams into one stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from vlmlab.errors import ModelError
from vlmlab.models.base import Backend, ScoreRequest, ScoreResult


def answer_probability(result: ScoreResult) -> float:
    """exp(mean token log-prob) of one score result; an error result raises `ModelError`."""
    if result.status != "ok":
        # no request id in the message: the ledger names the item, and the run health counts failures by message
        raise ModelError(f"scoring failed: {result.error or result.status}")
    return float(np.exp(result.mean_logprob))


@dataclass
class ScoreCounter:
    """How many requests (= full forward passes over a prompt) a search sent to the backend."""

    requests: int = 0
    batches: int = 0
    per_batch: list[int] = field(default_factory=list)


def answer_probabilities(
    backend: Backend,
    requests: Sequence[ScoreRequest],
    batch_size: int = 16,
    counter: ScoreCounter | None = None,
) -> np.ndarray:
    """`P(y|C,x)` for each request, scored in chunks of `batch_size`; float64 [N]."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = np.empty(len(requests), dtype=np.float64)
    for start in range(0, len(requests), batch_size):
        chunk = list(requests[start : start + batch_size])
        results = backend.score(chunk)
        if len(results) != len(chunk):
            raise ModelError(f"backend {getattr(backend, 'name', '?')} returned {len(results)} score results for {len(chunk)} requests")
        if counter is not None:
            counter.requests += len(chunk)
            counter.batches += 1
            counter.per_batch.append(len(chunk))
        out[start : start + len(chunk)] = [answer_probability(r) for r in results]
    return out
