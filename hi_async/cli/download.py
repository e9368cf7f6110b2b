"""``download``: every frame of the chosen image sets, decoded and verified."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .options import add_network_options, add_volume_arguments, folder, network_settings

if TYPE_CHECKING:
    from ..model import Summary
    from ..settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="download, decode and verify every frame of image sets",
        description="Download every frame of the chosen image sets, decode it, verify its "
        "CRC32 against the image set metadata and write it under --out (with --format dcm: "
        "every instance as a DICOM file, written once all its frames verified).",
    )
    p.add_argument("--datastore-id", required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--image-set-id", action="append", metavar="ID",
                       help="an image set to download (repeatable)")
    which.add_argument("--import-job-id", metavar="J",
                       help="every image set an import job produced")
    which.add_argument("--all", action="store_true", help="every image set of the data store")
    p.add_argument("--out", required=True, type=folder, help="output folder")
    p.add_argument("--format", default="jph", choices=["jph", "npy", "raw", "dcm", "none"],
                   help="a file per frame (jph: as served; npy, raw: decoded), a DICOM file "
                   "per instance (dcm: DIR/<imageSetId>/<SeriesInstanceUID>/"
                   "<SOPInstanceUID>.dcm), or nothing (default jph)")
    p.add_argument("--dcm-syntax", choices=["stored", "native"], default=None,
                   help="with --format dcm: the frames as stored (default), or decoded into "
                   "Explicit VR Little Endian for readers of no compressed syntax")
    add_volume_arguments(p)
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
    add_network_options(p)
    p.add_argument("--no-resume", action="store_true", help="download verified frames again")
    p.add_argument("--verify-existing", action="store_true",
                   help="on resume, decode the files already there and check their pixels "
                   "too (by default their size and checksum are checked)")
    p.add_argument("--keep-page-cache", action="store_true",
                   help="leave the written files in the page cache (by default they leave "
                   "it once stable: a bulk download does not read them back)")
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
    from ..api import Downloader
    from ..errors import UsageError
    from ..event_loop import run_sync
    from ..image_sets import validate_selection
    from ..paths import prepare_out_dir
    from ..settings import Settings
    from .progress import Progress

    if args.dcm_syntax is not None and args.format != "dcm":
        raise UsageError("--dcm-syntax applies to DICOM files only",
                         hint="add --format dcm, or leave --dcm-syntax out")
    settings = Settings.from_env(
        endpoint_url=args.endpoint_url, region=args.region, profile=args.profile,
        workers=args.workers, fetchers=args.fetchers, decoders=args.decoders, pool=args.pool,
        output_format=args.format, dcm_syntax=args.dcm_syntax, resume=not args.no_resume,
        verify_existing=args.verify_existing, keep_page_cache=args.keep_page_cache,
        **network_settings(args),
        volume=args.volume, preview=args.preview,
    )
    out = args.out
    validate_selection(args.datastore_id, args.image_set_id, args.import_job_id, args.all)
    if args.ray is not None:
        settings.check_cluster()
    elif args.shard_frames is not None:
        raise UsageError("--shard-frames applies to a Ray cluster download only",
                         hint="add --ray ADDRESS, or leave --shard-frames out")
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

    return _report(run_sync(main, settings))


def _on_ray(args: argparse.Namespace, settings: Settings, out: Path) -> int:
    """``download --ray ADDRESS``: the same run with its frames done on a Ray cluster."""
    from ..event_loop import run_sync
    from ..ray import require_ray
    from .progress import Progress

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

    return _report(run_sync(main, settings))


def _report(summary: Summary) -> int:
    """The failures on stderr, the summary line (and the volumes' counts) on stdout; the
    exit code."""
    from .progress import format_summary, report_failures

    report_failures(summary)
    print(format_summary(summary), file=sys.stdout)
    if summary.volumes is not None:
        from .volumes import count_line, notes

        for line in notes(summary.volumes):
            print(line, file=sys.stderr)
        print(count_line(summary.volumes), file=sys.stdout)
    return 0 if summary.ok else 1
