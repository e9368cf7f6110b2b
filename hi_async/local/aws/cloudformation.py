"""moto's CloudFormation, made to deploy what the local stack promises to deploy.

The project's own template (``infra/``) and templates the AWS CDK writes (AWS's
HealthImaging example among them) must deploy, be used and be deleted as on AWS. moto
parses templates and creates resources; the modules here add what it lacks:

- resource types: ``AWS::HealthImaging::Datastore`` (:mod:`.cfn_datastore`),
  ``AWS::S3::BucketPolicy`` (:mod:`.cfn_bucket_policy`), ``AWS::CDK::Metadata``
  (:mod:`.cfn_cdk_metadata`), custom resources without Lambda
  (:mod:`.cfn_custom_resources`, the CDK's auto-delete provider in :mod:`.cdk_auto_delete`);
- template bodies it cannot read refused in CloudFormation's words (:mod:`.cfn_template`);
- parameters resolved from SSM and the template's Rules (:mod:`.cfn_parameters`);
- a bucket that is not empty refusing deletion (:mod:`.cfn_bucket`);
- the stack life cycle: creation that fails and rolls back, deletion that can fail,
  resources created only while a stack is created or updated (:mod:`.cfn_lifecycle`), and
  the API calls' options moto ignores (:mod:`.cfn_requests`).

:func:`install` does all of it once per process; the server calls it at start-up.
"""

from __future__ import annotations

import threading

from moto.cloudformation import parsing

from . import (
    cfn_bucket,
    cfn_bucket_policy,
    cfn_cdk_metadata,
    cfn_custom_resources,
    cfn_datastore,
    cfn_lifecycle,
    cfn_parameters,
    cfn_requests,
    cfn_template,
)

#: The resource types this package adds (each module defines one model).
MODELS = (cfn_datastore.HealthImagingDatastore, cfn_bucket_policy.S3BucketPolicyRecord,
          cfn_cdk_metadata.CdkMetadata, cfn_custom_resources.CustomResource)

_lock = threading.Lock()
_installed = False


def install() -> None:
    """Register the resource types and CloudFormation's semantics with moto (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        cfn_template.install()
        cfn_parameters.install()
        cfn_bucket.install()
        cfn_lifecycle.install()
        cfn_requests.install()
        parsing.resource_class_from_type = cfn_custom_resources.resource_class_for(  # type: ignore[assignment]
            parsing.resource_class_from_type)
        # moto caches its type → model map on first use; drop it so the models above are
        # seen even if a stack was parsed before they were defined.
        for cached in (parsing.get_model_list, parsing.get_model_map,
                       parsing.get_name_type_map):
            cached.cache_clear()
        _installed = True
