"""``download``: every frame of the chosen image sets, decoded and verified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="download, decode and verify every frame of image sets",
        description="Download every frame of the chosen image sets, decode it, verify its "
        "CRC32 against the image set metadata and write it under --out.",
    )
    p.add_argument("--datastore-id", required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--image-set-id", action="append", metavar="ID",
                       help="an image set to download (repeatable)")
    which.add_argument("--import-job-id", metavar="J",
                       help="every image set an import job produced")
    which.add_argument("--all", action="store_true", help="every image set of the data store")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="jph", choices=["jph", "npy", "raw", "none"])
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: the usable cores; 1: all in this process)")
    p.add_argument("--fetchers", type=int, default=None,
                   help="concurrent GetImageFrame calls, over all workers")
    p.add_argument("--decoders", type=int, default=None,
                   help="decode threads, over all workers (default: cores)")
    p.add_argument("--pool", choices=["process", "thread"], default=None)
    p.add_argument("--endpoint-url", default=None)
    p.add_argument("--region", default=None)
    p.add_argument("--profile", default=None)
    p.add_argument("--no-resume", action="store_true", help="download verified frames again")
    p.add_argument("--progress-every", type=float, default=5.0, metavar="SECONDS",
                   help="where stderr is no terminal, a progress line this often "
                   "(default 5; 0: none)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run the frames as Ray tasks on the cluster at ADDRESS (auto, "
                   "HOST:PORT or ray://HOST:10001); --out must be a folder every node sees, "
                   "and --fetchers/--decoders count per task (extra: hi_async[ray])")
    p.add_argument("--shard-frames", type=int, default=None, metavar="N",
                   help="with --ray: frames per Ray task (default 256)")
    p.set_defaults(handler=_download)


def _download(args: argparse.Namespace) -> int:
    from ..api import Downloader, run_sync
    from ..image_sets import validate_selection
    from ..model import Summary
    from ..paths import prepare_out_dir
    from ..settings import Settings
    from .progress import Progress, format_summary, report_failures

    settings = Settings.from_env(
        endpoint_url=args.endpoint_url, region=args.region, profile=args.profile,
        workers=args.workers, fetchers=args.fetchers, decoders=args.decoders, pool=args.pool,
        output_format=args.format, resume=not args.no_resume,
    )
    out = Path(args.out)
    validate_selection(args.datastore_id, args.image_set_id, args.import_job_id, args.all)
    prepare_out_dir(out)

    if args.ray is not None:
        return _on_ray(args, settings, out)

    async def main() -> Summary:
        with Progress(enabled=not args.quiet, every=args.progress_every) as progress:
            async with Downloader(settings) as dl:
                return await dl.download(
                    args.datastore_id, image_set_ids=args.image_set_id,
                    import_job_id=args.import_job_id, all_image_sets=args.all,
                    out_dir=out, progress=progress,
                )

    summary = run_sync(main, settings)
    report_failures(summary)
    print(format_summary(summary), file=sys.stdout)
    return 0 if summary.ok else 1


def _on_ray(args: argparse.Namespace, settings: Settings, out: Path) -> int:
    """``download --ray ADDRESS``: the same run with its frames done on a Ray cluster."""
    from ..api import run_sync
    from ..model import Summary
    from ..ray import require_ray
    from .progress import Progress, format_summary, report_failures

    require_ray()  # before anything else: without Ray, say how to install it
    from ..ray.cluster import ClusterOptions, download_async

    given = {"shard_frames": args.shard_frames, "lanes": args.fetchers,
             "decoders": args.decoders}
    options = ClusterOptions(**{k: v for k, v in given.items() if v is not None})

    async def main() -> Summary:
        with Progress(enabled=not args.quiet, every=args.progress_every) as progress:
            return await download_async(
                args.datastore_id, image_set_ids=args.image_set_id,
                import_job_id=args.import_job_id, all_image_sets=args.all, out_dir=out,
                address=args.ray, settings=settings, options=options, progress=progress)

    summary = run_sync(main, settings)
    report_failures(summary)
    print(format_summary(summary), file=sys.stdout)
    return 0 if summary.ok else 1
