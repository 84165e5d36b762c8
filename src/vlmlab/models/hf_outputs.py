"""From `model.generate` outputs to a request's result: its new tokens, logprobs and hidden states.

`HFBackend.generate` runs a batch; these functions read one row of what it returned, so the
per-row rules live in one place: generation stops at the first end-of-sequence or padding token
(a batch runs until its longest row is done), each step's logprobs are taken at the token the row
produced, and a prompt's hidden states are mean-pooled over the tokens `hidden_pool` names.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vlmlab.errors import ModelError
from vlmlab.models.base import GenerationRequest, StepLogprobs


def generated_ids(row: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
    """A row's new token ids, up to (not including) the first stop token and at most `max_new_tokens`."""
    ids = row[:max_new_tokens]
    for j, t in enumerate(ids):
        if t in stop_ids:
            return ids[:j]
    return ids


def top_logprobs(tokenizer: Any, steps: Sequence[Any], ids: list[int], k: int) -> list[StepLogprobs]:
    """Per generated token: its logprob and the `k` best alternatives at that step.

    Args:
        steps: one logprob vector (torch, over the vocabulary) per generated token, this row's.
    """
    import torch

    out = []
    for lp, t in zip(steps, ids):
        top = torch.topk(lp, min(k, lp.shape[-1]))
        top_ids = top.indices.tolist()
        out.append(StepLogprobs(
            token=tokenizer.decode([t]), logprob=float(lp[t]), token_id=t,
            top=[(tokenizer.decode([i]), float(v)) for i, v in zip(top_ids, top.values.tolist())],
            top_ids=top_ids,
        ))
    return out


def pool_hidden(layers: tuple, batch: dict, b: int, req: GenerationRequest, image_token_id: int | None) -> dict[int, np.ndarray]:
    """Row `b`'s prompt hidden states of `req.hidden_layers`, mean-pooled per `req.hidden_pool`.

    `layers` is HF's `hidden_states` tuple of the prompt step (0 = embeddings); "image" pools the
    image tokens (none is that request's error), "text" the other prompt tokens, "last" the last one.
    """
    ids = batch["input_ids"][b]
    valid = batch["attention_mask"][b].bool()
    is_img = ids == image_token_id if image_token_id is not None else valid & False
    if req.hidden_pool == "image":
        mask = valid & is_img
        if not bool(mask.any()):
            raise ModelError(f"request {req.id!r}: hidden_pool='image' but the prompt has no image tokens")
    elif req.hidden_pool == "text":
        mask = valid & ~is_img
    else:
        mask = valid & False
        mask[-1] = True  # left padding: the last position is the last prompt token
    out = {}
    for layer in req.hidden_layers:
        if not -len(layers) <= layer < len(layers):
            raise ModelError(f"request {req.id!r}: hidden layer {layer} out of range; the model has {len(layers)} (0 = embeddings)")
        h = layers[layer][b][mask].float().mean(dim=0)
        out[layer] = h.cpu().numpy().astype(np.float32)
    return out
