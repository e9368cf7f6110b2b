"""Run each client mode as a subprocess and measure it the same way.

Every mode runs as its own process under :func:`proctree.run_measured` (wall time, CPU
of the process and its children, peak RSS of its whole tree), while the emulator's own
CPU is read from /proc before and after, so each result also says what the server spent
and how busy it was. hi_async runs exactly as a user runs it (``python -m hi_async
download``, start-up included); its summary.json supplies the per-stage statistics.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..durability import release_cached
from .firstconn import FirstConnection
from .proctree import Measured, meminfo_kb, process_cpu_seconds, run_measured
from .stages import analyse


def module_command(module: str, *args: str) -> list[str]:
    """The command that runs ``hi_async.bench.<module>`` as its own process."""
    return [sys.executable, "-m", f"hi_async.bench.{module}", *args]


#: Below this much free space a run's files are deleted at once, not kept to the end.
KEEP_OUTPUT_MIN_FREE = 8 * 2**30


@dataclass
class Target:
    """Where the clients point, and where they may write."""

    url: str
    server_pid: int
    workdir: Path
    latency_ms: float = 0.0
    _runs: int = 0

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def fresh_folder(self, label: str) -> Path:
        """A folder no run has used, for a run's output."""
        self._runs += 1
        folder = self.workdir / f"{label}.{self._runs}"
        folder.mkdir(parents=True)
        return folder

    def settle(self) -> float | None:
        """Write back what earlier runs left dirty in the page cache, before a run starts;
        how many MB there were (None where /proc/meminfo cannot be read).

        The C++ sample does not sync its files: a run of it leaves up to a gigabyte of
        dirty pages that the kernel writes back over the next half minute, on the same
        two cores and the same disk as the next run, and that hi_async's group commit
        (``syncfs``) would have to write back before its own batch is stable. Synced here,
        off the clock, every run starts on a clean page cache and pays only for its own
        files.
        """
        dirty = dirty_megabytes()
        os.sync()
        return dirty

    def retire(self, folder: Path) -> float | None:
        """Done with a run's files: they are kept until the bench ends (its temporary
        folder goes then), unless the disk is short of space, but not in the page cache;
        how many MB of page cache that gave back (None where /proc/meminfo cannot be
        read).

        Deleting thousands of files makes the next runs slower to create theirs: ext4
        skips inodes freed in the last minute (five, while their inode table is not yet
        written back) when it looks for a free one, and on a file system without a
        journal it checks each candidate (``recently_deleted``). Measured on this
        project's machine: a run of 2490 frames wrote ``.raw`` files at 349 frames/s
        after deleting the previous run's files, and at 540-600 without. Kept, every run
        (the C++ sample's too) creates its files on the same terms.

        Cached, though, a run's files would hold the memory the next run's need: the C++
        sample hands none of its pages back (hi_async hands back each batch's once it is
        stable), and on a machine whose memory must be found anew when it is not reused
        (``benchmarks/NOTES.md``, "Fresh page-cache pages") every later run would pay for
        the pages an earlier one kept. Written back and dropped here, off the clock.
        """
        before = meminfo_kb("Cached")
        if shutil.disk_usage(self.workdir).free < KEEP_OUTPUT_MIN_FREE:
            shutil.rmtree(folder, ignore_errors=True)  # their pages go with them
        else:
            os.sync()
            release_cached(str(p) for p in folder.rglob("*") if p.is_file())
        after = meminfo_kb("Cached")
        if before is None or after is None:
            return None
        return round(max(0, before - after) / 1024, 1)


def dirty_megabytes() -> float | None:
    """Dirty and under-writeback page cache, in MB (``/proc/meminfo``)."""
    kb = meminfo_kb("Dirty", "Writeback")
    return None if kb is None else round(kb / 1024, 1)


def client_env(uvloop: bool = True, frame_client: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "HI_ASYNC_"))}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
               HI_ASYNC_UVLOOP="1" if uvloop else "0")
    if frame_client is not None:
        env["HI_ASYNC_FRAME_CLIENT"] = frame_client
    return env


def _emulator(target: Target, cpu0: float, m: Measured, frames: int) -> dict[str, Any]:
    cpu = process_cpu_seconds(target.server_pid) - cpu0
    return {"cpuSeconds": round(cpu, 4),
            "cpuMsPerFrame": round(cpu * 1000 / frames, 4) if frames else None,
            # Share of one core over the client's run: the server is one event loop, so
            # it is the bottleneck only when this approaches 1.
            "coreShare": round(cpu / m.seconds, 3) if m.seconds else None}


def _common(m: Measured, frames: int, nbytes: int) -> dict[str, Any]:
    return {
        "returncode": m.returncode,
        "wallSeconds": round(m.seconds, 4),
        "cpuSeconds": round(m.cpu_seconds, 4),
        "cpuMsPerFrame": round(m.cpu_seconds * 1000 / frames, 4) if frames else None,
        "peakRssBytes": m.peak_rss_bytes,
        "peakRssMB": round(m.peak_rss_bytes / 2**20, 1),
        "bytes": nbytes,
    }


def _failed(m: Measured) -> str | None:
    if m.returncode == 0:
        return None
    tail = (m.stderr or m.stdout).strip().splitlines()[-5:]
    return f"exit {m.returncode}: " + " | ".join(tail)


def hi_async(target: Target, datastore_id: str, image_sets: list[str], fmt: str, *,
             label: str, workers: int | None = None, fetchers: int | None = None,
             decoders: int | None = None, pool: str | None = None, uvloop: bool = True,
             frame_client: str | None = None, keep: bool = False,
             dcm_syntax: str | None = None) -> dict[str, Any]:
    """``python -m hi_async download`` over ``image_sets``; the measured result."""
    out = target.fresh_folder(label)
    cmd = [sys.executable, "-m", "hi_async", "download", "--datastore-id", datastore_id,
           "--out", str(out), "--format", fmt, "--quiet", "--no-resume",
           "--endpoint-url", target.url, "--region", "us-east-1"]
    for image_set in image_sets:
        cmd += ["--image-set-id", image_set]
    for flag, value in (("--workers", workers), ("--fetchers", fetchers),
                        ("--decoders", decoders), ("--pool", pool), ("--dcm-syntax", dcm_syntax)):
        if value is not None:
            cmd += [flag, str(value)]
    dirty = target.settle()
    first = FirstConnection(target.port)
    cpu0 = process_cpu_seconds(target.server_pid)
    m = run_measured(cmd, env=client_env(uvloop, frame_client), watch=first,
                     count_descendants=pool == "process")
    emulator_cpu0 = cpu0
    summary: dict[str, Any] = {}
    if (out / "summary.json").exists():
        summary = json.loads((out / "summary.json").read_text())
    frames = int(summary.get("frames", 0))
    verified = int(summary.get("verified", 0))
    result = {
        "mode": "hi_async", "label": label, "format": fmt,
        "config": {"latencyMs": target.latency_ms, "workers": workers, "fetchers": fetchers,
                   "decoders": decoders, "pool": pool, "uvloop": uvloop,
                   "frameClient": frame_client or "default", "dcmSyntax": dcm_syntax},
        "outDir": str(out) if keep else None,
        "dirtyMBBefore": dirty,
        "frames": frames, "verified": verified, "retries": summary.get("retries"),
        **_common(m, frames, int(summary.get("bytes", 0))),
        "framesPerSecond": round(frames / m.seconds, 1) if m.seconds else None,
        "megabytesPerSecond": round(summary.get("bytes", 0) / 1e6 / m.seconds, 2),
        "pipelineSeconds": summary.get("seconds"),
        "pipelineFramesPerSecond": summary.get("framesPerSecond"),
        "startupSeconds": None if first.seconds is None else round(first.seconds, 4),
        "emulator": _emulator(target, emulator_cpu0, m, frames),
        "workers": summary.get("workers"),
        "stages": analyse(summary.get("stages"), summary.get("seconds"), frames=frames,
                          cpu_seconds=m.cpu_seconds, wall_seconds=m.seconds),
        "error": _failed(m),
    }
    if summary.get("dicom"):
        dicom = summary["dicom"]
        result["dicom"] = dicom
        result["instancesPerSecond"] = (round(dicom["instances"] / m.seconds, 1)
                                        if m.seconds else None)
    if not keep:
        result["cachedMBDropped"] = target.retire(out)
    return result


def sequential(target: Target, datastore_id: str, image_sets: list[str], *,
               per_set_limit: int | None) -> dict[str, Any]:
    """The AWS example's algorithm (:mod:`hi_async.bench.sequential_client`)."""
    cmd = module_command("sequential_client", "--endpoint-url", target.url,
                         "--datastore-id", datastore_id)
    for image_set in image_sets:
        cmd += ["--image-set-id", image_set]
    if per_set_limit is not None:
        cmd += ["--per-set-limit", str(per_set_limit)]
    cpu0 = process_cpu_seconds(target.server_pid)
    m = run_measured(cmd, env=client_env())
    doc: dict[str, Any] = {}
    if m.stdout.strip():
        doc = json.loads(m.stdout.strip().splitlines()[-1])
    frames, seconds = int(doc.get("frames", 0)), float(doc.get("seconds", 0.0))
    return {
        "mode": "sequential", "label": "sequential",
        "config": {"latencyMs": target.latency_ms, "perSetLimit": per_set_limit},
        "frames": frames, "verified": int(doc.get("verified", 0)),
        **_common(m, frames, int(doc.get("bytes", 0))),
        # Its own loop time, start-up excluded: the conservative choice for the ratio.
        "framesPerSecond": round(frames / seconds, 2) if seconds else None,
        "wallFramesPerSecond": round(frames / m.seconds, 2) if m.seconds else None,
        "megabytesPerSecond": round(doc.get("bytes", 0) / 1e6 / seconds, 3) if seconds else None,
        "emulator": _emulator(target, cpu0, m, frames),
        "error": _failed(m),
    }


def ceiling(jph_dir: Path, groups: dict[str, list[str]], *, decoders: int | None,
            pool: str | None) -> dict[str, Any]:
    """:mod:`hi_async.bench.decode_ceiling` on the frames a ``--format jph`` run saved."""
    cmd = module_command("decode_ceiling", "--dir", str(jph_dir))
    if decoders is not None:
        cmd += ["--decoders", str(decoders)]
    if pool is not None:
        cmd += ["--pool", pool]
    for name, ids in groups.items():
        cmd += ["--group", f"{name}={','.join(ids)}"]
    m = run_measured(cmd, env=client_env())
    doc: dict[str, Any] = {}
    if m.stdout.strip():
        doc = json.loads(m.stdout.strip().splitlines()[-1])
    all_ = doc.get("groups", {}).get("all", {})
    return {"mode": "ceiling", "label": "decode-ceiling", **doc,
            "frames": all_.get("frames", 0), "verified": all_.get("verified", 0),
            "processWallSeconds": round(m.seconds, 3), "peakRssMB":
            round(m.peak_rss_bytes / 2**20, 1), "error": _failed(m)}


def bare(jph_dir: Path, image_sets: list[str]) -> float | None:
    """CPU ms per frame of the bare decode + zlib.crc32 of these image sets' frames, as
    a ``--format jph`` run saved them (measured in a process of its own)."""
    cmd = module_command("decode_ceiling", "--dir", str(jph_dir), "--bare-only",
                         "--group", f"these={','.join(image_sets)}")
    doc = _json_result(run_measured(cmd, env=client_env()))
    if doc is None:
        return None
    value = doc.get("groups", {}).get("these", {}).get("bareCpuMsPerFrame")
    return float(value) if value is not None else None


def floor(target: Target, datastore_id: str, image_sets: list[str], *,
          lanes: int) -> dict[str, Any] | None:
    """The floor client's figures on these image sets (:mod:`hi_async.bench.floor_client`),
    or None when it failed."""
    args = ["--endpoint-url", target.url, "--datastore-id", datastore_id,
            "--lanes", str(lanes)]
    for image_set in image_sets:
        args += ["--image-set-id", image_set]
    return _json_result(run_measured(module_command("floor_client", *args), env=client_env()))


def _json_result(m: Measured) -> dict[str, Any] | None:
    """The JSON object a bench script printed last, or None when it failed."""
    if m.returncode != 0 or not m.stdout.strip():
        return None
    doc: dict[str, Any] = json.loads(m.stdout.strip().splitlines()[-1])
    return doc


def standalone(script: str, args: list[str]) -> dict[str, Any]:
    """One of the stand-alone benchmarks (its own stack); its JSON, folded in."""
    m = run_measured(module_command(script, *args), env=client_env())
    text = m.stdout.strip()
    start = text.find("{")
    try:
        doc = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        doc = {}
    return {"script": script, "args": args, "result": doc,
            "wallSeconds": round(m.seconds, 2), "error": _failed(m)}
