"""How the shared stores (sqlite, redis) turn a record into bytes and back: pickle, with two shortcuts.

A create pickles half a dozen records (the generation, the team, a ledger row, a rate bucket …), and in CPython
most of that time goes to two things every record holds: a datetime's ``timezone.utc`` (reduced through its
constructor's arguments on every call, ~3.7 µs) and the generic reduction of a slotted dataclass (a state dict
built from its slot names). The pickler here writes UTC as a reference to :func:`_utc`, and a plain slotted
dataclass as its class and field values, rebuilt by its own ``__init__``; everything else pickles as it always
does. Blobs written before load unchanged: only the writing side differs.

Pickle runs code when it loads: the stores use it only for their own keys and files (see their docstrings).
"""

from __future__ import annotations

import copyreg
import dataclasses
import io
import operator
import pickle
from collections.abc import Callable
from datetime import UTC, timezone
from typing import Any

PROTOCOL = pickle.HIGHEST_PROTOCOL
Reduction = Callable[[Any], Any]


def _utc() -> timezone:
    """``datetime.UTC`` (a blob refers to this function instead of rebuilding the zone from its offset).

    Stored blobs (sqlite files, Redis) name it as ``mockserver.store._pickle._utc``: keep it under that name.
    """
    return UTC


def _reduce_timezone(zone: timezone) -> Any:
    return (_utc, ()) if zone is UTC else zone.__reduce_ex__(PROTOCOL)


def _dataclass_reduction(cls: type) -> Reduction | None:
    """``obj → (cls, field values)`` for a slotted dataclass whose generated ``__init__`` takes every field
    positionally and does nothing else, and whose instances hold nothing but those fields; None for any other class
    (it pickles the usual way)."""
    if "__dataclass_fields__" not in cls.__dict__ or not cls.__dataclass_params__.init:  # type: ignore[attr-defined]
        return None
    if hasattr(cls, "__post_init__"):
        return None
    fields = dataclasses.fields(cls)
    if not fields or any(not field.init or field.kw_only for field in fields):
        return None
    slots: set[str] = set()
    for klass in cls.__mro__[:-1]:  # every class but object: all slotted (no __dict__), holding the fields only
        if "__slots__" not in klass.__dict__ or "__reduce__" in klass.__dict__ or "__reduce_ex__" in klass.__dict__:
            return None
        declared = klass.__dict__["__slots__"]
        slots.update((declared,) if isinstance(declared, str) else declared)
    if slots != {field.name for field in fields}:
        return None
    if len(fields) == 1:
        name = fields[0].name
        return lambda obj: (cls, (getattr(obj, name),))
    values = operator.attrgetter(*(field.name for field in fields))
    return lambda obj: (cls, values(obj))


class _Reductions(dict[type, Reduction]):
    """The pickler's dispatch table: each type's reduction, chosen the first time the type is met."""

    def __missing__(self, cls: type) -> Reduction:
        if issubclass(cls, type):
            raise KeyError(cls)  # a class itself pickles by reference, the pickler's own way
        reduction = copyreg.dispatch_table.get(cls) or _dataclass_reduction(cls)
        if reduction is None:
            reduction = operator.methodcaller("__reduce_ex__", PROTOCOL)  # what the pickler does by default
        self[cls] = reduction
        return reduction


class _Pickler(pickle.Pickler):
    dispatch_table = _Reductions({timezone: _reduce_timezone})


def dump(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, PROTOCOL).dump(value)
    return buffer.getvalue()


def load(blob: bytes) -> Any:
    return pickle.loads(blob)  # the stores' own keys and files only: see the module docstring
