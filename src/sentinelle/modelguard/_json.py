"""Bounded JSON parsing for model headers, metadata strings, configs and sidecars."""

from __future__ import annotations

import json
from typing import Any

from .errors import ModelFileError


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value`` (iterative; stops early past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            items = v.values() if isinstance(v, dict) else v
            stack.extend((c, d + 1) for c in items if isinstance(c, dict | list))
    return deepest


def loads_bounded(
    data: bytes | str, *, max_depth: int, what: str, format: str | None, walk: bool = True
) -> Any:
    """Parse JSON text; any failure is a :class:`ModelFileError` (``bad_header`` /
    ``json_too_deep``), never a ``RecursionError`` or a crash. ``walk=False`` skips the
    ``max_depth`` walk (for callers that check the shape of every value themselves)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as e:
        raise ModelFileError(
            f"{what} is not UTF-8 ({e.reason})", "bad_header", format=format
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise ModelFileError(
            f"{what} is JSON nested deeper than {max_depth} levels", "json_too_deep", format=format
        ) from None
    except ValueError as e:  # JSONDecodeError, and ints past the digit limit
        raise ModelFileError(
            f"{what} is not valid JSON: {e}", "bad_header", format=format
        ) from None
    if walk and _depth(value, max_depth) > max_depth:
        raise ModelFileError(
            f"{what} is JSON nested deeper than {max_depth} levels", "json_too_deep", format=format
        )
    return value
