"""How the command line reports volumes: one line of counts, and what a user must know."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def count_line(volumes: Sequence[dict[str, Any]]) -> str:
    """``volumes: 3 written, 1 kept, 1 incomplete, 2 notes; 3 previews, 1 with warnings``."""
    status = Counter(v["status"] for v in volumes)
    parts = [f"{status[s]} {s}" for s in ("written", "kept", "incomplete") if status[s]]
    if status["note"]:
        parts.append(f"{status['note']} note{'s' if status['note'] > 1 else ''}")
    line = "volumes: " + (", ".join(parts) or "none")
    previews = sum(1 for v in volumes if v["preview"] and v["status"] in ("written", "kept"))
    warned = sum(1 for v in volumes if v["warnings"])
    extra = []
    if previews:
        extra.append(f"{previews} preview{'s' if previews > 1 else ''}")
    if warned:
        extra.append(f"{warned} with warnings")
    return line + ("; " + ", ".join(extra) if extra else "") + " (details in summary.json)"


def notes(volumes: Sequence[dict[str, Any]], limit: int = 20) -> list[str]:
    """One line per volume not written and per series without a volume (for stderr)."""
    lines = [f"volume: image set {v['imageSetId']}: {v['note']}" for v in volumes
             if v["note"]]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more (see summary.json)"]
    return lines
