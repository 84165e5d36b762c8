"""`vlmlab data check` through the real entry point: good data, and every kind of bad input.

Each bad input must exit with code 2, print exactly one stderr line naming the file (and the line,
row or key where there is one), show no traceback, and leave no `--out` file behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _panoramas(quic_excerpt: Path, root: Path, png) -> None:
    for line in quic_excerpt.read_text(encoding="utf-8").splitlines()[1:]:
        png(root / line.split("\t")[0].rsplit("/", 1)[1], size=(16, 8))


def test_check_quic360_with_images_and_out(quic_excerpt: Path, tmp_path: Path, png, run_cli) -> None:
    _panoramas(quic_excerpt, tmp_path / "panos", png)
    out = tmp_path / "records.jsonl"
    code, stdout, stderr = run_cli(["data", "check", "quic360", quic_excerpt, "--images", tmp_path / "panos", "--check-images", "--out", out])
    assert code == 0, stderr
    assert "│ rows" in stdout and "41" in stdout and "images decoded" in stdout and "5 / 5.86 / 6" in stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 7
    first = json.loads(lines[0])
    assert first["kind"] == "caption" and len(first["references"]) == 6
    assert first["image"] == str(tmp_path / "panos" / "3503709281_60051c1cd0_k.jpg")
    # the written records read back through the CLI
    code, stdout, _ = run_cli(["data", "check", "records", out, "--check-images"])
    assert code == 0 and "images decoded" in stdout


def test_check_vqa_folder_and_ratings(vqa_dir: Path, ratings_csv: Path, tmp_path: Path, png, run_cli) -> None:
    code, stdout, stderr = run_cli(
        ["data", "check", "okvqa", vqa_dir / "questions.json", "--annotations", vqa_dir / "annotations.json",
         "--images", vqa_dir / "images", "--check-images"]
    )
    assert code == 0, stderr
    assert "answers per question" in stdout and "10 / 10.00 / 10" in stdout
    code, stdout, stderr = run_cli(
        ["data", "check", "vqa", vqa_dir / "questions.json", "--images", vqa_dir / "images",
         "--image-pattern", "COCO_val2014_{image_id:012d}.jpg", "--check-images"]
    )
    assert code == 0, stderr
    assert "image files found" in stdout and "2 / 2" in stdout
    code, stdout, stderr = run_cli(["data", "check", "ratings", ratings_csv, "--images", ratings_csv.parent / "faces", "--check-images"])
    assert code == 0, stderr
    assert "raters" in stdout
    png(tmp_path / "fold" / "a.png")
    code, stdout, stderr = run_cli(["data", "check", "folder", tmp_path / "fold", "--query", "what is here"])
    assert code == 0, stderr


def test_unicode_paths_and_bom_work(tmp_path: Path, png, run_cli) -> None:
    root = tmp_path / "données 画像"
    png(root / "パノラマ é.png")
    table = root / "légendes.csv"
    table.write_bytes(b"\xef\xbb\xbf" + "image,query,caption\nパノラマ é.png,où,\"Un « panorama »,  deux espaces\"\n".encode("utf-8"))
    out = tmp_path / "sortie ü.jsonl"
    code, stdout, stderr = run_cli(["data", "check", "captions", table, "--check-images", "--out", out])
    assert code == 0, stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["references"] == ["Un « panorama »,  deux espaces"]
    assert record["query"] == "où" and record["image"].endswith("パノラマ é.png")


def _bad_inputs(tmp_path: Path, png, make_vqa) -> list[tuple[str, list, str]]:
    """(kind, CLI args after `data check`, text the one-line error must contain)."""
    t = tmp_path
    png(t / "ok.png")
    cases: list[tuple[str, list, str]] = []

    def write(name: str, text: str) -> Path:
        path = t / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    cases.append(("missing file", ["quic360", t / "nope.tsv"], f"{t / 'nope.tsv'}: file not found"))
    p = write("cols.tsv", "link\tquery\tannotation\nx\ty\tz\n")
    cases.append(("missing column", ["quic360", p], f"{p}: no column for the image; expected 'url' or 'image' or 'path' or 'file_name', found columns: link, query, annotation"))
    p = write("empty.tsv", "")
    cases.append(("empty file", ["quic360", p], f"{p}: file is empty"))
    p = write("header.tsv", "url\tquery\tannotation\n")
    cases.append(("header only", ["quic360", p], f"{p}: has a header but no data rows"))
    p = write("bad.jsonl", '{"image": "ok.png", "caption": "a"}\n{"image": "ok.png", "caption": \n')
    cases.append(("bad JSON line", ["captions", p], f"{p}:2: not valid JSON"))
    p = write("coco.json", '{"images": [{"id": 1, "file_name": "ok.png"}],\n "annotations": [,]}\n')
    cases.append(("bad JSON file", ["coco", p], f"{p}:2: not valid JSON"))
    corrupt = t / "corrupt.png"
    corrupt.write_bytes((t / "ok.png").read_bytes()[:40])
    p = write("corrupt.csv", "image,caption\nok.png,a\ncorrupt.png,b\n")
    cases.append(("corrupt image", ["captions", p, "--check-images"], f"{p}:3: {corrupt}: corrupt or truncated image"))
    write("notes.jpg", "this is text, not a JPEG")
    p = write("text.csv", "image,caption\nnotes.jpg,a\n")
    cases.append(("non-image file", ["captions", p, "--check-images"], f"{p}:2: {t / 'notes.jpg'}: not an image file"))
    (t / "zero.png").write_bytes(b"")
    p = write("zero.csv", "image,caption\nzero.png,a\n")
    cases.append(("zero-byte image", ["captions", p, "--check-images"], f"{p}:2: {t / 'zero.png'}: image file is empty (0 bytes)"))
    p = write("gone.csv", "image,caption\nok.png,a\ngone.png,b\n")
    cases.append(("missing image", ["captions", p, "--check-images"], f"{p}:3: {t / 'gone.png'}: image file not found"))
    p = write("sub/escape.csv", "image,caption\n../ok.png,a\n")
    cases.append(("image outside root via ..", ["captions", p], f"{p}:2: image path '../ok.png' is outside the data root"))
    p = write("abs.csv", f"image,caption\n{t / 'ok.png'},a\n")
    cases.append(("absolute path outside root", ["captions", p, "--images", t / "sub"], f"{p}:2: image path '{t / 'ok.png'}' is outside the data root"))
    p = write("dup.csv", "id,image,caption\na,ok.png,x\na,other.png,y\n")
    cases.append(("duplicate ids", ["captions", p], f"{p}:3: duplicate id 'a' (first on line 2)"))
    qpath, apath = make_vqa(t / "vqa", n=3)
    data = json.loads(apath.read_text(encoding="utf-8"))
    data["annotations"] = data["annotations"][:2]
    apath.write_text(json.dumps(data), encoding="utf-8")
    cases.append(("questions without annotations", ["vqa", qpath, "--annotations", apath], f"{apath}: 1 question ids have no annotation (1002)"))
    q2, a2 = make_vqa(t / "vqa2", n=2)
    data = json.loads(a2.read_text(encoding="utf-8"))
    data["annotations"].append({**data["annotations"][0], "question_id": 555})
    a2.write_text(json.dumps(data), encoding="utf-8")
    cases.append(("annotations without questions", ["vqa", q2, "--annotations", a2], f"{a2}: 1 annotations have no question in questions.json (555)"))
    p = write("val.csv", "image_id,valence,arousal\nok,5,5\nok,abc,5\n")
    cases.append(("valence not a number", ["ratings", p], f"{p}:3: valence is 'abc', expected a number from 1 to 9"))
    p = write("range.csv", "image_id,valence,arousal\nok,5,9.5\n")
    cases.append(("arousal outside 1-9", ["ratings", p], f"{p}:2: arousal '9.5' is outside 1-9"))
    p = write("fields.tsv", "url\tquery\tannotation\nhttp://x/a.jpg\tq\n")
    cases.append(("short row", ["quic360", p], f"{p}:2: 2 fields but the header has 3"))
    cases.append(("unknown format", ["quic", p], "unknown dataset format 'quic'"))
    cases.append(("option the format does not take", ["coco", p, "--annotations", p], "format 'coco' does not take --annotations"))
    return cases


def test_every_bad_input_is_one_line_exit_2_and_no_output(tmp_path: Path, png, make_vqa, run_cli) -> None:
    cases = _bad_inputs(tmp_path / "in", png, make_vqa)
    assert len(cases) >= 12
    for i, (kind, args, expected) in enumerate(cases):
        out = tmp_path / f"out_{i}.jsonl"
        code, stdout, stderr = run_cli(["data", "check", *args, "--out", out])
        assert code == 2, f"{kind}: exit {code}, stderr={stderr!r}"
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, f"{kind}: {stderr!r}"
        assert "Traceback" not in stderr and "Traceback" not in stdout, kind
        assert lines[0].startswith("error: "), kind
        assert expected in lines[0], f"{kind}: {lines[0]!r} lacks {expected!r}"
        assert not out.exists(), f"{kind}: --out was written"
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*"))  # no temp files left


@pytest.mark.parametrize("name", ["help", "version"])
def test_help_and_version(run_cli, name: str) -> None:
    code, stdout, _ = run_cli(["data", "check", "--help"] if name == "help" else ["--version"])
    assert code == 0
    assert ("--check-images" in stdout) if name == "help" else stdout.startswith("vlmlab ")


def test_console_script_one_line_error_and_debug_traceback(tmp_path: Path) -> None:
    """The installed `vlmlab` program (not just `main()`): exit 2 + one line; `--debug` shows the traceback."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "vlmlab"
    table = tmp_path / "r.csv"
    table.write_text("image_id,valence\nface,abc\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    env = {"PATH": str(exe.parent), "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    done = subprocess.run([exe, "data", "check", "ratings", table, "--out", out], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"error: {table}:2: valence is 'abc', expected a number from 1 to 9\n"
    assert not out.exists()
    debug = subprocess.run([exe, "--debug", "data", "check", "ratings", table], capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DataError" in debug.stderr


def test_check_quic360_test_refer_relative_paths(tmp_path: Path, png, run_cli) -> None:
    """QuIC-360's test-refer.tsv names images by a path relative to the image root, kept whole."""
    excerpt = Path(__file__).parent / "files" / "quic360_test_refer_excerpt.tsv"
    urls = list(dict.fromkeys(line.split("\t")[0] for line in excerpt.read_text(encoding="utf-8").splitlines()[1:]))
    assert len(urls) == 3 and all(u.startswith("refer360images/indoor/") for u in urls)
    # an image of the same name in the root itself must not be picked instead of the nested one
    png(tmp_path / "panos" / urls[0].rsplit("/", 1)[1], size=(4, 4))
    code, stdout, stderr = run_cli(["data", "check", "quic360", excerpt, "--images", tmp_path / "panos"])
    assert code == 2 and str(tmp_path / "panos" / urls[0]) in stderr and "(3 image files missing)" in stderr
    code, stdout, stderr = run_cli(["data", "check", "quic360", excerpt, "--images", tmp_path / "panos", "--allow-missing"])
    assert code == 0 and "0 / 3" in stdout
    assert stderr.strip() == (f"warning: 3 of 3 image files not found, e.g. {tmp_path / 'panos' / urls[0]}; "
                              "check --images (the image root) or --url-map")
    for url in urls:
        png(tmp_path / "panos" / url, size=(16, 8))
    code, stdout, stderr = run_cli(["data", "check", "quic360", excerpt, "--images", tmp_path / "panos", "--check-images"])
    assert code == 0 and stderr == "" and "3 / 3" in stdout and "16x8 / 16x8" in stdout  # grouped by image-query pair
    out = tmp_path / "records.jsonl"
    code, stdout, stderr = run_cli(["data", "check", "quic360-rows", excerpt, "--images", tmp_path / "panos",
                                    "--check-images", "--out", out])
    assert code == 0 and stderr == "" and "3 / 3" in stdout and "16x8 / 16x8" in stdout
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 9
    assert records[0]["image"] == str(tmp_path / "panos" / "refer360images/indoor/living_room/pano_aaeavjzaxfgowq.jpg")
    assert records[0]["query"] == "furniture"
