"""Command line: argument parsing and printing only; the work is done by the library.

Each subcommand lives in its own module exposing ``register(subparsers)``; its parser
sets ``handler`` to a function ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import HiAsyncError

_SUBCOMMANDS = ("run", "download", "cleanup", "local", "bench")

EPILOG = """\
With no subcommand, hi_async runs the seed workflow ('run') on the embedded local stack:
deploy infra/, copy a study from the stand-in public bucket, import it, download, decode and
verify every frame into ./hi_async-out/, print a summary and clean up.

exit codes: 0 every frame verified, 1 some frames failed, 2 usage or configuration
error, 130 interrupted.
"""


def _accept_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` after a subcommand too (``download ... --debug``), at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                   help="show tracebacks for errors")
                _accept_debug_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hi_async",
        description="Asynchronous, high-throughput AWS HealthImaging frame downloader.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in _SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    _accept_debug_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hi_async``; returns the process exit code.

    ``--debug`` adds the traceback to an error's message and changes nothing else: the
    exit code is the same with and without it.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = {"run", "download", "cleanup", "local", "bench", "-h", "--help"}
    if not any(a in known for a in args_list if not a.startswith("--debug")):
        # No subcommand: the main job, with any options meant for it.
        args_list = [a for a in args_list if a == "--debug"] + ["run"] + [
            a for a in args_list if a != "--debug"
        ]
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except HiAsyncError as exc:
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
