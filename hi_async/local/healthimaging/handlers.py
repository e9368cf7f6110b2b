"""One function per operation: validated input in, the model's output shape out.

Handlers hold no rules (those are the backend's) and no HTTP (that is the server's);
they translate between the model's member names and the backend's methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backend import Backend
from .models import Job
from .pagination import paginate


@dataclass(frozen=True, slots=True)
class Blob:
    """A streamed payload (frame or metadata) with its headers."""

    data: bytes
    content_type: str
    content_encoding: str | None = None


@dataclass(slots=True)
class Context:
    backend: Backend
    #: Hands a newly submitted import job to whoever runs jobs (the server).
    submit_job: Callable[[Backend, Job], None]


Result = dict[str, Any] | Blob
Handler = Callable[[Context, dict[str, Any]], Result]


def create_datastore(ctx: Context, p: dict[str, Any]) -> Result:
    ds = ctx.backend.create_datastore(p.get("datastoreName"), p.get("clientToken"),
                                      p.get("tags"), p.get("kmsKeyArn"),
                                      p.get("lambdaAuthorizerArn"),
                                      p.get("losslessStorageFormat"))
    return {"datastoreId": ds.datastore_id,
            "datastoreStatus": ctx.backend.datastore_status(ds)}


def get_datastore(ctx: Context, p: dict[str, Any]) -> Result:
    b = ctx.backend
    return {"datastoreProperties": b.datastore_properties(b.get_datastore(p["datastoreId"]))}


def list_datastores(ctx: Context, p: dict[str, Any]) -> Result:
    b = ctx.backend
    page, token = paginate(b.list_datastores(p.get("datastoreStatus")), p.get("maxResults"),
                           p.get("nextToken"), "datastores")
    summaries = []
    for ds in page:
        props = b.datastore_properties(ds)
        for key in ("kmsKeyArn", "lambdaAuthorizerArn", "losslessStorageFormat"):
            props.pop(key)
        summaries.append(props)
    return {"datastoreSummaries": summaries, "nextToken": token}


def delete_datastore(ctx: Context, p: dict[str, Any]) -> Result:
    ds = ctx.backend.delete_datastore(p["datastoreId"])
    return {"datastoreId": ds.datastore_id,
            "datastoreStatus": ctx.backend.datastore_status(ds)}


def _job_properties(b: Backend, job: Job) -> dict[str, Any]:
    return {"jobId": job.job_id, "jobName": job.job_name, "jobStatus": job.job_status,
            "datastoreId": job.datastore_id, "dataAccessRoleArn": job.data_access_role_arn,
            "endedAt": job.ended_at, "submittedAt": job.submitted_at,
            "inputS3Uri": job.input_s3_uri, "outputS3Uri": b.job_output_uri(job),
            "message": job.message}


def start_dicom_import_job(ctx: Context, p: dict[str, Any]) -> Result:
    job, new = ctx.backend.start_job(
        p["datastoreId"], data_access_role_arn=p["dataAccessRoleArn"],
        input_s3_uri=p["inputS3Uri"], output_s3_uri=p["outputS3Uri"],
        client_token=p.get("clientToken"), job_name=p.get("jobName"),
        input_owner_account_id=p.get("inputOwnerAccountId"))
    if new:
        ctx.submit_job(ctx.backend, job)
    return {"datastoreId": job.datastore_id, "jobId": job.job_id, "jobStatus": job.job_status,
            "submittedAt": job.submitted_at}


def get_dicom_import_job(ctx: Context, p: dict[str, Any]) -> Result:
    job = ctx.backend.get_job(p["datastoreId"], p["jobId"])
    return {"jobProperties": _job_properties(ctx.backend, job)}


def list_dicom_import_jobs(ctx: Context, p: dict[str, Any]) -> Result:
    b = ctx.backend
    jobs = b.list_jobs(p["datastoreId"], p.get("jobStatus"))
    page, token = paginate(jobs, p.get("maxResults"), p.get("nextToken"), "jobs")
    summaries = []
    for job in page:
        props = _job_properties(b, job)
        for key in ("inputS3Uri", "outputS3Uri"):
            props.pop(key)
        summaries.append(props)
    return {"jobSummaries": summaries, "nextToken": token}


def search_image_sets(ctx: Context, p: dict[str, Any]) -> Result:
    criteria = p.get("searchCriteria")
    found = ctx.backend.search_image_sets(p["datastoreId"], criteria)
    page, token = paginate(found, p.get("maxResults"), p.get("nextToken"), "search")
    return {"imageSetsMetadataSummaries": page, "nextToken": token,
            "sort": (criteria or {}).get("sort")}


def get_image_set(ctx: Context, p: dict[str, Any]) -> Result:
    return ctx.backend.get_image_set(p["datastoreId"], p["imageSetId"], p.get("versionId"))


def get_image_set_metadata(ctx: Context, p: dict[str, Any]) -> Result:
    data = ctx.backend.metadata_gz(p["datastoreId"], p["imageSetId"], p.get("versionId"))
    return Blob(data, "text/plain", "gzip")  # the model's documented default


def get_image_frame(ctx: Context, p: dict[str, Any]) -> Result:
    data, content_type = ctx.backend.frame(p["datastoreId"], p["imageSetId"],
                                           p["imageFrameInformation"]["imageFrameId"])
    return Blob(data, content_type)


def list_image_set_versions(ctx: Context, p: dict[str, Any]) -> Result:
    versions = ctx.backend.list_image_set_versions(p["datastoreId"], p["imageSetId"])
    page, token = paginate(versions, p.get("maxResults"), p.get("nextToken"), "versions")
    return {"imageSetPropertiesList": page, "nextToken": token}


def update_image_set_metadata(ctx: Context, p: dict[str, Any]) -> Result:
    return ctx.backend.update_image_set_metadata(
        p["datastoreId"], p["imageSetId"], p["latestVersionId"],
        p["updateImageSetMetadataUpdates"], force=bool(p.get("force")))


def copy_image_set(ctx: Context, p: dict[str, Any]) -> Result:
    return ctx.backend.copy_image_set(
        p["datastoreId"], p["sourceImageSetId"], p["copyImageSetInformation"],
        force=bool(p.get("force")), promote_to_primary=bool(p.get("promoteToPrimary")))


def delete_image_set(ctx: Context, p: dict[str, Any]) -> Result:
    return ctx.backend.delete_image_set(p["datastoreId"], p["imageSetId"])


def tag_resource(ctx: Context, p: dict[str, Any]) -> Result:
    ctx.backend.tag_resource(p["resourceArn"], p["tags"])
    return {}


def untag_resource(ctx: Context, p: dict[str, Any]) -> Result:
    ctx.backend.untag_resource(p["resourceArn"], p["tagKeys"])
    return {}


def list_tags_for_resource(ctx: Context, p: dict[str, Any]) -> Result:
    return {"tags": ctx.backend.list_tags(p["resourceArn"])}


HANDLERS: dict[str, Handler] = {
    "CreateDatastore": create_datastore,
    "GetDatastore": get_datastore,
    "ListDatastores": list_datastores,
    "DeleteDatastore": delete_datastore,
    "StartDICOMImportJob": start_dicom_import_job,
    "GetDICOMImportJob": get_dicom_import_job,
    "ListDICOMImportJobs": list_dicom_import_jobs,
    "SearchImageSets": search_image_sets,
    "GetImageSet": get_image_set,
    "GetImageSetMetadata": get_image_set_metadata,
    "GetImageFrame": get_image_frame,
    "ListImageSetVersions": list_image_set_versions,
    "UpdateImageSetMetadata": update_image_set_metadata,
    "CopyImageSet": copy_image_set,
    "DeleteImageSet": delete_image_set,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
