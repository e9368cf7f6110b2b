"""The backend's records, their persistence, and the states that change over time.

Records live in memory and are written through to the :class:`.Store`;
statuses that change "over time" (CREATING → ACTIVE, DELETING → DELETED, LOCKED →
ACTIVE) are derived from the clock when read, so no timer is needed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..models import Datastore, ImageSet, Job, image_set_from_dict, to_dict
from ..store import Store


class BackendState:
    """The records of one account in one region, and the lock that guards them.

    Every public method of the rules takes ``lock``, because the server loop, moto's
    CloudFormation thread and tests that seed directly all call in.
    """

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
        #: (data store ID, series instance UID) → the series' primary image set ID
        self.primary_by_series: dict[tuple[str, str | None], str] = {}
        self._load()

    # -- persistence -----------------------------------------------------------------------
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

    # -- derived state -------------------------------------------------------------------
    def datastore_status(self, ds: Datastore) -> str:
        now = self.clock()
        if ds.deleting_at is not None:
            return "DELETED" if now >= ds.deleting_at + self.datastore_delay else "DELETING"
        return "ACTIVE" if now >= ds.created_at + self.datastore_delay else "CREATING"

    def _settle(self, iset: ImageSet) -> None:
        latest = iset.latest
        if latest.settles_at is not None and self.clock() >= latest.settles_at:
            if latest.settle_state is not None:
                latest.state = latest.settle_state
            if latest.settle_workflow is not None:
                latest.workflow_status = latest.settle_workflow
            latest.settles_at = latest.settle_state = latest.settle_workflow = None
            with self.store.transaction():
                self._save_image_set(iset)
            self._index_primary(iset)

    def _index_primary(self, iset: ImageSet) -> None:
        latest = iset.latest
        series = iset.tags_dicom.get("DICOMSeriesInstanceUID")
        key = (iset.datastore_id, series)
        if latest.is_primary and latest.state != "DELETED" and series:
            self.primary_by_series[key] = iset.image_set_id
        elif self.primary_by_series.get(key) == iset.image_set_id:
            del self.primary_by_series[key]
