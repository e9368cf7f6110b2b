"""``python -m hi_async bench``: every client mode, in one run, on the same frames.

One local stack (server in its own process) holds one imported study: a CT series
(512x512, 16-bit) and ten MR series (256x256). The run measures, on those frames:

- at ``--peer-latency-ms`` (5 ms), in ``--rounds`` rounds (the median round kept):
  hi_async writing each output format (``none``, ``jph``, ``npy``, ``raw``) with its
  worker processes, AWS's C++ sample (``--peer-cpp``) writing ``raw`` and ``jph`` files,
  and hi_async's ``raw`` and ``none`` with one worker (all in one process); then, once,
  ``dcm`` (a DICOM file per instance, frames as stored);
- at ``--latency-ms`` (50 ms): the sequential client (AWS's Python example's algorithm)
  on a sample, hi_async on everything, and hi_async on one MR series and on all ten (the
  10x pair for marginal CPU and memory);
- the decode ceiling on the very bytes served (saved once with ``--format jph`` at 0 ms),
  and the bare single-threaded cost a verified frame cannot go below (imagecodecs decode
  plus ``zlib.crc32``);
- at the start of each round, what creating one frame file costs in the runs' folder
  (:mod:`hi_async.bench.file_cost`);
- in each round, the CPU target: the bare decode, the floor client (hi_async's fetch and
  check with nothing around them, :mod:`hi_async.bench.floor_client`) and hi_async on one
  MR series and on all ten.

``--sweep`` adds the sweeps. Results go to a JSON file with machine, versions and
settings (``./hi_async-bench/`` unless ``--out``); a table is printed.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hi_async.local.stack import LocalStack
from hi_async.settings import Settings, usable_cores

from . import clients, file_cost, peer, report, study, sweep
from .plot import plot_sweep

#: Where results go unless ``--out`` says otherwise (relative to the working folder).
RESULTS = Path("hi_async-bench")


@dataclass(frozen=True)
class Options:
    quick: bool = False
    sweep: bool = False
    frames: int = 2190  # frames of the 10x run (ten MR series); the 1x run is a tenth
    ct_frames: int = 300
    latency_ms: float = 50.0
    peer_latency_ms: float = 5.0
    sequential_frames: int = 220
    out: Path | None = None
    plot: bool = False
    standalone: bool = True
    peer_cpp: Path | None = None
    #: The Ray section (hi_async.bench.ray_scaling): 1 vs 2 nodes, Dataset vs frames().
    ray: bool = False
    workers: int | None = None
    #: Rounds of the runs at ``peer_latency_ms`` (each format, 1 worker, the C++ sample).
    rounds: int = 3

    @classmethod
    def quick_defaults(cls, **kw: Any) -> Options:
        base: dict[str, Any] = dict(quick=True, frames=20, ct_frames=4, sequential_frames=0,
                                    rounds=1)
        base.update({k: v for k, v in kw.items() if v is not None})
        return cls(**base)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _compile_package() -> str | None:
    """Write the bytecode of the package the clients import, as installing it does.

    An installed hi_async has its ``.pyc`` files from pip; a source checkout run with
    ``PYTHONDONTWRITEBYTECODE=1`` has none, and then every run compiles each module again
    in the parent and in every worker process (about 0.1 s of CPU each here), a start-up
    cost no installed copy pays. A note when they cannot be written."""
    import hi_async

    folder = Path(hi_async.__file__).parent
    try:
        done = compileall.compile_dir(folder, quiet=1)
    except OSError as exc:
        done = False
        _log(f"cannot write bytecode under {folder}: {exc}")
    if done:
        return None
    return (f"the bytecode of {folder} could not all be written: the runs compile those "
            "modules at each start")


def run(opts: Options) -> dict[str, Any]:
    """Measure everything; the result document (also written to ``opts.out``)."""
    began = time.perf_counter()
    mr_sets = 10
    mr_set_frames = max(1, opts.frames // mr_sets)
    workers = opts.workers or usable_cores()
    notes: list[str] = []
    doc: dict[str, Any] = {"benchmark": "hi_async bench",
                           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "settings": {k: str(v) if isinstance(v, Path) else v
                                        for k, v in asdict(opts).items()},
                           "machine": report.machine(), "versions": report.versions()}
    doc["settings"]["workersResolved"] = workers
    if (note := _compile_package()) is not None:
        notes.append(note)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hi_async-bench-") as tmp, \
            LocalStack(mode="process", data_dir=Path(tmp) / "stack", datastore_delay=0.0) as stack:
        assert stack.pid is not None
        target = clients.Target(stack.url, stack.pid, Path(tmp) / "out")
        target.workdir.mkdir()

        def set_latency(ms: float) -> None:
            stack.set_faults(latency_ms=ms)
            target.latency_ms = ms

        _log(f"seeding and importing {opts.ct_frames} CT + {mr_sets}x{mr_set_frames} MR "
             "instances ...")
        prefix = (min(60, opts.ct_frames) if not opts.quick else 2) if opts.sweep else None
        st = study.build(stack.url, ct_frames=opts.ct_frames, mr_sets=mr_sets,
                         mr_set_frames=mr_set_frames, prefix_frames=prefix)
        doc["study"] = st.to_json()
        everything = st.ct.image_sets + st.mr.image_sets
        headline_frames = st.ct.total_frames + st.mr.total_frames

        set_latency(0.0)
        _log(f"saving the served frames once (--format jph, 0 ms): {headline_frames} frames")
        runs["jph-0ms"] = clients.hi_async(target, st.datastore_id, everything, "jph",
                                           label="jph-0ms", keep=True)
        _log("decode ceiling and bare decode + zlib.crc32 (no network)")
        runs["ceiling"] = clients.ceiling(Path(runs["jph-0ms"]["outDir"]),
                                          {"ct": st.ct.image_sets, "mr": st.mr.image_sets,
                                           "mr-1x": st.mr.image_sets[:1]},
                                          decoders=None, pool="thread")

        set_latency(opts.peer_latency_ms)
        at = f"at {opts.peer_latency_ms:g} ms"
        meta: list[Path] = []
        if opts.peer_cpp is not None:
            meta = peer.write_metadata(stack.url, st.datastore_id, everything,
                                       Path(tmp) / "peer-metadata")
        else:
            notes.append("the C++ sample did not run (pass --peer-cpp PATH; see peers.md)")
        # Each configuration runs once per round, the rounds one after another, so that
        # a drift of the shared machine touches every column alike; the median round of
        # each is kept, with all of them beside it.
        rounds: dict[str, list[dict[str, Any]]] = {}
        marginal_rounds: list[dict[str, Any]] = []
        file_probes: list[dict[str, Any]] = []
        for n in range(1, opts.rounds + 1):
            _log(f"round {n} of {opts.rounds} {at}: {headline_frames} frames per run")
            probe_folder = target.fresh_folder("file-probe")
            file_probes.append(file_cost.probe(probe_folder))
            target.retire(probe_folder)  # its files stay, its pages go, as a run's do
            for fmt in ("none", "jph", "npy", "raw"):
                _log(f"hi_async --format {fmt}, {workers} workers")
                rounds.setdefault(f"fmt-{fmt}", []).append(clients.hi_async(
                    target, st.datastore_id, everything, fmt, label=f"fmt-{fmt}",
                    workers=workers))
            if opts.peer_cpp is not None:
                for fmt in ("raw", "jph"):
                    _log(f"AWS's C++ sample -f {fmt} (-c 16 and -c 64, the better kept)")
                    rounds.setdefault(f"peer-{fmt}", []).append(
                        peer.best(opts.peer_cpp, target, meta, fmt))
            for fmt in ("raw", "none"):
                _log(f"hi_async --format {fmt}, 1 worker (one process)")
                rounds.setdefault(f"fmt-{fmt}-1w", []).append(clients.hi_async(
                    target, st.datastore_id, everything, fmt, label=f"fmt-{fmt}-1w",
                    workers=1))
            _log("marginal CPU: bare decode + zlib.crc32 of the MR frames, then hi_async on "
                 "one and on all ten MR series")
            marginal_rounds.append(_marginal_round(target, st, Path(runs["jph-0ms"]["outDir"]),
                                                   workers))
        runs.update({label: report.median_round(results) for label, results in rounds.items()})
        _log(f"hi_async --format dcm {at}, {workers} workers")
        runs["fmt-dcm"] = clients.hi_async(target, st.datastore_id, everything, "dcm",
                                           label="fmt-dcm", workers=workers)

        set_latency(opts.latency_ms)
        per_set = None
        if opts.sequential_frames and opts.sequential_frames < headline_frames:
            per_set = math.ceil(opts.sequential_frames / len(everything))
        _log(f"sequential client at {opts.latency_ms:g} ms"
             + (f" ({per_set} frames per image set)" if per_set else " (all frames)"))
        runs["sequential"] = clients.sequential(target, st.datastore_id, everything,
                                                per_set_limit=per_set)
        if per_set:
            notes.append(f"the sequential client ran on the first {per_set} frames of each "
                         f"of the {len(everything)} image sets "
                         f"({runs['sequential']['frames']} of {headline_frames} frames): at "
                         f"{opts.latency_ms:g} ms it fetches one frame per round trip")
        _log(f"hi_async --format none at {opts.latency_ms:g} ms: {headline_frames} frames")
        runs["headline-none"] = clients.hi_async(target, st.datastore_id, everything, "none",
                                                 label="headline-none", workers=workers)
        _log(f"hi_async --format none with the SDK's GetImageFrame at {opts.latency_ms:g} ms")
        runs["headline-none-sdk"] = clients.hi_async(target, st.datastore_id, everything,
                                                     "none", label="headline-none-sdk",
                                                     frame_client="sdk")
        _log(f"hi_async 1x and 10x: {mr_set_frames} and {st.mr.total_frames} MR frames")
        runs["mr-1x"] = clients.hi_async(target, st.datastore_id, st.mr.image_sets[:1], "none",
                                         label="mr-1x", workers=workers)
        runs["mr-10x"] = clients.hi_async(target, st.datastore_id, st.mr.image_sets, "none",
                                          label="mr-10x", workers=workers)
        if opts.sweep:
            _log("sweeps")
            runs["sweep"] = sweep.run(target, st, set_latency, quick=opts.quick,
                                      headline_latency=opts.latency_ms, log=_log)
        else:
            notes.append("sweeps skipped (run with --sweep)")
        doc["emulatorRequests"] = stack.stats().get("requests")
        doc["fileCreate"] = {"fileSystem": file_cost.file_system(target.workdir),
                             "rounds": file_probes}

    if opts.standalone:
        _log("stand-alone benchmarks: emulator_frames, import_throughput")
        small = opts.quick
        doc["standalone"] = {
            "emulatorFrames": clients.standalone("emulator_frames", [
                "--connections", "8" if small else "256",
                "--requests", "200" if small else "10000",
                "--frames", "4" if small else "64"]),
            "importThroughput": clients.standalone("import_throughput", [
                "--instances", "4" if small else "300"]),
        }
    else:
        doc["standalone"] = "skipped"
        notes.append("stand-alone emulator and import benchmarks skipped")
    if opts.ray:
        _log("Ray: a cluster download on 1 vs 2 local nodes, read_frames vs Downloader.frames")
        doc["ray"] = clients.standalone("ray_scaling", [
            "--instances", "40" if opts.quick else "2000",
            "--latency-ms", f"{opts.peer_latency_ms:g}"])

    doc["runs"] = runs
    doc["marginalCpu"] = marginal_rounds
    doc["derived"] = report.derive(runs, opts.latency_ms, opts.peer_latency_ms,
                                   marginal=marginal_rounds,
                                   file_probes=file_probes)
    doc["notes"] = notes
    doc["machine"]["loadAverageAfter"] = list(os.getloadavg())
    doc["seconds"] = round(time.perf_counter() - began, 1)
    return doc


def _marginal_round(target: clients.Target, st: study.Study, jph_dir: Path,
                    workers: int) -> dict[str, Any]:
    """One round of the CPU target: the bare decode of the MR frames, the floor client on
    them (:mod:`hi_async.bench.floor_client`: fetched and checked with hi_async's parts and
    nothing else, with as many frames in flight as one worker process), and hi_async on
    one MR series and on all ten, back to back, so that the ratios are of figures taken on
    the same machine within seconds (its speed drifts by up to half from minute to
    minute)."""
    bare = clients.bare(jph_dir, st.mr.image_sets)
    floor = clients.floor(target, st.datastore_id, st.mr.image_sets,
                          lanes=Settings().lanes_per_worker(workers))
    one = clients.hi_async(target, st.datastore_id, st.mr.image_sets[:1], "none",
                           label="marginal-1x", workers=workers)
    ten = clients.hi_async(target, st.datastore_id, st.mr.image_sets, "none",
                           label="marginal-10x", workers=workers)
    keys = ("frames", "verified", "cpuSeconds", "framesPerSecond", "peakRssBytes")
    floor_ms = floor.get("cpuMsPerFrame") if floor is not None else None
    out: dict[str, Any] = {"bareCpuMsPerFrame": bare, "latencyMs": target.latency_ms,
                           "floor": floor, "floorVsBare": report.ratio(floor_ms, bare),
                           "one": {k: one.get(k) for k in keys},
                           "ten": {k: ten.get(k) for k in keys},
                           "marginalCpuMsPerFrame": None, "ratio": None, "vsFloor": None}
    marginal = report.marginal_cpu_ms(one, ten)
    if marginal is not None and not one["error"] and not ten["error"]:
        out["marginalCpuMsPerFrame"] = round(marginal, 4)
        out["ratio"] = report.ratio(marginal, bare)
        out["vsFloor"] = report.ratio(marginal, floor_ms)
    return out


def default_out(quick: bool) -> Path:
    stamp = dt.date.today().isoformat()
    return RESULTS / f"bench-{'quick-' if quick else ''}{stamp}.json"


def execute(args: argparse.Namespace) -> int:
    kw = dict(frames=args.frames, ct_frames=args.ct_frames, latency_ms=args.latency_ms,
              peer_latency_ms=args.peer_latency_ms, sequential_frames=args.sequential_frames,
              out=args.out, peer_cpp=args.peer_cpp, workers=args.workers, rounds=args.rounds)
    common = dict(sweep=args.sweep, plot=args.plot, standalone=not args.no_standalone,
                  ray=args.ray)
    if args.quick:
        opts = Options.quick_defaults(**kw, **common)
    else:
        opts = Options(**{k: v for k, v in {**kw, **common}.items() if v is not None})
    out = opts.out or default_out(opts.quick)
    doc = run(opts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(report.markdown(doc))
    if "sweep" in doc["runs"]:
        print()
        print(sweep.table(doc["runs"]["sweep"]))
    print(f"\nresults: {out} ({doc['seconds']} s)")
    if opts.plot:
        print(plot_sweep(doc["runs"].get("sweep", []), out.with_suffix(".png")))
    return 0 if doc["derived"]["allFramesVerified"] else 1

