"""Selector versions by name (the names users type in configs) and a seeded builder.

Example::

    model = build_selector(SelectorConfig(version="v2", embedding_dim=384))
"""

from __future__ import annotations

from typing import Callable

import torch

from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.config import SelectorConfig
from vlmlab.registry import Registry

SELECTORS: Registry[Callable[[SelectorConfig], SelectorModel]] = Registry("selector version")
SELECTORS.register_lazy("v0", "vlmlab.icl.selectors.gpt2:Gpt2Selector")  # Lever-LM: GPT-2 over pool positions
SELECTORS.register_lazy("v1", "vlmlab.icl.selectors.pointer:PointerSelector")  # bi-encoder pointer network
SELECTORS.register_lazy("v2", "vlmlab.icl.selectors.pointer:PointerSelector")  # + cross-attention
SELECTORS.register_lazy("v3", "vlmlab.icl.selectors.pointer:PointerSelector")  # + ranking loss (training only)
SELECTORS.register_lazy("v4", "vlmlab.icl.selectors.pointer:PointerSelector")  # + RCE then GRPO (training only)


def build_selector(config: SelectorConfig) -> SelectorModel:
    """A freshly initialised selector; initial weights depend only on `config.seed`.

    The global torch RNG is left as it was (initialisation runs inside `fork_rng`).
    """
    factory = SELECTORS.get(config.version)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return factory(config)
