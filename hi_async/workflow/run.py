"""The seed workflow end to end, every stage overlapped in one task group.

    studies ─▶ copy (one study at a time, many objects at once)
            ─▶ import (one job per study, all polled concurrently)
            ─▶ download (image sets stream into the client pipeline as jobs finish)

Study B copies while A imports, and A's frames download while B imports. Streams between
the stages are bounded; an error anywhere cancels the rest; the state file names every
resource from the moment it may exist.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..model import ImageSetRef
from ..settings import Settings
from .cleanup import cleanup
from .clients import Clients, Endpoint
from .copy import copy_prefix
from .deploy import create_stack
from .download import download_study, open_downloader
from .importjobs import run_import, start_import
from .plan import Plan, Study, template_body
from .report import RunReport, StudyReport
from .state import StateFile

Say = Callable[[str], None]


@dataclass
class _Progress:
    """Per-study clocks: when its copy started and when its last frame was done."""

    started: dict[str, float]
    finished: dict[str, float]


async def _copy_stage(plan: Plan, clients: Clients, state_file: StateFile,
                      reports: dict[str, StudyReport], progress: _Progress,
                      send: ObjectSendStream[Study], say: Say) -> None:
    bucket = state_file.state.outputs["InputBucketName"]
    async with send:
        for study in plan.studies:
            progress.started[study.name] = time.monotonic()
            result = await copy_prefix(clients.s3, study.source_bucket, study.source_prefix,
                                       bucket, f"{study.name}/")
            if result.objects == 0:
                from ..errors import WorkflowError

                raise WorkflowError(f"{study.source_uri} holds no files to import",
                                    hint="check the --study prefix")
            reports[study.name].instances_copied = result.objects
            state_file.state.studies.setdefault(study.name, {})["copied"] = result.objects
            state_file.save()
            say(f"[{study.name}] copied {result.objects} object(s), "
                f"{result.bytes / 1e6:.1f} MB")
            await send.send(study)


async def _study_after_copy(plan: Plan, clients: Clients, state_file: StateFile,
                            reports: dict[str, StudyReport], progress: _Progress,
                            downloader: Any, study: Study, say: Say) -> None:
    """Import one copied study, then stream its image sets into the download pipeline."""
    state = state_file.state
    out = state.outputs
    job_id = await start_import(
        clients.mi, out["DatastoreId"], out["ImportRoleArn"],
        plan.input_uri(out["InputBucketName"], study),
        plan.output_uri(out["OutputBucketName"], study), f"{plan.stack_name}-{study.name}")
    state.studies.setdefault(study.name, {})["jobId"] = job_id
    state_file.save()
    report = reports[study.name]
    report.import_job_id = job_id
    say(f"[{study.name}] import job {job_id} started")
    outcome = await run_import(clients.mi, clients.s3, out["DatastoreId"], job_id)
    state.studies[study.name]["imageSetIds"] = list(outcome.image_set_ids)
    state_file.save()
    report.image_sets = len(outcome.image_set_ids)
    report.import_failures = list(outcome.failures)
    report.import_warnings = list(outcome.warnings)
    warned = f", {len(outcome.warnings)} with warnings" if outcome.warnings else ""
    say(f"[{study.name}] import {outcome.status}: {outcome.imported}/{outcome.scanned} "
        f"file(s), {len(outcome.image_set_ids)} image set(s), "
        f"{len(outcome.failures)} failure(s){warned}")

    async def image_sets() -> AsyncIterator[ImageSetRef]:
        for image_set_id in outcome.image_set_ids:
            yield ImageSetRef(out["DatastoreId"], image_set_id, study.name)

    summary = await download_study(downloader, image_sets(), plan.out_dir / study.name)
    progress.finished[study.name] = time.monotonic()
    report.frames, report.verified, report.failed = (summary.frames, summary.verified,
                                                     summary.failed)
    report.unverifiable, report.bytes = summary.unverifiable, summary.bytes
    say(f"[{study.name}] {summary.verified}/{summary.frames} frame(s) verified, "
        f"{summary.failed} failed")


async def _import_stage(plan: Plan, clients: Clients, state_file: StateFile,
                        reports: dict[str, StudyReport], progress: _Progress, downloader: Any,
                        receive: ObjectReceiveStream[Study], say: Say) -> None:
    async with receive, anyio.create_task_group() as tg:
        async for study in receive:
            tg.start_soon(_study_after_copy, plan, clients, state_file, reports, progress,
                          downloader, study, say)


async def execute(plan: Plan, clients: Clients, state_file: StateFile, settings: Settings,
                  say: Say = print) -> RunReport:
    """Deploy, copy, import and download every study; clean up unless ``plan.keep``.

    Each study's frames go under ``out_dir/<study>/`` (a download folder of its own, with
    its index.jsonl and summary.json, so a rerun of ``download`` there resumes).
    """
    t0 = time.monotonic()
    reports = {s.name: StudyReport(s.name) for s in plan.studies}
    progress = _Progress({}, {})
    state = state_file.state
    state_file.update(stack_name=plan.stack_name, phase="deploying")
    say(f"deploying stack {plan.stack_name} ...")
    stack_id, outputs = await create_stack(clients.cfn, plan.stack_name, template_body(),
                                           {"DatastoreName": plan.datastore_name})
    state_file.update(stack_id=stack_id, outputs=outputs, phase="running")
    say(f"stack ready: data store {outputs['DatastoreId']}, "
        f"buckets {outputs['InputBucketName']} and {outputs['OutputBucketName']}")

    send_studies, receive_studies = anyio.create_memory_object_stream[Study](1)
    async with open_downloader(settings) as downloader, anyio.create_task_group() as tg:
        tg.start_soon(_copy_stage, plan, clients, state_file, reports, progress,
                      send_studies, say)
        tg.start_soon(_import_stage, plan, clients, state_file, reports, progress, downloader,
                      receive_studies, say)

    end = time.monotonic()
    for name, report in reports.items():
        report.seconds = progress.finished.get(name, end) - progress.started.get(name, t0)
    state_file.update(phase="done")
    run_report = RunReport(state.run_id, list(reports.values()))
    if not plan.keep:
        say("cleaning up ...")
        await cleanup(clients, state_file, say)
        run_report.cleaned_up = True
    run_report.seconds = time.monotonic() - t0
    return run_report


async def run_on(plan: Plan, endpoint: Endpoint, state_file: StateFile, settings: Settings,
                 say: Say = print) -> RunReport:
    """:func:`execute` with the clients for ``endpoint``."""
    async with Clients(endpoint, max_pool_connections=64) as clients:
        return await execute(plan, clients, state_file, settings, say)
