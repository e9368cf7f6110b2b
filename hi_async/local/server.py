"""The one HTTP endpoint: HealthImaging emulator, moto, and the control routes.

Each request is routed by the service name in its SigV4 credential scope (the
``Authorization`` header, or ``X-Amz-Credential`` of a presigned URL): ``medical-imaging``
goes to the emulator, everything else (S3, IAM, STS, CloudFormation, unsigned requests)
to moto. Paths under ``/_hi_async/`` are the control routes; with ``--verify-signatures``
all but the health check need the control token or a signature (:mod:`.control_access`).

The GetImageFrame path is kept lean: string splits instead of regular expressions where
possible, one in-memory lookup per frame, no SQLite, no per-request allocation beyond
the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web

from .aws import cloudformation, ssm_bootstrap
from .aws.moto_bridge import MotoBridge
from .aws.moto_errors import auth_error
from .aws.sigv4_verify import authorize, verify
from .config import DRIP_BYTES_PER_S, StackConfig
from .control_access import check_control_access, is_open
from .data.public_data import ensure_public_bucket
from .dicom_import.importer import ImportRunner
from .healthimaging import ids, wire
from .healthimaging.apierrors import (
    InternalServerException,
    ServiceError,
    ServiceUnavailableException,
    ThrottlingException,
    UnknownOperationException,
)
from .healthimaging.backend import Backend
from .healthimaging.handlers import HANDLERS, Blob, Context
from .healthimaging.models import Job
from .healthimaging.registry import Registry, current_registry, set_registry
from .realism import Fault, Realism

log = logging.getLogger("hi_async.local")

_FAULTED = frozenset({"GetImageFrame", "GetImageSetMetadata"})
_JSON = "application/json"


def _resource_arn(account: str, region: str, labels: dict[str, str]) -> str:
    """The ARN an IAM decision names: the image set, else the data store, else any."""
    datastore, image_set = labels.get("datastoreId"), labels.get("imageSetId")
    if datastore and image_set:
        return ids.image_set_arn(region, account, datastore, image_set)
    if datastore:
        return ids.datastore_arn(region, account, datastore)
    return f"arn:aws:medical-imaging:{region}:{account}:*"


def scope_service(request: web.Request) -> tuple[str | None, str | None]:
    """``(service, region)`` from the SigV4 credential scope, or ``(None, None)``."""
    auth = request.headers.get("Authorization")
    if auth:
        i = auth.find("Credential=")
        if i < 0:
            return None, None
        scope = auth[i + 11:].split(",", 1)[0].split("/")
    else:
        cred = request.query.get("X-Amz-Credential") if request.query_string else None
        if not cred:
            return None, None
        scope = cred.split("/")
    if len(scope) != 5:
        return None, None
    return scope[3], scope[2]


class LocalServer:
    """State and request handling of one running stack (see the module docstring)."""

    def __init__(self, config: StackConfig, data_dir: Path, task_group: anyio.abc.TaskGroup):
        self.config = config
        self.data_dir = data_dir
        self.tg = task_group
        self.registry = Registry(data_dir / "healthimaging", datastore_delay=config.datastore_delay,
                                 lock_delay=config.lock_delay,
                                 frame_cache_bytes=config.frame_cache_bytes)
        self.realism = Realism(config.knobs)
        self.requests: Counter[tuple[str, int]] = Counter()
        self.moto = MotoBridge()
        self.ready = threading.Event()
        self.public_data_state = "absent"
        self._runners: dict[int, ImportRunner] = {}
        self._seq = 0
        self._previous_registry: Registry | None = None

    # -- life cycle --------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=6 * 1024**3)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def start_services(self) -> None:
        """Teach moto's CloudFormation our resource types, bootstrap the account for the
        CDK, seed the public bucket, then be ready."""
        self._previous_registry = set_registry(self.registry)
        cloudformation.install()
        await self._bootstrap_account()
        await self._ensure_public_data()
        self.ready.set()

    async def _bootstrap_account(self) -> None:
        if not self.config.bare_account:
            await anyio.to_thread.run_sync(ssm_bootstrap.bootstrap, self.config.account_id)

    async def _ensure_public_data(self) -> None:
        self.public_data_state = "seeding"
        try:
            await anyio.to_thread.run_sync(ensure_public_bucket, self.data_dir)
            self.public_data_state = "ready"
        except Exception as exc:  # a broken seed must not take the endpoint down
            self.public_data_state = f"failed: {exc}"
            log.exception("seeding the public data bucket failed")

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()  # its worker processes end with the stack, not with the host
        self.moto.close()
        self.registry.close()
        if current_registry() is self.registry:
            set_registry(self._previous_registry)

    # -- import jobs -------------------------------------------------------------------
    def submit_job(self, backend: Backend, job: Job) -> None:
        self.tg.start_soon(self._run_job, backend, job.datastore_id, job.job_id)

    async def _run_job(self, backend: Backend, datastore_id: str, job_id: str) -> None:
        runner = self._runners.get(id(backend))
        if runner is None:
            c = self.config
            runner = self._runners[id(backend)] = ImportRunner(
                backend, max_bytes=c.import_max_bytes, max_frame_bytes=c.import_max_frame_bytes,
                max_instance_bytes=c.import_max_instance_bytes,
                worker_memory=c.import_worker_memory)
        job = backend.get_job(datastore_id, job_id)
        try:
            await runner.run(job)
        except Exception as exc:
            log.exception("import job %s failed", job_id)
            if backend.get_job(datastore_id, job_id).job_status not in ("COMPLETED", "FAILED"):
                backend.finish_job(datastore_id, job_id, "FAILED",
                                   f"internal error {type(exc).__name__}")

    # -- dispatch ----------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_hi_async/"):
            return await self.control(request)
        service, region = scope_service(request)
        if service == "medical-imaging":
            return await self.healthimaging(request, region or "us-east-1")
        if self.config.verify_signatures:
            body = await request.read()  # aiohttp keeps it for the bridge to read again
            try:
                verify(request.method, request.raw_path, request.headers, body,
                       self.config.credentials, s3=service in ("s3", None))
            except ServiceError as exc:
                self.requests[(f"{service or 'unsigned'}:refused", 403)] += 1
                return auth_error(service, exc, self._request_id())
        return await self.moto.handle(request, service)

    def _request_id(self) -> str:
        self._seq += 1
        return f"{self._seq:08x}-0000-4000-8000-{id(self) & 0xFFFFFFFFFFFF:012x}"

    def _error(self, op: str, exc: ServiceError, rid: str) -> web.Response:
        self.requests[(op, exc.status)] += 1
        return web.Response(status=exc.status, body=wire.error_body(exc.message),
                            content_type=_JSON,
                            headers={"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": rid})

    async def healthimaging(self, request: web.Request, region: str) -> web.StreamResponse:
        rid = self._request_id()
        raw_path, _, query = request.raw_path.partition("?")
        found = wire.match(request.method, raw_path)
        if found is None:
            return self._error("Unknown", UnknownOperationException(
                f"no HealthImaging operation answers {request.method} {raw_path}"), rid)
        route, labels = found
        op = route.name
        body = await request.read()
        try:
            if self.config.verify_signatures:
                key = verify(request.method, request.raw_path, request.headers, body,
                             self.config.credentials)
                if key in self.config.denied:
                    authorize(key, op, _resource_arn(self.config.account_id, region, labels),
                              self.config.account_id, self.config.denied)
            if route.data_plane and self.realism.throttled():
                raise ThrottlingException("Rate exceeded")
            await self.realism.delay()
            fault = self.realism.draw(frame=op == "GetImageFrame") if op in _FAULTED else None
            if fault is not None and fault.kind == "error":
                raise (ServiceUnavailableException("Service unavailable, retry")
                       if fault.status == 503 else InternalServerException("Internal error, retry"))
            params = wire.parse_input(route, labels, query, body)
            ctx = Context(self.registry.get(self.config.account_id, region), self.submit_job)
            handler = HANDLERS.get(op)
            if handler is None:  # in a botocore model newer than this emulator
                raise UnknownOperationException(
                    f"the local stack does not implement {op} yet; it emulates the "
                    f"{len(HANDLERS)} operations of the service it was built against")
            result = handler(ctx, params)
        except ServiceError as exc:
            return self._error(op, exc, rid)
        except Exception as exc:  # a bug must still answer as the service would
            log.exception("%s failed", op)
            return self._error(op, InternalServerException(f"internal error {type(exc).__name__}"),
                               rid)
        self.requests[(op, 200)] += 1
        if isinstance(result, Blob):
            return await self._send_blob(request, result, fault, rid)
        return web.Response(body=wire.output_body(result), content_type=_JSON,
                            headers={"x-amzn-RequestId": rid})

    async def _send_blob(self, request: web.Request, blob: Blob, fault: Fault | None,
                         rid: str) -> web.StreamResponse:
        data = blob.data
        headers = {"Content-Type": blob.content_type, "x-amzn-RequestId": rid}
        if blob.content_encoding:
            headers["Content-Encoding"] = blob.content_encoding
        if fault is not None and fault.kind == "corrupt":
            data = self.realism.corrupt(data)
        step, pause = self.realism.slices(len(data))
        if fault is None or fault.kind == "corrupt":
            if not pause:
                return web.Response(body=data, headers=headers)
            resp = web.StreamResponse(headers=headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            for i in range(0, len(data), step):
                await resp.write(data[i:i + step])
                await asyncio.sleep(pause)
            await resp.write_eof()
            return resp
        if fault.kind == "drip":
            return await self._drip(request, data, headers)
        # drop / truncate: promise the full length, send part of it, end the connection.
        resp = web.StreamResponse(headers=headers)
        resp.content_length = len(data)
        resp.force_close()
        await resp.prepare(request)
        await resp.write(data[: len(data) // 2])
        transport = request.transport
        if transport is not None:
            if fault.kind == "drop":
                transport.abort()
            else:
                transport.close()
        return resp

    async def _drip(self, request: web.Request, data: bytes,
                    headers: dict[str, str]) -> web.StreamResponse:
        """The whole answer, a byte at a time, until it is sent or the client gives up."""
        resp = web.StreamResponse(headers=headers)
        resp.content_length = len(data)
        await resp.prepare(request)
        try:
            for i in range(len(data)):
                await resp.write(data[i:i + 1])
                await asyncio.sleep(1.0 / DRIP_BYTES_PER_S)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client cut it off: what a dripping answer is for
        return resp

    # -- control routes ----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        per_op: dict[str, dict[str, int]] = {}
        for (op, status), n in sorted(self.requests.items()):
            per_op.setdefault(op, {})[str(status)] = n
        return {"requests": per_op, "faults": dict(self.realism.faults),
                "knobs": self.realism.knobs.as_dict(), "publicData": self.public_data_state}

    async def control(self, request: web.Request) -> web.StreamResponse:
        name, method = request.path[len("/_hi_async/"):], request.method
        trusted = not self.config.verify_signatures
        if not trusted:
            body = await request.read()  # aiohttp keeps it for the route to read again
            try:
                check_control_access(method, request.raw_path, request.headers, body,
                                     self.config)
                trusted = True
            except ServiceError as exc:
                if not is_open(name, method):
                    self.requests[("control:refused", exc.status)] += 1
                    return web.json_response({"__type": exc.code, "message": exc.message},
                                             status=exc.status,
                                             headers={"x-amzn-ErrorType": exc.code})
        if name == "health" and method == "GET":
            ok = self.ready.is_set()
            # An unauthenticated probe learns whether the stack is ready, nothing more.
            answer = {"ready": ok, "publicData": self.public_data_state} if trusted else \
                {"ready": ok}
            return web.json_response(answer, status=200 if ok else 503)
        if name == "stats" and method == "GET":
            return web.json_response(self.stats())
        if name == "reset" and method == "POST":
            for backend in self.registry.all():
                backend.reset()
            await anyio.to_thread.run_sync(self.moto.reset)
            self.requests.clear()
            self.realism.faults.clear()
            await self._bootstrap_account()
            await self._ensure_public_data()
            return web.json_response({"reset": True})
        if name == "faults" and method == "POST":
            try:
                changes = json.loads(await request.read() or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of knob names to values")
                self.realism.apply(self.realism.knobs.updated(changes))
            except ValueError as exc:
                return web.json_response({"message": str(exc)}, status=400)
            return web.json_response(self.realism.knobs.as_dict())
        if name == "faults" and method == "GET":
            return web.json_response(self.realism.knobs.as_dict())
        return web.json_response({"message": f"no control route {method} /_hi_async/{name}"},
                                 status=404)


def warn_if_exposed(host: str) -> None:
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: the local stack is bound to {host}, reachable from other machines; "
              "it accepts any credentials, and anyone who reaches it may reset it, unless "
              "--verify-signatures is given",
              file=sys.stderr, flush=True)
