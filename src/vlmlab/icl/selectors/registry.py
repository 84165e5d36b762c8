"""Selector versions by name (the names users type in configs) and a seeded builder.

Example::

    model = build_selector(SelectorConfig(version="v2", embedding_dim=384))
"""

from __future__ import annotations

import difflib
from typing import Callable

import torch

from vlmlab.errors import ConfigError
from vlmlab.icl.selectors.base import SelectorModel
from vlmlab.icl.selectors.config import SelectorConfig


def _gpt2(config: SelectorConfig) -> SelectorModel:
    from vlmlab.icl.selectors.gpt2 import Gpt2Selector

    return Gpt2Selector(config)


def _pointer(config: SelectorConfig) -> SelectorModel:
    from vlmlab.icl.selectors.pointer import PointerSelector

    return PointerSelector(config)


SELECTORS: dict[str, Callable[[SelectorConfig], SelectorModel]] = {
    "v0": _gpt2,  # Lever-LM: GPT-2 over pool positions
    "v1": _pointer,  # bi-encoder pointer network
    "v2": _pointer,  # + cross-attention
    "v3": _pointer,  # + ranking loss (training only)
    "v4": _pointer,  # + RCE then GRPO (training only)
}


def build_selector(config: SelectorConfig) -> SelectorModel:
    """A freshly initialised selector; initial weights depend only on `config.seed`.

    The global torch RNG is left as it was (initialisation runs inside `fork_rng`).
    """
    factory = SELECTORS.get(config.version)
    if factory is None:
        close = difflib.get_close_matches(config.version, list(SELECTORS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(SELECTORS)}"
        raise ConfigError(f"unknown selector version {config.version!r}{hint}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return factory(config)
