"""Where an instance's file goes, and writing it so that a file under its name is whole.

``DIR/<imageSetId>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``. The UIDs come from the
service (or from whatever answers at the endpoint) and become path components, so each is
checked first: DICOM UIDs are digits and dots (PS3.5 9.1), and a name made of those that
starts with a digit can be neither a separator nor ``.``/``..``, so the path cannot leave
``DIR`` and no file system call is needed to prove it.

The file is written to ``<name>.tmp`` beside its target and renamed into place, like the
frame files: after a crash at any moment there is either the whole file or a ``.tmp``
that a resume removes. It is not fsynced by default: the download makes batches durable
with one barrier (design, "Durability is a group commit").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info

from ..errors import OutputError
from ..paths import check_server_id, is_uid_name
from .errors import BadAttribute, UnsafeName
from .pixels import InstanceFrame, Syntax, with_pixel_data

SUFFIX = ".dcm"
_PREAMBLE = bytes(128)
TMP_SUFFIX = ".tmp"


def check_uid_name(value: object, what: str) -> str:
    """``value`` if it can be a path component: ``[0-9.]``, starting with a digit."""
    if not isinstance(value, str) or not is_uid_name(value):
        raise UnsafeName(f"{what} {value!r} is not a DICOM UID (digits and dots, starting "
                         "with a digit), so it cannot name a file",
                         hint="the instance was not written; the image set metadata holds a "
                         "malformed UID")
    return value


def instance_path(out_dir: Path, image_set_id: str, series_uid: str, sop_uid: str) -> Path:
    """``out_dir/<imageSetId>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, checked."""
    check_server_id(image_set_id, "image set ID")
    check_uid_name(series_uid, "SeriesInstanceUID")
    check_uid_name(sop_uid, "SOPInstanceUID")
    return Path(out_dir) / image_set_id / series_uid / (sop_uid + SUFFIX)


def write_instance(path: Path, dataset: Dataset, frames: Sequence[InstanceFrame],
                   syntax: Syntax = "stored", *, fsync: bool = False) -> Path:
    """Write ``dataset`` (from :func:`instance_dataset`) with ``frames`` as a DICOM Part 10
    file at ``path``, atomically; returns ``path``.

    Every frame must already be verified: nothing here checks a checksum. Raises
    :class:`~hi_async.errors.OutputError` when the file system refuses (disk full, no
    permission) and :class:`BadAttribute` when a value cannot be encoded.
    """
    return write_dataset_file(path, with_pixel_data(dataset, frames, syntax), fsync=fsync)


def write_dataset_file(path: Path, full: Dataset, *, fsync: bool = False) -> Path:
    """Write ``full`` (a dataset with its pixel data, from :func:`with_pixel_data`) as a
    DICOM Part 10 file at ``path``, atomically; returns ``path``. Errors as
    :func:`write_instance`'s."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            _write_part10(fh, full)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is None:
            # pydicom reports a value it cannot encode as an OSError without errno.
            raise BadAttribute(f"instance {full.get('SOPInstanceUID')} has a value that "
                               f"cannot be written: {exc}") from None
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}",
                              hint="check the free space and permissions of the output "
                              "folder") from None
        raise
    return path


def _write_part10(fh: BinaryIO, ds: Dataset) -> None:
    """Preamble, ``DICM``, File Meta Information (group length and version filled in, as
    PS3.10 7.1 requires), then the data set in Explicit VR Little Endian, which every
    syntax written here uses. pydicom's ``dcmwrite`` would do the same but refuses a
    transfer syntax it does not know (JPEG XL), so its two steps are called directly."""
    fp = DicomFileLike(fh)
    fp.is_implicit_VR, fp.is_little_endian = False, True
    fp.write(_PREAMBLE + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    write_dataset(fp, ds)
