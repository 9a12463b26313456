"""Registries of evaluation tasks and metrics, looked up by name.

An unknown name is answered with the closest registered names (difflib), the way lm-evaluation-harness
does. This module stores names and objects; it knows nothing about models, data or scoring.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mmkit.exceptions import UsageError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table that refuses duplicates and suggests close names for unknown ones.

    Args:
        what: what the entries are ("task", "metric"), used in error messages.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T, *, replace: bool = False) -> T:
        """Register `item` under `name` (lower-case, no spaces)."""
        if not isinstance(name, str) or not name or name != name.strip() or " " in name:
            raise UsageError(f"a {self.what} name must be a non-empty word", received=name,
                             fix="use e.g. 'grounding' or 'acc@0.5'")
        if name in self._items and not replace:
            raise UsageError(f"a {self.what} named {name!r} is already registered", received=name,
                             fix="pick another name, or pass replace=True")
        self._items[name] = item
        return item

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda item: self.add(name, item, replace=replace)

    def get(self, name: str) -> T:
        """The entry called `name`; an unknown name raises `UsageError` naming the closest matches."""
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(str(name), list(self._items), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "no close match"
        raise UsageError(f"unknown {self.what} {name!r}: {hint}", received=name,
                         fix=f"Use one of {sorted(self._items)}")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
