"""Bad inputs to `vlmlab toyworld generate`: one line, exit 2, nothing half-written left behind."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from vlmlab.cli import main
from vlmlab.toyworld.writers import DatasetWriter, Manifest


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    return int(exc.value.code or 0), err


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_another_kind_into_an_existing_dataset_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pano = tmp_path / "toy-pano"
    assert _cli(["toyworld", "generate", "panorama", "--out", str(pano), "--n", "4"], capsys)[0] == 0
    before = _listing(pano)
    code, err = _cli(["toyworld", "generate", "vqa", "--out", str(pano), "--n", "10"], capsys)
    assert code == 2
    assert err.count("\n") == 0 and "holds a toy-world 'panorama' dataset" in err and "--overwrite" in err
    assert _listing(pano) == before and Manifest.load(pano).verify() == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # with --overwrite the panorama files are replaced by the vqa ones, nothing stale left
    assert _cli(["toyworld", "generate", "vqa", "--out", str(pano), "--n", "10", "--overwrite"], capsys)[0] == 0
    m = Manifest.load(pano)
    assert m.kind == "vqa" and m.verify() == []
    assert set(_listing(pano)) - {"manifest.json"} - {p for p in _listing(pano) if (pano / p).is_dir()} == set(m.files)


@pytest.mark.parametrize("err_no, reason", [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")])
def test_disk_full_or_read_only_leaves_nothing(err_no: int, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    real = DatasetWriter._write
    calls = []

    def failing(self: DatasetWriter, rel: str, data: bytes) -> Path:
        calls.append(rel)
        if len(calls) > 3:  # a few images made it, then the disk is full
            raise OSError(err_no, reason)
        return real(self, rel, data)

    monkeypatch.setattr(DatasetWriter, "_write", failing)
    out = tmp_path / "data" / "toy-vqa"
    code, err = _cli(["toyworld", "generate", "vqa", "--out", str(out), "--n", "20"], capsys)
    assert code == 2 and err.count("\n") == 0
    assert str(out) in err and reason in err and "nothing was written" in err
    assert not out.exists()
    assert list((tmp_path / "data").iterdir()) == []  # staging folder removed


def test_read_only_existing_folder_is_refused_before_generating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    real_write_bytes = Path.write_bytes

    def read_only(self: Path, data: bytes) -> int:
        if self.parent == out:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", read_only)
    code, err = _cli(["toyworld", "generate", "faces", "--out", str(out), "--n", "4"], capsys)
    assert code == 2 and "Read-only file system" in err and str(out) in err
    assert list(out.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["ro"]


def test_negative_seed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _cli(["toyworld", "generate", "faces", "--out", str(tmp_path / "f"), "--seed", "-1"], capsys)
    assert code == 2 and err == "error: toyworld --seed must be an integer from 0 to 4294967295, got -1"
    assert not (tmp_path / "f").exists()


def test_models_tiny_into_a_dataset_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "faces"
    assert _cli(["toyworld", "generate", "faces", "--out", str(data), "--n", "4"], capsys)[0] == 0
    before = _listing(data)
    code, err = _cli(["models", "tiny", "qwen2-vl", "--out", str(data)], capsys)
    assert code == 2
    assert err == f"error: {data}: folder is not empty and holds no model checkpoint; choose an empty --out or pass --overwrite"
    assert _listing(data) == before and Manifest.load(data).verify() == []
