"""Stack creation and deletion with CloudFormation's semantics, around moto's resources.

moto creates a stack's resources synchronously inside CreateStack, and gets three
things wrong that users of AWS's examples meet:

- **Lookups create.** moto's resource map creates a resource on the first lookup that
  misses it, so reading a stack's outputs or resources before (or after) its resources
  exist creates them: a second data store, a bucket brought back after deletion. Here a
  resource is created only while the stack is being created or updated; any other
  lookup of a resource that does not exist finds nothing. Outputs are shown once the
  stack's resources exist, as on AWS.
- **A failed resource strands the stack.** An error while creating a resource escaped
  CreateStack and left the stack CREATE_IN_PROGRESS for good. Here the resource ends
  CREATE_FAILED with its reason, and the stack rolls back (ROLLBACK_COMPLETE), or stays
  CREATE_FAILED with ``OnFailure=DO_NOTHING`` / ``DisableRollback``, or is deleted with
  ``OnFailure=DELETE``: the states AWS's waiters know to stop at.
- **Deletion hides failures.** moto skipped what it could not delete and said
  DELETE_COMPLETE. Here resources are deleted dependents first, a resource that cannot
  be deleted ends DELETE_FAILED with its reason (S3's for a bucket that is not empty),
  whatever depends on it is kept, and the stack ends DELETE_FAILED ("The following
  resource(s) failed to delete: [...]") and stays listed until a later DeleteStack
  succeeds, or one that retains (``RetainResources``) what could not be deleted.

Each resource's status, reason and events are recorded (:mod:`.cfn_records`); the API
calls that carry options or report statuses are in :mod:`.cfn_requests`.
:func:`install` puts all of this in place of moto's methods.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.models import CloudFormationBackend, Stack, cloudformation_backends
from moto.cloudformation.parsing import ResourceMap

from .cfn_records import (
    already_gone,
    dependencies,
    log_failure,
    reason_of,
    record,
    set_stack_status,
    stack_of,
)

#: Statuses in which a stack's resources do not (or do not yet) exist: no outputs.
_NO_OUTPUTS = frozenset({"CREATE_PENDING", "REVIEW_IN_PROGRESS", "CREATE_IN_PROGRESS",
                         "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE",
                         "ROLLBACK_FAILED", "DELETE_COMPLETE"})

#: Options of the CloudFormation call being served (the calls are serialized):
#: ``on_failure`` (CreateStack's OnFailure) and ``retain`` (DeleteStack's RetainResources).
#: Set by :mod:`.cfn_requests`.
request_options = threading.local()


@contextlib.contextmanager
def creating(resource_map: ResourceMap) -> Iterator[None]:
    """While inside, a lookup of a resource not yet created creates it."""
    resource_map.hi_async_creating = True  # type: ignore[attr-defined]
    try:
        yield
    finally:
        resource_map.hi_async_creating = False  # type: ignore[attr-defined]


def _create_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``parse_and_create_resource``, guarded and recorded (module docstring)."""
    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: ResourceMap, account_id: str,
                                  region_name: str) -> Any:
        if not getattr(resources_map, "hi_async_creating", False):
            return None
        kind = str(resource_json.get("Type"))
        try:
            resource = original(logical_id, resource_json, resources_map, account_id,
                                region_name)
        except Exception as exc:
            if getattr(exc, "hi_async_logical_id", None) is None:  # not a dependency's
                exc.hi_async_logical_id = logical_id  # type: ignore[attr-defined]
                stack = stack_of(resources_map)
                record(stack, resources_map, logical_id, kind, None, "CREATE_IN_PROGRESS")
                record(stack, resources_map, logical_id, kind, None, "CREATE_FAILED",
                       reason_of(exc))
                log_failure(stack, logical_id, "create", exc)
            raise
        if resource is not None:
            stack = stack_of(resources_map)
            physical = getattr(resource, "physical_resource_id", None)
            record(stack, resources_map, logical_id, kind, physical, "CREATE_IN_PROGRESS")
            record(stack, resources_map, logical_id, kind, physical, "CREATE_COMPLETE")
        return resource
    return parse_and_create_resource


def create_resources(self: Stack) -> None:
    """``Stack.create_resources``: every resource, then the outputs; a failure rolls back."""
    self.status = "CREATE_IN_PROGRESS"
    try:
        with creating(self.resource_map):
            self.resource_map.create(self.template_dict)
        list(self.output_map.values())  # resolved now, while every resource exists
    except Exception as exc:
        _forget_exports(self)
        _creation_failed(self, exc)
        return
    # moto registered the exports before the resources existed; now their values are known.
    backend = cloudformation_backends[self.account_id][self.region_name]
    for export in self.exports:
        backend.exports[export.name] = export
    self.description = self.template_dict.get("Description")
    set_stack_status(self, "CREATE_COMPLETE")


def _forget_exports(stack: Stack) -> None:
    backend = cloudformation_backends[stack.account_id][stack.region_name]
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]


def _creation_failed(stack: Stack, exc: Exception) -> None:
    failed = getattr(exc, "hi_async_logical_id", None) or "Outputs"
    first = f"The following resource(s) failed to create: [{failed}]. "
    if getattr(request_options, "on_failure", "ROLLBACK") == "DO_NOTHING":
        set_stack_status(stack, "CREATE_FAILED", first)
        return
    set_stack_status(stack, "ROLLBACK_IN_PROGRESS", first + "Rollback requested by user.")
    left = delete_resources(stack)
    if left:
        set_stack_status(stack, "ROLLBACK_FAILED",
                         f"The following resource(s) failed to delete: [{', '.join(left)}]. ")
    else:
        set_stack_status(stack, "ROLLBACK_COMPLETE", first + "Rollback requested by user.")


def delete_resources(stack: Stack) -> list[str]:
    """Delete the stack's resources, dependents first; returns those that failed."""
    resource_map = stack.resource_map
    template = resource_map._resource_json_map
    parsed = resource_map._parsed_resources
    present = [name for name in template
               if parsed.get(name) is not None and not isinstance(parsed.get(name), str)]
    retain: frozenset[str] = getattr(request_options, "retain", frozenset())
    for name in [n for n in present
                 if template[n].get("DeletionPolicy") == "Retain" or n in retain]:
        record(stack, resource_map, name, template[name]["Type"],
               getattr(parsed[name], "physical_resource_id", None), "DELETE_SKIPPED")
        present.remove(name)
    needs = dependencies(template)
    remaining = list(reversed(present))  # the reverse of the template's order first
    errors: dict[str, str] = {}

    def attempt(name: str) -> bool:
        resource, kind = parsed[name], template[name]["Type"]
        physical = getattr(resource, "physical_resource_id", None)
        record(stack, resource_map, name, kind, physical, "DELETE_IN_PROGRESS")
        try:
            resource_map._delete_resource(resource, template[name])
        except Exception as exc:
            if not already_gone(exc):
                errors[name] = reason_of(exc)
                record(stack, resource_map, name, kind, physical, "DELETE_FAILED",
                       errors[name])
                log_failure(stack, name, "delete", exc)
                return False
        parsed.pop(name, None)
        record(stack, resource_map, name, kind, physical, "DELETE_COMPLETE")
        remaining.remove(name)
        return True

    progress = True
    while remaining and progress:
        # A pass deletes what nothing left depends on; one that failed is tried again
        # only after another resource went (moto's deletions sometimes need the order).
        progress = False
        for name in list(remaining):
            if not any(name in needs.get(other, ()) for other in remaining if other != name):
                progress = attempt(name) or progress
    if remaining and not any(name in errors for name in remaining):
        for name in list(remaining):  # a dependency cycle (templates have none): no order
            attempt(name)
    return [name for name in present if name in remaining and name in errors]


def delete(self: Stack) -> None:
    """``Stack.delete``: DELETE_COMPLETE only when every resource is gone."""
    set_stack_status(self, "DELETE_IN_PROGRESS", "User Initiated")
    failed = delete_resources(self)
    if failed:
        set_stack_status(self, "DELETE_FAILED",
                         f"The following resource(s) failed to delete: [{', '.join(failed)}]. ")
    else:
        set_stack_status(self, "DELETE_COMPLETE")


def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
    """``DeleteStack``: the stack moves to the deleted ones only once it is DELETE_COMPLETE."""
    stack = self.stacks.get(name_or_stack_id) or next(
        (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
    if stack is None:
        return  # deleting a stack that does not exist succeeds, as on AWS
    export_names = [export.name for export in stack.exports]
    stack.delete()
    if stack.status == "DELETE_COMPLETE":
        self.stacks.pop(stack.stack_id, None)
        self.deleted_stacks[stack.stack_id] = stack
        for name in export_names:
            self.exports.pop(name, None)


def _update(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ResourceMap.update`` may create the resources an update adds."""
    def update(self: ResourceMap, *args: Any, **kwargs: Any) -> Any:
        with creating(self):
            return original(self, *args, **kwargs)
    return update


def _outputs(original: Any) -> property:
    def outputs(self: Stack) -> Any:
        return None if self.status in _NO_OUTPUTS else original.fget(self)
    return property(outputs)


def _stack_resources(self: Stack) -> list[Any]:
    """The stack's resources that exist (moto listed skipped ones as empty entries)."""
    return [r for r in self.resource_map.values() if r is not None]


_installed = False


def install() -> None:
    """Put CloudFormation's life cycle in place of moto's (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    cfn_parsing.parse_and_create_resource = _create_resource(
        cfn_parsing.parse_and_create_resource)
    ResourceMap.update = _update(ResourceMap.update)  # type: ignore[method-assign]
    Stack.outputs = _outputs(Stack.__dict__["outputs"])  # type: ignore[assignment,method-assign]
    Stack.create_resources = create_resources  # type: ignore[method-assign]
    Stack.delete = delete  # type: ignore[method-assign]
    Stack.stack_resources = property(_stack_resources)  # type: ignore[assignment,method-assign]
    CloudFormationBackend.delete_stack = delete_stack  # type: ignore[method-assign]
