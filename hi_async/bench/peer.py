"""AWS's C++ batch frame retriever (``ahi-retrieve``) as a column of the benchmark.

The peer reads image set metadata documents from files and writes every frame of them,
decoded (``-f raw``) or as served (``-f jph``), to ``./<DatastoreID>/<ImageSetID>/`` in
its working folder. It checks no CRC32 and can exit before its decode pool wrote the
last frame or two, so what counts is the files it left: frames/s is files written over
its wall time, start-up included as for every client here. Each format runs with 16 and
with 64 download threads, and the better run is kept (``peers.md``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from .clients import Target, client_env
from .proctree import process_cpu_seconds, run_measured
from .study import clients as boto_clients


def write_metadata(url: str, datastore_id: str, image_sets: list[str], folder: Path) -> list[Path]:
    """The decompressed GetImageSetMetadata document of each image set, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    _, mi = boto_clients(url)
    paths = []
    for image_set_id in image_sets:
        blob = mi.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id)
        path = folder / f"{image_set_id}.json"
        path.write_bytes(gzip.decompress(blob["imageSetMetadataBlob"].read()))
        paths.append(path)
    return paths


def _frames_in(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        doc = json.loads(path.read_bytes())
        total += sum(len(i.get("ImageFrames") or []) for s in doc["Study"]["Series"].values()
                     for i in s["Instances"].values())
    return total


def run(binary: Path, target: Target, metadata: list[Path], fmt: str, threads: int, *,
        decoders: int | None = None) -> dict[str, Any]:
    """One run of the peer; its measured result."""
    workdir = target.fresh_folder(f"peer-{fmt}-{threads}")
    cmd = [str(binary), "-e", target.url, "-f", fmt, "-c", str(threads)]
    if decoders is not None:  # else its own default (ten decode threads)
        cmd += ["-d", str(decoders)]
    for path in metadata:
        cmd += ["-i", str(path)]
    env = {**client_env(), "AWS_REGION": "us-east-1"}
    dirty = target.settle()
    cpu0 = process_cpu_seconds(target.server_pid)
    m = run_measured(cmd, env=env, cwd=workdir, count_descendants=False)
    server_cpu = process_cpu_seconds(target.server_pid) - cpu0
    suffix = ".raw" if fmt == "raw" else ".jph"
    files = [p for p in workdir.rglob(f"*{suffix}")]
    written = len(files)
    nbytes = sum(p.stat().st_size for p in files)
    dropped = target.retire(workdir)
    expected = _frames_in(metadata)
    return {
        "mode": "peer-cpp", "label": f"peer-{fmt}-c{threads}", "format": fmt,
        "config": {"latencyMs": target.latency_ms, "threads": threads, "decoders": decoders},
        "dirtyMBBefore": dirty, "cachedMBDropped": dropped,
        "frames": written, "expectedFrames": expected,
        # The peer checks nothing: its files are counted, none is verified.
        "verified": None,
        "returncode": m.returncode, "wallSeconds": round(m.seconds, 4),
        "cpuSeconds": round(m.cpu_seconds, 4),
        "cpuMsPerFrame": round(m.cpu_seconds * 1000 / written, 4) if written else None,
        "peakRssMB": round(m.peak_rss_bytes / 2**20, 1), "peakRssBytes": m.peak_rss_bytes,
        "bytesWritten": nbytes,
        "framesPerSecond": round(written / m.seconds, 1) if m.seconds else None,
        "emulator": {"cpuSeconds": round(server_cpu, 4),
                     "coreShare": round(server_cpu / m.seconds, 3) if m.seconds else None},
        "error": None if m.returncode == 0 else f"exit {m.returncode}: {m.stderr[-500:]}",
    }


def best(binary: Path, target: Target, metadata: list[Path], fmt: str, *,
         decoders: int | None = None) -> dict[str, Any]:
    """The better of 16 and 64 download threads (by frames/s), with both kept."""
    tries = [run(binary, target, metadata, fmt, threads, decoders=decoders)
             for threads in (16, 64)]
    chosen = max(tries, key=lambda r: r["framesPerSecond"] or 0.0)
    return {**chosen, "tries": [{k: t[k] for k in ("label", "frames", "framesPerSecond",
                                                   "wallSeconds", "cpuSeconds")}
                                for t in tries]}
