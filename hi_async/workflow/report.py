"""The run's report: one row per study and a total, printed and written as summary.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"


@dataclass
class StudyReport:
    """What happened to one study, filled in stage by stage."""

    name: str
    instances_copied: int = 0
    import_job_id: str | None = None
    import_failures: list[dict[str, Any]] = field(default_factory=list)
    #: WARNING records: imported, but with a non-conformance (not a failure of the run).
    import_warnings: list[dict[str, Any]] = field(default_factory=list)
    image_sets: int = 0
    frames: int = 0
    verified: int = 0
    failed: int = 0
    unverifiable: int = 0
    bytes: int = 0
    #: From the start of its copy to its last frame.
    seconds: float = 0.0
    #: ``--volume``/``--preview``: the download's volume entries, paths relative to the
    #: run's folder (None: no volumes asked for).
    volumes: list[dict[str, Any]] | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["framesPerSecond"] = round(self.frames_per_second, 1)
        data["seconds"] = round(self.seconds, 3)
        if data["volumes"] is None:
            del data["volumes"]  # the run assembled no volumes
        return data


@dataclass
class RunReport:
    """All studies of a run, and the wall time of the whole run."""

    run_id: str
    studies: list[StudyReport]
    seconds: float = 0.0
    cleaned_up: bool = False
    interrupted: bool = False

    def total(self) -> StudyReport:
        t = StudyReport("total", seconds=self.seconds)
        for s in self.studies:
            t.instances_copied += s.instances_copied
            t.image_sets += s.image_sets
            t.frames += s.frames
            t.verified += s.verified
            t.failed += s.failed
            t.unverifiable += s.unverifiable
            t.bytes += s.bytes
            t.import_failures.extend(s.import_failures)
            t.import_warnings.extend(s.import_warnings)
        return t

    @property
    def ok(self) -> bool:
        """Every frame verified, none failed, at least one frame, no file refused."""
        t = self.total()
        return t.frames > 0 and t.verified == t.frames and not t.import_failures

    def rows(self) -> list[tuple[str, ...]]:
        """The table's heading, one row per study and the total, as text cells."""
        head = ("study", "instances", "image sets", "frames", "verified", "failed", "MB",
                "seconds", "frames/s")
        rows: list[tuple[str, ...]] = [head]
        for s in [*self.studies, self.total()]:
            rows.append((s.name, str(s.instances_copied), str(s.image_sets), str(s.frames),
                         str(s.verified), str(s.failed), f"{s.bytes / 1e6:.1f}",
                         f"{s.seconds:.1f}", f"{s.frames_per_second:.1f}"))
        return rows

    def table(self) -> str:
        rows = self.rows()
        head = rows[0]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

        def fmt(r: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True)))

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([fmt(rows[0]), rule, *map(fmt, rows[1:-1]), rule, fmt(rows[-1])])

    def failures_text(self) -> list[str]:
        lines = []
        for s in self.studies:
            for f in s.import_failures:
                exc = f.get("exception", {})
                lines.append(f"{s.name}: {f.get('inputFile')} was not imported: "
                             f"{exc.get('exceptionType')}: {exc.get('message')}")
        return lines

    def warnings_text(self) -> list[str]:
        """One line per warning of every file imported with warnings."""
        lines = []
        for s in self.studies:
            for record in s.import_warnings:
                answer = record.get("importResponse") or {}
                for w in answer.get("warnings") or record.get("warnings") or [{}]:
                    code = w.get("warning_reason_code")
                    code_text = f"0x{code:04X} " if isinstance(code, int) else ""
                    lines.append(f"{s.name}: {record.get('inputFile')} was imported with a "
                                 f"warning: {code_text}{w.get('type')}: {w.get('message')}")
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "seconds": round(self.seconds, 3), "ok": self.ok,
                "cleanedUp": self.cleaned_up, "interrupted": self.interrupted,
                "studies": [s.as_json() for s in self.studies],
                "total": self.total().as_json()}

    def write(self, out_dir: Path) -> Path:
        """Write summary.json atomically into ``out_dir``."""
        path = Path(out_dir) / SUMMARY_FILE
        tmp = path.with_name(f".{SUMMARY_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path
