"""`PointerSelector`: the v1–v4 pointer network (one network; the versions are options).

- v1: a bi-encoder. The query and each pool item are encoded separately (two MLPs); at each step
  the scores are scaled cosine similarities between the current query state and the items; the
  chosen item is masked and the query state is updated by a GRU cell fed the chosen item (a
  learnable query update), so the second pick depends on the first.
- v2: before the first step, the query state attends over its pool through `num_layers` pre-norm
  cross-attention blocks (`num_heads` heads, padding masked), so scores see the whole pool.
- v3 and v4 use the v2 network unchanged; they differ only in training (ranking loss, RCE/GRPO).

Variants (upstream Lever-Plus v4-N), options of this one network:
- `diversity: mmr` (v4-3): step t's scores minus scale · relu(λ_t) · max cosine similarity of each item
  to the items already chosen (λ learnable per step; steps past training reuse the last λ);
- `diversity: dpp` (v4-7): scores plus softplus(λ) · log(1 − s²), s = the largest cosine similarity
  to the chosen items in a learned rank-32 projection (upstream's log-det gain approximation);
- `candidate_self_attention` (v4-4): items attend to each other (one pre-norm transformer layer,
  padding masked) before the query state attends to them;
- `scoring: additive | bilinear` (v4-5): v^T tanh(W_q q + W_c c), or scale · q̂^T W ĉ on the unit
  vectors with W initialised to the identity (so it starts as the cosine head), instead of scaled cosine;
- `stop_token` (v4-10): a learned STOP item at position K (the padded pool width), scored by the same
  head as the items, never attended to, never penalised by the diversity option. STOP may be chosen at
  any step (at step 0: no demonstrations); after it, STOP is the only choice, so a sequence keeps S steps.

Padding positions are masked out of attention and scores, so a query's result does not depend on
how far its pool was padded to share a batch, nor on the other queries in the batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vlmlab.icl.selectors.base import LogitScale, SelectorModel, earlier_choices, masked_logits
from vlmlab.icl.selectors.config import SelectorConfig


class Encoder(nn.Module):
    """Linear projection D -> H plus a residual MLP."""

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.mlp = nn.Sequential(
            nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)
        return h + self.mlp(h)


class CrossAttentionBlock(nn.Module):
    """The query state attends over the pool (pre-norm attention + feed-forward, both residual)."""

    def __init__(self, hidden: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_q = nn.LayerNorm(hidden)
        self.norm_kv = nn.LayerNorm(hidden)
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm_ff = nn.LayerNorm(hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, items: Tensor, item_mask: Tensor) -> Tensor:
        """query [B, H], items [B, K, H], item_mask bool [B, K] -> new query [B, H]."""
        b, k, h = items.shape
        nh, dh = self.num_heads, h // self.num_heads
        x, m = self.norm_q(query), self.norm_kv(items)
        q = self.q(x).view(b, nh, 1, dh)
        keys = self.k(m).view(b, k, nh, dh).transpose(1, 2)
        values = self.v(m).view(b, k, nh, dh).transpose(1, 2)
        att = (q @ keys.transpose(-1, -2)) / math.sqrt(dh)  # [B, nh, 1, K]
        att = masked_logits(att, item_mask[:, None, None, :]).softmax(dim=-1)
        mixed = (self.dropout(att) @ values).reshape(b, h)
        query = query + self.dropout(self.out(mixed))
        return query + self.dropout(self.ff(self.norm_ff(query)))


class PointerSelector(SelectorModel):
    """Pointer network over the query's own pool (v1; v2–v4 add cross-attention layers).

    Args:
        config: a validated `SelectorConfig` with version v1–v4.
    """

    def __init__(self, config: SelectorConfig) -> None:
        super().__init__()
        if config.version == "v0":
            raise ValueError("PointerSelector is v1–v4; v0 is Gpt2Selector")
        self.config = config
        h = config.hidden_dim
        self.query_encoder = Encoder(config.embedding_dim, h, config.dropout)
        self.item_encoder = Encoder(config.embedding_dim, h, config.dropout)
        self.cross_layers = nn.ModuleList(
            CrossAttentionBlock(h, config.num_heads, config.dropout) for _ in range(config.num_layers or 0)
        )
        self.query_out = nn.Linear(h, h)
        self.update = nn.GRUCell(h, h)
        self.scale = LogitScale()
        self.dropout = nn.Dropout(config.dropout)
        if config.candidate_self_attention:
            self.item_self_attention = nn.TransformerEncoderLayer(h, config.num_heads, 2 * h, config.dropout, batch_first=True, norm_first=True)
        if config.diversity == "mmr":
            self.div_lambda = nn.Parameter(torch.full((config.shots,), 0.5))
        elif config.diversity == "dpp":
            self.dpp_proj = nn.Linear(h, min(32, h), bias=False)
            self.dpp_lambda = nn.Parameter(torch.tensor(-2.0))  # upstream's initial value (softplus ~0.13)
        if config.stop_token:
            self.stop_item = nn.Parameter(0.02 * torch.randn(h))  # in the encoded item space (upstream: small random init)
        if config.scoring == "additive":
            self.score_q, self.score_c, self.score_v = nn.Linear(h, h), nn.Linear(h, h, bias=False), nn.Linear(h, 1, bias=False)
        elif config.scoring == "bilinear":
            self.score_w = nn.Parameter(torch.eye(h))  # starts as the cosine head, learns any bilinear form

    def _encode(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Initial query state [B, H], encoded items [B, K(+1), H], unit-norm items for scoring (STOP last)."""
        items = self.item_encoder(pool_emb)
        if self.config.candidate_self_attention:
            items = self.item_self_attention(items, src_key_padding_mask=~pool_mask)
        state = self.query_encoder(query_emb)
        for layer in self.cross_layers:
            state = layer(state, items, pool_mask)
        if self.config.stop_token:
            items = torch.cat([items, self.stop_item.expand(items.shape[0], 1, -1)], dim=1)
        keys = F.normalize(self.dropout(items), dim=-1)
        return state, items, keys

    def _scores(self, state: Tensor, keys: Tensor, items: Tensor | None = None) -> Tensor:
        """state [B, G, H], keys [B, K, H] (unit norm), items [B, K, H] -> scores [B, G, K]."""
        q = self.query_out(self.dropout(state))
        if self.config.scoring == "additive":
            assert items is not None
            return self.score_v(torch.tanh(self.score_q(q)[:, :, None, :] + self.score_c(items)[:, None, :, :])).squeeze(-1)
        if self.config.scoring == "bilinear":
            assert items is not None
            return self.scale() * torch.einsum("bgh,hd,bkd->bgk", F.normalize(q, dim=-1), self.score_w, keys)
        return self.scale() * (F.normalize(q, dim=-1) @ keys.transpose(-1, -2))

    def _redundancy_penalty(self, keys: Tensor, chosen: Tensor, step: int) -> Tensor:
        """What the diversity option subtracts from step `step`'s scores, given `chosen` [B, G, t]: [B, G, K].

        MMR: scale · relu(λ_step) · s; DPP: −softplus(λ) · log(1 − s²); s = each item's largest cosine
        similarity to the chosen items (DPP: in its low-rank projection). 0 at step 0 and without the option.
        """
        b, g, t = chosen.shape
        if self.config.diversity == "none" or t == 0:
            return keys.new_zeros(b, g, keys.shape[1])
        feats = keys if self.config.diversity == "mmr" else F.normalize(self.dpp_proj(keys), dim=-1)
        sims = feats @ feats.transpose(-1, -2)  # [B, K, K]
        rows = sims.gather(1, chosen.reshape(b, g * t, 1).expand(b, g * t, sims.shape[-1])).view(b, g, t, -1)
        most = rows.max(dim=2).values
        if self.config.diversity == "mmr":
            penalty = self.scale() * F.relu(self.div_lambda[min(step, self.div_lambda.shape[0] - 1)]) * most
        else:
            penalty = -F.softplus(self.dpp_lambda) * torch.log(1e-6 + 1.0 - most.pow(2).clamp(max=0.999))
        if self.config.stop_token:  # STOP is never a near-duplicate of a demonstration
            penalty = torch.cat([penalty[..., :-1], torch.zeros_like(penalty[..., -1:])], dim=-1)
        return penalty

    def _advance(self, state: Tensor, items: Tensor, chosen: Tensor) -> Tensor:
        """GRU update of state [B, G, H] with the chosen items' encodings (chosen: long [B, G])."""
        b, g, h = state.shape
        picked = items.gather(1, chosen.reshape(b, g, 1).expand(b, g, h))
        return self.update(picked.reshape(b * g, h), state.reshape(b * g, h)).view(b, g, h)

    def _allowed(self, pool_mask: Tensor, sequences: Tensor) -> Tensor:
        """bool [B, G, S, K(+1)]: pool items not chosen earlier; with STOP, only STOP once it was chosen."""
        k = pool_mask.shape[1]
        width = k + 1 if self.config.stop_token else k
        allowed = pool_mask[:, None, None, :] & ~earlier_choices(sequences, width)[..., :k]
        if not self.config.stop_token:
            return allowed
        is_stop = (sequences == k).long()
        stopped = (is_stop.cumsum(dim=-1) - is_stop) > 0  # STOP chosen at an earlier step
        return torch.cat([allowed & ~stopped[..., None], torch.ones_like(stopped[..., None])], dim=-1)

    def sequence_logits(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, sequences: Tensor) -> Tensor:
        b, g, s = sequences.shape
        state0, items, keys = self._encode(query_emb, pool_emb, pool_mask)
        state = state0.unsqueeze(1).expand(b, g, state0.shape[-1])
        allowed = self._allowed(pool_mask, sequences)
        steps = []
        for t in range(s):
            scores = self._scores(state, keys, items) - self._redundancy_penalty(keys, sequences[:, :, :t], t)
            steps.append(masked_logits(scores, allowed[:, :, t]))
            if t + 1 < s:
                state = self._advance(state, items, sequences[:, :, t])
        return torch.stack(steps, dim=2)

    def greedy(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, shots: int) -> Tensor:
        """Best-first picks [B, shots]; with `stop_token`, position K (the pool width) = STOP, and every
        step after a STOP is STOP."""
        state0, items, keys = self._encode(query_emb, pool_emb, pool_mask)
        state = state0.unsqueeze(1)
        k = pool_mask.shape[1]
        stop = self.config.stop_token
        allowed = torch.cat([pool_mask, pool_mask.new_ones(pool_mask.shape[0], 1)], dim=1) if stop else pool_mask.clone()
        stopped = pool_mask.new_zeros(pool_mask.shape[0])
        picks = []
        for t in range(shots):
            chosen = torch.stack(picks, dim=1)[:, None, :] if picks else pool_mask.new_zeros(pool_mask.shape[0], 1, 0, dtype=torch.long)
            scores = self._scores(state, keys, items) - self._redundancy_penalty(keys, chosen, t)
            scores = masked_logits(scores[:, 0], allowed)
            if stop:
                scores = torch.where(stopped[:, None], masked_logits(scores, torch.arange(k + 1) == k), scores)
            choice = scores.argmax(dim=-1)
            picks.append(choice)
            allowed = allowed.scatter(1, choice[:, None], False)
            if stop:
                allowed[:, k] = True  # STOP stays available (and after it, the only choice)
                stopped = stopped | (choice == k)
            if t + 1 < shots:
                state = self._advance(state, items, choice[:, None])
        return torch.stack(picks, dim=1)
