"""``bench``: frames-per-second benchmarks on the local stack."""

from __future__ import annotations

import argparse

from ..errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure frames/s against the local stack (see benchmarks/)",
        description="Measure a sequential client, hi_async's pipeline and the decode ceiling "
        "on the same frames, in one run.",
    )
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    raise NotAvailable("'bench' is not available in this build yet")
