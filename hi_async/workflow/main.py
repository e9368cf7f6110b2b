"""The two commands the CLI exposes: run the workflow, and finish a clean-up.

Both pick where their calls go from the plan or the state file: real AWS, a local stack the
user runs at an endpoint, or the embedded local stack started for the occasion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import EndpointUnreachable, HiAsyncError, NotFound, UsageError
from ..local.aws.moto_state import STATE_FILE as MOTO_STATE_FILE
from ..settings import Settings, configured_endpoint_url
from .cleanup import cleanup
from .clients import Clients, Endpoint
from .plan import Plan
from .report import RunReport
from .run import run_on
from .session import embedded_endpoint, interruptible, local_data_dir, remove_local_data
from .state import RunState, StateFile

Say = Callable[[str], None]


@dataclass
class Outcome:
    """What the CLI needs to print and to choose its exit code."""

    report: RunReport | None
    state: RunState
    interrupted: bool


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to show for a failed task group: ours first, then any other."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (HiAsyncError, Exception):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0] if leaves else group


def _check_out_dir(out_dir: Path) -> None:
    try:
        previous = StateFile.load(out_dir).state
    except UsageError:
        return
    if previous.phase != "cleaned":
        raise UsageError(
            f"{out_dir} belongs to run {previous.run_id}, whose resources were not cleaned up",
            hint=f"run 'python -m hi_async cleanup --out {out_dir}' first, or pick another --out")


#: The key the workflow signs local-stack requests with (any key works there).
LOCAL_KEY = "testing"


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

    # The local stack accepts any key: give the downloader one explicitly, so that a
    # machine's real credentials are never sent to it and none are needed.
    local_keys = {"access_key_id": LOCAL_KEY, "secret_access_key": LOCAL_KEY,
                  "session_token": None}

    async def work() -> RunReport:
        if data_dir is None:
            endpoint = Endpoint(plan.region, plan.endpoint_url, plan.profile)
            keys = local_keys if endpoint.is_local and not plan.profile else {}
            # On AWS the downloader goes where botocore's clients go: an endpoint set in
            # AWS_ENDPOINT_URL[_MEDICAL_IMAGING] (a VPC endpoint, a proxy) included.
            download_url = plan.endpoint_url or (configured_endpoint_url("medical-imaging")
                                                 if plan.aws else None)
            return await run_on(plan, endpoint, state_file,
                                settings.replace(endpoint_url=download_url,
                                                 region=plan.region, profile=plan.profile,
                                                 **keys), say)
        say(f"starting the local stack (data in {data_dir}) ...")
        async with embedded_endpoint(data_dir, plan.region) as endpoint:
            state_file.update(endpoint_url=endpoint.endpoint_url)
            return await run_on(plan, endpoint, state_file,
                                settings.replace(endpoint_url=endpoint.endpoint_url,
                                                 region=plan.region, **local_keys), say)

    try:
        report, interrupted = await interruptible(work)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    if report is not None:
        report.write(plan.out_dir)
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
        if not (data_dir / MOTO_STATE_FILE).is_file():
            # Saved at a clean stop only: a killed stack took them with it.
            say("  (its S3 buckets, IAM role and stack were not saved when its process "
                "ended and are gone; the HealthImaging data is kept on disk and is removed "
                "now)")
        async with embedded_endpoint(data_dir, state.region) as endpoint:
            state_file.update(endpoint_url=endpoint.endpoint_url)
            async with Clients(endpoint) as clients:
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
    async with Clients(Endpoint(state.region, state.endpoint_url, state.profile)) as clients:
        await cleanup(clients, state_file, say)
    return state
