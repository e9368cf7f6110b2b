"""Deploy the workflow's CloudFormation stack, wait for it, read its outputs, delete it."""

from __future__ import annotations

from typing import Any

import anyio

from ..aws.session import poll_delays
from ..errors import NotFound, WorkflowError
from .clients import Clients

OUTPUT_KEYS = ("DatastoreId", "DatastoreArn", "InputBucketName", "OutputBucketName",
               "ImportRoleArn")


async def describe_stack(clients: Clients, stack: str) -> dict[str, Any]:
    """The stack's description; NotFound when CloudFormation does not know it."""
    answer = await clients.call(f"read stack {stack}",
                                lambda: clients.cfn.describe_stacks(StackName=stack))
    return dict(answer["Stacks"][0])


async def _wait_while_in_progress(clients: Clients, stack: str, *,
                                  give_up_after: float) -> dict[str, Any]:
    """Describe ``stack`` until its status no longer ends in ``_IN_PROGRESS``."""
    delays = poll_delays()
    with anyio.fail_after(give_up_after):
        while True:
            desc = await describe_stack(clients, stack)
            if not str(desc["StackStatus"]).endswith("_IN_PROGRESS"):
                return desc
            await anyio.sleep(next(delays))


async def _failure_reasons(clients: Clients, stack: str) -> str:
    try:
        answer = await clients.call(f"read the events of stack {stack}",
                                    lambda: clients.cfn.describe_stack_events(StackName=stack))
    except Exception:  # the reasons are a courtesy; the failure itself is reported anyway
        return ""
    reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
               for e in answer["StackEvents"] if e.get("ResourceStatus", "").endswith("_FAILED")]
    return "; ".join(reasons[:5])


async def create_stack(clients: Clients, stack: str, template: str,
                       parameters: dict[str, str], *,
                       give_up_after: float = 900.0) -> tuple[str, dict[str, str]]:
    """Create ``stack`` and wait for CREATE_COMPLETE; return (stack id, outputs)."""
    answer = await clients.call(f"create stack {stack}", lambda: clients.cfn.create_stack(
        StackName=stack,
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
        OnFailure="DELETE",
        Tags=[{"Key": "project", "Value": "hi_async"}],
    ))
    desc = await _wait_while_in_progress(clients, stack, give_up_after=give_up_after)
    if desc["StackStatus"] != "CREATE_COMPLETE":
        reasons = await _failure_reasons(clients, stack)
        raise WorkflowError(f"stack {stack} ended {desc['StackStatus']}: {reasons or '?'}",
                            hint="read the stack events in the CloudFormation console")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    missing = [k for k in OUTPUT_KEYS if not outputs.get(k)]
    if missing:
        raise WorkflowError(f"stack {stack} has no output(s) {', '.join(missing)}",
                            hint="the template infra/stack.yaml must declare them")
    return answer["StackId"], outputs


async def delete_stack(clients: Clients, stack: str, *, give_up_after: float = 900.0) -> str:
    """Delete ``stack`` and wait; returns the final status (DELETE_COMPLETE or gone)."""
    await clients.call(f"delete stack {stack}", lambda: clients.cfn.delete_stack(StackName=stack))
    try:
        desc = await _wait_while_in_progress(clients, stack, give_up_after=give_up_after)
    except NotFound:
        return "DELETE_COMPLETE"
    if desc["StackStatus"] != "DELETE_COMPLETE":
        reasons = await _failure_reasons(clients, stack)
        raise WorkflowError(f"stack {stack} ended {desc['StackStatus']}: {reasons or '?'}",
                            hint="empty its buckets, then run cleanup again")
    return "DELETE_COMPLETE"


async def stack_status(clients: Clients, stack: str) -> str | None:
    """The stack's status, or None when CloudFormation does not know it."""
    try:
        return str((await describe_stack(clients, stack))["StackStatus"])
    except NotFound:
        return None
