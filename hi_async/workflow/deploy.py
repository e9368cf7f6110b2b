"""Deploy the workflow's CloudFormation stack, wait for it, read its outputs, delete it."""

from __future__ import annotations

from typing import Any

import anyio

from ..errors import HiAsyncError, NotFound, WorkflowError
from .clients import call, error_code

OUTPUT_KEYS = ("DatastoreId", "DatastoreArn", "InputBucketName", "OutputBucketName",
               "ImportRoleArn")


async def _poll_stack(cfn: Any, stack: str, done: set[str], *,
                      give_up_after: float) -> dict[str, Any]:
    """Describe ``stack`` until its status is in ``done`` or no longer in progress."""
    delay = 0.05
    with anyio.fail_after(give_up_after):
        while True:
            try:
                answer = await cfn.describe_stacks(StackName=stack)
            except Exception as exc:
                if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                    raise NotFound(f"stack {stack} does not exist") from exc
                raise
            desc = answer["Stacks"][0]
            status = desc["StackStatus"]
            if status in done or not status.endswith("_IN_PROGRESS"):
                return desc
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _failure_reasons(cfn: Any, stack: str) -> str:
    try:
        events = (await cfn.describe_stack_events(StackName=stack))["StackEvents"]
    except Exception:  # the reasons are a courtesy; the failure itself is reported anyway
        return ""
    reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
               if e.get("ResourceStatus", "").endswith("_FAILED")]
    return "; ".join(reasons[:5])


async def create_stack(cfn: Any, stack: str, template: str, parameters: dict[str, str],
                       *, give_up_after: float = 900.0) -> tuple[str, dict[str, str]]:
    """Create ``stack`` and wait for CREATE_COMPLETE; return (stack id, outputs)."""
    answer = await call(f"create stack {stack}", cfn.create_stack(
        StackName=stack,
        TemplateBody=template,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
        OnFailure="DELETE",
        Tags=[{"Key": "project", "Value": "hi_async"}],
    ))
    desc = await call(f"wait for stack {stack}",
                      _poll_stack(cfn, stack, {"CREATE_COMPLETE"}, give_up_after=give_up_after))
    if desc["StackStatus"] != "CREATE_COMPLETE":
        reasons = await _failure_reasons(cfn, stack)
        raise WorkflowError(f"stack {stack} ended {desc['StackStatus']}: {reasons or '?'}",
                            hint="read the stack events in the CloudFormation console")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    missing = [k for k in OUTPUT_KEYS if not outputs.get(k)]
    if missing:
        raise WorkflowError(f"stack {stack} has no output(s) {', '.join(missing)}",
                            hint="the template infra/stack.yaml must declare them")
    return answer["StackId"], outputs


async def delete_stack(cfn: Any, stack: str, *, give_up_after: float = 900.0) -> str:
    """Delete ``stack`` and wait; returns the final status (DELETE_COMPLETE or gone)."""
    await call(f"delete stack {stack}", cfn.delete_stack(StackName=stack))
    try:
        desc = await call(f"wait for stack {stack} to be deleted",
                          _poll_stack(cfn, stack, {"DELETE_COMPLETE"}, give_up_after=give_up_after))
    except NotFound:
        return "DELETE_COMPLETE"
    if desc["StackStatus"] != "DELETE_COMPLETE":
        reasons = await _failure_reasons(cfn, stack)
        raise WorkflowError(f"stack {stack} ended {desc['StackStatus']}: {reasons or '?'}",
                            hint="empty its buckets, then run cleanup again")
    return "DELETE_COMPLETE"


async def stack_status(cfn: Any, stack: str) -> str | None:
    """The stack's status, or None when CloudFormation does not know it."""
    try:
        answer = await call(f"read stack {stack}", cfn.describe_stacks(StackName=stack))
    except HiAsyncError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(answer["Stacks"][0]["StackStatus"])
