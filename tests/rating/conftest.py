"""Fixtures of the rating tests (helpers live in rating_helpers.py, a unique module name)."""

from __future__ import annotations

import pytest

from rating_helpers import make_faces


@pytest.fixture
def faces(tmp_path):
    return make_faces(tmp_path / "faces")
