"""The stand-in for the public IDC bucket: ``idc-open-data`` with four synthetic series.

The server calls :func:`ensure_public_bucket` once at start-up (in a thread, after moto
is ready). The series are generated on first use and cached on disk under the user's
cache directory (``~/.cache/hi_async/public-data/<version>/``), so later starts and test
runs only read them back; when that directory is not writable the data directory is
used instead. Generation is deterministic, so a cache is only ever a speed-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..aws.s3_access import MotoS3
from .synthetic import PUBLIC_SERIES, SeriesSpec, generate_series

PUBLIC_BUCKET = "idc-open-data"
#: Bump when the synthetic generator changes its output, so old caches are not reused.
GENERATOR_VERSION = "1"
_COMPLETE = ".complete"


def cache_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the generated series live: the user cache dir, else the data dir."""
    candidates = [Path.home() / ".cache" / "hi_async" / "public-data" / GENERATOR_VERSION]
    if data_dir is not None:
        candidates.append(Path(data_dir) / "public-data" / GENERATOR_VERSION)
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise OSError(f"cannot write a public-data cache under any of {candidates}; "
                  "give the local stack a writable --data-dir")


def series_files(spec: SeriesSpec, root: Path) -> list[Path]:
    """The series' files in the cache, generating them first if they are not there."""
    folder = root / spec.folder
    if not (folder / _COMPLETE).exists():
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}-", dir=root))
        try:
            for name, data in generate_series(spec):
                (staging / name).write_bytes(data)
            (staging / _COMPLETE).write_text(GENERATOR_VERSION)
            if folder.exists():  # an interrupted earlier attempt
                shutil.rmtree(folder, ignore_errors=True)
            try:
                staging.rename(folder)
            except OSError:
                if not (folder / _COMPLETE).exists():  # not a concurrent winner: real error
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")


def ensure_public_bucket(data_dir: str | os.PathLike[str] | None = None, *,
                         s3: MotoS3 | None = None) -> int:
    """Create ``idc-open-data`` in moto and fill it; returns the number of objects put."""
    s3 = s3 or MotoS3()
    root = cache_root(data_dir)
    s3.create_bucket(PUBLIC_BUCKET)
    present = {o.key for o in s3.list(PUBLIC_BUCKET, "")}
    put = 0
    for spec in PUBLIC_SERIES.values():
        for path in series_files(spec, root):
            key = f"{spec.folder}/{path.name}"
            if key not in present:
                s3.write(PUBLIC_BUCKET, key, path.read_bytes())
                put += 1
    return put
