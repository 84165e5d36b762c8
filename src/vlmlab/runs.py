"""Run folders: resolved config, append-only ledger, metrics and report; resume is data.

One folder per stage holds `config.yaml` (the fully resolved config), `run.json` (stage, config
hash, status), `ledger.jsonl` (one JSON line per finished item, flushed and fsynced, carrying the
item id and the config hash), `metrics.json` and `report.md`. Re-opening a folder with the same
config resumes: the caller skips `done_ids()`. A torn last line (a crash mid-write) is dropped on
open; a corrupt line anywhere else is an error naming it. A different config in the same folder is
refused unless `overwrite=True`, except for `volatile` keys (how to reach a server: its URL, API-key
variable, timeout, concurrency), which are left out of the config's identity: changing them rewrites
`config.yaml` and resumes.

Items whose record has `status: "error"` (a server that was down, a wrong model name) are retried
on the next open by default: their lines are dropped from the ledger and they are pending again.
`retry_errors=False` keeps them as finished; so does the environment variable `VLMLAB_KEEP_ERRORS=1`
(the CLI's `--keep-errors` sets it, so it reaches every stage, subprocesses and torchrun ranks too).

Data-parallel stages open the run with `shard=(rank, world_size)`: each rank appends to its own
`ledger.rank{r}.jsonl`, and `merge_shards(order)` joins them into `ledger.jsonl` in item order, so the
merged ledger equals a single-process one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml
from pydantic import BaseModel

from vlmlab import __version__
from vlmlab.config import canonical_json, config_hash, dump_yaml
from vlmlab.errors import RunError

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
LEDGER_FILE = "ledger.jsonl"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
KEEP_ERRORS_ENV = "VLMLAB_KEEP_ERRORS"


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write via a temp file in the same folder + fsync + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the file the user asked for, not our temp name (`.config.yaml.k2j4.tmp`)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; colleagues on a shared server must read results
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a full disk while writing names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_ledger(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Read a JSONL ledger. A torn final line is dropped (and cut from the file when `repair`).

    Not `vlmlab.data.tables.jsonl_objects`, the JSON Lines reader of every other file: a ledger is
    appended to while a run may be killed, so a bad last line is a torn write to drop (keeping the
    byte offset of the last good line, to truncate there), not an error, and a missing ledger is an
    empty one."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        end = good_end + len(line) + (0 if is_last else 1)
        if not line.strip():
            good_end = end if not is_last else good_end
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            if is_last or all(not rest.strip() for rest in lines[number:]):
                break  # torn write at the end: drop it
            raise RunError(f"{path}: line {number} is not valid JSON; the ledger is corrupt (delete the line or re-run with --overwrite)") from None
        if is_last:
            break  # a complete JSON object without its newline is still a torn write
        records.append(record)
        good_end = end
    if repair and good_end != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return records


def _without(data: dict[str, Any], volatile: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with the dotted `volatile` keys removed (the run's identity)."""
    out = json.loads(canonical_json(data))
    for dotted in volatile:
        *parents, last = dotted.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def is_error_record(record: dict[str, Any]) -> bool:
    """A ledger record of an item that ended in error (retried on the next run by default)."""
    return record.get("status") == "error"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def check_folder(folder: Path, config: dict[str, Any], volatile: Sequence[str] = ()) -> tuple[str, dict[str, Any] | None]:
    """`(config hash, snapshot)` of resuming `config` in `folder`; RunError if it holds another config.

    Writes nothing (a dry run uses it). The snapshot is None when the folder holds no run yet.
    """
    folder = Path(folder)
    digest = config_hash(_without(config, volatile))
    config_path = folder / CONFIG_FILE
    if not config_path.exists():
        return digest, None
    try:
        old = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise RunError(f"{config_path}: unreadable config snapshot; use --overwrite to start this run again") from None
    if not isinstance(old, dict):
        raise RunError(f"{config_path}: not a config mapping; use --overwrite to start this run again")
    old_hash = config_hash(_without(old, volatile))
    if old_hash != digest:
        a, b = _flatten(_without(old, volatile)), _flatten(_without(config, volatile))
        diff = sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
        shown = ", ".join(diff[:6]) + (" ..." if len(diff) > 6 else "")
        raise RunError(
            f"{folder}: holds a run with a different config (hash {old_hash} vs {digest}; differs in: {shown}); "
            "use --overwrite to replace it or choose another output folder"
        )
    return digest, old


@dataclass
class Run:
    """An open run folder. Use `Run.open`; then `append` finished items and write results."""

    dir: Path
    config: dict[str, Any]
    config_hash: str
    stage: str
    shard: tuple[int, int] | None = None
    retry_errors: bool = True
    retried: int = 0  # error items dropped from the ledger on open (pending again)
    _records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _done: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def open(
        cls,
        folder: Path | str,
        config: BaseModel | dict[str, Any],
        *,
        stage: str = "",
        overwrite: bool = False,
        shard: tuple[int, int] | None = None,
        retry_errors: bool | None = None,
        volatile: Sequence[str] = (),
    ) -> "Run":
        """Create or resume the run in `folder` for exactly this config.

        Args:
            retry_errors: drop items that ended in error from the ledger so they run again
                (default: yes, unless the environment sets `VLMLAB_KEEP_ERRORS=1`).
            volatile: dotted keys of `config` that do not change results (server address,
                timeout, ...): left out of the config hash, so changing them resumes the run.
        """
        folder = Path(folder)
        data = config.model_dump(mode="json") if isinstance(config, BaseModel) else json.loads(canonical_json(config))
        config_path = folder / CONFIG_FILE
        if config_path.exists() and not overwrite:
            digest, old = check_folder(folder, data, volatile)
            if old != data and (shard is None or shard[0] == 0):
                atomic_write_text(config_path, dump_yaml(data))  # only volatile keys changed: record the new ones
        else:
            digest = config_hash(_without(data, volatile))
            if overwrite and folder.exists() and (shard is None or shard[0] == 0):
                shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if not config_path.exists():
            atomic_write_text(config_path, dump_yaml(data))
            atomic_write_json(folder / RUN_FILE, {"stage": stage, "config_hash": digest, "vlmlab": __version__, "status": "running"})
        if retry_errors is None:
            retry_errors = os.environ.get(KEEP_ERRORS_ENV, "") not in ("1", "true", "yes")
        run = cls(dir=folder, config=data, config_hash=digest, stage=stage, shard=shard, retry_errors=retry_errors)
        run._load()
        return run

    # ledger -------------------------------------------------------------------------------
    @property
    def ledger_path(self) -> Path:
        if self.shard is None:
            return self.dir / LEDGER_FILE
        return self.dir / f"ledger.rank{self.shard[0]}.jsonl"

    def _load(self) -> None:
        records = read_ledger(self.ledger_path, repair=True)
        if self.shard is not None:
            records = read_ledger(self.dir / LEDGER_FILE) + records
        for number, record in enumerate(records, start=1):
            if record.get("config_hash") != self.config_hash:
                raise RunError(f"{self.ledger_path}: line {number} was written by another config ({record.get('config_hash')}); use --overwrite")
        if self.retry_errors and any(is_error_record(r) for r in records):
            kept = [r for r in records if not is_error_record(r)]
            self.retried = len(records) - len(kept)
            records = kept
            own = [r for r in read_ledger(self.ledger_path) if not is_error_record(r)]
            atomic_write_text(self.ledger_path, "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in own))
        self._records = records
        self._done = {str(r["id"]) for r in records}

    def done_ids(self) -> set[str]:
        return set(self._done)

    def records(self) -> list[dict[str, Any]]:
        """Ledger records in the order they were written (item fields plus `id`, `config_hash`)."""
        return list(self._records)

    def pending(self, items: Iterable[Any], key: Any = lambda item: item.id) -> list[Any]:
        """The items not yet in the ledger, in their original order."""
        return [item for item in items if str(key(item)) not in self._done]

    def append(self, item_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Append one finished item: one JSON line, flushed and fsynced before returning."""
        item_id = str(item_id)
        if item_id in self._done:
            raise ValueError(f"item {item_id!r} is already in {self.ledger_path}")
        line = {"id": item_id, "config_hash": self.config_hash, **{k: v for k, v in record.items() if k not in ("id", "config_hash")}}
        text = json.dumps(line, ensure_ascii=False, sort_keys=False, default=_json_default) + "\n"
        with open(self.ledger_path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        self._records.append(line)
        self._done.add(item_id)
        return line

    def merge_shards(self, order: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Join `ledger.rank*.jsonl` into `ledger.jsonl` (in `order` of ids when given) and remove the shards."""
        records = read_ledger(self.dir / LEDGER_FILE)
        shards = sorted(self.dir.glob("ledger.rank*.jsonl"))
        for shard in shards:
            records += read_ledger(shard)
        by_id: dict[str, dict[str, Any]] = {}
        for record in records:
            by_id[str(record["id"])] = record  # a retried item's later record replaces its error
        ids = [str(i) for i in order if str(i) in by_id] if order is not None else list(by_id)
        text = "".join(json.dumps(by_id[i], ensure_ascii=False, default=_json_default) + "\n" for i in ids)
        atomic_write_text(self.dir / LEDGER_FILE, text)
        for shard in shards:
            shard.unlink()
        self.shard = None
        self._load()
        return self.records()

    # outputs ------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.dir / name

    def write_json(self, name: str, obj: Any) -> Path:
        atomic_write_json(self.dir / name, obj)
        return self.dir / name

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        return self.write_json(METRICS_FILE, metrics)

    def write_report(self, markdown: str) -> Path:
        atomic_write_text(self.dir / REPORT_FILE, markdown if markdown.endswith("\n") else markdown + "\n")
        return self.dir / REPORT_FILE

    def finish(self, status: str = "complete", **summary: Any) -> None:
        """Record the run's final status (`complete`, `degraded`, `failed`) in run.json."""
        info = read_run_info(self.dir)
        info.update({"status": status, **summary})
        atomic_write_json(self.dir / RUN_FILE, info)


def read_run_info(folder: Path) -> dict[str, Any]:
    path = Path(folder) / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise RunError(f"{path}: not valid JSON; re-run the stage with --overwrite") from None


def find_runs(root: Path) -> list[Path]:
    """Every run folder (one holding config.yaml and run.json) under `root`, sorted."""
    root = Path(root)
    if not root.exists():
        raise RunError(f"{root}: no such folder")
    found = {p.parent for p in root.rglob(RUN_FILE) if (p.parent / CONFIG_FILE).exists()}
    return sorted(found)


def _check_config_file(path: Path) -> None:
    """A run's config.yaml must be a YAML mapping: a damaged one is an error, not shown as fine."""
    from vlmlab.config import read_yaml
    from vlmlab.errors import ConfigError

    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        raise RunError(f"{exc}; the run folder is damaged: re-run its stage with --overwrite") from None
    if not raw:
        raise RunError(f"{path}: empty; the run folder is damaged: re-run its stage with --overwrite")


def summarize_run(folder: Path) -> dict[str, Any]:
    """What `vlmlab runs list/show` print about one run folder."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).exists():
        raise RunError(f"{folder}: not a run folder (no {CONFIG_FILE}); pass a folder written by a vlmlab stage")
    _check_config_file(folder / CONFIG_FILE)
    info = read_run_info(folder)
    records = read_ledger(folder / LEDGER_FILE)
    for shard in sorted(folder.glob("ledger.rank*.jsonl")):
        records += read_ledger(shard)
    statuses: dict[str, int] = {}
    for record in records:
        status = str(record.get("status", "ok"))
        statuses[status] = statuses.get(status, 0) + 1
    metrics_path = folder / METRICS_FILE
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    except ValueError:
        raise RunError(f"{metrics_path}: not valid JSON; re-run the stage to rewrite it") from None
    return {
        "dir": str(folder),
        "stage": info.get("stage", ""),
        "config_hash": info.get("config_hash", ""),
        "status": info.get("status", "unknown"),
        "error": info.get("error"),  # why a `failed` run failed (e.g. its model did not load)
        "items": len(records),
        "item_status": statuses,
        "metrics": metrics,
        "report": str(folder / REPORT_FILE) if (folder / REPORT_FILE).exists() else None,
    }
