"""Fixtures for metric tests."""

from __future__ import annotations

import pytest
from caption_reference import messy_dataset, pycoco_scores


@pytest.fixture(scope="session")
def messy_3000():
    """3,000 messy items and pycocoevalcap's BLEU/ROUGE-L/CIDEr for them (no METEOR: see its own test)."""
    preds, refs = messy_dataset(3000, seed=7)
    return preds, refs, pycoco_scores(preds, refs, meteor=False)
