"""Per-request decoding inside a batched `generate`: each row greedy or sampled from its own
seeded generator, so a request's text does not depend on what it was batched with."""

from __future__ import annotations

from typing import Any, Sequence

from vlmlab.models.base import GenerationRequest


class SeededSampler:
    """A logits processor that picks each row's next token itself: argmax for greedy rows, a draw
    from the row's own `torch.Generator` (seeded with the request's seed) for sampling rows.

    It returns logits that are -inf except at the chosen token, and `generate` runs greedy, so
    a request's text depends only on its own prompt and seed, not on what it was batched with.
    With `keep_processed`, `processed[step]` holds each row's log-distribution after temperature
    and top-p (for greedy rows, the plain log-softmax).
    """

    def __init__(self, reqs: Sequence[GenerationRequest], *, keep_processed: bool) -> None:
        self.reqs = list(reqs)
        self.keep_processed = keep_processed
        self.processed: list[Any] = []
        self._gens: list[Any] | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._gens is None:
            self._gens = []
            for r in self.reqs:
                g = torch.Generator(device=scores.device)
                g.manual_seed(r.seed if r.seed is not None else 0)
                self._gens.append(g)
        chosen = torch.full_like(scores, float("-inf"))
        logps = []
        for b, r in enumerate(self.reqs):
            logits = scores[b].float()
            if r.temperature == 0:
                lp = torch.log_softmax(logits, dim=-1)
                tok = int(torch.argmax(logits))
            else:
                lp = torch.log_softmax(logits / r.temperature, dim=-1)
                if r.top_p < 1.0:
                    srt, idx = torch.sort(lp, descending=True)
                    cum = torch.cumsum(srt.exp(), dim=-1)
                    drop = cum - srt.exp() >= r.top_p  # keep the smallest prefix whose mass reaches top_p
                    lp = lp.clone()
                    lp[idx[drop]] = float("-inf")
                    lp = torch.log_softmax(lp, dim=-1)
                tok = int(torch.multinomial(lp.exp(), 1, generator=self._gens[b]))
            chosen[b, tok] = 0.0
            if self.keep_processed:
                logps.append(lp)
        if self.keep_processed:
            self.processed.append(torch.stack(logps))
        return chosen
