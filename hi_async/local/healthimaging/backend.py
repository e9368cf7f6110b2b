"""The HealthImaging rules, free of HTTP: data stores, import jobs, tags, the registry.

Image set operations live in :mod:`backend_imagesets` and search in
:mod:`backend_search`; :class:`Backend` combines them. Every public method takes the
backend's lock, because the server loop, moto's CloudFormation thread and tests that
seed directly all call in. Records live in memory and are written through to the
:class:`~.store.Store`; statuses that change "over time" (CREATING → ACTIVE, DELETING →
DELETED, LOCKED → ACTIVE) are derived from the clock when read, so no timer is needed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import ids
from .apierrors import ConflictException, ResourceNotFoundException, ValidationException
from .models import Datastore, ImageSet, Job, image_set_from_dict, to_dict
from .rules.changes import VersionRules
from .rules.image_sets import ImageSetRules
from .rules.search import SearchRules
from .store import Store

T = TypeVar("T")

MAX_RESULTS = 50
IMPORT_UNAVAILABLE = "import is not available in this build"


def paginate(items: Sequence[T], max_results: int | None, next_token: str | None,
             kind: str) -> tuple[list[T], str | None]:
    """One page of ``items`` and the opaque token of the next one (None at the end)."""
    if max_results is not None and not 1 <= max_results <= MAX_RESULTS:
        raise ValidationException(
            f"maxResults must be between 1 and {MAX_RESULTS}, got {max_results}")
    limit = max_results or MAX_RESULTS
    offset = 0
    if next_token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(next_token.encode()))
            if decoded["k"] != kind:
                raise ValueError(kind)
            offset = int(decoded["o"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationException(
                "nextToken is not a token this operation returned; start again without it"
            ) from exc
    page = list(items[offset:offset + limit])
    token = None
    if offset + limit < len(items):
        raw = json.dumps({"k": kind, "o": offset + limit}).encode()
        token = base64.urlsafe_b64encode(raw).decode()
    return page, token


def _check_id(value: str, what: str) -> None:
    if not ids.is_id(value):
        raise ValidationException(
            f"{what} {value!r} is not valid: it must be 32 characters of [0-9a-z]")


class Backend(ImageSetRules, VersionRules, SearchRules):
    """The state and rules of HealthImaging for one account in one region."""

    def __init__(self, account_id: str, region: str, root: Path, *,
                 datastore_delay: float = 0.3, lock_delay: float = 0.0,
                 frame_cache_bytes: int = 0, clock: Callable[[], float] = time.time) -> None:
        self.account_id = account_id
        self.region = region
        self.datastore_delay = datastore_delay
        self.lock_delay = lock_delay
        self.clock = clock
        self.lock = threading.RLock()
        self.store = Store(root, cache_bytes=frame_cache_bytes)
        self.datastores: dict[str, Datastore] = {}
        self.jobs: dict[tuple[str, str], Job] = {}
        self.image_sets: dict[str, ImageSet] = {}
        #: image set ID → frame ID → (file path relative to the store, content type)
        self.frames: dict[str, dict[str, tuple[str, str]]] = {}
        self.primary_by_series: dict[tuple[str, str], str] = {}
        self._load()

    # -- persistence -------------------------------------------------------------------
    def _load(self) -> None:
        for d in self.store.load("datastore"):
            self.datastores[d["datastore_id"]] = Datastore(**d)
        now = self.clock()
        for d in self.store.load("job"):
            job = Job(**d)
            if job.job_status in ("SUBMITTED", "IN_PROGRESS"):
                job.job_status, job.ended_at = "FAILED", now
                job.message = "interrupted by a restart of the local stack, start it again"
                self._save_job(job)
            self.jobs[(job.datastore_id, job.job_id)] = job
        for d in self.store.load("imageset"):
            iset = image_set_from_dict(d)
            self.image_sets[iset.image_set_id] = iset
            self._index_primary(iset)
        for image_set_id, frame_id, content_type, rel in self.store.load_frames():
            self.frames.setdefault(image_set_id, {})[frame_id] = (rel, content_type)

    def _save_datastore(self, ds: Datastore) -> None:
        self.store.put("datastore", ds.datastore_id, to_dict(ds))

    def _save_job(self, job: Job) -> None:
        self.store.put("job", f"{job.datastore_id}/{job.job_id}", to_dict(job))

    def _save_image_set(self, iset: ImageSet) -> None:
        self.store.put("imageset", iset.image_set_id, to_dict(iset))

    def reset(self) -> None:
        """Forget all HealthImaging state of this account and region."""
        with self.lock:
            self.store.clear()
            self.datastores.clear()
            self.jobs.clear()
            self.image_sets.clear()
            self.frames.clear()
            self.primary_by_series.clear()

    def close(self) -> None:
        with self.lock:
            self.store.close()

    # -- data stores -------------------------------------------------------------------
    def datastore_status(self, ds: Datastore) -> str:
        now = self.clock()
        if ds.deleting_at is not None:
            return "DELETED" if now >= ds.deleting_at + self.datastore_delay else "DELETING"
        return "ACTIVE" if now >= ds.created_at + self.datastore_delay else "CREATING"

    def datastore_arn(self, datastore_id: str) -> str:
        return ids.datastore_arn(self.region, self.account_id, datastore_id)

    def datastore_properties(self, ds: Datastore) -> dict[str, Any]:
        return {
            "datastoreId": ds.datastore_id, "datastoreName": ds.name,
            "datastoreStatus": self.datastore_status(ds), "kmsKeyArn": ds.kms_key_arn,
            "lambdaAuthorizerArn": ds.lambda_authorizer_arn,
            "losslessStorageFormat": ds.lossless_storage_format,
            "datastoreArn": self.datastore_arn(ds.datastore_id),
            "createdAt": ds.created_at, "updatedAt": ds.updated_at,
        }

    def create_datastore(self, name: str | None = None, client_token: str | None = None,
                         tags: dict[str, str] | None = None, kms_key_arn: str | None = None,
                         lambda_authorizer_arn: str | None = None,
                         lossless_storage_format: str | None = None,
                         *, ready: bool = False) -> Datastore:
        """Create a data store; ``ready=True`` skips CREATING (for seeding and CloudFormation)."""
        self._check_tags(tags or {})
        with self.lock:
            if client_token:
                for ds in self.datastores.values():
                    if ds.client_token == client_token and ds.deleting_at is None:
                        return ds
            now = self.clock()
            created = now - self.datastore_delay if ready else now
            ds = Datastore(ids.new_id(), name or "", created, created, kms_key_arn,
                           lambda_authorizer_arn, client_token, tags=dict(tags or {}),
                           lossless_storage_format=lossless_storage_format or "HTJ2K")
            with self.store.transaction():
                self.datastores[ds.datastore_id] = ds
                self._save_datastore(ds)
            return ds

    def get_datastore(self, datastore_id: str) -> Datastore:
        _check_id(datastore_id, "datastoreId")
        with self.lock:
            ds = self.datastores.get(datastore_id)
            if ds is None:
                raise ResourceNotFoundException(f"data store {datastore_id} does not exist")
            return ds

    def active_datastore(self, datastore_id: str) -> Datastore:
        """The data store, which must be ACTIVE (image set and job operations need it)."""
        ds = self.get_datastore(datastore_id)
        status = self.datastore_status(ds)
        if status == "DELETED":
            raise ResourceNotFoundException(f"data store {datastore_id} has been deleted")
        if status != "ACTIVE":
            raise ConflictException(
                f"data store {datastore_id} is {status}, not ACTIVE; wait until it is ACTIVE")
        return ds

    def list_datastores(self, status: str | None = None) -> list[Datastore]:
        with self.lock:
            items = sorted(self.datastores.values(), key=lambda d: (d.created_at, d.datastore_id))
            return [d for d in items if status is None or self.datastore_status(d) == status]

    def delete_datastore(self, datastore_id: str) -> Datastore:
        with self.lock:
            ds = self.get_datastore(datastore_id)
            status = self.datastore_status(ds)
            if status in ("DELETING", "DELETED"):
                raise ConflictException(f"data store {datastore_id} is already {status}")
            if status == "CREATING":
                raise ConflictException(
                    f"data store {datastore_id} is still CREATING; delete it once ACTIVE")
            mine = [s for s in self.image_sets.values() if s.datastore_id == datastore_id]
            for iset in mine:
                self._settle(iset)  # a deletion that has settled no longer counts
            live = [s for s in mine if s.latest.state != "DELETED"]
            if live:
                raise ConflictException(
                    f"data store {datastore_id} still holds {len(live)} image set(s); "
                    "delete them first")
            running = [j for j in self.jobs.values() if j.datastore_id == datastore_id
                       and j.job_status in ("SUBMITTED", "IN_PROGRESS")]
            if running:
                raise ConflictException(
                    f"data store {datastore_id} has {len(running)} import job(s) running")
            ds.deleting_at = ds.updated_at = self.clock()
            with self.store.transaction():
                self._save_datastore(ds)
            return ds

    # -- import jobs -------------------------------------------------------------------
    def start_job(self, datastore_id: str, *, data_access_role_arn: str, input_s3_uri: str,
                  output_s3_uri: str, client_token: str | None = None,
                  job_name: str | None = None,
                  input_owner_account_id: str | None = None) -> tuple[Job, bool]:
        """Record a SUBMITTED job; returns it and whether it is new (client token reuse)."""
        _check_id(datastore_id, "datastoreId")
        with self.lock:
            self.active_datastore(datastore_id)
            if client_token:
                for job in self.jobs.values():
                    if job.datastore_id == datastore_id and job.client_token == client_token:
                        return job, False
            job_id = ids.new_id()
            job = Job(datastore_id, job_id, job_name or f"import-{job_id[:12]}", "SUBMITTED",
                      data_access_role_arn, input_s3_uri, output_s3_uri, self.clock(),
                      client_token, input_owner_account_id=input_owner_account_id)
            with self.store.transaction():
                self.jobs[(datastore_id, job_id)] = job
                self._save_job(job)
            return job, True

    def get_job(self, datastore_id: str, job_id: str) -> Job:
        _check_id(datastore_id, "datastoreId")
        if not ids.JOB_ID_RE.fullmatch(job_id):
            raise ValidationException(
                f"jobId {job_id!r} is not valid: it must be 1-32 characters of [0-9a-z]")
        with self.lock:
            self.get_datastore(datastore_id)
            job = self.jobs.get((datastore_id, job_id))
            if job is None:
                raise ResourceNotFoundException(
                    f"import job {job_id} does not exist in data store {datastore_id}")
            return job

    def job_output_uri(self, job: Job) -> str:
        base = job.output_s3_uri if job.output_s3_uri.endswith("/") else job.output_s3_uri + "/"
        return f"{base}{job.datastore_id}-DicomImport-{job.job_id}/"

    def list_jobs(self, datastore_id: str, status: str | None = None) -> list[Job]:
        with self.lock:
            self.get_datastore(datastore_id)
            jobs = [j for j in self.jobs.values() if j.datastore_id == datastore_id
                    and (status is None or j.job_status == status)]
            return sorted(jobs, key=lambda j: (-j.submitted_at, j.job_id))

    def mark_job_in_progress(self, datastore_id: str, job_id: str) -> None:
        with self.lock:
            job = self.get_job(datastore_id, job_id)
            job.job_status = "IN_PROGRESS"
            with self.store.transaction():
                self._save_job(job)

    def finish_job(self, datastore_id: str, job_id: str, status: str,
                   message: str | None = None) -> None:
        if status not in ("COMPLETED", "FAILED"):
            raise ValueError(f"a job finishes COMPLETED or FAILED, not {status}")
        with self.lock:
            job = self.get_job(datastore_id, job_id)
            job.job_status, job.ended_at, job.message = status, self.clock(), message
            with self.store.transaction():
                self._save_job(job)

    # -- tags --------------------------------------------------------------------------
    @staticmethod
    def _check_tags(tags: dict[str, str]) -> None:
        for key in tags:
            if key.startswith("aws:"):
                raise ValidationException(f"tag key {key!r} uses the reserved prefix aws:")

    def _tagged(self, arn: str) -> Datastore | ImageSet:
        parsed = ids.parse_arn(arn)
        if parsed is None:
            raise ValidationException(f"resourceArn {arn!r} is not a HealthImaging ARN")
        region, account, datastore_id, image_set_id = parsed
        if (region, account) != (self.region, self.account_id):
            raise ResourceNotFoundException(f"resource {arn} does not exist")
        ds = self.datastores.get(datastore_id)
        if ds is None or self.datastore_status(ds) == "DELETED":
            raise ResourceNotFoundException(f"data store {datastore_id} does not exist")
        if image_set_id is None:
            return ds
        iset = self.image_sets.get(image_set_id)
        if iset is not None:
            self._settle(iset)
        if iset is None or iset.datastore_id != datastore_id or iset.latest.state == "DELETED":
            raise ResourceNotFoundException(f"image set {image_set_id} does not exist")
        return iset

    def _save_tagged(self, obj: Datastore | ImageSet) -> None:
        with self.store.transaction():
            if isinstance(obj, Datastore):
                self._save_datastore(obj)
            else:
                self._save_image_set(obj)

    def tag_resource(self, arn: str, tags: dict[str, str]) -> None:
        self._check_tags(tags)
        with self.lock:
            obj = self._tagged(arn)
            obj.tags.update(tags)
            self._save_tagged(obj)

    def untag_resource(self, arn: str, keys: Sequence[str]) -> None:
        with self.lock:
            obj = self._tagged(arn)
            for key in keys:
                obj.tags.pop(key, None)
            self._save_tagged(obj)

    def list_tags(self, arn: str) -> dict[str, str]:
        with self.lock:
            return dict(self._tagged(arn).tags)


class Registry:
    """The backends of one running stack, one per account and region, under one root."""

    def __init__(self, root: Path, **backend_options: Any) -> None:
        self.root = root
        self.options = backend_options
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str], Backend] = {}

    def get(self, account_id: str = ids.ACCOUNT_ID, region: str = ids.DEFAULT_REGION) -> Backend:
        key = (account_id, region)
        backend = self._backends.get(key)
        if backend is None:
            with self._lock:
                backend = self._backends.get(key)
                if backend is None:
                    root = self.root / "accounts" / account_id / region
                    backend = Backend(account_id, region, root, **self.options)
                    self._backends[key] = backend
        return backend

    def all(self) -> list[Backend]:
        with self._lock:
            return list(self._backends.values())

    def close(self) -> None:
        for backend in self.all():
            backend.close()


_current: Registry | None = None


def set_registry(registry: Registry | None) -> Registry | None:
    """Make ``registry`` the one :func:`get_backend` answers from; returns the previous one.

    A stack restores the previous registry when it stops, so a short-lived second stack
    in the same process (a test's) does not orphan the first.
    """
    global _current
    previous, _current = _current, registry
    return previous


def current_registry() -> Registry | None:
    return _current


def get_backend(account_id: str = ids.ACCOUNT_ID, region: str = ids.DEFAULT_REGION) -> Backend:
    """The backend of the running local stack for this account and region."""
    if _current is None:
        raise RuntimeError("no local stack is running in this process; start one first")
    return _current.get(account_id, region)
