"""The two commands the CLI exposes: run the workflow, and finish a clean-up.

Both pick where their calls go from the plan or the state file: real AWS, a local stack the
user runs at an endpoint, or the embedded local stack started for the occasion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import EndpointUnreachable, NotFound, UsageError, first_error
from ..settings import Settings
from .cleanup import cleanup
from .clients import Clients
from .plan import Plan
from .report import RunReport
from .run import execute
from .session import (
    embedded_stack,
    interruptible,
    local_data_dir,
    moto_state_saved,
    remove_local_data,
    target_settings,
)
from .state import RunState, StateFile
from .studypage import write_study_page

Say = Callable[[str], None]


@dataclass
class Outcome:
    """What the CLI needs to print and to choose its exit code."""

    report: RunReport | None
    state: RunState
    interrupted: bool


def _check_out_dir(out_dir: Path) -> None:
    try:
        previous = StateFile.load(out_dir).state
    except UsageError:
        return
    if previous.phase != "cleaned":
        raise UsageError(
            f"{out_dir} belongs to run {previous.run_id}, whose resources were not cleaned up",
            hint=f"run 'python -m hi_async cleanup --out {out_dir}' first, or pick another --out")


async def run_workflow(plan: Plan, settings: Settings, say: Say = print) -> Outcome:
    """The whole workflow on the plan's target; Ctrl-C stops it and leaves the state file."""
    _check_out_dir(plan.out_dir)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    mode = "aws" if plan.aws else ("endpoint" if plan.endpoint_url else "embedded")
    data_dir = local_data_dir(plan.out_dir) if mode == "embedded" else None
    state_file = StateFile(plan.out_dir, RunState(
        run_id=plan.run_id, mode=mode, region=plan.region, endpoint_url=plan.endpoint_url,
        profile=plan.profile, local_data_dir=str(data_dir) if data_dir else None))
    state_file.save()

    async def run_on(endpoint_url: str | None) -> RunReport:
        target = target_settings(settings, region=plan.region, endpoint_url=endpoint_url,
                                 profile=plan.profile)
        async with Clients(target) as clients:
            return await execute(plan, clients, state_file, target, say)

    async def work() -> RunReport:
        if data_dir is None:
            return await run_on(plan.endpoint_url)
        say(f"starting the local stack (data in {data_dir}) ...")
        async with embedded_stack(data_dir) as url:
            state_file.update(endpoint_url=url)
            return await run_on(url)

    try:
        report, interrupted = await interruptible(work)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    if report is not None:
        report.write(plan.out_dir)
        if settings.assembles_volumes:
            write_study_page(plan.out_dir, report)
        if data_dir is not None and report.cleaned_up:
            remove_local_data(data_dir)
    return Outcome(report, state_file.state, interrupted)


def _is_dir(path: Path) -> bool:
    return path.is_dir()


async def _health(endpoint_url: str) -> bool:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(
                endpoint_url.rstrip("/") + "/_hi_async/health",
                timeout=aiohttp.ClientTimeout(total=5)) as answer:
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def run_cleanup(out_dir: Path, say: Say = print) -> RunState:
    """Remove everything the state file in ``out_dir`` records."""
    state_file = StateFile.load(out_dir)
    state = state_file.state
    if state.phase == "cleaned":
        say(f"run {state.run_id}: nothing left to clean up")
        return state
    if state.mode == "embedded":
        data_dir = Path(state.local_data_dir or local_data_dir(out_dir))
        if not _is_dir(data_dir):
            raise NotFound(f"the local stack's data folder {data_dir} is gone",
                           hint="nothing of that run can remain; delete the state file")
        say(f"starting the local stack again on {data_dir} ...")
        if not moto_state_saved(data_dir):
            # Saved at a clean stop only: a killed stack took them with it.
            say("  (its S3 buckets, IAM role and stack were not saved when its process "
                "ended and are gone; the HealthImaging data is kept on disk and is removed "
                "now)")
        async with embedded_stack(data_dir) as url:
            state_file.update(endpoint_url=url)
            target = target_settings(Settings(), region=state.region, endpoint_url=url,
                                     profile=None)
            async with Clients(target) as clients:
                await cleanup(clients, state_file, say)
        remove_local_data(data_dir)
        return state
    if state.mode == "endpoint":
        assert state.endpoint_url is not None
        if not await _health(state.endpoint_url):
            raise EndpointUnreachable(
                f"the local stack at {state.endpoint_url} that run {state.run_id} used does "
                "not answer",
                hint="start it again (with the same --port and --data-dir) and rerun cleanup; "
                "a stack without --data-dir took its resources with it when it stopped")
    target = target_settings(Settings(), region=state.region, endpoint_url=state.endpoint_url,
                             profile=state.profile)
    async with Clients(target) as clients:
        await cleanup(clients, state_file, say)
    return state
