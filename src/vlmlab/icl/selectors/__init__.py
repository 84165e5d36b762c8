"""Learned ICD selectors v0–v4 (Lever-LM / Lever-Plus) for the icl study's train and eval stages.

A selector picks, for one query, `shots` in-context demonstrations from that query's OWN candidate
pool. Versions: `v0` GPT-2 over pool positions; `v1` bi-encoder pointer network; `v2` + cross-
attention; `v3` + ranking loss; `v4` + RCE warm-up then GRPO.

Typical use from the icl stages::

    data = SelectorData.from_run(index_dir, beams_path, rl_path, dataset="okvqa")
    report = train_selector(config, data, out_dir)          # train stage
    model = load_selector(out_dir, fingerprint=fp)            # eval stage
    picks = select(model, query_emb, pool_emb, shots=2, pool_mask=mask)
"""

from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.checkpoint import load_selector, load_weights_strict, read_selector_meta, save_selector
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.icl.selectors.data import DataFingerprint, SelectorData, load_index_embeddings
from vlmlab.icl.selectors.inference import select
from vlmlab.icl.selectors.registry import SELECTORS, build_selector
from vlmlab.icl.selectors.train import TrainReport, evaluate, train_selector

__all__ = [
    "SELECTORS",
    "DataFingerprint",
    "SelectorConfig",
    "SelectorData",
    "SelectorModel",
    "TrainReport",
    "build_selector",
    "evaluate",
    "load_index_embeddings",
    "load_selector",
    "load_weights_strict",
    "read_selector_meta",
    "save_selector",
    "select",
    "train_selector",
]
