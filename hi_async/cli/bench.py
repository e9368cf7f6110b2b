"""``bench``: frames-per-second benchmarks on the local stack (runs benchmarks/bench.py).

The benchmark code lives in the source checkout's ``benchmarks/`` folder, beside the
``hi_async`` package, not in the package itself: it is for measuring hi_async, not for
using it. An installed wheel has no such folder and says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import NotAvailable, UsageError


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
    """The bench flags (also used by ``python benchmarks/bench.py``)."""
    p.add_argument("--quick", action="store_true",
                   help="a tiny study and few configurations (smoke test, CI)")
    p.add_argument("--sweep", action="store_true",
                   help="also sweep latency x fetchers, decoders, pool kind and uvloop")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="frames of the 10x run, ten MR series (default 2000, quick 20); the "
                   "headline run downloads these plus the CT series")
    p.add_argument("--ct-frames", type=int, default=None, metavar="N",
                   help="instances of the CT series (default 300, quick 4)")
    p.add_argument("--latency-ms", type=float, default=None, metavar="MS",
                   help="injected latency of the headline runs (default 50)")
    p.add_argument("--sequential-frames", type=int, default=None, metavar="N",
                   help="about how many frames the sequential client fetches, spread over "
                   "the image sets (default 220; 0 means all)")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="results JSON (default benchmarks/results/bench-<date>.json)")
    p.add_argument("--plot", action="store_true",
                   help="write a PNG of the sweep next to the JSON (needs the 'plot' extra)")
    p.add_argument("--no-standalone", action="store_true",
                   help="skip the stand-alone emulator_frames.py and import_throughput.py")


def benchmarks_dir(root: Path | None = None) -> Path:
    """The checkout's benchmarks/ folder (beside the package), or a clear error."""
    root = root or Path(__file__).resolve().parents[2]
    folder = root / "benchmarks"
    if not (folder / "bench.py").is_file():
        raise NotAvailable(
            f"'bench' runs from a source checkout, and {folder} has no bench.py",
            hint="clone the hi_async repository and run 'python -m hi_async bench' from it "
            "(an installed wheel does not include benchmarks/)",
        )
    return folder


def _bench(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    if args.frames is not None and args.frames < 10:
        raise UsageError(f"--frames must be at least 10, got {args.frames}",
                         hint="the 10x run uses ten MR series of at least one frame each")
    root = str(folder.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.bench import execute

    return execute(args)
