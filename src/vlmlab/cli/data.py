"""`vlmlab data`: read a dataset with a named format, check it, export normalised records."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from vlmlab.progress import make_console

app = typer.Typer(help="Read, check and normalise datasets.", no_args_is_help=True)
_console = make_console()  # off a terminal: wide, so paths are never folded


@app.command("check")
def check(
    format: str = typer.Argument(..., help="Dataset format: quic360, quic360-rows, captions, captions-rows, coco, vqa, okvqa, folder, ratings, records."),
    path: Path = typer.Argument(..., help="The data file (questions JSON for vqa; the folder for folder), a parquet or arrow file, a datasets save_to_disk folder (folder#split), or a hub id hf:owner/name#split."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image root (default: the data file's folder)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="Annotations JSON (vqa/okvqa)."),
    url_map: Optional[Path] = typer.Option(None, "--url-map", help="URL -> local file map (CSV/TSV/JSON) for a url column."),
    image_pattern: Optional[str] = typer.Option(None, "--image-pattern", help="Image file pattern, e.g. 'COCO_val2014_{image_id:012d}.jpg'."),
    query: Optional[str] = typer.Option(None, "--query", help="Query text for every image (folder)."),
    column: Optional[List[str]] = typer.Option(None, "--column", help="Column mapping ROLE=NAME (repeat), e.g. --column caption=sentences."),
    check_images: bool = typer.Option(False, "--check-images", help="Decode every image (slow for large sets)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Report missing image files instead of failing."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write normalised records JSONL here (atomic; nothing on error)."),
) -> None:
    """Read PATH as FORMAT, print a summary, optionally decode every image and export records."""
    from vlmlab.data.check import check_images as decode_all
    from vlmlab.data.check import missing_image_files, summarize, unique_images, write_records_jsonl
    from vlmlab.errors import DataError
    from vlmlab.data.readers import read_dataset

    dataset = read_dataset(
        format, path, images=images, annotations=annotations, url_map=url_map, image_pattern=image_pattern, query=query,
        columns=_column_mapping(column or []),
    )
    summary = summarize(dataset)
    missing = [(image, source) for image, source in unique_images(dataset.records).values()
               if image.path is not None and not image.path.is_file()]
    if missing and not allow_missing:
        image, source = missing[0]
        where = f"{source}: " if source else ""
        more = f" ({len(missing)} image files missing)" if len(missing) > 1 else ""
        raise DataError(f"{where}{image.path}: image file not found{more}; fix the paths or --images, or pass --allow-missing")
    if check_images:
        result = decode_all([r for r in dataset.records if r.image.path is None or r.image.path.is_file()])
        summary["images decoded"] = result.images
        if result.images:
            summary["smallest / largest image"] = "{}x{} / {}x{}".format(*result.min_size, *result.max_size)
    if out is not None:
        write_records_jsonl(dataset.records, out)
        summary["written"] = str(out)
    table = Table("", "", show_header=False, title=f"{format}: {path}")
    for key, value in summary.items():
        if key not in ("format", "path"):
            table.add_row(key, str(value))
    _console.print(table)
    missing = missing_image_files(dataset.records)
    if missing:
        typer.echo(f"warning: {len(missing)} of {summary['images']} image files not found, e.g. {missing[0]}; "
                   "check --images (the image root) or --url-map", err=True)


def _column_mapping(pairs: list[str]) -> dict[str, str]:
    """`["caption=sentences"]` -> `{"caption": "sentences"}`; a pair without `=` is a one-line error."""
    from vlmlab.errors import ConfigError

    mapping: dict[str, str] = {}
    for pair in pairs:
        role, sep, name = pair.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise ConfigError(f"--column {pair!r}: write ROLE=NAME, e.g. --column caption=sentences")
        mapping[role.strip()] = name.strip()
    return mapping
