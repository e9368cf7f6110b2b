"""What a stack records about its resources: status, reason, events, dependencies.

moto keeps one status per stack and reports it for every resource, and records events
for the stack alone. CloudFormation reports each resource's own status and reason
(DescribeStackResources) and an event per resource and step (DescribeStackEvents), which
is where users look when a stack fails. These helpers keep that record on moto's
``ResourceMap`` (attribute ``hi_async_status``) and in the stack's event list.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from moto.cloudformation.models import Event, Stack, cloudformation_backends
from moto.cloudformation.parsing import ResourceMap

log = logging.getLogger("hi_async.local")

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}")


def reason_of(exc: BaseException) -> str:
    """The text CloudFormation would show for a resource that failed with ``exc``."""
    message = getattr(exc, "message", None) or str(exc)
    if not message or message == "None":
        return f"Internal failure ({type(exc).__name__})"
    return str(message)


#: Error codes (or exception names) that say the resource to delete is not there.
_GONE = frozenset({"ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "MissingBucket",
                   "NotFoundException", "UnknownFunctionException", "ParameterNotFound"})


def already_gone(exc: BaseException) -> bool:
    """True when a deletion failed only because the resource no longer exists.

    CloudFormation counts that as deleted (a resource removed by hand, or one of moto's
    services whose state a restart did not keep).
    """
    names = {type(exc).__name__, str(getattr(exc, "error_type", "")),
             str(getattr(exc, "code", ""))}
    return bool(names & _GONE)


def log_failure(stack: Stack | None, logical_id: str, action: str, exc: BaseException) -> None:
    """Log a resource that failed; with the traceback when it is not a service's refusal."""
    expected = hasattr(exc, "code") or type(exc).__module__.startswith("hi_async.")
    log.warning("stack %s: %s failed to %s: %s", stack.name if stack else "?", logical_id,
                action, reason_of(exc), exc_info=None if expected else exc)


def statuses(resource_map: ResourceMap) -> dict[str, tuple[str, str | None]]:
    """Logical ID → (status, reason) of the resources the stack has touched."""
    found: dict[str, tuple[str, str | None]] | None = getattr(
        resource_map, "hi_async_status", None)
    if found is None:
        found = {}
        resource_map.hi_async_status = found  # type: ignore[attr-defined]
    return found


def stack_of(resource_map: ResourceMap) -> Stack | None:
    """The stack a resource map belongs to (live or deleted), from moto's backend."""
    backend = cloudformation_backends[resource_map._account_id][resource_map._region_name]
    stack_id = resource_map.stack_id
    return backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)


def record(stack: Stack | None, resource_map: ResourceMap, logical_id: str,
           resource_type: str, physical_id: str | None, status: str,
           reason: str | None = None, properties: Any = None) -> None:
    """Set a resource's status and add the matching event to its stack."""
    statuses(resource_map)[logical_id] = (status, reason)
    if stack is None:
        return
    event = Event(stack_id=stack.stack_id, stack_name=stack.name,
                  logical_resource_id=logical_id, physical_resource_id=physical_id or "",
                  resource_type=resource_type, resource_status=status,
                  resource_status_reason=reason,
                  resource_properties=json.dumps(properties) if properties else None)
    stack.events.append(event)


def set_stack_status(stack: Stack, status: str, reason: str | None = None) -> None:
    """The stack's status, its reason (StackStatusReason) and the stack's own event."""
    stack.status = status
    stack.status_reason = reason  # type: ignore[attr-defined]
    stack._add_stack_event(status, resource_status_reason=reason)


def references(value: Any, names: set[str]) -> set[str]:
    """The resources among ``names`` that a template fragment refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found |= {inner} & names
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found |= {str(target)} & names
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(_SUB_REFERENCE.findall(str(text))) & names
                if isinstance(inner, list) and len(inner) > 1:
                    found |= references(inner[1], names)
            else:
                found |= references(inner, names)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner, names)
    return found


def dependencies(template_resources: dict[str, Any]) -> dict[str, set[str]]:
    """Logical ID → the resources it depends on (DependsOn, Ref, Fn::GetAtt, Fn::Sub)."""
    names = set(template_resources)
    graph: dict[str, set[str]] = {}
    for name, body in template_resources.items():
        depends_on = body.get("DependsOn") or []
        if isinstance(depends_on, str):
            depends_on = [depends_on]
        graph[name] = ({str(d) for d in depends_on} & names) | references(
            {k: v for k, v in body.items() if k != "DependsOn"}, names)
        graph[name].discard(name)
    return graph
