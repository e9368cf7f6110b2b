"""Import jobs: StartDICOMImportJob, GetDICOMImportJob, ListDICOMImportJobs.

These rules record jobs and their status; running a job is the DICOM importer's
(:mod:`hi_async.local.dicom_import.importer`), which reports back through
:meth:`ImportJobRules.mark_job_in_progress` and :meth:`ImportJobRules.finish_job`.
"""

from __future__ import annotations

from .. import ids
from ..apierrors import ResourceNotFoundException, ValidationException
from ..models import Job
from .datastores import DatastoreRules, check_id


class ImportJobRules(DatastoreRules):
    """The import jobs of the data stores."""

    def start_job(self, datastore_id: str, *, data_access_role_arn: str, input_s3_uri: str,
                  output_s3_uri: str, client_token: str | None = None,
                  job_name: str | None = None,
                  input_owner_account_id: str | None = None) -> tuple[Job, bool]:
        """Record a SUBMITTED job; returns it and whether it is new (client token reuse)."""
        check_id(datastore_id, "datastoreId")
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
        check_id(datastore_id, "datastoreId")
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
