"""The decode ceiling: the same compressed frames, decoded and checked with no network.

Reads the frames a ``download --format jph`` run saved (their bytes exactly as served)
and its index.jsonl (rows, columns, dtype, expected CRC32), loads them into memory, and
runs them through the client's own decoder pool (``DecodePool`` running
``verify_frame``, format ``none``), keeping as many frames in flight as the pipeline does.
What this costs is what the pipeline cannot beat; its frames/s and CPU per frame are the
yardsticks.

CPU is this process (``time.process_time``, all threads) plus the pool's worker
processes (read from /proc while they still run). Also reported: one decode + CRC32 in
this process with no pool, the cost of the codec alone.

    python -m hi_async.bench.decode_ceiling --dir DIR [--decoders N] [--pool process|thread]
        [--group NAME=ID,ID,...] [--bare-only]

Prints one JSON object with one entry per group (and ``all``); with ``--bare-only``, only
the bare decode's CPU per frame of each group named (``all`` when none is), what the
bench measures in every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from hi_async import codecs
from hi_async.bench.proctree import tree_cpu_seconds
from hi_async.decodepool import DecodePool
from hi_async.model import Check, EncodedFrame, FrameRef


def _ref(entry: dict[str, Any]) -> FrameRef:
    """The FrameRef an index.jsonl entry describes (its dtype gives depth and sign)."""
    dtype = np.dtype(entry["dtype"])
    bits = 8 * dtype.itemsize
    return FrameRef(datastore_id="", image_set_id=entry["imageSetId"],
                    image_frame_id=entry["imageFrameId"],
                    study_instance_uid=entry["studyInstanceUid"],
                    series_instance_uid=entry["seriesInstanceUid"],
                    sop_instance_uid=entry["sopInstanceUid"], frame_number=entry["frameNumber"],
                    rows=entry["rows"], columns=entry["columns"],
                    samples_per_pixel=entry["samplesPerPixel"], bits_allocated=bits,
                    bits_stored=bits, signed=dtype.kind == "i", stored_transfer_syntax_uid="",
                    expected_crc32=entry["expectedCrc32"])


def load(out_dir: Path) -> dict[str, list[EncodedFrame]]:
    """Frames per image set, from the index of a ``--format jph`` download."""
    by_set: dict[str, list[EncodedFrame]] = {}
    for line in (out_dir / "index.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        if e["status"] != "verified" or not e.get("path"):
            raise SystemExit(f"frame {e['imageFrameId']} was not saved verified; "
                             "run the jph download again")
        data = (out_dir / e["path"]).read_bytes()
        by_set.setdefault(e["imageSetId"], []).append(EncodedFrame(_ref(e), data, e["contentType"]))
    return by_set


async def through_pool(pool: DecodePool, jobs: list[EncodedFrame], in_flight: int) -> int:
    """Run every job with ``in_flight`` outstanding; the number verified."""
    verified = 0
    it = iter(jobs)

    async def lane() -> None:
        nonlocal verified
        for job in it:
            outcome = await pool.run(job, path=None, fmt="none")
            verified += outcome.check is Check.VERIFIED

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return verified


def pure_cpu_ms(jobs: list[EncodedFrame]) -> float:
    """CPU ms per frame of decode + CRC32 alone, in this thread (no pool, no pickling)."""
    t0 = time.thread_time()
    for job in jobs:
        ref = job.ref
        codecs.crc32(codecs.decode(job.data, job.content_type, ref.rows, ref.columns,
                                   ref.samples_per_pixel, ref.dtype))
    return (time.thread_time() - t0) * 1000 / max(1, len(jobs))


_BARE_DECODERS = {"image/jph": "htj2k_decode", "image/jphc": "htj2k_decode",
                  "image/j2c": "jpeg2k_decode", "image/jpeg": "jpeg8_decode"}


def bare_cpu_ms(jobs: list[EncodedFrame]) -> float:
    """CPU ms per frame of the plainest client there is, single-threaded: imagecodecs'
    decoder for the frame's content type, then ``zlib.crc32`` of the pixels. This is the
    yardstick client CPU per verified frame is measured against."""
    t0 = time.thread_time()
    for job in jobs:
        name = _BARE_DECODERS.get((job.content_type or "").split(";")[0].strip())
        pixels = getattr(imagecodecs, name)(job.data) if name else np.frombuffer(job.data,
                                                                                 np.uint8)
        zlib.crc32(np.ascontiguousarray(pixels).data)
    return (time.thread_time() - t0) * 1000 / max(1, len(jobs))


async def measure(groups: dict[str, list[EncodedFrame]], decoders: int, kind: str,
                  depths: list[int]) -> dict[str, dict[str, Any]]:
    """Per depth (jobs in flight), per group: frames/s and CPU per frame."""
    pool = DecodePool(kind, decoders)
    try:
        await pool.warm_up()
        # One pass over a few frames so caches and the workers' imports are warm.
        warm = [j for jobs in groups.values() for j in jobs[:decoders * 2]]
        await through_pool(pool, warm, max(depths))
        return {str(depth): await _groups(pool, groups, depth) for depth in depths}
    finally:
        await pool.aclose()


async def _groups(pool: DecodePool, groups: dict[str, list[EncodedFrame]], in_flight: int
                  ) -> dict[str, Any]:
    me = os.getpid()
    out: dict[str, Any] = {}
    for name, jobs in groups.items():
        cpu0, kids0 = time.process_time(), tree_cpu_seconds(me)
        t0 = time.perf_counter()
        verified = await through_pool(pool, jobs, in_flight)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0 + tree_cpu_seconds(me) - kids0
        nbytes = sum(len(j.data) for j in jobs)
        out[name] = {
            "frames": len(jobs), "verified": verified, "bytes": nbytes,
            "seconds": round(seconds, 4),
            "framesPerSecond": round(len(jobs) / seconds, 1) if seconds else None,
            "megabytesPerSecond": round(nbytes / 1e6 / seconds, 2) if seconds else None,
            "cpuSeconds": round(cpu, 4),
            "cpuMsPerFrame": round(cpu * 1000 / max(1, len(jobs)), 4),
            "pureDecodeCpuMsPerFrame": round(pure_cpu_ms(jobs), 4),
            "bareCpuMsPerFrame": round(bare_cpu_ms(jobs), 4),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--decoders", type=int, default=os.cpu_count() or 1)
    p.add_argument("--pool", choices=["process", "thread"], default="process")
    p.add_argument("--in-flight", type=int, action="append", default=None,
                   help="jobs outstanding at once, repeatable (default: two per decoder, as "
                   "the pipeline keeps, and eight per decoder); the best is the ceiling")
    p.add_argument("--group", action="append", default=[], metavar="NAME=ID,ID",
                   help="report these image sets together (repeatable); 'all' is added")
    p.add_argument("--bare-only", action="store_true",
                   help="measure only the bare decode + zlib.crc32 of each group")
    args = p.parse_args(argv)
    by_set = load(args.dir)
    groups: dict[str, list[EncodedFrame]] = {}
    for spec in args.group:
        name, _, ids = spec.partition("=")
        groups[name] = [j for i in ids.split(",") if i for j in by_set.get(i, [])]
    everything = [j for jobs in by_set.values() for j in jobs]
    if args.bare_only:  # the groups asked for only: 'all' would decode every frame again
        groups = groups or {"all": everything}
        json.dump({"groups": {name: {"frames": len(jobs),
                                     "bareCpuMsPerFrame": round(bare_cpu_ms(jobs), 4)}
                              for name, jobs in groups.items()}}, sys.stdout)
        print()
        return 0
    groups["all"] = everything
    depths = args.in_flight or [args.decoders * 2, args.decoders * 8]
    by_depth = asyncio.run(measure(groups, args.decoders, args.pool, depths))
    best = max(by_depth, key=lambda d: by_depth[d]["all"]["framesPerSecond"] or 0)
    json.dump({"decoders": args.decoders, "pool": args.pool, "inFlight": int(best),
               "groups": by_depth[best], "byInFlight": by_depth}, sys.stdout)
    print()
    ok = all(g["verified"] == g["frames"] for r in by_depth.values() for g in r.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
