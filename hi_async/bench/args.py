"""Command-line arguments shared by the bench's client scripts."""

from __future__ import annotations

import argparse


def add_target(p: argparse.ArgumentParser) -> None:
    """Where a client script downloads from: ``--endpoint-url``, ``--region``,
    ``--datastore-id`` and one or more ``--image-set-id``."""
    p.add_argument("--endpoint-url", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--datastore-id", required=True)
    p.add_argument("--image-set-id", action="append", required=True)
