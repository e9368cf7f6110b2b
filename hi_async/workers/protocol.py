"""Messages between a run and its worker processes: length-prefixed pickles on pipes.

The parent writes to a worker's stdin and reads its stdout; a worker sends nothing else
on that pipe (its own stdout is redirected to stderr). Each message is a 4-byte
big-endian length and a pickle. Frames travel as FrameRefs (the worker needs their
geometry and checksum); results come back as plain tuples, a few dozen bytes each.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import HiAsyncError
from ..model import FrameRef
from ..settings import Settings

if TYPE_CHECKING:  # pydicom and the volume code are imported only where they are used
    from ..dicom.assembly import DicomShard
    from ..volumes.buffer import SliceTarget

LENGTH = struct.Struct("!I")

#: One frame's result from a worker: (shard ID, index in the shard, status, content
#: type, actual CRC32, error, encoded bytes, path written, file size, file CRC32).
ResultItem = tuple[int, int, str, str | None, int | None, str | None, int, str | None,
                   int | None, int | None]


# Parent → worker.

@dataclass(frozen=True, slots=True)
class Start:
    """The first message: how to reach HealthImaging and how much to do at once."""

    settings: Settings
    #: The HealthImaging endpoint for the region (control plane) the parent resolved.
    endpoint_url: str
    #: Credentials that do not expire, or None: the worker finds its own in the chain.
    credentials: tuple[str, str, str | None] | None
    lanes: int
    decoders: int


@dataclass(frozen=True, slots=True)
class Assign:
    """A shard: frames to fetch, verify and write under ``out_dir`` in ``fmt``.

    ``targets`` (``--volume``): per frame, its slot in a volume's buffer file (or None), so
    that the worker writes the decoded frame there itself: pixels never cross the pipe.
    """

    shard_id: int
    out_dir: str | None
    fmt: str
    frames: tuple[FrameRef, ...]
    #: ``--volume``: per frame, its slot in a volume's buffer file (or None).
    targets: tuple[SliceTarget | None, ...] | None = None
    #: ``fmt == "dcm"``: what writing the shard's (whole) instances needs besides frames.
    dicom: DicomShard | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    """The send rate this worker may use now (its share of the run's), from ``epoch``."""

    rate: float
    epoch: int


# Worker → parent.

@dataclass(frozen=True, slots=True)
class Ready:
    pid: int


@dataclass(frozen=True, slots=True)
class Results:
    items: list[ResultItem]
    #: Requests sent again since the last Results, by cause; 429s met.
    retries: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    #: Requests per second this worker sends lately.
    sending: float = 0.0
    #: (shard ID, index) of the frames among ``items`` whose DICOM file carries a note.
    noted: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Throttled:
    """This worker cut its send rate after a 429 for a request sent in ``epoch``."""

    epoch: int
    sending: float


@dataclass(frozen=True, slots=True)
class Failed:
    """An error that stops the run that owns ``shard_id`` (or every run, if None)."""

    shard_id: int | None
    kind: str
    message: str
    hint: str | None

    def error(self) -> HiAsyncError:
        """The hi_async error the worker met, rebuilt in the parent."""
        from .. import errors

        cls = getattr(errors, self.kind, None)
        if not (isinstance(cls, type) and issubclass(cls, HiAsyncError)) or cls in (
                errors.FrameFailed,):
            cls = errors.HiAsyncError
        return cls(self.message, hint=self.hint)


def encode(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(data)) + data


def decode(data: bytes) -> Any:
    return pickle.loads(data)
