"""The issue's fault mix: every frame still ends verified, and every retry is counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hi_async import Downloader
from hi_async.settings import Settings
from tests.local.helpers import seed_image_set

from .conftest import injected, leftovers

#: 5 % errors, 2 % drops, 1 % truncations, 1 % corruptions, 300 requests/s (issue 8).
ISSUE_MIX = {"error_rate": 0.05, "drop_rate": 0.02, "truncate_rate": 0.01,
             "corrupt_rate": 0.01, "throttle_rps": 300.0}


async def test_the_issue_fault_mix_ends_with_every_frame_verified(
        settings: Settings, backend: Any, local_stack: Any, faults: Any,
        tmp_path: Path) -> None:
    first = seed_image_set(backend, instances=20, frames=3)
    second = seed_image_set(backend, first.datastore_id, instances=20, frames=3)
    # The issue's kinds, the retried ones at higher rates so that 120 frames meet each of
    # them, and a throttle of 50 requests/s that even a slow machine's client outruns after
    # the bucket's first 50; the benchmark (benchmarks/faults.py) runs the issue's exact mix
    # over more frames.
    # A corrupted frame is fetched again (up to Settings.mismatch_refetches times).
    faults(**{**ISSUE_MIX, "error_rate": 0.15, "drop_rate": 0.05, "truncate_rate": 0.05,
              "throttle_rps": 50.0}, fault_seed=24)
    before = injected(local_stack)
    # Backoff as in real use (the fixture's is tiny): a throttled request must outwait the
    # bucket within its attempts.
    async with Downloader(settings.replace(fetchers=16, backoff_base=0.05, backoff_cap=1.0)) as dl:
        summary = await dl.download(first.datastore_id,
                                    image_set_ids=[first.image_set_id, second.image_set_id],
                                    out_dir=tmp_path)
        throttled = dl.retrier.throttled
    after = injected(local_stack)
    caused = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert (summary.frames, summary.verified, summary.failed) == (120, 120, 0)
    entries = [json.loads(x) for x in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert len(entries) == 120 and {e["status"] for e in entries} == {"verified"}
    # Every broken answer (5xx, drop, cut body, throttle) was re-sent and counted once.
    broken = caused.get("error", 0) + caused.get("drop", 0) + caused.get("truncate", 0)
    assert min(caused.get(k, 0) for k in ("error", "drop", "truncate", "corrupt")) > 0
    assert throttled > 0 and caused.get("throttle", 0) == throttled
    assert summary.retries >= broken + throttled
    assert json.loads((tmp_path / "summary.json").read_text())["retries"] == summary.retries
    assert not leftovers(tmp_path)
