"""One JSON / JSON Lines reader (`vlmlab.data.tables`) behind every caller, each with its own wording.

The expected lines were printed by each caller's own reader before they shared one (main at
d7b80ec): a data file asks the user to fix it, a stage file to re-run its stage, `vlmlab score`
names the line. Where that reader crashed (a folder, bytes that are not UTF-8) or refused a file
it should read (a UTF-8 BOM, a U+2028 inside a string), the shared reader is a `DataError` or reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from vlmlab.errors import DataError

BAD_LINE = b'{"a": 1}\n{"a": 2\n'
NOT_OBJECT = b'{"a": 1}\n[1, 2]\n'
NOT_UTF8 = b'{"a": 1}\n{"a": "\xff"}\n'


def _tables_jsonl(path: Path) -> Any:
    from vlmlab.data.tables import read_jsonl

    return [row.values for row in read_jsonl(path).rows]


def _stage_jsonl(path: Path) -> Any:
    from vlmlab.icl.selectors.records import read_jsonl

    return read_jsonl(path)


def _scored_rows(path: Path) -> Any:
    from vlmlab.metrics.files import _rows

    return list(_rows(path))


def _tables_json(path: Path) -> Any:
    from vlmlab.data.tables import read_json

    return read_json(path)


def _scored_json(path: Path) -> Any:
    from vlmlab.metrics.files import _load_json

    return _load_json(path)


def _upstream_json(path: Path) -> Any:
    from vlmlab.icl.lever_lm import read_json

    return read_json(path)


def _index_ids(path: Path) -> Any:
    from vlmlab.icl.index import read_index_ids

    return read_index_ids(path.parent.parent)


READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "tables.read_jsonl": (_tables_jsonl, "x.jsonl"), "records.read_jsonl": (_stage_jsonl, "x.jsonl"),
    "files._rows": (_scored_rows, "x.jsonl"), "tables.read_json": (_tables_json, "x.json"),
    "files._load_json": (_scored_json, "x.json"), "lever_lm.read_json": (_upstream_json, "x.json"),
    "index.read_index_ids": (_index_ids, "embeddings/ids.json"),
}

# (reader, file content or None for a missing file, the message after "<path>")
MESSAGES = [
    ("tables.read_jsonl", None, ": file not found; check the path"),
    ("tables.read_jsonl", b"", ": file is empty; expected a header line and data rows"),
    ("tables.read_jsonl", BAD_LINE, ":2: not valid JSON (Expecting ',' delimiter at column 8); fix or remove the line"),
    ("tables.read_jsonl", NOT_OBJECT, ":2: expected a JSON object, got list"),
    ("tables.read_jsonl", NOT_UTF8, ":2: not valid UTF-8 (byte 16); re-save the file as UTF-8"),
    ("records.read_jsonl", None, " not found; run the stage that writes it first"),
    ("records.read_jsonl", BAD_LINE, " line 2 is not valid JSON (Expecting ',' delimiter); re-run the stage that wrote it"),
    ("records.read_jsonl", NOT_OBJECT, " line 2 is not a JSON object"),
    ("records.read_jsonl", NOT_UTF8, " line 2 is not UTF-8 text; re-run the stage that wrote it"),  # was a UnicodeDecodeError
    ("files._rows", None, ": file not found"),
    ("files._rows", BAD_LINE, ":2: not valid JSON (Expecting ',' delimiter); expected one JSON object per line"),
    ("files._rows", NOT_OBJECT, ":2: expected a JSON object per line"),
    ("files._rows", NOT_UTF8, ": not UTF-8 text (invalid start byte)"),
    ("tables.read_json", None, ": file not found; check the path"),
    ("tables.read_json", BAD_LINE, ":2: not valid JSON (Extra data at column 1); fix the file"),
    ("tables.read_json", NOT_UTF8, ":2: not valid UTF-8 (byte 16); re-save the file as UTF-8"),
    ("files._load_json", None, ": file not found"),
    ("files._load_json", b"", ": not valid JSON (line 1: Expecting value)"),
    ("files._load_json", BAD_LINE, ": not valid JSON (line 2: Extra data)"),
    ("files._load_json", NOT_UTF8, ": not UTF-8 text (invalid start byte)"),
    ("lever_lm.read_json", None, ": file not found"),
    ("lever_lm.read_json", b"", ": not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ("lever_lm.read_json", BAD_LINE, ": not valid JSON (Extra data: line 2 column 1 (char 9))"),
    ("lever_lm.read_json", NOT_UTF8,
     ": not valid JSON ('utf-8' codec can't decode byte 0xff in position 16: invalid start byte)"),
    ("index.read_index_ids", None, " not found; run the icl index stage first (`vlmlab icl index`)"),
    ("index.read_index_ids", BAD_LINE, " is not valid JSON (Extra data); rebuild the index"),
    ("index.read_index_ids", NOT_UTF8, " is not UTF-8 text; rebuild the index"),  # was a UnicodeDecodeError
]


def _file(tmp_path: Path, name: str, content: bytes | None) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("reader, content, message", MESSAGES)
def test_each_caller_keeps_its_wording(tmp_path, reader, content, message):
    read, name = READERS[reader]
    path = _file(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        read(path)
    assert str(info.value) == f"{path}{message}"


@pytest.mark.parametrize("reader", ["records.read_jsonl", "files._rows"])
def test_an_empty_stage_or_scored_file_has_no_rows(tmp_path, reader):
    read, name = READERS[reader]
    assert read(_file(tmp_path, name, b"\n  \n")) == []


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_folder_is_a_data_error_naming_it(tmp_path, reader):
    read, name = READERS[reader]
    folder = tmp_path / name
    folder.mkdir(parents=True)
    with pytest.raises(DataError) as info:
        read(folder)
    assert str(info.value).startswith(str(folder)) and "\n" not in str(info.value)


@pytest.mark.parametrize("reader", ["tables.read_jsonl", "records.read_jsonl", "files._rows"])
def test_jsonl_lines_split_on_newlines_only_and_a_bom_is_dropped(tmp_path, reader):
    read, name = READERS[reader]
    rows = read(_file(tmp_path, name, b'\xef\xbb\xbf{"a": "x\xe2\x80\xa8y"}\r\n\n{"b": 2}\n'))
    values = [row[1] if isinstance(row, tuple) else row for row in rows]
    assert values == [{"a": "x\u2028y"}, {"b": 2}]
    if reader == "files._rows":
        assert [row[0] for row in rows] == [1, 3]  # line numbers count the blank line
