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
from dataclasses import dataclass, field

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from ..api import Downloader
from ..errors import WorkflowError
from ..model import ImageSetRef
from ..settings import Settings
from .cleanup import cleanup
from .clients import Clients
from .copy import copy_prefix
from .deploy import create_stack
from .importjobs import run_import
from .plan import Plan, Study, template_body
from .report import RunReport, StudyReport
from .state import StateFile
from .studypage import relative_to_run

Say = Callable[[str], None]


@dataclass
class WorkflowRun:
    """One run of the workflow: the plan, its clients and state, and what it found."""

    plan: Plan
    clients: Clients
    state_file: StateFile
    say: Say = print
    reports: dict[str, StudyReport] = field(default_factory=dict)
    #: Per-study clocks: when its copy started and when its last frame was done.
    started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reports = {s.name: StudyReport(s.name) for s in self.plan.studies}

    @property
    def outputs(self) -> dict[str, str]:
        return self.state_file.state.outputs

    async def deploy(self) -> None:
        plan = self.plan
        self.state_file.update(stack_name=plan.stack_name, phase="deploying")
        self.say(f"deploying stack {plan.stack_name} ...")
        stack_id, outputs = await create_stack(self.clients, plan.stack_name, template_body(),
                                               {"DatastoreName": plan.datastore_name})
        self.state_file.update(stack_id=stack_id, outputs=outputs, phase="running")
        self.say(f"stack ready: data store {outputs['DatastoreId']}, "
                 f"buckets {outputs['InputBucketName']} and {outputs['OutputBucketName']}")

    async def copy_studies(self, send: ObjectSendStream[Study]) -> None:
        """Copy each study into the input bucket, then hand it on to be imported."""
        bucket = self.outputs["InputBucketName"]
        async with send:
            for study in self.plan.studies:
                self.started[study.name] = time.monotonic()
                result = await copy_prefix(self.clients, study.source_bucket,
                                           study.source_prefix, bucket, f"{study.name}/")
                if result.objects == 0:
                    raise WorkflowError(f"{study.source_uri} holds no files to import",
                                        hint="check the --study prefix")
                self.reports[study.name].instances_copied = result.objects
                self.state_file.state.studies.setdefault(study.name, {})["copied"] = (
                    result.objects)
                self.state_file.save()
                self.say(f"[{study.name}] copied {result.objects} object(s), "
                         f"{result.bytes / 1e6:.1f} MB")
                await send.send(study)

    async def import_studies(self, receive: ObjectReceiveStream[Study],
                             downloader: Downloader) -> None:
        """Import and download each copied study, all of them concurrently."""
        async with receive, anyio.create_task_group() as tg:
            async for study in receive:
                tg.start_soon(self.import_and_download, study, downloader)

    async def import_and_download(self, study: Study, downloader: Downloader) -> None:
        """Import one copied study, then stream its image sets into the download pipeline."""
        plan, out, state = self.plan, self.outputs, self.state_file.state
        datastore_id = out["DatastoreId"]
        job_id = await self.clients.hi.start_import(
            datastore_id, out["ImportRoleArn"], plan.input_uri(out["InputBucketName"], study),
            plan.output_uri(out["OutputBucketName"], study), f"{plan.stack_name}-{study.name}")
        state.studies.setdefault(study.name, {})["jobId"] = job_id
        self.state_file.save()
        report = self.reports[study.name]
        report.import_job_id = job_id
        self.say(f"[{study.name}] import job {job_id} started")
        outcome = await run_import(self.clients.hi, datastore_id, job_id)
        state.studies[study.name]["imageSetIds"] = list(outcome.image_set_ids)
        self.state_file.save()
        report.image_sets = len(outcome.image_set_ids)
        report.import_failures = list(outcome.failures)
        report.import_warnings = list(outcome.warnings)
        warned = f", {len(outcome.warnings)} with warnings" if outcome.warnings else ""
        self.say(f"[{study.name}] import {outcome.status}: {outcome.imported}/"
                 f"{outcome.scanned} file(s), {len(outcome.image_set_ids)} image set(s), "
                 f"{len(outcome.failures)} failure(s){warned}")

        async def image_sets() -> AsyncIterator[ImageSetRef]:
            for image_set_id in outcome.image_set_ids:
                yield ImageSetRef(datastore_id, image_set_id, study.name)

        summary = await downloader.run(image_sets(), out_dir=plan.out_dir / study.name)
        self.finished[study.name] = time.monotonic()
        report.frames, report.verified, report.failed = (summary.frames, summary.verified,
                                                         summary.failed)
        report.unverifiable, report.bytes = summary.unverifiable, summary.bytes
        if summary.volumes is not None:
            report.volumes = relative_to_run(summary.volumes, study.name)
        self.say(f"[{study.name}] {summary.verified}/{summary.frames} frame(s) verified, "
                 f"{summary.failed} failed")
        if summary.dicom is not None:
            self.say(f"[{study.name}] {summary.dicom.written}/{summary.dicom.instances} DICOM "
                     f"instance(s) written, {summary.dicom.failed} failed")


async def execute(plan: Plan, clients: Clients, state_file: StateFile, settings: Settings,
                  say: Say = print) -> RunReport:
    """Deploy, copy, import and download every study; clean up unless ``plan.keep``.

    Each study's frames go under ``out_dir/<study>/`` (a download folder of its own, with
    its index.jsonl and summary.json, so a rerun of ``download`` there resumes). One
    Downloader (one HealthImaging client, one decode pool) serves every study.
    """
    t0 = time.monotonic()
    run = WorkflowRun(plan, clients, state_file, say)
    await run.deploy()
    send_studies, receive_studies = anyio.create_memory_object_stream[Study](1)
    async with Downloader(settings) as downloader, anyio.create_task_group() as tg:
        tg.start_soon(run.copy_studies, send_studies)
        tg.start_soon(run.import_studies, receive_studies, downloader)
    end = time.monotonic()
    for name, report in run.reports.items():
        report.seconds = run.finished.get(name, end) - run.started.get(name, t0)
    state_file.update(phase="done")
    run_report = RunReport(state_file.state.run_id, list(run.reports.values()))
    if not plan.keep:
        say("cleaning up ...")
        await cleanup(clients, state_file, say)
        run_report.cleaned_up = True
    run_report.seconds = time.monotonic() - t0
    return run_report
