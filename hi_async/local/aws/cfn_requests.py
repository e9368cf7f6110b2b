"""CloudFormation API calls moto serves without some of their parameters or details.

- CreateStack: ``OnFailure`` (ROLLBACK, DO_NOTHING, DELETE) and ``DisableRollback``.
- DeleteStack: ``RetainResources``, for a stack whose deletion failed.
- CreateChangeSet: SSM parameters checked when the change set is made, as AWS does.
- ExecuteChangeSet of a CREATE change set: the stack created as CreateStack creates it
  (moto applied it as an update of an empty stack, in no particular order, and lost the
  outputs) -- this is what ``aws cloudformation deploy`` and ``cdk deploy`` use.
- DescribeStackResource(s) and ListStackResources: each resource's own status and reason.

The stack semantics behind them are in :mod:`.cfn_lifecycle`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.cloudformation import responses as cfn_responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack

from . import cfn_parameters
from .cfn_lifecycle import request_options
from .cfn_records import statuses


def _delete_stack_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """The DeleteStack handler, with RetainResources (allowed once a deletion failed)."""
    def delete_stack(self: Any) -> Any:
        retain = frozenset(self._get_param("RetainResources") or [])
        if retain:
            name = self._get_param("StackName")
            stack = self.cloudformation_backend.get_stack(name)
            if stack.status != "DELETE_FAILED":
                raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while "
                                      f"in status {stack.status}: RetainResources can only "
                                      "be given for a stack in DELETE_FAILED")
        request_options.retain = retain
        try:
            return original(self)
        finally:
            request_options.retain = frozenset()
    return delete_stack


def _create_stack_call(original: Callable[..., Any]) -> Callable[..., Any]:
    """The CreateStack handler, knowing the call's OnFailure (and DisableRollback)."""
    def create_stack(self: Any) -> Any:
        on_failure = self._get_param("OnFailure") or "ROLLBACK"
        if self._get_bool_param("DisableRollback", False):
            on_failure = "DO_NOTHING"
        request_options.on_failure = on_failure
        try:
            result = original(self)
        finally:
            request_options.on_failure = "ROLLBACK"
        if on_failure == "DELETE":
            backend = self.cloudformation_backend
            name = self._get_param("StackName")
            for stack in list(backend.stacks.values()):
                if stack.name == name and stack.status == "ROLLBACK_COMPLETE":
                    backend.delete_stack(stack.stack_id)
        return result
    return create_stack


def create_change_set(original: Callable[..., Any]) -> Callable[..., Any]:
    """CreateChangeSet refuses unresolvable SSM parameters, as CloudFormation does."""
    def wrapper(self: CloudFormationBackend, stack_name: str, change_set_name: str,
                template: str, parameters: dict[str, str], *args: Any, **kwargs: Any) -> Any:
        cfn_parameters.check_ssm_parameters(Stack.parse_template(template) or {}, parameters,
                                            self.account_id, self.region_name)
        return original(self, stack_name, change_set_name, template, parameters, *args,
                        **kwargs)
    return wrapper


def execute_change_set(original: Callable[..., Any]) -> Callable[..., Any]:
    """ExecuteChangeSet of a CREATE change set creates the stack as CreateStack does."""
    def wrapper(self: CloudFormationBackend, change_set_name: str,
                stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name) or next(
            (c for c in self.change_sets.values() if c.change_set_name == change_set_name),
            None)
        if change_set is None or change_set.change_set_type != "CREATE":
            return original(self, change_set_name, stack_name)
        stack = self.stacks[change_set.stack_id]
        stack.template, stack.parameters = change_set.template, change_set.parameters
        stack._parse_template()
        stack.resource_map = stack._create_resource_map()
        stack.output_map = stack._create_output_map()
        stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
        change_set.execution_status = "EXECUTE_COMPLETE"
        stack.create_resources()
        return None
    return wrapper


def _list_stack_resources(original: Callable[..., Any]) -> Callable[..., Any]:
    """ListStackResources with each resource's own status (moto said CREATE_COMPLETE)."""
    def list_stack_resources(self: Any) -> Any:
        answer = original(self)
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        own = statuses(stack.resource_map)
        for summary in answer.result["StackResourceSummaries"]:
            state = own.get(summary["LogicalResourceId"])
            if state is not None:
                summary["ResourceStatus"], reason = state
                if reason:
                    summary["ResourceStatusReason"] = reason
        return answer
    return list_stack_resources


class StackResourceView(cfn_responses.StackResourceDTO):
    """DescribeStackResource(s): each resource's own status and reason."""

    def __init__(self, stack: Stack, resource: Any) -> None:
        super().__init__(stack, resource)
        own = statuses(stack.resource_map).get(str(self.logical_resource_id))
        self.resource_status_reason = None
        if own is not None:
            self.resource_status, self.resource_status_reason = own


_installed = False


def install() -> None:
    """Put the calls' missing parameters and details into moto (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    responses = cfn_responses.CloudFormationResponse
    responses.create_stack = _create_stack_call(responses.create_stack)  # type: ignore[method-assign]
    responses.delete_stack = _delete_stack_call(responses.delete_stack)  # type: ignore[method-assign]
    responses.list_stack_resources = _list_stack_resources(  # type: ignore[method-assign]
        responses.list_stack_resources)
    CloudFormationBackend.create_change_set = create_change_set(  # type: ignore[method-assign]
        CloudFormationBackend.create_change_set)
    CloudFormationBackend.execute_change_set = execute_change_set(  # type: ignore[method-assign]
        CloudFormationBackend.execute_change_set)
    cfn_responses.StackResourceDTO = StackResourceView  # type: ignore[misc]
