"""``cleanup``: finish removing what an interrupted (or --keep) workflow run created."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cleanup",
        help="remove the resources a workflow run recorded in its state file",
        description="Delete the image sets, data store, bucket contents and stack that a "
        "workflow run recorded in DIR's state file. For a run on the embedded local stack, "
        "the stack is started again on the run's data folder (DIR/.hi_async/local-stack).",
    )
    p.add_argument("--out", default="hi_async-out", type=folder, help="the run's output folder")
    p.add_argument("--yes", action="store_true", help="never prompt")
    p.set_defaults(handler=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    import anyio

    from ..workflow.main import run_cleanup
    from ..workflow.state import StateFile

    out = Path(args.out)
    state = StateFile.load(out).state
    if state.phase != "cleaned" and not args.yes and sys.stdin.isatty():
        print("This removes:\n" + "\n".join(state.describe()))
        try:
            answer = input("proceed? [y/N] ")
        except EOFError:  # Ctrl-D: as good as no
            print()
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not confirmed: nothing was removed (--yes skips the question)",
                  file=sys.stderr)
            return 1
    anyio.run(run_cleanup, out, lambda msg: print(msg))
    print(f"run {state.run_id}: cleaned up")
    return 0
