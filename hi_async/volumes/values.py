"""Read DICOM values as the image set metadata document spells them. Pure.

The document's conventions (see the HealthImaging reference page): IS and DS values are
strings that may carry the DICOM pad space (``"2.5 "``); US/SS values are numbers; a
multi-valued attribute is an array, but one with a single value is that value alone; an
empty value is ``null``; a sequence is an array of keyword objects. Files written by
other tools sometimes keep the backslash-joined form (``"1\\0\\0"``), so that is read too.

Each reader returns None for "absent or unreadable" rather than raising: whether a
missing value matters (no geometry at all) or not (no window) is the planner's call,
and the planner turns it into a note that names the attribute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Attrs = Mapping[str, Any]


def _items(value: Any) -> list[Any]:
    """A value as a list of its items (a backslash string splits into its values)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.split("\\")]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def _number(item: Any) -> float | None:
    if isinstance(item, bool) or item is None:
        return None
    if isinstance(item, int | float):
        number = float(item)
    elif isinstance(item, str):
        try:
            number = float(item.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def floats(value: Any, count: int | None = None) -> tuple[float, ...] | None:
    """All values as floats, or None when any is unreadable or the count is wrong."""
    items = _items(value)
    if not items:
        return None
    numbers = [_number(item) for item in items]
    if any(n is None for n in numbers):
        return None
    if count is not None and len(numbers) != count:
        return None
    return tuple(n for n in numbers if n is not None)


def first_float(value: Any) -> float | None:
    """The first value as a float (WindowCenter may hold several; the first is the default)."""
    items = _items(value)
    return _number(items[0]) if items else None


def first_int(value: Any) -> int | None:
    """The first value as an int (IS strings such as ``"3 "`` included)."""
    number = first_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def text(value: Any) -> str | None:
    """A string value without its pad; the first one of a multi-valued attribute."""
    items = _items(value) if not isinstance(value, str) else [value]
    if not items or items[0] is None:
        return None
    result = str(items[0]).strip()
    return result or None


def texts(value: Any) -> tuple[str, ...]:
    """Every value of a code string such as ImageType, upper-cased, pads removed."""
    return tuple(str(item).strip().upper() for item in _items(value) if item is not None)


def dicom_time(value: Any) -> float | None:
    """A TM value (``HHMMSS.FFFFFF``, parts optional) as seconds since midnight."""
    raw = text(value)
    if raw is None:
        return None
    raw = raw.replace(":", "")  # an old ACR-NEMA form some devices still write
    whole, _, fraction = raw.partition(".")
    if not whole.isdigit() or len(whole) % 2 or len(whole) > 6:
        return None
    parts = [int(whole[i:i + 2]) for i in range(0, len(whole), 2)] + [0, 0]
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    if fraction:
        if not fraction.isdigit():
            return None
        seconds += int(fraction) / 10 ** len(fraction)
    return float(seconds)


def item(value: Any) -> Attrs | None:
    """The first item of a sequence (functional group macros hold exactly one)."""
    if isinstance(value, Mapping):
        return value  # tolerate a sequence written as its only item
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        first = value[0]
        if isinstance(first, Mapping):
            return first
    return None


def sequence(value: Any) -> list[Attrs]:
    """Every item of a sequence that is an object; anything else is no sequence."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [entry for entry in value if isinstance(entry, Mapping)]
    return []
