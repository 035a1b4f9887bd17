"""Records <-> message bodies (the only module importing msgspec).

Jobs and results cross the broker as JSON, never pickle: anyone who can
write to the Redis could otherwise run code in every worker and in the
daemon. msgspec turns the frozen dataclasses into JSON-ready data and back,
checking every field's type on the way in, so a malformed message is one
``MessageError`` instead of a record that fails later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from feeds.errors import FeedsError

T = TypeVar("T")


class MessageError(FeedsError):
    """A message on the queue did not hold the record it should."""


def to_message(record: object) -> Any:
    """JSON-ready data (dicts, lists, strings, numbers) for a record of dataclasses."""
    return msgspec.to_builtins(record)


def from_message(data: object, kind: type[T], what: str) -> T:
    """The record of type ``kind`` that ``to_message`` made; MessageError if it is not one."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as e:
        raise MessageError(f"not a {kind.__name__}: {e}", subject=what) from e


def field_of(data: Mapping[str, Any], key: str, what: str) -> Any:
    """One field of a message body; MessageError when it is missing."""
    if not isinstance(data, Mapping) or key not in data:
        raise MessageError(f"no {key!r} in the message", subject=what)
    return data[key]
