"""``run`` (the default): the seed workflow end to end."""

from __future__ import annotations

import argparse

from ..errors import NotAvailable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the seed workflow end to end (default)",
        description="Deploy infra/, copy studies from the public bucket, import them, download, "
        "decode and verify every frame, report and clean up. Runs on the embedded local stack "
        "unless --aws is given.",
    )
    p.add_argument("--study", action="append", metavar="NAME|s3://bucket/prefix/",
                   help="ct-chest, ct-pelvis, mri-head, mri-breast, all, or an S3 prefix "
                   "(repeatable; default ct-pelvis)")
    p.add_argument("--out", default="hi_async-out", help="output folder (default ./hi_async-out)")
    p.add_argument("--format", default="jph", choices=["jph", "npy", "raw", "none"])
    p.add_argument("--fetchers", type=int, default=None)
    p.add_argument("--decoders", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the deployed resources")
    p.add_argument("--yes", action="store_true", help="never prompt")
    p.add_argument("--aws", action="store_true", help="run against real AWS")
    p.add_argument("--profile", default=None)
    p.add_argument("--region", default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the API calls without making them")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    raise NotAvailable("the seed workflow is not available in this build yet")
