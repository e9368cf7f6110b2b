"""Durable state of one account/region: a SQLite catalogue plus one file per frame.

The backend keeps every catalogue record in memory and writes it through here, so reads
(including the GetImageFrame hot path) never query SQLite; metadata documents and frame
bytes stay on disk because they can be large. One connection, guarded by the backend's
lock, serves all threads (the server loop, moto's CloudFormation thread, test seeding).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS metadata (
    image_set_id TEXT NOT NULL, version INTEGER NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (image_set_id, version));
CREATE TABLE IF NOT EXISTS frames (
    image_set_id TEXT NOT NULL, frame_id TEXT NOT NULL, content_type TEXT NOT NULL,
    path TEXT NOT NULL, PRIMARY KEY (image_set_id, frame_id));
"""


class Store:
    """SQLite catalogue at ``root/catalogue.sqlite`` and frames under ``root/frames``."""

    def __init__(self, root: Path, *, cache_bytes: int = 0) -> None:
        self.root = root
        self.frames_dir = root / "frames"
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "catalogue.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (nested uses join the outer one)."""
        if self._depth == 0:
            self._db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    # -- catalogue records -------------------------------------------------------------
    def put(self, kind: str, record_id: str, body: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                         (kind, record_id, json.dumps(body)))

    def delete(self, kind: str, record_id: str) -> None:
        self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, record_id))

    def load(self, kind: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT body FROM records WHERE kind = ?", (kind,))
        return [json.loads(body) for (body,) in rows]

    # -- metadata documents (gzip bytes, one per image set version) ---------------------
    def put_metadata(self, image_set_id: str, version: int, doc_gz: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO metadata VALUES (?, ?, ?)",
                         (image_set_id, version, doc_gz))

    def get_metadata(self, image_set_id: str, version: int) -> bytes | None:
        row = self._db.execute(
            "SELECT doc FROM metadata WHERE image_set_id = ? AND version = ?",
            (image_set_id, version)).fetchone()
        return None if row is None else bytes(row[0])

    # -- frames -------------------------------------------------------------------------
    def write_frame(self, frame_id: str, data: bytes) -> str:
        """Write a frame file (atomically) and return its path relative to the store."""
        rel = f"{frame_id[:2]}/{frame_id}"
        path = self.frames_dir / rel
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return rel

    def put_frame(self, image_set_id: str, frame_id: str, content_type: str, rel: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO frames VALUES (?, ?, ?, ?)",
                         (image_set_id, frame_id, content_type, rel))

    def load_frames(self) -> list[tuple[str, str, str, str]]:
        query = "SELECT image_set_id, frame_id, content_type, path FROM frames"
        return list(self._db.execute(query))

    def read_frame(self, rel: str) -> bytes:
        data = self._cache.get(rel)
        if data is not None:
            return data
        with open(self.frames_dir / rel, "rb") as fh:
            data = fh.read()
        if self._cache_limit and len(data) <= self._cache_limit // 4:
            self._cache[rel] = data
            self._cache_bytes += len(data)
            while self._cache_bytes > self._cache_limit:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)
        return data

    def clear(self) -> None:
        """Forget everything (the reset control route)."""
        with self.transaction():
            for table in ("records", "metadata", "frames"):
                self._db.execute(f"DELETE FROM {table}")
        self._cache.clear()
        self._cache_bytes = 0
        for sub in self.frames_dir.iterdir():
            if sub.is_dir():
                for f in sub.iterdir():
                    f.unlink(missing_ok=True)
                sub.rmdir()
