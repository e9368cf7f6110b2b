"""``bench``: frames-per-second benchmarks on the local stack (:mod:`hi_async.bench`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UsageError
from .options import folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure frames/s against the local stack (see benchmarks/)",
        description="Measure a sequential client, hi_async's pipeline and the decode ceiling "
        "on the same frames, in one run, against the local stack.",
    )
    add_arguments(p)
    p.set_defaults(handler=_bench)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench flags."""
    p.add_argument("--quick", action="store_true",
                   help="a tiny study and few configurations (smoke test, CI)")
    p.add_argument("--sweep", action="store_true",
                   help="also sweep latency x fetchers, decoders, pool kind and uvloop")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="frames of the 10x run, ten MR series (default 2190, quick 20); the "
                   "headline run downloads these plus the CT series")
    p.add_argument("--ct-frames", type=int, default=None, metavar="N",
                   help="instances of the CT series (default 300, quick 4)")
    p.add_argument("--latency-ms", type=float, default=None, metavar="MS",
                   help="injected latency of the runs against the sequential client and "
                   "of the 1x/10x pair (default 50)")
    p.add_argument("--peer-latency-ms", type=float, default=None, metavar="MS",
                   help="injected latency of the runs per output format and of the C++ "
                   "sample (default 5)")
    p.add_argument("--peer-cpp", type=Path, default=None, metavar="PATH",
                   help="AWS's C++ batch frame retriever (ahi-retrieve) to run as a column "
                   "on the same frames and stack")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="rounds of the runs per output format and of the C++ sample, the "
                   "median kept (default 3, quick 1)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the hi_async runs (default: the usable cores)")
    p.add_argument("--sequential-frames", type=int, default=None, metavar="N",
                   help="about how many frames the sequential client fetches, spread over "
                   "the image sets (default 220; 0 means all)")
    p.add_argument("--out", type=folder, default=None, metavar="PATH",
                   help="results JSON (default ./hi_async-bench/bench-<date>.json)")
    p.add_argument("--plot", action="store_true",
                   help="write a PNG of the sweep next to the JSON (needs the 'plot' extra)")
    p.add_argument("--no-standalone", action="store_true",
                   help="skip the stand-alone emulator_frames and import_throughput runs")
    p.add_argument("--ray", action="store_true",
                   help="add the Ray section: a cluster download on 1 vs 2 local nodes and "
                   "read_frames vs Downloader.frames (needs the 'ray' extra)")


def _bench(args: argparse.Namespace) -> int:
    if args.frames is not None and args.frames < 10:
        raise UsageError(f"--frames must be at least 10, got {args.frames}",
                         hint="the 10x run uses ten MR series of at least one frame each")
    if args.peer_cpp is not None and not (args.peer_cpp.is_file()
                                          and os.access(args.peer_cpp, os.X_OK)):
        raise UsageError(f"--peer-cpp {args.peer_cpp} is not an executable file",
                         hint="build ahi-retrieve from aws-samples/aws-healthimaging-samples "
                         "(ahi-batch-image-frame-retrieve) and pass its path")
    from ..bench.main import execute

    return execute(args)
