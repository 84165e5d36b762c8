"""A read-only output folder in every ICL stage: one line naming the folder, exit 2, nothing left.

`icl candidates` into a read-only folder used to end in an `OSError 30` traceback. Each stage
runs through the real CLI on real upstream runs (index, candidates and a beam search with a tiny
Qwen2-VL scorer, built once for the module) and opens its run folder before any model loads, so
the refusal is quick. The folder is made read-only by `cli_support.read_only` (tests run as root).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import yaml

from cli_support import error_line, read_only, run_cli, tree
from vlmlab.toyworld import generate

ADVICE = {errno.EROFS: "Read-only file system; choose a writable output folder",
          errno.EACCES: "Permission denied; choose a folder you may write to"}


@pytest.fixture(scope="module")
def icl_runs(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl: Path) -> Path:
    """index -> candidates -> beam on a small toy VQA set, and the configs of every stage."""
    root = tmp_path_factory.mktemp("icl")
    data = root / "data/toy-vqa"
    generate("vqa", data, n=60, seed=0)
    scorer = {"kind": "hf", "ref": str(tiny_qwen2_vl), "dtype": "float32"}
    split = lambda name: {"questions": str(data / f"{name}_questions.json"),  # noqa: E731
                          "annotations": str(data / f"{name}_annotations.json"), "images": str(data)}
    configs = {
        "index": {"support": split("train"), "text_embedder": "bag-of-words", "image_embedder": "pixels"},
        "candidates": {"index": str(root / "index"), "k": 4, "anchors": 4, "sampler": "random"},
        "beam": {"candidates": str(root / "candidates"), "scorer": scorer, "beam_size": 2, "shots": 1},
        "rl-data": {"beams": str(root / "beam"), "n_sampled": 1},
        "train": {"index": str(root / "index"), "beams": str(root / "beam"),
                  "selector": {"version": "v1", "pool_size": 4, "shots": 1, "epochs": 1}},
        "eval": {"index": str(root / "index"), "test": split("test"), "model": scorer, "methods": ["zero-shot"],
                 "shots": [1], "sizes": [4]},
    }
    for stage, config in configs.items():
        (root / f"{stage}.yaml").write_text(yaml.safe_dump(config))
    for stage in ("index", "candidates", "beam"):
        from vlmlab.cli import main

        try:
            main(["icl", stage, str(root / f"{stage}.yaml"), "--out", str(root / stage)])
        except SystemExit as exc:
            assert exc.code in (0, None), f"icl {stage} exited {exc.code}"
    return root


@pytest.mark.parametrize("stage", ["index", "candidates", "beam", "rl-data", "train", "eval"])
def test_read_only_output_folder_in_every_icl_stage(stage: str, icl_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    read_only(monkeypatch, out)
    before = tree(icl_runs)
    code, stdout, err = run_cli(["icl", stage, str(icl_runs / f"{stage}.yaml"), "--out", str(out)], capsys)
    assert code == 2, err
    assert error_line(err) == f"error: {out / 'config.yaml'}: {ADVICE[errno.EROFS]}"
    assert stdout == "" and list(out.iterdir()) == []
    assert tree(icl_runs) == before  # the upstream runs are untouched


@pytest.mark.parametrize("err_no", [errno.EROFS, errno.EACCES], ids=["read-only mount", "no write permission"])
@pytest.mark.parametrize("where", ["the folder", "its parent"])
def test_icl_candidates_into_a_folder_it_cannot_write(err_no: int, where: str, icl_runs: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "runs"
    parent.mkdir()
    out = parent / "candidates"
    if where == "the folder":
        out.mkdir()
    read_only(monkeypatch, out if where == "the folder" else parent, err_no)
    code, stdout, err = run_cli(["icl", "candidates", str(icl_runs / "candidates.yaml"), "--out", str(out)], capsys)
    assert code == 2
    named = out / "config.yaml" if where == "the folder" else out
    assert error_line(err) == f"error: {named}: {ADVICE[err_no]}"
    assert stdout == "" and tree(parent) == (["candidates"] if where == "the folder" else [])
