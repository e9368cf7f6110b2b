"""The local account as ``cdk bootstrap`` leaves it: the bootstrap version in SSM.

Every template the AWS CDK synthesizes declares a parameter ``BootstrapVersion`` of type
``AWS::SSM::Parameter::Value<String>`` defaulting to ``/cdk-bootstrap/hnb659fds/version``
(``hnb659fds`` is the CDK's default qualifier), and a rule refusing versions older than
it needs. ``cdk bootstrap`` writes that parameter when it deploys the CDKToolkit stack;
in an account never bootstrapped, CloudFormation refuses such a template with
"Unable to fetch parameters [...] from parameter store for this account."

So that CDK-made templates (AWS's HealthImaging example among them) deploy unchanged,
the local stack writes the parameter in every region of the account at start (and after
a reset), unless told to act as a bare account. It never overwrites a parameter that is
already there, and writes only that one: no CDKToolkit stack, no assets bucket.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("hi_async.local")

BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
#: A bootstrap template version current CDK releases accept (they require 6 or later).
BOOTSTRAP_VERSION = "27"
_DESCRIPTION = ("The version of the AWS CDK Bootstrap resources (written by the "
                "hi_async local stack, which behaves as a bootstrapped account)")


@functools.lru_cache(maxsize=1)
def _regions() -> tuple[str, ...]:
    """The regions of the aws partition where SSM runs, from botocore's endpoint data."""
    from botocore.session import get_session

    return tuple(get_session().get_available_regions("ssm"))


def bootstrap(account_id: str, regions: tuple[str, ...] | None = None) -> int:
    """Write the bootstrap version where it is missing; returns the regions written."""
    from moto.ssm import ssm_backends

    written = 0
    for region in regions or _regions():
        backend = ssm_backends[account_id][region]
        if backend.get_parameter(BOOTSTRAP_PARAMETER) is not None:
            continue
        backend.put_parameter(
            name=BOOTSTRAP_PARAMETER, description=_DESCRIPTION, value=BOOTSTRAP_VERSION,
            parameter_type="String", allowed_pattern="", keyid="", overwrite=False,
            tags=[], data_type="text", tier=None, policies=None)
        written += 1
    if written:
        log.info("wrote %s=%s in %d region(s) of account %s", BOOTSTRAP_PARAMETER,
                 BOOTSTRAP_VERSION, written, account_id)
    return written
