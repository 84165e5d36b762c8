"""Row sources: CSV/TSV tables, JSONL files and JSON documents, with line numbers kept.

Every reader in `vlmlab.data` starts here, so that a bad file is reported the same way everywhere:
one line naming the file, the line (or key) and what to do. Rows remember the line they started on,
so a later problem (a missing image, a rating out of range) can still name it.

    table = read_table(Path("test.tsv"))          # delimiter from the extension
    column = table.find_column(("url", "image"), "the image")
    for row in table.rows:
        print(row.line, row.values[column])
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from vlmlab.errors import DataError

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}

# Caption fields can be long; the csv module's default limit (128 KiB) is enough but be explicit.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Row:
    """One data row: its values by column name and the (1-based) file line it starts on."""

    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Table:
    """The rows of one file plus its column names, in file order."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def where(self, row: Row) -> str:
        """`file:line` for messages."""
        return f"{self.path}:{row.line}"

    def find_column(self, candidates: Sequence[str], what: str, *, required: bool = True,
                    mapped: str | None = None) -> str | None:
        """The first of `candidates` present (case-sensitive), else a `DataError` listing what was found.

        Args:
            candidates: accepted column names in order of preference.
            what: what the column holds, for the message ("the image", "the caption").
            required: when False, return None instead of raising.
            mapped: a column the user named for this role (a column mapping); it must exist.
        """
        if mapped is not None:
            if mapped not in self.columns:
                found = ", ".join(self.columns) if self.columns else "none"
                raise DataError(f"{self.path}: the column mapping names {mapped!r} for {what}, but the columns are: {found}")
            return mapped
        for name in candidates:
            if name in self.columns:
                return name
        if not required:
            return None
        found = ", ".join(self.columns) if self.columns else "none"
        wanted = " or ".join(repr(c) for c in candidates)
        raise DataError(f"{self.path}: no column for {what}; expected {wanted}, found columns: {found}")


@dataclass(frozen=True)
class FileRules:
    """One caller's wording for a bad file, and whether an empty one is an error.

    Every JSON and JSON Lines file vlmlab reads goes through `read_json` / `jsonl_objects` with the
    rules of its caller: a data file a user wrote asks them to fix it, a stage file asks them to
    re-run the stage that wrote it, and the tests pin each wording. Placeholders: `{path}`, and
    per message `{line}` (1-based), `{col}`, `{msg}` (json's reason), `{error}` (the whole exception
    text), `{type}` (of a non-object line), `{byte}` and `{reason}` (of a UTF-8 error).

    Attributes:
        empty: the message for a file with nothing but whitespace, or None when such a file simply
            has no rows (JSON Lines) or fails to parse (JSON).
    """

    missing: str = "{path}: file not found; check the path"
    directory: str = "{path}: is a directory, expected a file"
    empty: str | None = "{path}: file is empty; expected a header line and data rows"
    not_utf8: str = "{path}:{line}: not valid UTF-8 (byte {byte}); re-save the file as UTF-8"
    bad_json: str = "{path}:{line}: not valid JSON ({msg} at column {col}); fix or remove the line"
    not_object: str = "{path}:{line}: expected a JSON object, got {type}"


DATA_FILE = FileRules()
"""The rules of the data readers (tables, JSON Lines, JSON documents) users point vlmlab at."""


def _open_text(path: Path, rules: FileRules = DATA_FILE) -> str:
    """Read a UTF-8 file (a BOM is dropped); missing, empty or undecodable files are `DataError`s."""
    if not path.exists():
        raise DataError(rules.missing.format(path=path))
    if path.is_dir():
        raise DataError(rules.directory.format(path=path))
    raw = path.read_bytes()
    if rules.empty is not None and not raw.strip():
        raise DataError(rules.empty.format(path=path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(rules.not_utf8.format(path=path, line=line, byte=exc.start, reason=exc.reason, error=exc)) from None


def jsonl_objects(path: Path | str, rules: FileRules = DATA_FILE) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON Lines file, in file order.

    Lines are split on "\n" only (a JSON string may hold U+2028; "\r\n" ends are JSON whitespace).
    The run ledger has its own reader (`vlmlab.runs`): it drops a torn last line instead of failing.

    Raises:
        DataError: as `rules` words it: a missing file or a folder, an empty file (when `rules.empty`),
            bytes that are not UTF-8, a line that is not valid JSON or not an object.
    """
    path = Path(path)
    text = _open_text(path, rules)
    out: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(rules.bad_json.format(path=path, line=number, msg=exc.msg, col=exc.colno, error=exc)) from None
        if not isinstance(value, dict):
            raise DataError(rules.not_object.format(path=path, line=number, type=type(value).__name__))
        out.append((number, value))
    return out


def read_file_rows(path: Path | str) -> Table:
    """A CSV, TSV or JSONL file by its extension (`.jsonl`/`.ndjson` are JSON Lines).

    Readers take any source through `vlmlab.data.sources.read_rows`, which also reads parquet,
    arrow, save_to_disk folders and `hf:` ids."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if path.suffix.lower() not in DELIMITERS:
        raise DataError(f"{path}: unknown extension {path.suffix!r}; use .csv, .tsv or .jsonl")
    return read_table(path)


def read_table(path: Path | str, delimiter: str | None = None) -> Table:
    """Read a CSV or TSV file with a header line into a `Table`.

    The delimiter comes from the extension (`.csv` -> comma, `.tsv`/`.tab` -> tab) unless given.
    Quoting follows the csv module (RFC 4180: `"a ""quoted"" word"`, fields spanning lines);
    whitespace inside fields is kept as is. Values stay strings.

    Raises:
        DataError: missing/empty file, header only, duplicate or empty column names, a row with
            more or fewer fields than the header, or malformed quoting.
    """
    path = Path(path)
    if delimiter is None:
        delimiter = DELIMITERS.get(path.suffix.lower())
        if delimiter is None:
            raise DataError(f"{path}: unknown table extension {path.suffix!r}; use .csv or .tsv")
    text = _open_text(path)
    # StringIO with newline="" (not str.splitlines, which also splits on U+2028 and friends inside
    # captions) lets the csv module see exactly the file's line breaks.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        columns = tuple(c.strip() for c in header)
        if any(not c for c in columns):
            raise DataError(f"{path}:1: the header has an empty column name; name every column")
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise DataError(f"{path}:1: duplicate column names {', '.join(duplicates)}; rename them")
        rows: list[Row] = []
        while True:
            line = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            if not fields:
                continue  # blank line
            if len(fields) != len(columns):
                raise DataError(
                    f"{path}:{line}: {len(fields)} fields but the header has {len(columns)}; "
                    f"check the delimiter and quoting of this row"
                )
            rows.append(Row(line=line, values=dict(zip(columns, fields))))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed row ({exc}); fix the quoting") from None
    if not rows:
        raise DataError(f"{path}: has a header but no data rows")
    return Table(path=path, columns=columns, rows=tuple(rows))


def read_jsonl(path: Path | str) -> Table:
    """Read a JSON Lines file (one object per line; blank lines skipped) into a `Table`.

    Columns are the union of keys in first-seen order; values keep their JSON types.

    Raises:
        DataError: missing/empty file, a line that is not valid JSON or not an object (naming
            the line number).
    """
    path = Path(path)
    rows = tuple(Row(line=number, values=value) for number, value in jsonl_objects(path))
    columns = dict.fromkeys(key for row in rows for key in row.values)
    return Table(path=path, columns=tuple(columns), rows=rows)


JSON_DATA_FILE = replace(DATA_FILE, bad_json="{path}:{line}: not valid JSON ({msg} at column {col}); fix the file")


def read_json(path: Path | str, rules: FileRules = JSON_DATA_FILE) -> Any:
    """Parse a whole JSON document; a syntax error names the line and column (worded by `rules`)."""
    path = Path(path)
    text = _open_text(path, rules)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(rules.bad_json.format(path=path, line=exc.lineno, msg=exc.msg, col=exc.colno, error=exc)) from None


def require_key(obj: Any, key: str, path: Path, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """`obj[key]`, or a `DataError` naming the file, the entry (`where`) and the missing key."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}: {where} is {type(obj).__name__}, expected a JSON object")
    if key not in obj:
        found = ", ".join(sorted(map(str, obj))) or "none"
        raise DataError(f"{path}: {where} has no key {key!r} (keys: {found})")
    value = obj[key]
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise DataError(f"{path}: {where} key {key!r} is {type(value).__name__}, expected {names}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
