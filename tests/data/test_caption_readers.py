"""Caption tables (the real QuIC-360 excerpt) and COCO captions JSON."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from vlmlab.data.captions import read_caption_table, read_coco_captions, read_url_map, url_file_name
from vlmlab.errors import DataError


def reference_groups(path: Path) -> dict[tuple[str, str], list[str]]:
    """An independent grouping of the TSV with the csv module, for comparison."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            groups[(row["url"], row["query"])].append(row["annotation"])
    return groups


def test_quic360_grouped_pairs_and_references(quic_excerpt: Path) -> None:
    records = read_caption_table(quic_excerpt)
    expected = reference_groups(quic_excerpt)
    assert len(records) == len(expected) == 7
    assert [len(r.references) for r in records] == [6, 6, 6, 6, 5, 6, 6]
    assert sum(len(r.references) for r in records) == 41
    for record, ((url, query), refs) in zip(records, expected.items()):
        assert record.query == query
        assert record.references == refs
        assert record.image.path == quic_excerpt.parent / url.rsplit("/", 1)[1]
        assert record.id == f"{Path(url).stem}/{query}"
    assert len({r.id for r in records}) == 7
    assert len({r.image.path for r in records}) == 6  # one panorama has two queries


def test_quic360_quoting_and_spaces_preserved(quic_excerpt: Path) -> None:
    refs = [ref for r in read_caption_table(quic_excerpt) for ref in r.references]
    assert any('It says "Exclusivo Vehiculo" on it.' in ref for ref in refs)
    assert any('A patio type "potted" garden' in ref for ref in refs)
    assert any("abandon,   In the distance" in ref for ref in refs)
    assert any("four diversions  and" in ref for ref in refs)
    assert not any(ref.startswith('"') for ref in refs)


def test_quic360_per_row_view(quic_excerpt: Path) -> None:
    pairs = read_caption_table(quic_excerpt)
    rows = read_caption_table(quic_excerpt, per_row=True)
    assert len(rows) == 41
    assert all(len(r.references) == 1 for r in rows)
    assert len({r.id for r in rows}) == 41
    by_pair: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_pair[row.group_id].append(row.references[0])
    assert {p.id: p.references for p in pairs} == dict(by_pair)
    # file order is kept: the rows come out in line order
    lines = [int(r.source.rsplit(":", 1)[1]) for r in rows]
    assert lines == sorted(lines)
    assert rows[0].id.endswith("/location#0") and rows[0].source.endswith(":2")


def test_url_map_and_image_root(quic_excerpt: Path, tmp_path: Path) -> None:
    urls = list(dict.fromkeys(r.split("\t")[0] for r in quic_excerpt.read_text(encoding="utf-8").splitlines()[1:]))
    map_path = tmp_path / "map.csv"
    map_path.write_text("url,file\n" + "".join(f"{u},pano_{i}.png\n" for i, u in enumerate(urls)), encoding="utf-8")
    records = read_caption_table(quic_excerpt, tmp_path / "panos", url_map=map_path)
    assert {r.image.path for r in records} == {tmp_path / "panos" / f"pano_{i}.png" for i in range(len(urls))}
    assert read_url_map(map_path) == {u: f"pano_{i}.png" for i, u in enumerate(urls)}
    json_map = tmp_path / "map.json"
    json_map.write_text(json.dumps({urls[0]: "only.png"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"quic360_test_excerpt.tsv:\d+: URL .* is not in the URL map"):
        read_caption_table(quic_excerpt, tmp_path, url_map=json_map)
    escaping = tmp_path / "escape.json"
    escaping.write_text(json.dumps({u: "../outside.png" for u in urls}), encoding="utf-8")
    with pytest.raises(DataError, match=r"excerpt.tsv:2: image path '../outside.png' is outside the data root"):
        read_caption_table(quic_excerpt, tmp_path, url_map=escaping)


def test_url_file_name_decodes_and_rejects_bare_hosts() -> None:
    assert url_file_name("https://x.org/a/b%20c.jpg?size=k#frag") == "b c.jpg"
    with pytest.raises(DataError, match="has no file name"):
        url_file_name("https://x.org/")


def test_two_urls_with_one_file_name_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("url\tquery\tannotation\nhttp://a/1/x.jpg\tq\tone\nhttp://a/2/x.jpg\tq\ttwo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c.tsv:3: URLs .* both map to the file"):
        read_caption_table(path)


def test_caption_csv_with_paths_ids_and_jsonl_lists(tmp_path: Path) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("id,image,caption\na,sub/x.png,one\nb,y.png,two\na,sub/x.png,three\n", encoding="utf-8")
    records = read_caption_table(csv_path)
    assert [(r.id, r.references, r.query) for r in records] == [("a", ["one", "three"], ""), ("b", ["two"], "")]
    assert records[0].image.path == tmp_path / "sub" / "x.png"

    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"image": "x.png", "query": "q", "references": ["r1", "r2"]}\n', encoding="utf-8")
    (record,) = read_caption_table(jsonl)
    assert (record.id, record.references) == ("x/q", ["r1", "r2"])

    dup = tmp_path / "dup.csv"
    dup.write_text("id,image,caption\na,x.png,one\na,y.png,two\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup.csv:3: duplicate id 'a' \(first on line 2\)"):
        read_caption_table(dup)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("img,caption\nx.png,hi\n", "no column for the image; expected 'url' or 'image' or 'path' or 'file_name', found columns: img, caption"),
        ("image,text\nx.png,hi\n", "no column for the caption"),
        ("image,caption\nx.png,   \n", "c.csv:2: empty caption"),
        ("image,caption\n,hi\n", "c.csv:2: column 'image' is empty"),
    ],
)
def test_bad_caption_tables(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_caption_table(path)
    assert expected in str(info.value)


def test_coco_captions(coco_dir: Path) -> None:
    records = read_coco_captions(coco_dir / "captions.json", coco_dir / "images")
    assert [r.id for r in records] == ["1", "2", "3"]
    assert [r.references for r in records] == [["A dark  square, two spaces."], ["A red square.", 'A "quoted" caption.'], []]
    assert records[1].image.path == coco_dir / "images" / "img_2.png"
    assert records[1].image.load().size == (8, 4)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.pop("annotations"), "the top level has no key 'annotations' (keys: images, info)"),
        (lambda d: d["images"].append({"id": 1, "file_name": "again.png"}), "images[3] duplicate image id 1"),
        (lambda d: d["annotations"].append({"image_id": 99, "caption": "x"}), "annotations[3] refers to image_id 99"),
        (lambda d: d["annotations"][0].pop("caption"), "annotations[0] has no key 'caption'"),
        (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "images[0]: image path '../../etc/passwd' is outside the data root"),
        (lambda d: d["images"][0].update(id=[1]), "images[0] key 'id' is list, expected int or str"),
    ],
)
def test_bad_coco(coco_dir: Path, mutate, expected: str) -> None:
    path = coco_dir / "captions.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_coco_captions(path, coco_dir / "images")
    assert expected in str(info.value)
    assert str(path) in str(info.value)
