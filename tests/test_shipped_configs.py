"""Every shipped example config validates AND dry-runs with the command its first line names.

The configs under configs/ and src/vlmlab/icl/examples/ each start with `# vlmlab <command> ...`.
Here that command runs with `--dry-run` in a folder holding the data the config expects (toy
data from `vlmlab toyworld`, a QuIC-360-layout excerpt, tiny checkpoints where the demo's toy models
would be): it must resolve the models, read the data, expand every condition, exit 0 and write
nothing. Real-model configs (Gemma3, Ollama, the QuIC-360 baseline) resolve their registry names
without downloading anything and never contact a server.
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import PIL.Image
import pytest

from vlmlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*(ROOT / "configs").rglob("*.yaml"), *(ROOT / "src" / "vlmlab" / "icl" / "examples").glob("*.yaml")])
QUIC_EXCERPT = ROOT / "tests" / "metrics" / "files" / "quic360_test_excerpt.tsv"


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code or 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model) -> Path:
    """A folder laid out as the shipped configs expect it (data and model paths relative to it)."""
    ws = tmp_path_factory.mktemp("workspace")
    for kind, n, folders in [("vqa", 60, ["data/toy-vqa", "runs/demo/data/vqa"]), ("panorama", 12, ["data/toy/panorama", "runs/demo/data/panorama"]),
                             ("faces", 24, ["data/faces", "runs/demo/data/faces"])]:
        first = ws / folders[0]
        assert run_cli(["toyworld", "generate", kind, "--out", str(first), "--n", str(n)]) == 0
        for other in folders[1:]:
            (ws / other).parent.mkdir(parents=True, exist_ok=True)
            (ws / other).symlink_to(first, target_is_directory=True)
    checkpoint = tiny_model("qwen2-vl")
    (ws / "runs/demo/models").mkdir(parents=True)
    for name in ("captioner-base", "face-rater", "icl-vqa"):
        (ws / "runs/demo/models" / name).symlink_to(checkpoint, target_is_directory=True)
    quic = ws / "data/quic360"
    (quic / "panos").mkdir(parents=True)
    rows = list(csv.DictReader(QUIC_EXCERPT.open(encoding="utf-8"), delimiter="\t"))
    for row in rows:
        PIL.Image.new("RGB", (64, 32), (90, 120, 150)).save(quic / "panos" / row["url"].rsplit("/", 1)[1])
    for split in ("train", "test"):
        (quic / f"{split}.tsv").write_bytes(QUIC_EXCERPT.read_bytes())
    return ws


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_config_dry_runs(config: Path, workspace: Path, monkeypatch, capsys) -> None:
    first = config.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# vlmlab "), f"{config}: the first line must be the command that runs it"
    args = shlex.split(first.removeprefix("# vlmlab "))
    rel = str(config.relative_to(ROOT))
    assert rel in args, f"{config}: its first line runs another file ({first})"
    args[args.index(rel)] = str(config)
    monkeypatch.chdir(workspace)
    before = files_under(workspace)
    code = run_cli([*args, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "dry run" in out and "nothing written" in out
    assert files_under(workspace) == before


def test_dry_run_fails_on_missing_data_and_on_a_folder_of_another_config(workspace: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(workspace)
    faces = str(ROOT / "configs/rating/faces.yaml")
    assert run_cli(["rating", "run", faces, "--set", "data.ratings=data/none.csv", "--dry-run"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    index = str(ROOT / "src/vlmlab/icl/examples/index.yaml")
    other = workspace / "other-index"
    (other).mkdir()
    (other / "config.yaml").write_text("text_embedder: clip\n")
    (other / "run.json").write_text('{"stage": "icl-index", "status": "complete"}\n')
    before = files_under(workspace)
    assert run_cli(["icl", "index", index, "--out", str(other), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with a different config" in err and err.count("\n") == 1
    assert files_under(workspace) == before
