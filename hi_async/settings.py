"""One typed, frozen settings object for the client side of hi_async.

This is the only module that reads environment variables of hi_async's own
(``HI_ASYNC_*``); botocore still reads the standard ``AWS_*`` ones itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

OutputFormat = Literal["jph", "npy", "raw", "dcm", "none"]
#: How ``dcm`` output holds the pixels: the frames as stored, or decoded.
DicomSyntax = Literal["stored", "native"]
PoolKind = Literal["process", "thread"]
FrameClientKind = Literal["lean", "sdk"]
#: ``--volume``: each series also assembled into a NIfTI or NumPy volume.
VolumeKind = Literal["nifti", "npy"]

#: The service caps inflated image set metadata at 50 MB; never inflate more than that.
METADATA_MAX_BYTES = 50 * 1024 * 1024
#: The slowest an answer may come, in bytes per second, by default (``Settings.min_rate``):
#: far below what a request gets even with 64 in flight on a 10 Mbit/s link, far above
#: a byte every few seconds.
MIN_RATE = 4096.0


def configured_endpoint_url(service: str) -> str | None:
    """The endpoint botocore takes for ``service`` from its own environment variables.

    ``AWS_ENDPOINT_URL_<SERVICE>`` (e.g. ``AWS_ENDPOINT_URL_MEDICAL_IMAGING``), else
    ``AWS_ENDPOINT_URL``; none when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true. Such
    an endpoint is as custom as ``--endpoint-url``: botocore would still prepend the
    data-plane host prefix (``runtime-``) to it, so callers must turn that off.
    """
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None
    own = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_").replace(" ", "_")
    return os.environ.get(own) or os.environ.get("AWS_ENDPOINT_URL") or None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _default_decoders() -> int:
    return usable_cores()


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the client needs; defaults are right for most users."""

    # AWS access (None means: the standard chain / botocore's defaults).
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    #: Explicit credentials (the local stack, tests); None means the standard chain.
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    # Concurrency.
    #: Worker processes that fetch, decode, verify and write frames, each with its own
    #: event loop, connections and decode threads. None: the usable cores (all in this
    #: process with the process decode pool or the SDK frame client). 1: all in this
    #: process.
    workers: int | None = None
    #: Requests in flight at most, over all workers.
    fetchers: int = 64
    #: Decode threads (shared out among the workers), or processes with ``pool="process"``.
    decoders: int = field(default_factory=_default_decoders)
    #: Decode workers are threads by default: OpenJPH and the CRC release the GIL, and no
    #: compressed frame is pickled to another process (benchmarks/NOTES.md compares them).
    pool: PoolKind = "thread"
    #: GetImageFrame through the lean HTTP client (default) or through aiobotocore.
    frame_client: FrameClientKind = "lean"
    metadata_fetchers: int = 8

    # Bounded hand-offs between stages (items, not bytes).
    queue_size: int = 256

    # Retries: attempts per request including the first; backoff base and cap (seconds).
    max_attempts: int = 8
    backoff_base: float = 0.05
    backoff_cap: float = 5.0
    #: A frame whose bytes fail the CRC32 (or fail to decode) is fetched again this many
    #: times before it is reported failed. With one re-fetch, 1 % corruption in transit
    #: still fails about one frame in 10,000 (1 % squared), which a 2000-frame run under
    #: the fault mix hit one run in five; two make it one in a million.
    mismatch_refetches: int = 2
    #: Seconds to wait for a connection.
    connect_timeout: float = 10.0
    #: Seconds an answer may go without a byte before the request is sent again.
    read_timeout: float = 60.0
    #: Bytes per second an answer must keep up: it must be whole within ``read_timeout``
    #: plus its size over this rate, or it is cut and sent again (a server that drips an
    #: answer a byte at a time never trips ``read_timeout`` alone).
    min_rate: float = MIN_RATE

    # Output.
    out_dir: Path | None = None
    output_format: OutputFormat = "jph"
    #: With ``output_format="dcm"``: the frames encapsulated as stored, or decoded
    #: (Explicit VR Little Endian) for readers of no compressed syntax.
    dcm_syntax: DicomSyntax = "stored"
    resume: bool = True
    #: On resume, decode every file already there and check its pixels' CRC32 too (not
    #: only the file's own size and checksum).
    verify_existing: bool = False
    #: Leave written frame files in the page cache (by default a batch's files are
    #: dropped from it once stable: a bulk download does not read them back).
    keep_page_cache: bool = False
    metadata_max_bytes: int = METADATA_MAX_BYTES
    #: Each series also as a volume (``DIR/<imageSetId>/volumes/``), in this format.
    volume: VolumeKind | None = None
    #: A preview PNG per volume (``DIR/<imageSetId>/previews/``).
    preview: bool = False

    # Behaviour.
    #: Run the event loop on uvloop when it is installed (benchmarks compare both).
    uvloop: bool = True

    @property
    def worker_processes(self) -> int:
        """Worker processes to start: 0 when frames are done in this process."""
        if self.pool == "process" or self.frame_client == "sdk":
            return 0  # both are ways of running in this process
        n = self.workers if self.workers is not None else usable_cores()
        return n if n > 1 else 0

    def check_cluster(self) -> None:
        """Refuse what a Ray cluster download does not do: its tasks write frame files;
        volumes, previews and DICOM files are assembled in one process."""
        from .errors import UsageError

        if self.assembles_volumes or self.output_format == "dcm":
            raise UsageError(
                "--ray downloads frame files: --volume, --preview and --format dcm are "
                "not made on a cluster",
                hint="leave --ray out for volumes, previews or DICOM files")

    @property
    def assembles_volumes(self) -> bool:
        """Series are assembled into volumes (for a volume file, a preview or both)."""
        return self.volume is not None or self.preview

    def lanes_per_worker(self, workers: int) -> int:
        """Frames each of ``workers`` worker processes keeps in flight: the fetchers
        shared out among them, at least four each."""
        return max(4, self.fetchers // workers)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def __post_init__(self) -> None:
        from .errors import UsageError

        if self.fetchers < 1:
            raise UsageError(f"fetchers must be at least 1, got {self.fetchers}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"workers must be at least 1, got {self.workers}",
                             hint="1 runs everything in this process")
        if self.decoders < 1:
            raise UsageError(f"decoders must be at least 1, got {self.decoders}")
        if self.queue_size < 1:
            raise UsageError(f"queue_size must be at least 1, got {self.queue_size}")
        if self.output_format not in ("jph", "npy", "raw", "dcm", "none"):
            raise UsageError(
                f"unknown output format {self.output_format!r}",
                hint="choose one of jph, npy, raw, dcm, none",
            )
        if self.volume not in (None, "nifti", "npy"):
            raise UsageError(f"unknown volume format {self.volume!r}", hint="choose nifti or npy")
        if self.dcm_syntax not in ("stored", "native"):
            raise UsageError(f"unknown DICOM syntax {self.dcm_syntax!r}",
                             hint="choose stored (the frames as stored) or native (decoded)")
        if self.output_format == "dcm" and self.assembles_volumes:
            raise UsageError(
                "volumes and previews are assembled from frames, not from DICOM files: "
                "--volume/--preview cannot be combined with --format dcm",
                hint="download the volumes (--format none --volume ...) and the DICOM files "
                "(--format dcm) into two output folders")
        if self.pool not in ("process", "thread"):
            raise UsageError(f"unknown pool kind {self.pool!r}", hint="choose process or thread")
        if self.frame_client not in ("lean", "sdk"):
            raise UsageError(f"unknown frame client {self.frame_client!r}",
                             hint="choose lean or sdk")
        if self.mismatch_refetches < 0:
            raise UsageError(f"mismatch_refetches must be 0 or more, got "
                             f"{self.mismatch_refetches}")
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("connect_timeout", "read_timeout", "min_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UsageError(f"{name} must be a number above 0, got {value!r}",
                                 hint=f"--{name.replace('_', '-')} takes a positive number")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``HI_ASYNC_*`` environment variables, then ``overrides``."""
        env: dict[str, Any] = {}
        ints = {"FETCHERS": "fetchers", "DECODERS": "decoders", "QUEUE_SIZE": "queue_size",
                "MAX_ATTEMPTS": "max_attempts", "WORKERS": "workers"}
        for var, name in ints.items():
            value = os.environ.get(f"HI_ASYNC_{var}")
            if value:
                try:
                    env[name] = int(value)
                except ValueError:
                    from .errors import UsageError

                    raise UsageError(f"HI_ASYNC_{var}={value!r} is not a whole number",
                                     hint=f"set HI_ASYNC_{var} to a number or unset it") from None
        if pool := os.environ.get("HI_ASYNC_POOL"):
            env["pool"] = pool
        if frame_client := os.environ.get("HI_ASYNC_FRAME_CLIENT"):
            env["frame_client"] = frame_client
        if uv := os.environ.get("HI_ASYNC_UVLOOP"):
            env["uvloop"] = uv.strip().lower() not in ("0", "false", "no", "off")
        # botocore's own endpoint variables count as a custom endpoint too (so that no
        # host prefix is added to it); hi_async's wins over them.
        if endpoint := (os.environ.get("HI_ASYNC_ENDPOINT_URL")
                        or configured_endpoint_url("medical-imaging")):
            env["endpoint_url"] = endpoint
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)
