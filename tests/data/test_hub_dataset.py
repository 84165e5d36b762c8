"""A hub dataset id (`hf:owner/name#split`) loaded for real, without the network.

The dataset repo is laid out like lmms-lab/OK-VQA on the hub (a README whose `configs` name the
split's parquet files, written by `datasets` with the images embedded) and served by a local fake
hub on 127.0.0.1 (`fake_hub.py`, through `HF_ENDPOINT`). The installed `vlmlab` runs in a
subprocess whose sockets may only reach loopback (a `sitecustomize` guard: any other host is
refused as on an offline machine), so nothing here can touch the network:

1. `data check okvqa hf:...#val2014 --check-images` downloads the split through `datasets`
   (which fills the Hugging Face cache) and summarises it;
2. an `icl index` study config naming `support: {questions: hf:...#val2014}` then runs with
   `HF_HUB_OFFLINE=1` and the server stopped: from the cache `datasets` wrote in step 1.

The offline-with-an-empty-cache error is `test_hf_sources.py::test_hub_id_offline_with_an_empty_cache_is_one_line`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import yaml

from fake_hub import FakeHub

REPO_ID = "acme/ok-vqa-mini"
README = """---
configs:
- config_name: default
  data_files:
  - split: val2014
    path: data/val2014-*
---
# OK-VQA, three questions (a test fixture in the lmms-lab/OK-VQA layout)
"""
COLOURS = [(200, 30, 30), (30, 30, 200)]

NETWORK_GUARD = '''
"""Loopback only: any other host fails as on an offline machine (written by test_hub_dataset.py)."""
import os, socket
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect

def _note(host):
    with open(os.environ["VLMLAB_TEST_NETWORK_LOG"], "a") as fh:
        fh.write(f"{host}\\n")

def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name not in _LOOPBACK:
        _note(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _getaddrinfo(host, *args, **kwargs)

def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and str(address[0]) not in _LOOPBACK:
        _note(address[0])
        raise OSError(101, "Network is unreachable")
    return _connect(self, address)

socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
'''


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 6), colour).save(buf, format="PNG")
    return buf.getvalue()


def ok_vqa_parquet(path: Path) -> None:
    """Three questions over two embedded images, lmms-lab/OK-VQA columns (answers as strings)."""
    datasets.Dataset.from_dict({
        "question_id": ["2971475", "2971476", "3003415"], "question": ["What colour is it?", "Is it red?", "What colour is this?"],
        "answers": [["red"] * 10, ["yes"] * 8 + ["no"] * 2, ["blue"] * 6 + ["navy"] * 4],
        "image": [{"bytes": _png(COLOURS[0]), "path": "COCO_val2014_000000297147.jpg"}] * 2
        + [{"bytes": _png(COLOURS[1]), "path": "COCO_val2014_000000300341.jpg"}],
        "question_type": ["eight", "one", "eight"], "answer_type": ["other", "yes/no", "other"], "confidence": [3, 2, 3],
    }, features=datasets.Features({
        "question_id": datasets.Value("string"), "question": datasets.Value("string"), "answers": [datasets.Value("string")],
        "image": datasets.Image(), "question_type": datasets.Value("string"), "answer_type": datasets.Value("string"),
        "confidence": datasets.Value("int32"),
    })).to_parquet(str(path))


def vlmlab(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed vlmlab in a fresh process: its own HF cache under `home`, loopback-only sockets."""
    guard = home / "guard"
    guard.mkdir(parents=True, exist_ok=True)
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE", "DATASETS_", "TRANSFORMERS_"))}
    base |= {"HF_HOME": str(home / "hf"), "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")]),
             "VLMLAB_TEST_NETWORK_LOG": str(home / "network.log"), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "vlmlab", *args], capture_output=True, text=True, env=base | env,
                          cwd=home, timeout=300)


@pytest.mark.slow  # two CLI subprocesses (~10 s each under load)
def test_hub_dataset_id_loads_from_a_local_hub_then_from_the_cache(tmp_path: Path) -> None:
    ok_vqa_parquet(tmp_path / "val2014.parquet")
    hub = FakeHub({REPO_ID: {"README.md": README.encode(), ".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
                             "data/val2014-00000-of-00001.parquet": (tmp_path / "val2014.parquet").read_bytes()}})
    source = f"hf:{REPO_ID}#val2014"
    with hub.serving() as url:
        proc = vlmlab(["data", "check", "okvqa", source, "--check-images"], tmp_path,
                      HF_ENDPOINT=url, HF_HUB_OFFLINE="0")
    assert proc.returncode == 0, proc.stderr
    assert f"GET /datasets/{REPO_ID}/resolve/" in "\n".join(hub.requests) and "val2014-00000-of-00001.parquet" in hub.requests[-1]
    summary = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in proc.stdout.splitlines() if line.count("│") == 3}
    assert summary["source"] == f"hub dataset {REPO_ID} (split val2014)"
    assert (summary["rows"], summary["records"], summary["images"], summary["images decoded"]) == ("3", "3", "2", "2")
    assert summary["answers per question (min / mean / max)"] == "10 / 10.00 / 10"
    assert proc.stderr == ""  # no datasets progress bar either (`--library-output` shows them)

    # a study config naming the hub id, offline, the server gone: the split comes from the cache
    config = tmp_path / "index.yaml"
    config.write_text(yaml.safe_dump({"support": {"questions": source}, "text_embedder": "bag-of-words", "image_embedder": "pixels"}))
    proc = vlmlab(["icl", "index", str(config), "--out", str(tmp_path / "index")], tmp_path, HF_HUB_OFFLINE="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # datasets' "Using the latest cached version..." notes are library output, hidden
    assert json.loads((tmp_path / "index/embeddings/ids.json").read_text()) == ["2971475", "2971476", "3003415"]
    image = np.load(tmp_path / "index/embeddings/image.npy")
    assert image.shape[0] == 3 and np.allclose(image[0], image[1]) and not np.allclose(image[0], image[2])  # same picture, same embedding
