"""Project-wide fixtures: tiny offline models of every family, built once per test session.

    def test_x(tiny_model):             # a factory: family (+ tiny options) -> checkpoint folder
        path = tiny_model("qwen2-vl")

    def test_y(tiny_qwen2_vl): ...      # the default tiny Qwen2-VL folder

Models are built under one session temp dir, keyed by recipe hash, so every test that asks for
the same recipe shares one build. Nothing touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: tests never reach a hub


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: tiny models gain nothing from more, and on a shared 2-core machine
    multi-threaded kernels spin against each other (measured: a tiny generate() took 2.2 s with
    the default threads under load vs 0.15 s with one)."""
    import torch

    torch.set_num_threads(1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the tables tests publish, at the end of the run where CI logs show them.

    A test publishes one row with `request.node.user_properties.append(("summary_table", {"title":
    ..., "header": ..., "row": ..., "order": n}))`; rows with the same title form one table. User
    properties travel with each report from pytest-xdist workers to the controller, unlike output
    printed under `capsys.disabled()`, which workers swallow (tests/models/test_conformance_matrix.py).
    """
    tables: dict[str, tuple[str, list[tuple[Any, str]]]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key == "summary_table":
                    tables.setdefault(value["title"], (value["header"], []))[1].append((value["order"], value["row"]))
    for title, (head, rows) in tables.items():
        terminalreporter.write_sep("=", title)
        terminalreporter.write_line(head)
        for _, line in sorted(rows):
            terminalreporter.write_line(line)



@pytest.fixture(scope="session")
def tiny_model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_root: Path) -> Callable[..., Path]:
    """Factory: `tiny_model(family, seed=0, **options)` -> folder of a tiny checkpoint (built once)."""
    from vlmlab.models.tiny import tiny_model_path

    def make(family: str, seed: int = 0, **options: Any) -> Path:
        return tiny_model_path(family, tiny_model_root, seed=seed, **options)

    return make


@pytest.fixture(scope="session")
def tiny_qwen2_vl(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("qwen2-vl")


@pytest.fixture(scope="session")
def colour_image_factory() -> Callable[..., Any]:
    """Factory: `colour_image((r, g, b), size=56)` -> a solid-colour `vlmlab.data.images.Image`."""
    import PIL.Image

    from vlmlab.data.images import Image

    def make(rgb: tuple[int, int, int], size: int = 56) -> Image:
        im = PIL.Image.new("RGB", (size, size), rgb)
        # a small mark so the images are not uniform (vision features differ by position)
        for x in range(size // 4, size // 2):
            im.putpixel((x, x), (255 - rgb[0], 255 - rgb[1], 255 - rgb[2]))
        return Image.from_pil(im)

    return make
