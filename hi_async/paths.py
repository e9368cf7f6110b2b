"""Safe output paths from server-supplied IDs.

IDs come from the service (or from whoever answers at the endpoint) and end up in file
names, so each is checked against the service's pattern before it touches a path, and
every path built is proven to stay inside the output folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InvalidId, OutputError, ServiceError

_ID = re.compile(r"[0-9a-z]{32}")
_JOB_ID = re.compile(r"[0-9a-z]{1,32}")

EXTENSIONS = {"jph": ".jph", "npy": ".npy", "raw": ".raw"}
#: A DICOM UID as a file name: digits and dots, starting with a digit, so neither a
#: separator nor ``.``/``..``. 128 at most: longer UIDs than DICOM's 64 are imported with a
#: warning, and still make names every file system takes.
_UID_NAME = re.compile(r"[0-9][0-9.]{0,127}")


def is_service_id(value: object) -> bool:
    """Is ``value`` a HealthImaging ID (32 characters of ``[0-9a-z]``)?"""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_uid_name(value: object) -> bool:
    """Can ``value`` (a UID from the service) safely be a path component?"""
    return isinstance(value, str) and _UID_NAME.fullmatch(value) is not None


def check_id(value: object, what: str) -> str:
    """``value`` if it is a valid 32-character lower-case alphanumeric ID the *user* gave,
    else InvalidId (a usage error). IDs the service sent go to :func:`check_server_id`."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidId(
            f"{what} {value!r} is not valid",
            hint="HealthImaging IDs are 32 characters of 0-9 and a-z; copy it from the "
            "console or from 'aws medical-imaging list-datastores'",
        )
    return value


def check_server_id(value: object, what: str) -> str:
    """An ID the server sent; one that could not have come from HealthImaging is refused.

    Not the user's mistake, so not a usage error: the answer is not to be trusted, and
    the ID never reaches a path.
    """
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ServiceError(
            f"the service sent {what} {value!r}, which is not valid",
            hint="HealthImaging IDs are 32 characters of 0-9 and a-z; nothing was written "
            "for it. Check that --endpoint-url points at HealthImaging",
        )
    return value


def check_job_id(value: object) -> str:
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise InvalidId(
            f"import job ID {value!r} is not valid",
            hint="job IDs are 1 to 32 characters of 0-9 and a-z",
        )
    return value


def frame_path(out_dir: Path, image_set_id: str, frame_id: str, fmt: str) -> Path | None:
    """``out_dir/<imageSetId>/<imageFrameId>.<ext>``, or None for format ``none``.

    Both IDs must match the service's pattern (32 of ``[0-9a-z]``), which has no room for
    a separator or ``..``: the path cannot leave ``out_dir``, and no file system call is
    needed to prove it, which matters at thousands of frames a second.
    """
    if fmt == "none":
        return None
    check_id(image_set_id, "image set ID")
    check_id(frame_id, "image frame ID")
    return out_dir / image_set_id / (frame_id + EXTENSIONS[fmt])


def frame_file(out_dir: str, image_set_id: str, frame_id: str, fmt: str) -> str | None:
    """:func:`frame_path` as a string, built without pathlib (once per frame, thousands of
    times a second); ``out_dir`` is the output folder as a string."""
    if fmt == "none":
        return None
    check_id(image_set_id, "image set ID")
    check_id(frame_id, "image frame ID")
    return f"{out_dir}/{image_set_id}/{frame_id}{EXTENSIONS[fmt]}"


def ensure_inside(root: Path, path: Path) -> None:
    """Refuse any path that would leave ``root`` (belt and braces after ID checks)."""
    root_r = root.resolve()
    target = path.resolve()
    if target != root_r and root_r not in target.parents:
        raise OutputError(f"refusing to write {path}: it is outside the output folder {root}")


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output folder (or check it) and prove that it can be written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(
            f"output path {out_dir} exists and is not a folder",
            hint="pass --out a folder (new or existing), not a file",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".hi_async-write-test.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(
            f"output folder {out_dir} is not writable: {exc.strerror or exc}",
            hint="choose a folder you can write to with --out",
        ) from None
    return out_dir
