"""Score a batch whose rows share a prompt prefix by running that prefix through the language model once.

InfoScore beam search with `order: right` scores, per beam S, the K prompts S⊕c⊕x: all share the
tokens of S (and the chat template's header). `shared_prefix` runs the model's own forward
unchanged - image features, their merge into the token embeddings, M-RoPE positions, attention
masks - and takes over only the call into the language model (the decoder that owns the input
embeddings), where it sees exactly what the model feeds its decoder:

1. Rows whose embeddings, positions and mask rows agree from the start form a group; its shared
   prefix length P is where the first of them differs. `plan_segments` cuts the batch (in its
   order) into contiguous groups so as to run the fewest positions.
2. A group's prefix runs once (batch 1, into a fresh `DynamicCache` with full-length layers, so
   the precomputed masks fit every layer); the cache is repeated to the group's size and the
   rows' suffixes run against it with their own positions and mask rows (trimmed to the group's
   longest row).
3. The hidden states are reassembled to [batch, seq, hidden]; the model's own head computes the
   logits. A prefix position's hidden state is the same in every row of its group, so the result
   equals the unshared forward up to float rounding (tested per family, 1e-5 in float32).

Exactness is checked on the call, not assumed from a family name: a prefix may end only where no
prefix position sees a later one (so PaliGemma's bidirectional prefix-LM block and Gemma3's
bidirectional image blocks are never cut), and a call carrying inputs this module does not know
how to split (Mllama's cross-attention states, Qwen3-VL's deepstack features, a text model that
is handed token ids, a bidirectional text config) runs the original forward untouched.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

# kwargs of the decoder call that are dropped, not split
_DROPPED = ("logits_to_keep",)  # LLaVA-OneVision forwards its head's kwarg to the decoder, which ignores it
# the cost of one extra forward, in positions: a group is shared only where it saves more
FORWARD_OVERHEAD = 16


@dataclass
class Segment:
    """Rows `start:stop` of a batch, run with a shared prefix of `prefix` positions (0 = unshared)."""

    start: int
    stop: int
    prefix: int
    length: int  # the longest row of the segment: positions beyond it are padding


@dataclass
class PrefixStats:
    """Language-model positions of real tokens the score path ran, and how many sharing saved."""

    tokens: int = 0
    shared: int = 0


def plan_segments(common: Sequence[int], lengths: Sequence[int], valid: Callable[[int], bool] = lambda p: True,
                  overhead: int = FORWARD_OVERHEAD) -> list[Segment]:
    """Contiguous groups of rows that minimise the positions run (dynamic programming, O(B²)).

    Args:
        common: common[i] = how many leading positions rows i and i+1 agree on.
        lengths: real (unpadded) length of each row.
        valid: whether a prefix may end before position p (no earlier position sees p or later).
        overhead: the cost of one forward, in positions.
    """
    n = len(lengths)
    best = [0.0] + [float("inf")] * n
    choice: list[Segment | None] = [None] * (n + 1)
    for stop in range(1, n + 1):
        shared, longest, shortest = 1 << 62, 0, 1 << 62
        for start in range(stop - 1, -1, -1):
            longest, shortest = max(longest, lengths[start]), min(shortest, lengths[start])
            if start < stop - 1:
                shared = min(shared, common[start])
            size = stop - start
            options = [(size * longest + overhead, 0)]
            if size > 1:
                p = min(shared, shortest, longest - 1)
                while p > 0 and not valid(p):
                    p -= 1
                if p > 0:
                    options.append((p + size * (longest - p) + 2 * overhead, p))
            cost, p = min(options)
            if best[start] + cost < best[stop]:
                best[stop] = best[start] + cost
                choice[stop] = Segment(start, stop, p, longest)
    segments: list[Segment] = []
    stop = n
    while stop > 0:
        seg = choice[stop]
        assert seg is not None
        segments.append(seg)
        stop = seg.start
    return segments[::-1]


def _visible(mask: torch.Tensor) -> torch.Tensor:
    return mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2


def _leading(same: torch.Tensor) -> list[int]:
    """Per row of a [rows, L] bool tensor, the number of leading Trues."""
    return same.to(torch.int64).cumprod(-1).sum(-1).tolist()


def common_prefixes(embeds: torch.Tensor, positions: torch.Tensor | None, masks: list[torch.Tensor],
                    lengths: Sequence[int]) -> list[int]:
    """For each pair of adjacent rows, the leading positions they agree on in everything the decoder sees."""
    same = (embeds[1:] == embeds[:-1]).all(-1)
    if positions is not None and positions.shape[-2] > 1:
        lead = positions.reshape(-1, *positions.shape[-2:])
        same &= (lead[:, 1:] == lead[:, :-1]).all(0)
    out = _leading(same)
    for m in masks:  # [B, heads, L, L]: rows agree on the block [:p, :p]
        seq = m.shape[-1]
        corner = torch.maximum(torch.arange(seq)[:, None], torch.arange(seq)[None, :]).to(m.device)
        for i in range(len(out)):
            diff = (m[i] != m[i + 1]).any(0)
            if bool(diff.any()):
                out[i] = min(out[i], int(corner[diff].min()))
    return [min(c, lengths[i], lengths[i + 1]) for i, c in enumerate(out)]


def _valid_cuts(masks: list[torch.Tensor]) -> Callable[[int], bool]:
    """p is a valid cut when no position before p sees a key at p or later."""
    if not masks:
        return lambda p: True
    seq = masks[0].shape[-1]
    keys = torch.arange(seq, device=masks[0].device)
    last = torch.full((seq,), -1, dtype=torch.int64, device=masks[0].device)
    for m in masks:
        vis = _visible(m).any(0).any(0)  # [q, k] over rows and heads
        last = torch.maximum(last, torch.where(vis, keys[None, :], -1).max(-1).values)
    reach = torch.cummax(last, 0).values.tolist()
    return lambda p: reach[p - 1] < p


def _split(kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, Any] | None:
    """(inputs_embeds, position_ids, attention_mask) of a decoder call this module can split, else None."""
    if kwargs.get("input_ids") is not None or kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None:
        return None
    if kwargs.get("return_dict") is False or kwargs.get("output_hidden_states") or kwargs.get("output_attentions"):
        return None
    embeds, positions, mask = kwargs.get("inputs_embeds"), kwargs.get("position_ids"), kwargs.get("attention_mask")
    if not isinstance(embeds, torch.Tensor) or embeds.ndim != 3:
        return None
    known = {"inputs_embeds", "position_ids", "attention_mask", "input_ids", "cache", "past_key_values", "use_cache", *_DROPPED}
    for key, value in kwargs.items():
        if key not in known and (isinstance(value, (torch.Tensor, list, tuple, dict))):
            return None  # something per token or per image this module cannot split
    if positions is not None and (not isinstance(positions, torch.Tensor) or positions.shape[-1] != embeds.shape[1]):
        return None
    if isinstance(mask, dict):
        if not all(isinstance(m, torch.Tensor) and m.ndim == 4 for m in mask.values()):
            return None  # a None entry means "plain causal", which a suffix run could not rebuild
    elif not (isinstance(mask, torch.Tensor) and mask.ndim in (2, 4)):
        return None
    return embeds, positions, mask


def _rows(t: torch.Tensor, rows: slice, dim: int) -> torch.Tensor:
    return t if t.shape[dim] == 1 else t.narrow(dim, rows.start, rows.stop - rows.start)


class _SharedDecoder:
    """The replacement of one decoder's forward during one scoring forward (see module doc)."""

    def __init__(self, forward: Callable[..., Any], lengths: Sequence[int], stats: PrefixStats) -> None:
        self.forward, self.lengths, self.stats = forward, list(lengths), stats

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parts = None if args or len(self.lengths) < 2 else _split(kwargs)
        if parts is None:
            return self.forward(*args, **kwargs)
        embeds, positions, mask = parts
        masks = list(mask.values()) if isinstance(mask, dict) else [mask] if mask.ndim == 4 else []
        if embeds.shape[0] != len(self.lengths) or any(m.shape[0] != embeds.shape[0] for m in masks):
            return self.forward(*args, **kwargs)
        common = common_prefixes(embeds, positions, masks, self.lengths)
        segments = plan_segments(common, self.lengths, _valid_cuts(masks))
        if len(segments) == 1 and segments[0].prefix == 0:
            return self.forward(*args, **kwargs)
        rest = {k: v for k, v in kwargs.items() if k not in ("inputs_embeds", "position_ids", "attention_mask", "use_cache", "cache", "past_key_values", *_DROPPED)}
        outs = [self._segment(seg, embeds, positions, mask, rest) for seg in segments]
        states = [o.last_hidden_state for o in outs]
        hidden = states[0].new_zeros((embeds.shape[0], embeds.shape[1], states[0].shape[-1]))
        for seg, h in zip(segments, states):
            hidden[seg.start : seg.stop, : h.shape[1]] = h
        return type(outs[0])(last_hidden_state=hidden)

    def _segment(self, seg: Segment, embeds: torch.Tensor, positions: torch.Tensor | None, mask: Any, rest: dict) -> Any:
        from transformers import DynamicCache

        rows, p, end = slice(seg.start, seg.stop), seg.prefix, seg.length

        def take(q0: int, q1: int, k1: int, first_only: bool) -> tuple[torch.Tensor, torch.Tensor | None, Any]:
            sel = slice(seg.start, seg.start + 1) if first_only else rows
            pos = None if positions is None else _rows(positions, sel, -2)[..., q0:q1]

            def cut(m: torch.Tensor) -> torch.Tensor:
                m = _rows(m, sel, 0)
                return m[:, :k1] if m.ndim == 2 else m[:, :, q0:q1, :k1]

            return embeds[sel, q0:q1], pos, {k: cut(v) for k, v in mask.items()} if isinstance(mask, dict) else cut(mask)

        if p == 0:
            e, pos, m = take(0, end, end, False)
            return self.forward(inputs_embeds=e, position_ids=pos, attention_mask=m, use_cache=False, **rest)
        cache = DynamicCache()
        e, pos, m = take(0, p, p, True)
        first = self.forward(inputs_embeds=e, position_ids=pos, attention_mask=m, use_cache=True, cache=cache, **rest)
        cache.batch_repeat_interleave(seg.stop - seg.start)
        e, pos, m = take(p, end, end, False)
        out = self.forward(inputs_embeds=e, position_ids=pos, attention_mask=m, use_cache=True, cache=cache, **rest)
        self.stats.shared += (seg.stop - seg.start - 1) * p
        prefix = first.last_hidden_state.expand(seg.stop - seg.start, -1, -1)
        return type(out)(last_hidden_state=torch.cat([prefix, out.last_hidden_state], dim=1))


def find_decoder(model: torch.nn.Module) -> torch.nn.Module | None:
    """The language model's decoder (the module that owns the input embeddings), or None where
    its attention is not causal by its config (then no prefix can be run on its own)."""
    from vlmlab.errors import ModelError
    from vlmlab.models.families import language_model_layers

    try:
        owner, _ = language_model_layers(model)
    except ModelError:
        return None
    decoder = model.get_submodule(owner) if owner else model
    config = getattr(decoder, "config", None)
    if getattr(config, "use_bidirectional_attention", False) or getattr(config, "is_causal", True) is False:
        return None
    return decoder


@contextmanager
def shared_prefix(decoder: torch.nn.Module | None, lengths: Sequence[int], stats: PrefixStats) -> Iterator[None]:
    """Within the block, `decoder`'s forward shares the prefixes of the batch's rows (`lengths`: real
    lengths in batch order, right-padded). None: nothing changes (the path is off or not found)."""
    stats.tokens += sum(lengths)
    if decoder is None:
        yield
        return
    own = "forward" in decoder.__dict__  # accelerate's hooks put a forward on the instance
    previous = decoder.__dict__.get("forward")
    decoder.forward = _SharedDecoder(decoder.forward, lengths, stats)  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own:
            decoder.forward = previous  # type: ignore[method-assign]
        else:
            del decoder.forward
