"""The backends of a running stack, one per account and region, and the current registry.

:func:`get_backend` is how code that knows only an account and a region (moto's
CloudFormation models, in moto's threads) reaches the backend of the stack running in
this process.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from . import ids
from .backend import Backend


class Registry:
    """The backends of one running stack, one per account and region, under one root."""

    def __init__(self, root: Path, **backend_options: Any) -> None:
        self.root = root
        self.options = backend_options
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str], Backend] = {}

    def get(self, account_id: str = ids.ACCOUNT_ID, region: str = ids.DEFAULT_REGION) -> Backend:
        key = (account_id, region)
        backend = self._backends.get(key)
        if backend is None:
            with self._lock:
                backend = self._backends.get(key)
                if backend is None:
                    root = self.root / "accounts" / account_id / region
                    backend = Backend(account_id, region, root, **self.options)
                    self._backends[key] = backend
        return backend

    def all(self) -> list[Backend]:
        with self._lock:
            return list(self._backends.values())

    def close(self) -> None:
        for backend in self.all():
            backend.close()


_current: Registry | None = None


def set_registry(registry: Registry | None) -> Registry | None:
    """Make ``registry`` the one :func:`get_backend` answers from; returns the previous one.

    A stack restores the previous registry when it stops, so a short-lived second stack
    in the same process (a test's) does not orphan the first.
    """
    global _current
    previous, _current = _current, registry
    return previous


def current_registry() -> Registry | None:
    return _current


def get_backend(account_id: str = ids.ACCOUNT_ID, region: str = ids.DEFAULT_REGION) -> Backend:
    """The backend of the running local stack for this account and region."""
    if _current is None:
        raise RuntimeError("no local stack is running in this process; start one first")
    return _current.get(account_id, region)
