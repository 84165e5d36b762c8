"""YAML configs validated by strict pydantic models, `--set` overrides, and `matrix:` sweeps.

Every study config is a `StrictModel`: an unknown key (a typo such as `num_layer:`) is an error
naming the file, the key's dotted path and the closest valid key, and every problem in a file is
reported at once, before any model loads. A run is identified by `config_hash` of the fully
resolved config, so two runs with the same settings land in the same folder and resume.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any, Iterable, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

from vlmlab.errors import ConfigError
from vlmlab.registry import did_you_mean

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are validated on assignment,
    and a float given as inf or nan is an error (`--set finetune.learning_rate=inf` would
    otherwise pass validation and fail minutes later inside the optimiser)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)


SEED_MAX = 2**32 - 1  # numpy and torch seeds are unsigned 32-bit
# Upper bounds for integer keys of any study config, by key name: no VLM's context holds more
# new tokens, and a larger value only shows up as an out-of-memory error after the model loaded.
INT_MAX_BY_KEY = {"max_new_tokens": 32768}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may repeat; overriding is its purpose
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"duplicate key {key!r} (first on line {seen[key] + 1}); keep one of them",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """`yaml.safe_load` that refuses duplicate keys; raises `yaml.YAMLError` like it."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, bad YAML or a non-mapping is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({type(exc).__name__})") from None
    try:
        raw = load_yaml_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values, got {type(raw).__name__}")
    return raw


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b=c` into (["a", "b"], value) with the value parsed as YAML (so 3 is an int)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=2")
    key, _, value = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key; use dotted keys like model.dtype=bfloat16")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b=c` applied (list items addressed by index: models.0.dtype)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        keys, value = parse_override(item)
        set_dotted(out, keys, value, f"--set {item!r}")
    return out


def set_dotted(raw: dict[str, Any], keys: list[str], value: Any, source: str) -> None:
    """Set `raw[k1][k2]... = value` in place, creating sections; list items addressed by index."""
    node: Any = raw
    for depth, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, key, source)]
            continue
        if key not in node or node[key] is None:
            node[key] = {}
        node = node[key]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"{source}: {'.'.join(keys[: depth + 1])} is a value, not a section")
    last = keys[-1]
    if isinstance(node, list):
        node[_list_index(node, last, source)] = value
    else:
        node[last] = value


def _list_index(node: list, key: str, source: str) -> int:
    if not re.fullmatch(r"-?\d+", key) or not -len(node) <= int(key) < len(node):
        raise ConfigError(f"{source}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys at the parent of `loc`, for a "did you mean" hint."""
    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or cls is None:
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        cls = _model_in(field.annotation)
    if cls is None or not hasattr(cls, "model_fields"):
        return []
    return list(cls.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: pydantic.ValidationError, model: type[BaseModel], source: str) -> str:
    """All problems of one config in one line: `file: key a.b: problem; key c: problem`."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            close = did_you_mean(str(loc[-1]), allowed, cutoff=0.5)
            hint = f" ({close})" if close else (f" (valid keys: {', '.join(allowed)})" if allowed else "")
            problems.append(f"unknown key '{dotted}'{hint}")
        elif err["type"] == "missing":
            problems.append(f"missing required key '{dotted}'")
        else:
            got = err.get("input")
            got_text = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
            problems.append(f"key '{dotted}': {str(err['msg']).removeprefix('Value error, ')}{got_text}")
    return f"{source}: " + "; ".join(problems)


def validate_config(raw: dict[str, Any], model: type[M], source: str = "config") -> M:
    """Validate a mapping against `model`, turning pydantic's report into one ConfigError line."""
    try:
        config = model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, source)) from None
    problems = []
    for key, name, value in _int_keys(config.model_dump()):
        if (name == "seed" or name.endswith("_seed")) and not 0 <= value <= SEED_MAX:
            problems.append(f"key '{key}': a seed must be an integer from 0 to {SEED_MAX} (got {value})")
        elif name in INT_MAX_BY_KEY and value > INT_MAX_BY_KEY[name]:
            problems.append(f"key '{key}': at most {INT_MAX_BY_KEY[name]} (got {value})")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return config


def _int_keys(data: Any, prefix: str = "") -> Iterable[tuple[str, str, int]]:
    """(dotted key, last key name, value) of every integer in a dumped config."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        dotted = f"{prefix}{key}"
        if isinstance(value, (dict, list)):
            yield from _int_keys(value, dotted + ".")
        elif isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool):
            yield dotted, key, value


def load_config(path: Path | str, model: type[M], overrides: Iterable[str] = ()) -> M:
    """Read a YAML config, apply `--set` overrides and validate it strictly."""
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides)
    return validate_config(raw, model, str(path))


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: BaseModel | dict[str, Any]) -> str:
    """12 hex chars identifying a fully resolved config (field order does not matter)."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]


def dump_yaml(config: BaseModel | dict[str, Any]) -> str:
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def expand_matrix(raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Expand a `matrix:` block into one config per combination.

    `matrix: {model.name: [a, b], temperature: [0, 0.7], repeat: [0, 1]}` gives 8 configs, each the
    base config with those dotted keys set. Names are stable (`name=a,temperature=0.7,repeat=1` in the
    order the matrix lists its keys), so a re-run maps each combination to the same run folder.
    Without a matrix the config itself is returned once, named "".
    """
    base = {k: v for k, v in raw.items() if k != "matrix"}
    matrix = raw.get("matrix")
    if not matrix:
        return [("", base)]
    if not isinstance(matrix, dict):
        raise ConfigError("matrix: must map dotted keys to lists of values, e.g. matrix: {temperature: [0, 0.7]}")
    keys = list(matrix)
    values = []
    for key in keys:
        options = matrix[key]
        if not isinstance(options, list) or not options:
            raise ConfigError(f"matrix.{key}: must be a non-empty list of values")
        values.append(options)
    runs = []
    for combo in itertools.product(*values):
        config = copy.deepcopy(base)
        for key, value in zip(keys, combo):
            set_dotted(config, key.split("."), copy.deepcopy(value), f"matrix.{key}")
        name = ",".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in zip(keys, combo))
        runs.append((name, config))
    return runs


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:40]


def load_sweep(path: Path | str, model: type[M], overrides: Iterable[str] = ()) -> list[tuple[str, M]]:
    """Read a config with an optional `matrix:` block and validate every combination up front.

    Problems in any combination are reported together before anything runs.
    """
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides)
    out: list[tuple[str, M]] = []
    problems: list[str] = []
    for name, combo in expand_matrix(raw):
        try:
            out.append((name, validate_config(combo, model, f"{path}" + (f" [{name}]" if name else ""))))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(" | ".join(dict.fromkeys(problems)))
    return out
