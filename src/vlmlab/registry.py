"""Tables of the names users type (samplers, selector versions, embedders, toy datasets, ...).

One helper for all of them, in the spirit of lm-evaluation-harness's registry, so that every such
table behaves alike:

- lazy: an entry may be a `"package.module:attribute"` string, imported on first `get`, so listing
  or checking names never imports a heavy module;
- a duplicate name is an error when it is registered (two entries never shadow each other);
- an unknown name is one error line with a "did you mean" (`did_you_mean`, also used where names
  are checked outside a registry, e.g. config keys).

Each registry keeps the wording of its own error (tests and users rely on it) through `unknown`,
which receives the name, the hint ("did you mean 'x'?" or "") and the registered names.

Example::

    SELECTORS = Registry("selector version")
    SELECTORS.register_lazy("v1", "vlmlab.icl.selectors.pointer:PointerSelector")
    model = SELECTORS.get("v1")(config)      # "v11" -> ConfigError: ...; did you mean 'v1'?
"""

from __future__ import annotations

import difflib
import importlib
from typing import Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from vlmlab.errors import ConfigError

T = TypeVar("T")

UnknownMessage = Callable[[str, str, tuple[str, ...]], str]
"""(name, hint, registered names) -> the one-line error for an unknown name."""


def closest(name: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice most like `name` (difflib's ratio at least `cutoff`), or None."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.6,
                 show: Callable[[str], str] | None = None) -> str:
    """`"did you mean 'x'?"` for the choice closest to `name`, or "" when none is close.

    The caller places it in its own sentence, e.g. `f"unknown sampler {name!r}; {hint}"`. `show`
    maps the closest choice to the name the hint names, where names are matched in another form
    than they are written (caption metrics: matched lower-cased, suggested as `CIDEr`).
    """
    found = closest(name, choices, cutoff=cutoff)
    if found is None:
        return ""
    return f"did you mean {(show(found) if show is not None else found)!r}?"


class _Lazy:
    """A `"module:attribute"` reference, imported when first needed."""

    def __init__(self, target: str) -> None:
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"a lazy registry entry is 'package.module:attribute', got {target!r}")
        self.module, self.attribute = module, attribute

    def load(self) -> object:
        return getattr(importlib.import_module(self.module), self.attribute)


class Registry(Generic[T]):
    """Names users type, in registration order, each mapped to what it stands for.

    Args:
        what: what a name names, for the default error ("unknown sampler 'x'; ...").
        entries: the first entries (name -> target), registered in their order.
        error: the exception an unknown name raises (`ConfigError`; `ValueError` inside pydantic
            validators, which turn it into a config error naming the key).
        unknown: builds the error message; default `"unknown {what} 'x'; did you mean 'y'?"`, or
            `"...; choose one of a, b"` when no name is close.
        cutoff: how alike (difflib's ratio) a name must be to be suggested.
        duplicate_error: the exception registering a name twice raises (a programming error:
            `ValueError`; `ModelError` where users register names, e.g. models).
    """

    def __init__(self, what: str, entries: Mapping[str, T] | None = None, *, error: type[Exception] = ConfigError,
                 unknown: UnknownMessage | None = None, cutoff: float = 0.6,
                 duplicate_error: type[Exception] = ValueError) -> None:
        self.what = what
        self.error = error
        self.duplicate_error = duplicate_error
        self.cutoff = cutoff
        self._unknown = unknown
        self._entries: dict[str, object] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    @classmethod
    def of_names(cls, what: str, names: Iterable[str], *, error: type[Exception] = ConfigError,
                 unknown: UnknownMessage | None = None, cutoff: float = 0.6) -> "Registry[str]":
        """A registry whose entries are just the names (for names that only need checking)."""
        return Registry(what, {name: name for name in names}, error=error, unknown=unknown, cutoff=cutoff)

    def register(self, name: str, target: T) -> T:
        """Add `name` -> `target`; a name already registered is an error (`duplicate_error`)."""
        if name in self._entries:
            raise self.duplicate_error(f"{self.what} {name!r} is already registered")
        self._entries[name] = target
        return target

    def register_lazy(self, name: str, target: str) -> None:
        """Add `name` -> the object at `"package.module:attribute"`, imported on first `get`."""
        self.register(name, _Lazy(target))  # type: ignore[arg-type]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # an unhashable value (a YAML list, say) is simply not a name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"

    def hint(self, name: str) -> str:
        """The `did_you_mean` hint for `name` among the registered names ("" when none is close)."""
        return did_you_mean(name, self._entries, cutoff=self.cutoff)

    def check(self, name: str) -> str:
        """`name` if it is registered (nothing is imported), else the registry's error."""
        if name not in self:
            hint, names = self.hint(name), self.names()
            if self._unknown is not None:
                message = self._unknown(name, hint, names)
            else:
                message = f"unknown {self.what} {name!r}; {hint or 'choose one of ' + ', '.join(names)}"
            raise self.error(message)
        return name

    def get(self, name: str) -> T:
        """What `name` stands for (a lazy entry is imported now, once); an unknown name is an error."""
        entry = self._entries[self.check(name)]
        if isinstance(entry, _Lazy):
            entry = self._entries[name] = entry.load()
        return entry  # type: ignore[return-value]
