"""Configuration of the local stack: where it listens, where state lives, realism knobs.

Knob names are the ``local serve`` flag names without dashes, so the same names work on
the command line, in ``POST /_hi_async/faults`` and in :class:`Knobs` keyword arguments.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dicom_import.limits import IMPORT_MAX_BYTES, MAX_FRAME_BYTES, MAX_INSTANCE_BYTES
from .healthimaging.ids import ACCOUNT_ID

#: Seconds a data store spends CREATING (and DELETING) before it settles.
DEFAULT_DATASTORE_DELAY = 0.3
#: Seconds an image set stays LOCKED after an update, copy or delete before it settles.
DEFAULT_LOCK_DELAY = 0.0


def check_delay(name: str, value: object) -> float:
    """``value`` as a number of seconds; ValueError unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds, 0 or more, got {value}")
    return float(value)


#: How fast a dripping answer (``drip_rate``) trickles out.
DRIP_BYTES_PER_S = 100.0


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def byte_size(name: str, text: str) -> int:
    """``"1073741824"``, ``"1GiB"``, ``"512 MiB"``, ``"10GB"`` → bytes; ValueError otherwise."""
    found = _SIZE.fullmatch(str(text))
    if not found:
        raise ValueError(f"{name} must be a number of bytes such as 1073741824, 512MiB or "
                         f"10GB, got {text!r}")
    return int(float(found.group(1)) * _UNITS[(found.group(2) or "").lower()])


@dataclass(slots=True)
class Knobs:
    """Network realism and fault injection; every knob is off at its default."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_mbps: float = 0.0
    throttle_rps: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    corrupt_rate: float = 0.0
    #: Share of frame answers sent a byte at a time at :data:`DRIP_BYTES_PER_S`, the
    #: slow-drip server that only a client's minimum-rate deadline cuts.
    drip_rate: float = 0.0
    fault_seed: int | None = None

    def updated(self, changes: dict[str, Any]) -> Knobs:
        """A copy with ``changes`` applied; unknown names or bad values raise ValueError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown knob(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
        values = dataclasses.asdict(self)
        for key, value in changes.items():
            if key == "fault_seed":
                values[key] = None if value is None else int(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{key} must not be negative, got {value}")
            if key.endswith("_rate") and value > 1:
                raise ValueError(f"{key} is a share between 0 and 1, got {value}")
            values[key] = float(value)
        return Knobs(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class StackConfig:
    """Everything the server needs to start."""

    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path | None = None
    knobs: Knobs = field(default_factory=Knobs)
    verify_signatures: bool = False
    #: access key id → secret, used only with ``verify_signatures``.
    credentials: dict[str, str] = field(default_factory=lambda: {"test": "test"})
    #: access key id → HealthImaging operations refused to it with AccessDeniedException
    #: (a stand-in for an IAM policy), used only with ``verify_signatures``.
    denied: dict[str, frozenset[str]] = field(default_factory=dict)
    #: With ``verify_signatures``, ``Authorization: Bearer <this>`` opens the control
    #: routes (see :mod:`.control_access`); None: only signed requests do.
    control_token: str | None = field(default=None, repr=False)
    datastore_delay: float = DEFAULT_DATASTORE_DELAY
    lock_delay: float = DEFAULT_LOCK_DELAY
    account_id: str = ACCOUNT_ID
    #: An import job's input limit (the service's is 10 GB and cannot be raised); lower it
    #: to see how a job over the limit fails without uploading 10 GB.
    import_max_bytes: int = IMPORT_MAX_BYTES
    #: Decoded bytes one frame may have (the stack's own limit; see
    #: :mod:`.dicom_import.limits`).
    import_max_frame_bytes: int = MAX_FRAME_BYTES
    #: Decoded bytes of pixel data one instance may have, and what a deflated data set
    #: may inflate to (the stack's own limit).
    import_max_instance_bytes: int = MAX_INSTANCE_BYTES
    #: Bytes of memory each import worker may add to its start-up size; None: an equal
    #: share of the machine's memory; 0: no cap.
    import_worker_memory: int | None = None
    #: Bytes of frame data kept in memory to spare a file read per GetImageFrame.
    frame_cache_bytes: int = 256 * 1024 * 1024
    #: Act as an account never bootstrapped with ``cdk bootstrap``: no
    #: ``/cdk-bootstrap/hnb659fds/version`` parameter in SSM (see :mod:`.aws.ssm_bootstrap`).
    bare_account: bool = False

    def __post_init__(self) -> None:
        self.datastore_delay = check_delay("datastore_delay", self.datastore_delay)
        self.lock_delay = check_delay("lock_delay", self.lock_delay)
