"""The record of what a run created, kept in the output folder so clean-up can finish later.

Every resource is recorded *before* the call that creates it returns to the workflow (the
stack name before CreateStack, the import job right after StartDICOMImportJob), so an
interrupt at any moment leaves a state file that names everything that may exist. Writes
are atomic (temp file, fsync, rename): a crash never leaves a torn state file.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError, UsageError

STATE_FILE = "hi_async-state.json"
_VERSION = 1


@dataclass
class RunState:
    """Resources a workflow run created, and where to reach them."""

    run_id: str
    #: "embedded" (a local stack this run started), "endpoint" (a stack the user runs at
    #: endpoint_url), or "aws".
    mode: str
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    #: Data folder of the embedded local stack, so clean-up can start it again.
    local_data_dir: str | None = None
    stack_name: str | None = None
    stack_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: study name → {"jobId": ..., "imageSetIds": [...], "copied": n}
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: "deploying" | "running" | "done" (workflow finished, resources still there) |
    #: "cleaning" | "cleaned"
    phase: str = "deploying"

    @property
    def datastore_id(self) -> str | None:
        return self.outputs.get("DatastoreId")

    @property
    def buckets(self) -> list[str]:
        return [b for b in (self.outputs.get("InputBucketName"),
                            self.outputs.get("OutputBucketName")) if b]

    def image_set_ids(self) -> list[str]:
        ids: list[str] = []
        for study in self.studies.values():
            ids.extend(i for i in study.get("imageSetIds", []) if i not in ids)
        return ids

    def describe(self) -> list[str]:
        """What may exist, as lines for the user."""
        where = {"aws": f"AWS ({self.region})", "endpoint": f"the stack at {self.endpoint_url}",
                 "embedded": f"the embedded local stack (data in {self.local_data_dir})"}
        lines = [f"run {self.run_id} on {where.get(self.mode, self.mode)}:"]
        if self.stack_name:
            lines.append(f"  CloudFormation stack {self.stack_name}")
        if self.datastore_id:
            lines.append(f"  HealthImaging data store {self.datastore_id}")
        for bucket in self.buckets:
            lines.append(f"  S3 bucket {bucket}")
        n = len(self.image_set_ids())
        if n:
            lines.append(f"  {n} image set(s)")
        for name, study in self.studies.items():
            if study.get("jobId"):
                lines.append(f"  import job {study['jobId']} ({name})")
        return lines


class StateFile:
    """A :class:`RunState` bound to its file; ``save()`` after every change."""

    def __init__(self, out_dir: Path, state: RunState) -> None:
        self.path = Path(out_dir) / STATE_FILE
        self.state = state
        self._lock = threading.Lock()

    def save(self) -> None:
        data = {"version": _VERSION, **asdict(self.state)}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2, sort_keys=True)
                    fh.write("\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                raise OutputError(f"cannot write the state file {self.path}: {exc}",
                                  hint="check that the output folder is writable") from exc

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.save()

    @classmethod
    def load(cls, out_dir: Path) -> StateFile:
        path = Path(out_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise UsageError(f"no state file in {out_dir} ({STATE_FILE} is missing)",
                             hint="pass the --out folder of the run to clean up") from exc
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the state file {path}: {exc}") from exc
        if data.pop("version", None) != _VERSION:
            raise UsageError(f"{path} was written by another version of hi_async")
        known = RunState.__dataclass_fields__
        return cls(Path(out_dir), RunState(**{k: v for k, v in data.items() if k in known}))
