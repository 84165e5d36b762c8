"""Caption datasets: caption tables (the QuIC-360 layout) and COCO captions JSON.

A caption table is a CSV, TSV or JSONL file with one reference caption per row:

| column | accepted names | |
|---|---|---|
| image | `url`, `image`, `path`, `file_name` | a `url` is mapped to a local file (see below) |
| query | `query` | optional; "" for plain captioning |
| caption | `annotation`, `caption`, `reference`, `references` | a string, or in JSONL a list |
| id | `id` | optional; otherwise one is made from the image name and the query |

QuIC-360 (`url  query  annotation`, about 5 rows per image-query pair) is read two ways, because
its metrics are computed two ways:

    pairs = read_caption_table("test.tsv", images="panos/")                # grouped: 1 record per pair
    rows = read_caption_table("test.tsv", images="panos/", per_row=True)   # per-row: 1 record per row

A `url` becomes a local file through `url_map` (a dict or a CSV/TSV/JSON file mapping url -> file)
or, without a map, through the URL's file name (`.../3503709281_60051c1cd0_k.jpg`) under the image
root. A `url` cell without a scheme is a relative path and is kept whole under the root: QuIC-360's
`test-refer.tsv` names `refer360images/indoor/living_room/pano_x.jpg`. The image root defaults to
the folder of the data file; every path must stay inside it.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from vlmlab.data.images import Image, image_under_root
from vlmlab.data.records import CaptionRecord
from vlmlab.data.sources import embedded_name, image_from_cell, read_rows
from vlmlab.data.tables import Row, read_json, require_key
from vlmlab.errors import DataError

IMAGE_COLUMNS = ("url", "image", "path", "file_name")
# `sentences`/`captions`: Karpathy-split copies; `answer`: lmms-lab/COCO-Caption (five captions per row)
CAPTION_COLUMNS = ("annotation", "caption", "reference", "references", "captions", "sentences", "answer")
COLUMN_ROLES = ("image", "caption", "query", "id")


def url_file_name(url: str, where: str = "") -> str:
    """The file name at the end of a URL's path (percent-decoded), e.g. `3503709281_60051c1cd0_k.jpg`."""
    name = unquote(posixpath.basename(urlsplit(url).path))
    if not name or name in (".", ".."):
        prefix = f"{where}: " if where else ""
        raise DataError(f"{prefix}URL {url!r} has no file name; pass a URL map that names its local file")
    return name


def is_web_url(value: str) -> bool:
    """True for `https://host/...` style cells; False for relative paths such as `refer360images/a.jpg`."""
    parts = urlsplit(value)
    return bool(parts.netloc) or parts.scheme.lower() in ("http", "https", "ftp", "file")


def read_url_map(path: Path | str) -> dict[str, str]:
    """A URL -> local file mapping from a JSON object or a CSV/TSV/JSONL with `url` and `file` columns."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = read_json(path)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise DataError(f"{path}: a URL map in JSON must be an object of url -> file name strings")
        return dict(data)
    table = read_rows(path)
    url_col = table.find_column(("url",), "the URL")
    file_col = table.find_column(("file", "image", "path", "file_name"), "the local file")
    mapping: dict[str, str] = {}
    for row in table.rows:
        url, file = str(row.values[url_col]), str(row.values[file_col])
        if mapping.get(url, file) != file:
            raise DataError(f"{table.where(row)}: URL {url!r} is mapped twice to different files; keep one")
        mapping[url] = file
    return mapping


def _references(value: Any, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    refs: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise DataError(f"{where}: caption is {type(item).__name__}, expected text")
        if not item.strip():
            raise DataError(f"{where}: empty caption; fill it in or remove the row")
        refs.append(item)
    if not refs:
        raise DataError(f"{where}: no captions in the references list; add one or remove the row")
    return refs


class _ImageNamer:
    """Turns the image cell of a row into a path under the root, by URL map, URL file name or path."""

    def __init__(self, root: Path, column: str, url_map: Mapping[str, str] | None, map_name: str) -> None:
        self.root, self.column, self.url_map, self.map_name = root, column, url_map, map_name
        self.cache: dict[str, Image] = {}

    def __call__(self, value: str, where: str) -> Image:
        """The image for a cell; the same cell value always gives the same `Image` object."""
        if value not in self.cache:
            self.cache[value] = self._resolve(value, where)
        return self.cache[value]

    def _resolve(self, value: str, where: str) -> Image:
        if self.column == "url":
            if self.url_map is not None:
                if value not in self.url_map:
                    raise DataError(f"{where}: URL {value!r} is not in the URL map {self.map_name}; add it")
                return image_under_root(self.root, self.url_map[value], where)
            if is_web_url(value):
                return image_under_root(self.root, url_file_name(value, where), where)
        return image_under_root(self.root, value, where)


def read_caption_table(
    path: Path | str,
    images: Path | str | None = None,
    *,
    url_map: Mapping[str, str] | Path | str | None = None,
    per_row: bool = False,
    columns: Mapping[str, str] | None = None,
) -> list[CaptionRecord]:
    """Read a caption table (CSV/TSV/JSONL, or a parquet/arrow/save_to_disk/hub source; QuIC-360
    layout) into `CaptionRecord`s.

    Args:
        path: the table (any source of `vlmlab.data.sources`).
        images: the image root; defaults to the table's folder.
        url_map: for a `url` column, a mapping (or a mapping file) from URL to a file under the root.
        per_row: False -> one record per (image, query) pair (or per `id`) holding all its
            references, in order of first appearance (rows of a pair need not be adjacent);
            True -> one record per row in file order, id `<pair id>#<k>` (k-th reference of
            the pair), with `group_id` set to the pair's id.
        columns: role -> column name for tables whose names differ from the defaults
            (roles: image, caption, query, id).

    Raises:
        DataError: any bad file, missing column, empty caption, image outside the root, a URL
            missing from the map, two URLs sharing a file name, or an `id` reused for a different
            image or query.
    """
    table = read_rows(path)
    root = Path(images) if images is not None else table.path.parent
    map_name = str(url_map) if isinstance(url_map, (str, Path)) else "given"
    mapping = read_url_map(url_map) if isinstance(url_map, (str, Path)) else url_map
    mapped = _column_mapping(columns, COLUMN_ROLES)
    image_col = table.find_column(IMAGE_COLUMNS, "the image", mapped=mapped.get("image"))
    caption_col = table.find_column(CAPTION_COLUMNS, "the caption", mapped=mapped.get("caption"))
    query_col = table.find_column(("query",), "the query", required=False, mapped=mapped.get("query"))
    id_col = table.find_column(("id",), "the id", required=False, mapped=mapped.get("id"))
    namer = _ImageNamer(root, image_col, mapping, map_name)

    groups: dict[Any, dict[str, Any]] = {}
    order: list[tuple[dict[str, Any], Row, list[str]]] = []
    owner_of_id: dict[str, tuple[str, str, int]] = {}
    image_of_file: dict[Path, tuple[str, int]] = {}
    for row in table.rows:
        where = table.where(row)
        cell = row.values.get(image_col)
        query = _text_cell(row, query_col, where, allow_empty=True) if query_col else ""
        refs = _references(row.values.get(caption_col), where)
        if isinstance(cell, (dict, bytes, bytearray)):  # an embedded image (`datasets` Image feature)
            image = image_from_cell(cell, root, where)
            raw_image = embedded_name(cell) or (f"sha256:{image.sha256}" if image.path is None else str(image.path))
        else:
            raw_image = _text_cell(row, image_col, where)
            image = namer(raw_image, where)
        if image_col == "url" and image.path is not None:
            seen = image_of_file.setdefault(image.path, (raw_image, row.line))
            if seen[0] != raw_image:
                raise DataError(
                    f"{where}: URLs {raw_image!r} and {seen[0]!r} (line {seen[1]}) both map to the file {image.path}; "
                    f"pass a URL map that gives each its own file"
                )
        if id_col is not None:
            item_id = _text_cell(row, id_col, where)
            first = owner_of_id.setdefault(item_id, (raw_image, query, row.line))
            if first[:2] != (raw_image, query):
                raise DataError(f"{where}: duplicate id {item_id!r} (first on line {first[2]}) with a different image or query; make ids unique")
            key: Any = item_id
        else:
            key = (image.path if image.path is not None else image.sha256, query)
            if key in groups:
                item_id = groups[key]["id"]
            else:
                stem = _image_stem(image.path, root) if image.path is not None else _embedded_stem(cell, image)
                item_id = f"{stem}/{query}" if query else stem
        group = groups.setdefault(key, {"id": item_id, "image": image, "query": query, "rows": []})
        group["rows"].append((row, refs))
        order.append((group, row, refs))

    ids = [g["id"] for g in groups.values()]
    if len(set(ids)) != len(ids):
        clash = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{table.path}: two image-query pairs get the id {clash!r}; add an 'id' column with unique ids")

    if per_row:  # file order; k counts the references of each pair
        counts: dict[str, int] = {}
        records = []
        for group, row, refs in order:
            for ref in refs:
                k = counts[group["id"]] = counts.get(group["id"], -1) + 1
                records.append(
                    CaptionRecord(
                        id=f"{group['id']}#{k}", image=group["image"], query=group["query"], references=[ref],
                        group_id=group["id"], source=table.where(row),
                    )
                )
        return records
    records = []
    for group in groups.values():
        lines = ",".join(str(row.line) for row, _ in group["rows"])
        refs = [ref for _, rs in group["rows"] for ref in rs]
        records.append(
            CaptionRecord(id=group["id"], image=group["image"], query=group["query"], references=refs, source=f"{table.path}:{lines}")
        )
    return records


def _image_stem(path: Path, root: Path) -> str:
    """The image's path under the root without its extension, as a readable id (`sub/pano_01`)."""
    relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    return relative.with_suffix("").as_posix()


def _embedded_stem(cell: Any, image: Image) -> str:
    """An id for an embedded image: its stored file name without extension, else its content hash."""
    name = embedded_name(cell)
    return Path(name).with_suffix("").as_posix() if name else image.sha256[:16]


def _column_mapping(columns: Mapping[str, str] | None, roles: tuple[str, ...]) -> dict[str, str]:
    """A user's role -> column mapping, checked against the roles a reader knows."""
    mapped = dict(columns or {})
    unknown = sorted(set(mapped) - set(roles))
    if unknown:
        raise DataError(f"unknown column role(s) {', '.join(unknown)}; this reader maps {', '.join(roles)}")
    return mapped


def _text_cell(row: Row, column: str, where: str, *, allow_empty: bool = False) -> str:
    value = row.values.get(column)
    if value is None and allow_empty:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: column {column!r} is {type(value).__name__}, expected text")
    text = str(value)
    if not allow_empty and not text.strip():
        raise DataError(f"{where}: column {column!r} is empty; fill it in or remove the row")
    return text


def read_coco_captions(path: Path | str, images: Path | str | None = None) -> list[CaptionRecord]:
    """Read a COCO captions JSON (`images` with `id`/`file_name`, `annotations` with `image_id`/`caption`).

    One record per entry of `images`, in file order, id = the image id, the entry's optional
    `query` (panorama captioning: one entry per image-query pair), references in annotation
    order (an image without annotations gets `references=[]`: generation only).

    Raises:
        DataError: bad JSON, missing keys, duplicate image ids, or an annotation whose image id
            is not in `images`.
    """
    path = Path(path)
    root = Path(images) if images is not None else path.parent
    data = read_json(path)
    entries = require_key(data, "images", path, "the top level", list)
    annotations = require_key(data, "annotations", path, "the top level", list)
    if not entries:
        raise DataError(f"{path}: 'images' is empty; expected at least one image")
    by_id: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"images[{i}]"
        image_id = str(require_key(entry, "id", path, where, (int, str)))
        file_name = require_key(entry, "file_name", path, where, str)
        if image_id in by_id:
            raise DataError(f"{path}: {where} duplicate image id {image_id} (first at images[{by_id[image_id]['index']}]); make ids unique")
        image = image_under_root(root, file_name, f"{path}:{where}")
        query = entry.get("query", "")
        if not isinstance(query, str):
            raise DataError(f"{path}: {where} 'query' is {type(query).__name__}, expected text")
        by_id[image_id] = {"index": i, "image": image, "refs": [], "query": query}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        image_id = str(require_key(ann, "image_id", path, where, (int, str)))
        caption = require_key(ann, "caption", path, where, str)
        if image_id not in by_id:
            raise DataError(f"{path}: {where} refers to image_id {image_id}, which is not in 'images'; use the matching images list")
        by_id[image_id]["refs"].extend(_references(caption, f"{path}:{where}"))
    return [
        CaptionRecord(id=image_id, image=item["image"], query=item["query"], references=item["refs"], source=f"{path}:images[{item['index']}]")
        for image_id, item in by_id.items()
    ]
