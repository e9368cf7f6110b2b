"""Options more than one subcommand takes: the output folder, the network limits and the
volumes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..settings import MIN_RATE


def folder(text: str) -> Path:
    """An output folder named on the command line; an empty name is refused (it would
    silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the folder name is empty; name a folder, e.g. --out ./hi_async-out "
            "(or --out . for the current folder)")
    return Path(text)


def add_network_options(p: argparse.ArgumentParser) -> None:
    """``--connect-timeout``, ``--read-timeout`` and ``--min-rate`` (Settings' names)."""
    p.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up a connection attempt after this long (default 10)")
    p.add_argument("--read-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up an answer when the server sends nothing for this long "
                   "(default 60)")
    p.add_argument("--min-rate", type=float, default=None, metavar="BYTES_PER_S",
                   help="give up an answer (and send the request again) once it is "
                   "slower than this: it must be whole within --read-timeout plus its "
                   f"size over this rate (default {MIN_RATE:g})")


def network_settings(args: argparse.Namespace) -> dict[str, float | None]:
    """The Settings overrides of :func:`add_network_options`."""
    return {"connect_timeout": args.connect_timeout, "read_timeout": args.read_timeout,
            "min_rate": args.min_rate}


def add_volume_arguments(p: argparse.ArgumentParser) -> None:
    """``--volume`` and ``--preview`` (``download`` and ``run``)."""
    p.add_argument("--volume", choices=["nifti", "npy"], default=None,
                   help="also assemble each series into a volume: "
                   "DIR/<imageSetId>/volumes/<SeriesInstanceUID>.nii.gz (or .npy + .json)")
    p.add_argument("--preview", action="store_true",
                   help="a preview PNG per volume: DIR/<imageSetId>/previews/")
