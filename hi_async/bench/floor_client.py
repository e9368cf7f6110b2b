"""The floor: the least client CPU a verified frame costs when fetched with hi_async's own
parts and nothing around them.

One process and one event loop (uvloop when installed) run ``--lanes`` lanes, each taking
the next frame, fetching it on the lean data plane (keep-alive connections, SigV4 on
each request: :class:`hi_async.aws.dataplane.LeanDataPlane`) and decoding it and checking
its CRC32 at once, where it arrived (:func:`hi_async.verify.verify_frame`). Nothing else:
no retries, no worker processes, no results, journal, progress or summary.

Two figures come from it. Its CPU per frame over the bare decode + ``zlib.crc32`` is
what fetching over HTTP, interleaved with the decodes, costs any client built this way;
hi_async's own CPU per frame over this one is what the rest costs (its worker processes
and their parent, retries, results and the journal).

    python -m hi_async.bench.floor_client --endpoint-url URL --datastore-id ID
        --image-set-id ID [--image-set-id ID ...] [--lanes N] [--passes N]

Credentials come from the environment. Prints one JSON object: frames, verified,
cpuMsPerFrame (this process's CPU over the measured passes, after one warm pass that
opens the connections), framesPerSecond.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio

from hi_async.aws.credentials import CredentialSource
from hi_async.aws.dataplane import LeanDataPlane
from hi_async.aws.errors import ApiError, Unreachable
from hi_async.bench.args import add_target
from hi_async.errors import HiAsyncError
from hi_async.event_loop import run_sync
from hi_async.metadata import parse_metadata
from hi_async.model import Check, EncodedFrame, FrameRef
from hi_async.settings import Settings
from hi_async.verify import verify_frame


async def _pass(plane: LeanDataPlane, refs: list[FrameRef], lanes: int) -> int:
    """Every frame fetched, decoded and checked once; how many were verified."""
    verified = 0
    frames = iter(refs)

    async def lane() -> None:
        nonlocal verified
        for ref in frames:
            data, content_type = await plane.get_frame(ref.datastore_id, ref.image_set_id,
                                                       ref.image_frame_id)
            outcome = verify_frame(EncodedFrame(ref, data, content_type), path=None,
                                   fmt="none")
            verified += outcome.check is Check.VERIFIED

    async with anyio.create_task_group() as tg:
        for _ in range(lanes):
            tg.start_soon(lane)
    return verified


async def measure(settings: Settings, datastore_id: str, image_sets: list[str], *,
                  lanes: int, passes: int) -> dict[str, Any]:
    """The floor's figures over ``passes`` passes of every frame of ``image_sets``."""
    assert settings.endpoint_url is not None and settings.region is not None
    credentials = CredentialSource(settings)
    credentials.resolve()
    async with LeanDataPlane(settings, settings.endpoint_url, settings.region, credentials,
                             lanes) as plane:
        refs: list[FrameRef] = []
        for image_set in image_sets:
            blob = await plane.get_metadata(datastore_id, image_set)
            refs += parse_metadata(blob, datastore_id, image_set)
        await _pass(plane, refs, lanes)  # connections opened, caches warm
        cpu0, t0 = time.process_time(), time.perf_counter()
        verified = 0
        for _ in range(passes):
            verified += await _pass(plane, refs, lanes)
        cpu, seconds = time.process_time() - cpu0, time.perf_counter() - t0
    frames = len(refs) * passes
    return {"frames": frames, "verified": verified, "lanes": lanes,
            "cpuMsPerFrame": round(cpu * 1000 / frames, 4) if frames else None,
            "framesPerSecond": round(frames / seconds, 1) if seconds else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target(p)
    p.add_argument("--lanes", type=int, default=32,
                   help="frames in flight (default 32: what each of two worker processes "
                   "runs with hi_async's default 64 fetchers)")
    p.add_argument("--passes", type=int, default=1, help="measured passes over the frames")
    args = p.parse_args(argv)
    settings = Settings(endpoint_url=args.endpoint_url, region=args.region)
    try:
        result = run_sync(lambda: measure(settings, args.datastore_id, args.image_set_id,
                                          lanes=args.lanes, passes=args.passes), settings)
    except (HiAsyncError, ApiError, Unreachable, OSError) as exc:
        # No retries here by design: the first failed request ends the measurement.
        print(f"floor client: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout)
    print()
    return 0 if result["verified"] == result["frames"] else 1


if __name__ == "__main__":
    sys.exit(main())
