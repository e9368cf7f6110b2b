"""Turn one run's measurements into ratios against the targets, a table and a JSON file.

Every derived number here is computed from measurements of the same run, so the noise
of a shared machine cancels as far as it can; a mode that did not run yields ``None``
and a ``skipped`` status, never a number from elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from .proctree import meminfo_kb

_PACKAGES = ("hi_async", "botocore", "aiobotocore", "boto3", "imagecodecs", "numpy", "uvloop",
             "anyio", "aiohttp", "matplotlib")

#: (key, description, target, "min" when the measurement must reach it, "max" when not exceed)
TARGETS = (
    ("rawVsPeer", "hi_async --format raw / C++ sample -f raw, frames/s at {peer} ms", 1.0,
     "min"),
    ("jphVsPeer", "hi_async --format jph / C++ sample -f jph (which decodes nothing), "
     "frames/s at {peer} ms", 1.0, "min"),
    ("jphVsPeerRaw", "hi_async --format jph / C++ sample -f raw (both decode every frame), "
     "frames/s at {peer} ms", 1.0, "min"),
    ("rawVsNone", "hi_async --format raw / --format none, frames/s at {peer} ms", 0.85, "min"),
    ("marginalCpuVsBare", "marginal client CPU per verified frame / bare decode + zlib.crc32, "
     "MR frames at {peer} ms", 1.3, "max"),
    ("speedupVsSequential", "hi_async / sequential frames/s at {lat} ms", 25.0, "min"),
    ("peakRssRatio", "peak RSS of the tree, 10x frames / 1x frames", 1.2, "max"),
    ("emulatorMaxCoreShare", "emulator CPU share of one core, busiest run", 0.9, "max"),
)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = meminfo_kb("MemTotal") or 0
    return {"cpuModel": model, "cores": os.cpu_count(), "memoryGB": round(mem_kb / 2**20, 1),
            "platform": platform.platform(), "loadAverage": list(os.getloadavg())}


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hi_async"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out["gitCommit"] = commit or None
        out["hiAsyncSourceModified"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        out["gitCommit"] = None
    return out


def median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median frames/s of one configuration's rounds (the lower middle
    of an even count), with each round's figures under ``rounds``."""
    ordered = sorted(results, key=lambda r: r.get("framesPerSecond") or 0.0)
    chosen = ordered[(len(ordered) - 1) // 2]
    keys = ("framesPerSecond", "cpuMsPerFrame", "wallSeconds", "frames", "verified",
            "dirtyMBBefore", "cachedMBDropped")
    return {**chosen, "rounds": [{k: r.get(k) for k in keys if k in r} for r in results]}


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` to three places, or None when either is missing (or ``b`` is zero)."""
    return round(a / b, 3) if a is not None and b else None


def round_ratios(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[float | None] | None:
    """frames/s of ``a`` over ``b`` in each round both ran (their ``rounds``, in order), or
    None when either has no rounds or their counts differ."""
    ra, rb = (a or {}).get("rounds"), (b or {}).get("rounds")
    if not ra or not rb or len(ra) != len(rb):
        return None
    return [ratio(x.get("framesPerSecond"), y.get("framesPerSecond"))
            for x, y in zip(ra, rb, strict=True)]


def marginal_cpu_ms(one: dict[str, Any] | None, ten: dict[str, Any] | None) -> float | None:
    """CPU ms per frame that the larger run spent beyond the smaller, per extra frame."""
    if not one or not ten or ten["frames"] <= one["frames"]:
        return None
    return (ten["cpuSeconds"] - one["cpuSeconds"]) * 1000 / (ten["frames"] - one["frames"])


def derive(runs: dict[str, Any], latency: float, peer_latency: float, *,
           marginal: list[dict[str, Any]] | None = None,
           file_probes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The headline ratios, each with its inputs, from the named runs of this run, the
    rounds of the marginal CPU measurement (``bench.main._marginal_round``) and what a
    frame file cost the file system in each round (``bench.file_cost.probe``)."""
    seq, none = runs.get("sequential"), runs.get("headline-none")
    one, ten, ceil = runs.get("mr-1x"), runs.get("mr-10x"), runs.get("ceiling")
    groups = (ceil or {}).get("groups", {})
    fps = {key: r.get("framesPerSecond") for key, r in runs.items() if isinstance(r, dict)}
    d: dict[str, Any] = {"latencyMs": latency, "peerLatencyMs": peer_latency}
    d["rawVsPeer"] = ratio(fps.get("fmt-raw"), fps.get("peer-raw"))
    d["jphVsPeer"] = ratio(fps.get("fmt-jph"), fps.get("peer-jph"))
    d["jphVsPeerRaw"] = ratio(fps.get("fmt-jph"), fps.get("peer-raw"))
    d["rawVsNone"] = ratio(fps.get("fmt-raw"), fps.get("fmt-none"))
    # The same ratios round by round: runs of one round ran minutes apart at most, so a
    # round whose file system or machine was slow shows as that round's ratio.
    d["rawVsNoneRounds"] = round_ratios(runs.get("fmt-raw"), runs.get("fmt-none"))
    d["rawVsPeerRounds"] = round_ratios(runs.get("fmt-raw"), runs.get("peer-raw"))
    d["dcmVsJph"] = ratio(fps.get("fmt-dcm"), fps.get("fmt-jph"))
    d["dcmInstancesPerSecond"] = _get(runs.get("fmt-dcm"), "instancesPerSecond")
    d["workersSpeedupRaw"] = ratio(fps.get("fmt-raw"), fps.get("fmt-raw-1w"))
    d["workersSpeedupNone"] = ratio(fps.get("fmt-none"), fps.get("fmt-none-1w"))
    d["speedupVsSequential"] = ratio(_get(none, "framesPerSecond"), _get(seq, "framesPerSecond"))
    d["sdkFrameClientSpeedupVsSequential"] = ratio(
        _get(runs.get("headline-none-sdk"), "framesPerSecond"), _get(seq, "framesPerSecond"))
    d["headlineFrames"] = _get(none, "frames")
    d["sequentialFrames"] = _get(seq, "frames")
    d["vsCeiling"] = ratio(_get(none, "framesPerSecond"), groups.get("all", {}).get(
        "framesPerSecond"))
    at_latency = marginal_cpu_ms(one, ten)
    mr = groups.get("mr", {})
    d["ceilingCpuMsPerFrameMr"] = mr.get("cpuMsPerFrame")
    d["pureDecodeCpuMsPerFrameMr"] = mr.get("pureDecodeCpuMsPerFrame")
    # The target: per round at the peer latency, hi_async's marginal CPU over the bare
    # decode measured just before it; the median round's ratio.
    measured = sorted((r for r in marginal or () if r.get("ratio") is not None),
                      key=lambda r: r["ratio"])
    middle = measured[(len(measured) - 1) // 2] if measured else None
    d["marginalCpuVsBare"] = _get(middle, "ratio")
    d["marginalCpuVsBareRounds"] = [r.get("ratio") for r in marginal or ()]
    d["marginalCpuMsPerFrame"] = _get(middle, "marginalCpuMsPerFrame")
    d["bareCpuMsPerFrameMr"] = _get(middle, "bareCpuMsPerFrame")
    # The floor client in the same rounds: over the bare decode, what fetching costs any
    # client built of hi_async's parts; hi_async over it, what the rest of hi_async costs.
    d["floorVsBare"] = _median([r.get("floorVsBare") for r in marginal or ()])
    d["floorVsBareRounds"] = [r.get("floorVsBare") for r in marginal or ()]
    d["marginalCpuVsFloor"] = _median([r.get("vsFloor") for r in marginal or ()])
    # The same from the 1x / 10x pair at ``latency`` against the bare decode measured at
    # the start: with the cores idle between answers, every step of a frame costs more.
    d["marginalCpuMsPerFrameAtLatency"] = None if at_latency is None else round(at_latency, 4)
    d["marginalCpuVsBareAtLatency"] = ratio(at_latency, mr.get("bareCpuMsPerFrame"))
    d["marginalCpuVsCeiling"] = ratio(at_latency, mr.get("cpuMsPerFrame"))
    d["fileCreateMicroseconds"] = _median([p.get("microsecondsPerFile")
                                           for p in file_probes or ()])
    d["fileCreateMicrosecondsRounds"] = [p.get("microsecondsPerFile") for p in file_probes or ()]
    d["filePagesMicrosecondsRounds"] = [p.get("pagesMicrosecondsPerFile")
                                        for p in file_probes or ()]
    d["peakRssRatio"] = ratio(_get(ten, "peakRssBytes"), _get(one, "peakRssBytes"))
    shares = [r["emulator"]["coreShare"] for r in _client_runs(runs)
              if r.get("emulator", {}).get("coreShare") is not None]
    d["emulatorMaxCoreShare"] = max(shares) if shares else None
    d["startupSeconds"] = _get(none, "startupSeconds")
    starts = sorted(r["startupSeconds"] for r in _client_runs(runs)
                    if r.get("startupSeconds") is not None)
    d["startupSecondsAllRuns"] = {"min": starts[0], "median": starts[len(starts) // 2],
                                  "max": starts[-1], "runs": len(starts)} if starts else None
    d["bottleneck"] = (_get(none, "stages") or {}).get("bottleneck")
    d["bottleneckWhy"] = (_get(none, "stages") or {}).get("why")
    marginal_runs = [r[k] for r in marginal or () for k in ("one", "ten")]
    marginal_runs += [r["floor"] for r in marginal or () if r.get("floor")]
    d["allFramesVerified"] = all(r.get("verified") == r.get("frames") and r.get("frames")
                                 for run in _client_runs(runs) + ([ceil] if ceil else [])
                                 + marginal_runs
                                 if run.get("mode") != "peer-cpp"
                                 for r in run.get("rounds") or [run])
    d["targets"] = [_judge(d, key, text.format(lat=f"{latency:g}", peer=f"{peer_latency:g}"),
                           target, kind) for key, text, target, kind in TARGETS]
    if (d["headlineFrames"] or 0) < 2000:
        for t in d["targets"]:
            if t["metric"] == "speedupVsSequential":
                t["note"] = (f"headline run has {d['headlineFrames']} frames; the target asks "
                             "for at least 2000")
    return d


def _median(values: list[float | None]) -> float | None:
    """The median of the values measured (the lower middle of an even count), or None."""
    known = sorted(v for v in values if v is not None)
    return known[(len(known) - 1) // 2] if known else None


def _get(run: dict[str, Any] | None, key: str) -> Any:
    return None if run is None else run.get(key)


def _client_runs(runs: dict[str, Any]) -> list[dict[str, Any]]:
    out = [r for k, r in runs.items() if k not in ("ceiling", "sweep") and isinstance(r, dict)]
    out += [r for r in runs.get("sweep", []) if isinstance(r, dict)]
    return out


def _judge(d: dict[str, Any], key: str, text: str, target: float, kind: str) -> dict[str, Any]:
    value = d.get(key)
    if value is None:
        return {"metric": key, "description": text, "value": None, "target": target,
                "kind": kind, "status": "SKIPPED", "margin": None}
    ok = value >= target if kind == "min" else value <= target
    margin = (value - target) / target * (1 if kind == "min" else -1)
    return {"metric": key, "description": text, "value": value, "target": target, "kind": kind,
            "status": "PASS" if ok else "MISS", "margin": round(margin, 3)}


def markdown(doc: dict[str, Any]) -> str:
    """The short table printed at the end (and fit for the README)."""
    d = doc["derived"]
    lines = ["| target | measured | goal | result |", "|---|---|---|---|"]
    for t in d["targets"]:
        goal = ("≥ " if t["kind"] == "min" else "≤ ") + f"{t['target']:g}"
        if t["status"] == "SKIPPED":
            lines.append(f"| {t['description']} | skipped | {goal} | SKIPPED |")
            continue
        word = "above" if t["value"] >= t["target"] else "below"
        lines.append(f"| {t['description']} | {t['value']:g} | {goal} | {t['status']} "
                     f"({abs(t['margin']) * 100:.0f}% {word} the goal) |")
    lines += ["", "| run | frames | frames/s | MB/s | CPU ms/frame | peak RSS MB | "
              "emulator CPU ms/frame | emulator core share | bottleneck |",
              "|---|---|---|---|---|---|---|---|---|"]
    for key, r in doc["runs"].items():
        if key in ("ceiling", "sweep") or not isinstance(r, dict):
            continue
        em = r.get("emulator", {})
        neck = (r.get("stages") or {}).get("bottleneck", "")
        fps = r.get("framesPerSecond")
        if len(r.get("rounds") or ()) > 1:
            fps = f"{fps} (rounds: {', '.join(str(x['framesPerSecond']) for x in r['rounds'])})"
        lines.append(f"| {key} | {r['frames']} | {fps} | "
                     f"{r.get('megabytesPerSecond')} | {r.get('cpuMsPerFrame')} | "
                     f"{r.get('peakRssMB')} | {em.get('cpuMsPerFrame')} | "
                     f"{em.get('coreShare')} | {neck} |")
    ceil = doc["runs"].get("ceiling")
    if ceil and ceil.get("groups"):
        for name, g in ceil["groups"].items():
            lines.append(f"| ceiling ({name}) | {g['frames']} | {g['framesPerSecond']} | "
                         f"{g['megabytesPerSecond']} | {g['cpuMsPerFrame']} | "
                         f"{ceil.get('peakRssMB')} | | | |")
    runs_ = d["startupSecondsAllRuns"] or {}
    lines += ["", f"start-up (process start to first connection): {d['startupSeconds']} s in "
              f"the headline run; min/median/max {runs_.get('min')}/{runs_.get('median')}/"
              f"{runs_.get('max')} s over {runs_.get('runs')} hi_async runs; "
              f"marginal client CPU {d['marginalCpuMsPerFrame']} ms per verified frame vs "
              f"bare decode + zlib.crc32 {d['bareCpuMsPerFrameMr']} ms (median round at "
              f"{d['peerLatencyMs']:g} ms; ratios by round {d['marginalCpuVsBareRounds']}; "
              f"at {d['latencyMs']:g} ms {d['marginalCpuMsPerFrameAtLatency']} ms, "
              f"{d['marginalCpuVsBareAtLatency']}x; the floor client (hi_async's fetch "
              f"and check alone, one process) {d['floorVsBare']}x the bare decode "
              f"(rounds {d['floorVsBareRounds']}), hi_async {d['marginalCpuVsFloor']}x the "
              "floor; decode + the CRC32 "
              f"hi_async uses {d['pureDecodeCpuMsPerFrameMr']} ms; through the decode pool "
              f"{d['ceilingCpuMsPerFrameMr']} ms); workers speed-up, raw "
              f"{d['workersSpeedupRaw']}x, none {d['workersSpeedupNone']}x; bottleneck of "
              "the headline run: "
              f"{d['bottleneck']} ({d['bottleneckWhy']}); every frame verified in every mode: "
              f"{d['allFramesVerified']}"]
    if d.get("rawVsNoneRounds"):
        lines.append(f"- by round: raw / none {d['rawVsNoneRounds']}"
                     + (f", raw / C++ -f raw {d['rawVsPeerRounds']}"
                        if d.get("rawVsPeerRounds") else ""))
    if d.get("fileCreateMicrosecondsRounds"):
        where = (doc.get("fileCreate") or {}).get("fileSystem") or "unknown"
        lines.append(f"- creating one 128 KiB frame file in the runs' folder ({where}): "
                     f"{d['fileCreateMicroseconds']} µs (rounds "
                     f"{d['fileCreateMicrosecondsRounds']}), of which its bytes' new "
                     f"page-cache pages alone (the same written into one file): "
                     f"{d['filePagesMicrosecondsRounds']} µs; the first grows several "
                     "times over in the half minute after many files nearby were deleted, "
                     "the second where new memory is dear (a VM whose host reclaims it)")
    dcm = doc["runs"].get("fmt-dcm")
    if dcm:
        lines.append(f"- DICOM export (--format dcm, frames as stored, {d['peerLatencyMs']:g} ms): "
                     f"{d['dcmInstancesPerSecond']} instances/s, {dcm.get('framesPerSecond')} "
                     f"frames/s, {d['dcmVsJph']} x the frames/s of --format jph on the same "
                     "frames")
    for note in doc.get("notes", []):
        lines.append(f"- {note}")
    lines += ray_lines(doc.get("ray"))
    return "\n".join(lines)


def ray_lines(section: dict[str, Any] | None) -> list[str]:
    """The Ray section's rows (none when it did not run)."""
    if not section:
        return []
    r = section.get("result") or {}
    if "download1Node" not in r:
        why = r.get("skipped") or section.get("error") or "no result"
        return ["", f"Ray section: {why}"]
    one, two = r["download1Node"], r["download2Node"]
    return ["", "| Ray (local cluster, 1 CPU per node) | frames | frames/s |", "|---|---|---|",
            f"| download --ray, 1 node | {one['frames']} | {one['framesPerSecond']} |",
            f"| download --ray, 2 nodes | {two['frames']} | {two['framesPerSecond']} |",
            f"| read_frames rows, 2 nodes | {r['dataset2Node']['rows']} | "
            f"{r['dataset2Node']['rowsPerSecond']} |",
            f"| Downloader.frames rows, one process | {r['downloaderFrames']['rows']} | "
            f"{r['downloaderFrames']['rowsPerSecond']} |"]
