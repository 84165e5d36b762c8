"""CSV/TSV/JSONL/JSON row sources: parsing, line numbers, and one-line errors naming file and line."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from vlmlab.data.sources import read_rows
from vlmlab.data.tables import read_json, read_jsonl, read_table
from vlmlab.errors import DataError


def test_csv_quoting_bom_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    text = 'id,caption\n1,"Hello, ""world""  two spaces"\n2,"spans\ntwo lines"\n3,plain\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    table = read_table(path)
    assert table.columns == ("id", "caption")  # BOM not glued to the first column name
    assert [r.line for r in table.rows] == [2, 3, 5]
    assert table.rows[0].values["caption"] == 'Hello, "world"  two spaces'
    assert table.rows[1].values["caption"] == "spans\ntwo lines"
    # the same as the csv module reading the same text
    reference = list(csv.DictReader(io.StringIO(text)))
    assert [dict(r.values) for r in table.rows] == reference


def test_tsv_by_extension_keeps_commas(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\nx, y\t z \n", encoding="utf-8")
    table = read_table(path)
    assert table.rows[0].values == {"a": "x, y", "b": " z "}


def test_jsonl_types_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1, "refs": ["x", "y"]}\n\n{"b": "ü"}\n', encoding="utf-8")
    table = read_jsonl(path)
    assert table.columns == ("a", "refs", "b")
    assert [r.line for r in table.rows] == [1, 3]
    assert table.rows[0].values["refs"] == ["x", "y"]
    assert read_rows(path).rows == table.rows


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.csv", "", "file is empty"),
        ("header.csv", "a,b\n", "has a header but no data rows"),
        ("fields.csv", "a,b\n1,2\n1,2,3\n", "t/fields.csv:3: 3 fields but the header has 2"),
        ("dup.csv", "a,a\n1,2\n", "duplicate column names a"),
        ("quote.csv", 'a,b\n1,"x"y\n', "quote.csv:2: malformed row"),
        ("bad.jsonl", '{"a": 1}\n{"a": 2\n', "bad.jsonl:2: not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "list.jsonl:1: expected a JSON object, got list"),
        ("data.xlsx", "x", "unknown extension '.xlsx'"),
    ],
)
def test_bad_tables_name_file_and_line(tmp_path: Path, name: str, content: str, expected: str) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_rows(path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    path = tmp_path / "latin.csv"
    path.write_bytes("a\nok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv:3: not valid UTF-8"):
        read_table(path)


def test_bad_json_document_names_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x.json:4: not valid JSON"):
        read_json(path)


def test_unicode_line_separators_inside_fields_and_crlf(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_bytes("a\tb\r\nx\u2028y\tz\x0cw\r\nlast\trow\r\n".encode("utf-8"))
    table = read_table(tsv)
    assert [r.values for r in table.rows] == [{"a": "x\u2028y", "b": "z\x0cw"}, {"a": "last", "b": "row"}]
    assert [r.line for r in table.rows] == [2, 3]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"a": "x\xe2\x80\xa8y"}\r\n{"a": 2}\r\n')
    assert [r.values["a"] for r in read_jsonl(jsonl).rows] == ["x\u2028y", 2]
