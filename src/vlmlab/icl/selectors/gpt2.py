"""`Gpt2Selector`: v0, Lever-LM's GPT-2 over candidate positions, on the query's own pool.

The sequence is `[BOS, QUERY, icd_1, ..., icd_S]`. Its vocabulary is the K pool positions plus BOS
and QUERY; the QUERY token's embedding gets the projected query embedding added, and each ICD
token's embedding gets the projected embedding of the pool item at that position added (as Lever-LM
adds CLIP features of the query and ICDs to its token embeddings). The hidden state after the
QUERY token predicts icd_1, the one after icd_1 predicts icd_2, and so on.

Unlike Lever-LM, whose vocabulary was a fixed support set, positions here index each query's own
pool, whose items change from query to query. So the step logits are a position term (the LM head
over positions, which can learn e.g. that the sampler's first candidates tend to be good) plus a
content term (a scaled cosine between the hidden state and each pool item's embedding).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vlmlab.icl.selectors.base import LogitScale, SelectorModel, earlier_choices, masked_logits
from vlmlab.icl.selectors.config import SelectorConfig


class Gpt2Selector(SelectorModel):
    """GPT-2 (transformers, tiny config) over pool positions.

    Args:
        config: a validated `SelectorConfig` with version v0; `num_layers`/`num_heads`/`hidden_dim`
            size the GPT-2, `pool_size` is the position vocabulary.
    """

    def __init__(self, config: SelectorConfig) -> None:
        super().__init__()
        if config.version != "v0":
            raise ValueError("Gpt2Selector is v0; v1–v4 are PointerSelector")
        from transformers import GPT2Config, GPT2Model

        self.config = config
        k, h = config.pool_size, config.hidden_dim
        self.bos_token, self.query_token = k, k + 1
        gpt_config = GPT2Config(
            vocab_size=k + 2,
            n_positions=k + 2,
            n_embd=h,
            n_layer=config.num_layers,
            n_head=config.num_heads,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            bos_token_id=k,
            eos_token_id=k,
        )
        self.gpt2 = GPT2Model(gpt_config)
        self.query_proj = nn.Linear(config.embedding_dim, h)
        self.icd_proj = nn.Linear(config.embedding_dim, h)
        self.item_out = nn.Linear(config.embedding_dim, h)
        self.hidden_out = nn.Linear(h, h)
        self.position_head = nn.Linear(h, k, bias=False)
        self.scale = LogitScale()

    def _hidden(self, query_emb: Tensor, pool_emb: Tensor, prefix: Tensor) -> Tensor:
        """Hidden states [N, T + 1, H] after QUERY and after each of the T prefix ICDs."""
        n, t = prefix.shape
        special = torch.tensor([self.bos_token, self.query_token], device=prefix.device).expand(n, 2)
        tokens = torch.cat([special, prefix], dim=1)
        embeds = self.gpt2.get_input_embeddings()(tokens)
        icd = pool_emb.gather(1, prefix[..., None].expand(n, t, pool_emb.shape[-1]))
        extra = torch.cat([torch.zeros_like(embeds[:, :1]), self.query_proj(query_emb)[:, None], self.icd_proj(icd)], dim=1)
        hidden = self.gpt2(inputs_embeds=embeds + extra).last_hidden_state
        return hidden[:, 1:]

    def _logits(self, hidden: Tensor, pool_emb: Tensor) -> Tensor:
        """hidden [N, T, H], pool [N, K, D] -> [N, T, K] position + content logits."""
        k = pool_emb.shape[1]
        items = F.normalize(self.item_out(pool_emb), dim=-1)
        content = self.scale() * (F.normalize(self.hidden_out(hidden), dim=-1) @ items.transpose(-1, -2))
        return content + self.position_head(hidden)[..., :k]

    def sequence_logits(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, sequences: Tensor) -> Tensor:
        b, g, s = sequences.shape
        k, d = pool_emb.shape[1], pool_emb.shape[2]
        flat_pool = pool_emb[:, None].expand(b, g, k, d).reshape(b * g, k, d)
        flat_query = query_emb[:, None].expand(b, g, d).reshape(b * g, d)
        hidden = self._hidden(flat_query, flat_pool, sequences.reshape(b * g, s)[:, : s - 1])
        logits = self._logits(hidden, flat_pool).view(b, g, s, k)
        allowed = pool_mask[:, None, None, :] & ~earlier_choices(sequences, k)
        return masked_logits(logits, allowed)

    def greedy(self, query_emb: Tensor, pool_emb: Tensor, pool_mask: Tensor, shots: int) -> Tensor:
        prefix = torch.zeros((query_emb.shape[0], 0), dtype=torch.long, device=query_emb.device)
        allowed = pool_mask.clone()
        for _ in range(shots):
            hidden = self._hidden(query_emb, pool_emb, prefix)[:, -1:]
            scores = masked_logits(self._logits(hidden, pool_emb)[:, 0], allowed)
            choice = scores.argmax(dim=-1)
            prefix = torch.cat([prefix, choice[:, None]], dim=1)
            allowed = allowed.scatter(1, choice[:, None], False)
        return prefix
