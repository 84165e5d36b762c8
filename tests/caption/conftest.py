"""Fixtures for the caption-study tests: toy panoramas, a small tiny Qwen2-VL, config files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from toy_panoramas import write_toy_panoramas  # noqa: E402

# Small enough that a training step takes milliseconds; still the real Qwen2-VL architecture.
TINY = dict(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, num_kv_heads=1, vision_depth=1, vision_dim=32)
FAST_METRICS = ["BLEU", "ROUGE-L", "CIDEr"]  # METEOR/SPICE start JVMs; the scoring tests cover them via vlmlab.metrics
# Child processes: one OpenMP thread (several test processes share 2 cores), never a hub.
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: on a shared 2-core machine OpenMP threads of several processes spin against each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_caption_model(tiny_model: Callable[..., Path]) -> Path:
    return tiny_model("qwen2-vl", **TINY)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 training panoramas (240 rows), 12 test pairs with 5 references each."""
    return write_toy_panoramas(tmp_path_factory.mktemp("toy-panoramas"), n_train=48, n_test=12, seed=0)


@pytest.fixture
def write_config(tmp_path: Path, toy_data: Path, tiny_caption_model: Path) -> Callable[..., Path]:
    """Factory: `write_config(models=[...], **sections)` -> a study YAML under tmp_path (toy data, tiny model)."""

    def make(models: list[dict[str, Any]] | None = None, name: str = "study", **sections: Any) -> Path:
        config: dict[str, Any] = {
            "name": name,
            "out_dir": str(tmp_path / "runs"),
            "data": {"train": str(toy_data / "train.tsv"), "test": str(toy_data / "test.tsv"), "max_test_pairs": 4},
            "models": models or [{"name": "tiny", "path": str(tiny_caption_model), "finetune": False}],
            "image": {"policy": "squash", "size": 56},
            "finetune": {"enabled": False},
            "generation": {"max_new_tokens": 6, "batch_size": 4},
            "scoring": {"metrics": FAST_METRICS},
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return make
