"""``cleanup``: finish removing what an interrupted workflow created."""

from __future__ import annotations

import argparse

from ..errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove the resources a workflow run recorded in its state file",
        description="Delete the image sets, data store, bucket contents and stack that a "
        "workflow run recorded in DIR's state file.",
    )
    p.add_argument("--out", default="hi_async-out", help="the run's output folder")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(handler=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    raise NotAvailable("'cleanup' is not available in this build yet")
