"""``run`` (the default): the seed workflow end to end."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from ..errors import HiAsyncError, UsageError
from .options import add_network_options, add_volume_arguments, folder, network_settings

_MENU = ("ct-chest", "ct-pelvis", "mri-head", "mri-breast")


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
    p.add_argument("--out", default="hi_async-out", type=folder,
                   help="output folder (default ./hi_async-out)")
    p.add_argument("--format", default="jph", choices=["jph", "npy", "raw", "dcm", "none"],
                   help="a file per frame (jph, npy, raw), a DICOM file per instance (dcm), "
                   "or nothing (default jph)")
    p.add_argument("--dcm-syntax", choices=["stored", "native"], default=None,
                   help="with --format dcm: the frames as stored (default) or decoded")
    add_network_options(p)
    add_volume_arguments(p)
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the download (default: the usable cores)")
    p.add_argument("--fetchers", type=int, default=None)
    p.add_argument("--decoders", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the deployed resources")
    p.add_argument("--yes", action="store_true", help="never prompt")
    p.add_argument("--aws", action="store_true", help="run against real AWS")
    p.add_argument("--profile", default=None)
    p.add_argument("--region", default=None)
    p.add_argument("--endpoint-url", default=None,
                   help="use a local stack that is already running here (for example one "
                   "started with 'local serve') instead of starting one")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the API calls without making them")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_run)


def _ask_study() -> list[str]:
    """Offer the seed studies as a numbered menu; ask again until the answer is one of them.

    End of input (Ctrl-D) at the prompt is a usage error: the run cannot go on without a
    study, and the hint names the flags that avoid the question.
    """
    from ..workflow.plan import DEFAULT_STUDY, SEED_STUDIES

    print("Which study should the workflow import and download?")
    for n, name in enumerate(_MENU, 1):
        s = SEED_STUDIES[name]
        print(f"  {n}. {name:<11} {s.description} ({s.expected_instances} instances)")
    print(f"  {len(_MENU) + 1}. all", flush=True)
    default = str(_MENU.index(DEFAULT_STUDY) + 1)
    while True:
        try:
            answer = input(f"choice [{default}]: ").strip() or default
        except EOFError:
            print(file=sys.stderr)  # the prompt left the cursor on its line
            raise UsageError("no study was chosen at the prompt",
                             hint=f"pass --study NAME, or --yes for the default "
                             f"({DEFAULT_STUDY})") from None
        chosen = _menu_choice(answer.lower())
        if chosen is not None:
            return [chosen]
        print(f"{answer!r} is not one of the choices: answer 1 to {len(_MENU) + 1}, "
              f"or a name ({', '.join(_MENU)}, all)", file=sys.stderr, flush=True)


def _menu_choice(answer: str) -> str | None:
    """The study an answer to the menu names (by number or by name), or None."""
    choices = (*_MENU, "all")
    if answer.isdecimal() and 1 <= int(answer) <= len(choices):
        return choices[int(answer) - 1]
    return answer if answer in choices else None


def _aws_region(args: argparse.Namespace) -> str:
    from ..aws.credentials import region_of
    from ..settings import Settings

    return region_of(Settings(region=args.region, profile=args.profile))


def _tell_what_remains(out_dir: Path) -> None:
    from ..workflow.state import StateFile

    try:
        state = StateFile.load(out_dir).state
    except HiAsyncError:
        return
    if state.phase in ("cleaned",) or not (state.stack_name or state.outputs):
        return
    print("What may still exist:", file=sys.stderr)
    print("\n".join(state.describe()), file=sys.stderr)
    print(f"remove it with: python -m hi_async cleanup --out {out_dir}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:

    from ..event_loop import run_sync
    from ..settings import Settings
    from ..workflow.main import run_workflow
    from ..workflow.plan import Plan, describe, resolve_studies

    if args.aws and args.endpoint_url:
        raise UsageError("--aws and --endpoint-url exclude each other")
    if args.dcm_syntax is not None and args.format != "dcm":
        raise UsageError("--dcm-syntax applies to DICOM files only",
                         hint="add --format dcm, or leave --dcm-syntax out")
    names = args.study
    # A dry run asks too, so that it shows the plan of the run it stands for.
    if names is None and not args.yes and sys.stdin.isatty():
        names = _ask_study()
    studies = resolve_studies(names)
    region = _aws_region(args) if args.aws else (args.region or "us-east-1")
    plan = Plan(tuple(studies), Path(args.out), aws=args.aws, region=region, keep=args.keep,
                profile=args.profile, endpoint_url=args.endpoint_url)
    if args.dry_run:
        print("\n".join(describe(plan)))
        return 0
    settings = Settings.from_env(workers=args.workers, fetchers=args.fetchers,
                                 decoders=args.decoders, output_format=args.format,
                                 volume=args.volume, preview=args.preview,
                                 dcm_syntax=args.dcm_syntax,
                                 **network_settings(args))
    say = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        outcome = run_sync(functools.partial(run_workflow, plan, settings, say), settings)
    except HiAsyncError:
        _tell_what_remains(plan.out_dir)
        raise
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the signal watcher
        print("\ninterrupted", file=sys.stderr)
        _tell_what_remains(plan.out_dir)
        return 130
    if outcome.interrupted or outcome.report is None:
        print("\ninterrupted", file=sys.stderr)
        _tell_what_remains(plan.out_dir)
        return 130
    report = outcome.report
    print(report.table())
    for line in [*report.failures_text(), *report.warnings_text()]:
        print(line, file=sys.stderr)
    total = report.total()
    print(f"{total.verified}/{total.frames} frames verified in {report.seconds:.1f} s; "
          f"summary in {plan.out_dir / 'summary.json'}")
    if settings.assembles_volumes:
        from ..workflow.studypage import PAGE
        from .volumes import count_line, notes

        volumes = [v for study in report.studies for v in study.volumes or []]
        for line in notes(volumes):
            print(line, file=sys.stderr)
        print(f"{count_line(volumes)}; page: {plan.out_dir / PAGE}")
    if not report.cleaned_up:
        print("kept (--keep):\n" + "\n".join(outcome.state.describe()))
        print(f"remove it with: python -m hi_async cleanup --out {plan.out_dir}")
    return 0 if report.ok else 1
