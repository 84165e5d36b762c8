"""Data sources: where a reader's rows come from, whatever the container.

Every table reader (`read_caption_table`, `read_ratings`, VQA tables, `data check`) takes one
source string and gets a `Table` of rows from it with `read_rows`:

| source | example | read with |
|---|---|---|
| CSV / TSV / JSONL file | `test.tsv` | `vlmlab.data.tables.read_file_rows` |
| parquet file | `val-00000-of-00001.parquet` | pyarrow |
| arrow file (`datasets` cache / `save_to_disk` shard) | `data-00000-of-00001.arrow` | `datasets.Dataset.from_file` |
| `datasets` `save_to_disk` folder | `okvqa-val/` (a `DatasetDict` folder: `okvqa/#val2014`) | `datasets.load_from_disk` |
| hub id | `hf:lmms-lab/OK-VQA#val2014` | `datasets.load_dataset` (cache or network) |

`#split` picks a split of a `DatasetDict` folder or a hub dataset; it may be left out when there
is only one. Rows keep their Python values: an `Image` feature stays undecoded as
`{"bytes": ..., "path": ...}` (turned into an `Image` by `image_from_cell`), lists stay lists.
A row's "line" is its 1-based row number, so messages read `file.parquet:3: ...`.

Offline (HF_HUB_OFFLINE=1) with the dataset not in the cache, a hub id is one `DataError` line.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence, TypeVar

from vlmlab.data.images import Image, resolve_under_root
from vlmlab.data.tables import Row, Table, read_file_rows
from vlmlab.errors import DataError

R = TypeVar("R", bound=Any)  # a record dataclass with `image` and `source`
HUB_PREFIX = "hf:"
KINDS = {"parquet": "parquet file", "arrow": "arrow file", "disk": "save_to_disk folder", "hub": "hub dataset"}


@dataclass(frozen=True)
class Source:
    """A parsed source string: its kind (a key of KINDS, or "file"), location and optional split."""

    kind: str
    location: str
    split: str | None = None

    def describe(self) -> str:
        """For summaries: `parquet file`, `hub dataset lmms-lab/OK-VQA (split val2014)`."""
        text = KINDS.get(self.kind, "file")
        if self.kind == "hub":
            text += f" {self.location}"
        return text + (f" (split {self.split})" if self.split else "")


def parse_source(spec: str | os.PathLike[str]) -> Source:
    """Classify a source string (see the module table); nothing is read."""
    text = os.fspath(spec)
    if text.startswith(HUB_PREFIX):
        name, _, split = text[len(HUB_PREFIX):].lstrip("/").partition("#")
        if not name:
            raise DataError(f"{text}: no dataset id after 'hf:'; write e.g. hf:lmms-lab/OK-VQA#val2014")
        return Source("hub", name, split or None)
    location, _, split = text.partition("#") if "#" in text and not os.path.exists(text) else (text, "", "")
    path = Path(location)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return Source("parquet", location)
    if suffix == ".arrow":
        return Source("arrow", location)
    if path.is_dir() and any((path / marker).is_file() for marker in ("dataset_info.json", "state.json", "dataset_dict.json")):
        return Source("disk", location, split or None)
    return Source("file", text)


def is_dataset_source(spec: str | os.PathLike[str]) -> bool:
    """True for parquet, arrow, save_to_disk and hub sources (the ones `read_source_table` reads)."""
    return parse_source(spec).kind != "file"


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise DataError("reading arrow files, save_to_disk folders or hub ids needs `pip install datasets`") from exc
    return datasets


def _pick_split(loaded: Any, source: Source, label: str) -> Any:
    """The one Dataset of a DatasetDict: the named split, or the only one."""
    if not hasattr(loaded, "keys"):
        if source.split:
            raise DataError(f"{label}: has no splits, but '#{source.split}' was given; drop it")
        return loaded
    splits = list(loaded.keys())
    if source.split is None:
        if len(splits) == 1:
            return loaded[splits[0]]
        raise DataError(f"{label}: has splits {', '.join(splits)}; name one, e.g. {label}#{splits[0]}")
    if source.split not in loaded:
        raise DataError(f"{label}: no split {source.split!r}; it has {', '.join(splits)}")
    return loaded[source.split]


def _load_arrow_rows(source: Source, label: str) -> list[dict[str, Any]]:
    """Rows of an arrow, save_to_disk or hub source, images left as {"bytes", "path"}."""
    datasets = _datasets()
    try:
        if source.kind == "arrow":
            loaded = datasets.Dataset.from_file(source.location)
        elif source.kind == "disk":
            loaded = datasets.load_from_disk(source.location)
        else:
            loaded = datasets.load_dataset(source.location, split=source.split)
    except DataError:
        raise
    except (ConnectionError, OSError) as exc:
        if source.kind == "hub":
            offline = " (offline: HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
            raise DataError(f"{label}: cannot load the hub dataset {source.location!r}{offline} and it is not in the "
                            "Hugging Face cache; load it once where the network works, or use a local parquet/arrow/save_to_disk copy") from None
        raise DataError(f"{label}: not a readable {KINDS[source.kind]} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    except Exception as exc:  # datasets raises many kinds (DatasetNotFoundError, ValueError, ArrowInvalid...)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{label}: not a readable {KINDS[source.kind]} ({first})") from None
    # `load_dataset(id, split=...)` returns that split itself (and downloads only its files)
    dataset = loaded if source.kind == "hub" and source.split else _pick_split(loaded, source, label)
    # the arrow table of the rows (a select/shuffle applied): Image features stay as stored, never decoded
    return dataset.with_format("arrow")[:].to_pylist()


def _load_parquet_rows(source: Source, label: str) -> list[dict[str, Any]]:
    import pyarrow
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_table(source.location).to_pylist()
    except (pyarrow.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{label}: not a readable parquet file ({first})") from None


def read_rows(spec: str | os.PathLike[str]) -> Table:
    """The rows of any source: a CSV, TSV or JSONL file by its extension (`vlmlab.data.tables`),
    or a parquet, arrow, save_to_disk or hub source (`read_source_table`)."""
    if is_dataset_source(spec):
        return read_source_table(spec)
    return read_file_rows(spec)


def read_source_table(spec: str | os.PathLike[str]) -> Table:
    """All rows of a parquet, arrow, save_to_disk or hub source as a `Table`.

    Raises:
        DataError: a missing file or folder, an unreadable one, a split that does not exist (or
            none named where several do), a hub id that cannot be loaded (offline, not cached),
            or no rows at all.
    """
    source = parse_source(spec)
    label = os.fspath(spec)
    if source.kind == "file":
        raise DataError(f"{label}: not a parquet, arrow, save_to_disk or hf: source")
    if source.kind in ("parquet", "arrow") and not Path(source.location).is_file():
        raise DataError(f"{source.location}: file not found; check the path")
    rows = _load_parquet_rows(source, label) if source.kind == "parquet" else _load_arrow_rows(source, label)
    if not rows:
        raise DataError(f"{label}: has no rows")
    columns = tuple(dict.fromkeys(key for row in rows[:1] for key in row))
    return Table(path=Path(label), columns=columns, rows=tuple(Row(line=i, values=r) for i, r in enumerate(rows, 1)))


def image_from_cell(value: Any, root: Path | str, where: str) -> Image:
    """The image a cell names: embedded bytes (`Image` feature / raw bytes) or a path under the root.

    An `Image` feature stored by path only (`{"bytes": None, "path": "x.jpg"}`) is a path.
    """
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        if value.get("bytes"):
            return Image(data=bytes(value["bytes"]))
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Image(data=bytes(value))
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: the image cell is {type(value).__name__ if value is not None else 'empty'}; "
                        "expected a file path or embedded image bytes")
    return Image(path=resolve_under_root(root, value, where))


def embedded_name(value: Any) -> str | None:
    """The file name stored with an embedded image (`{"bytes", "path": "COCO_val2014_x.jpg"}`), if any."""
    if isinstance(value, dict) and value.get("bytes") and isinstance(value.get("path"), str) and value["path"]:
        return value["path"]
    return None


def materialize_images(records: Sequence[R], folder: Path | str) -> list[R]:
    """The records with every embedded image written once under `folder` (named by content hash).

    For studies that hand images on by path (the caption study's shared train/test tables); images
    that already are files are kept as they are.
    """
    import PIL.Image

    folder = Path(folder)
    out: list[R] = []
    written: dict[str, Path] = {}
    for record in records:
        image = record.image
        if image.path is not None:
            out.append(record)
            continue
        if image.sha256 not in written:
            assert image.data is not None
            try:
                with PIL.Image.open(io.BytesIO(image.data)) as pil:
                    ext = {"JPEG": ".jpg"}.get(pil.format or "", f".{(pil.format or 'bin').lower()}")
            except (PIL.UnidentifiedImageError, OSError):
                raise DataError(f"{record.source}: embedded image is not a readable image; replace it") from None
            target = folder / f"{image.sha256[:24]}{ext}"
            if not target.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # processes preparing at once agree
                tmp.write_bytes(image.data)
                tmp.replace(target)
            written[image.sha256] = target
        out.append(replace(record, image=Image(path=written[image.sha256])))
    return out
