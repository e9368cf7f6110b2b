"""Pagination of the List and Search operations: one page, and the token of the next."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TypeVar

from .apierrors import ValidationException

T = TypeVar("T")

MAX_RESULTS = 50


def paginate(items: Sequence[T], max_results: int | None, next_token: str | None,
             kind: str) -> tuple[list[T], str | None]:
    """One page of ``items`` and the opaque token of the next one (None at the end)."""
    if max_results is not None and not 1 <= max_results <= MAX_RESULTS:
        raise ValidationException(
            f"maxResults must be between 1 and {MAX_RESULTS}, got {max_results}")
    limit = max_results or MAX_RESULTS
    offset = 0
    if next_token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(next_token.encode()))
            if decoded["k"] != kind:
                raise ValueError(kind)
            offset = int(decoded["o"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationException(
                "nextToken is not a token this operation returned; start again without it"
            ) from exc
    page = list(items[offset:offset + limit])
    token = None
    if offset + limit < len(items):
        raw = json.dumps({"k": kind, "o": offset + limit}).encode()
        token = base64.urlsafe_b64encode(raw).decode()
    return page, token
