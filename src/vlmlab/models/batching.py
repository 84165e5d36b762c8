"""Which encoded requests share a forward pass.

Batched output must equal unbatched output, so a batch may only hold rows the model treats the
same whatever their neighbours. Two rules decide it:

- `by_length` (generation): rows sorted by prompt length (tokens, image tokens included; a stable
  sort) before batches are cut, so a batch needs little padding. Scoring keeps request order, so
  the rows of one beam stay together for prefix sharing.
- Cross-attention families (Mllama, whose processor returns `cross_attention_mask`): only rows with
  the same image slots share a batch. transformers does not zero the cross-attention output of
  text that sees no image (Meta's reference does), so in a batch mixing image counts the text
  before the first image attends to zero-padded image slots and its scores change.
"""

from __future__ import annotations

from typing import Mapping

from vlmlab.models.hf_encode import Encoded


def batches(encoded: Mapping[int, Encoded], batch_size: int, by_length: bool = False) -> list[list[int]]:
    """Request indices in batches of at most `batch_size`, grouped by image slots where needed."""
    order = sorted(encoded, key=lambda i: int(encoded[i].input_ids.shape[0])) if by_length else list(encoded)
    groups: dict[tuple[int, ...] | None, list[int]] = {}
    for i in order:
        mask = encoded[i].model_inputs.get("cross_attention_mask")
        groups.setdefault(None if mask is None else tuple(mask.shape[1:]), []).append(i)
    return [group[start : start + batch_size] for group in groups.values() for start in range(0, len(group), batch_size)]
