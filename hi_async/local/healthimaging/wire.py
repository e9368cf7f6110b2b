"""botocore's ``medical-imaging`` model turned into routes, request parsing and output.

Routes come from each operation's ``http.requestUri`` and inputs are parsed and checked
against the model's shapes (required members, types, patterns, lengths, ranges, enums),
because botocore itself checks only required members, types and minimums: every
ValidationException for a bad ID or an out-of-range ``maxResults`` must come from here.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from .apierrors import ValidationException

SERVICE = "medical-imaging"


@cache
def service_model() -> ServiceModel:
    return ServiceModel(service_model_json(), service_name=SERVICE)


def service_model_json() -> dict[str, Any]:
    """The installed botocore's model, with members of newer releases it may lack.

    ``losslessStorageFormat`` (CreateDatastore input, GetDatastore's DatastoreProperties)
    arrived in botocore after the release our aiobotocore pins. The server accepts and
    reports it either way; an SDK too old to know it can load this model from a data
    path (``AWS_DATA_PATH``, ``~/.aws/models``), as botocore allows for newer models.
    """
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model(SERVICE, "service-2"))
    shapes = model["shapes"]
    shapes.setdefault("LosslessStorageFormat", {
        "type": "string", "enum": ["HTJ2K", "JPEG_2000_LOSSLESS"]})
    member = {"shape": "LosslessStorageFormat",
              "documentation": "<p>The lossless storage format for the datastore.</p>"}
    for shape in ("CreateDatastoreRequest", "DatastoreProperties"):
        shapes[shape]["members"].setdefault("losslessStorageFormat", dict(member))
    return model


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: how to recognise its requests and what its input looks like."""

    name: str
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]
    op: OperationModel
    data_plane: bool  # host prefix runtime-: throttled and faulted as the data plane


def _compile(uri: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    path = uri.split("?", 1)[0]
    labels: list[str] = []
    out = ["^"]
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            labels.append(name)
            out.append(f"(?P<{name}>{'.+' if greedy else '[^/]+'})")
        else:
            out.append(re.escape(part))
    out.append("/?$")
    return re.compile("".join(out)), tuple(labels)


@cache
def routes() -> tuple[Route, ...]:
    """Every operation of the model; GetImageFrame first since it is the hot path."""
    model = service_model()
    found = []
    for name in model.operation_names:
        op = model.operation_model(name)
        pattern, labels = _compile(op.http["requestUri"])
        prefix = (op.endpoint or {}).get("hostPrefix", "")
        found.append(Route(name, op.http["method"], pattern, labels, op,
                           prefix.startswith("runtime")))
    # Literal routes before templated ones of the same method, the frame route first.
    found.sort(key=lambda r: (r.name != "GetImageFrame", len(r.labels), r.name))
    return tuple(found)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in _by_method().get(method, ()):
        m = route.pattern.match(path)
        if m is not None:
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None


@cache
def _by_method() -> dict[str, tuple[Route, ...]]:
    table: dict[str, list[Route]] = {}
    for r in routes():
        table.setdefault(r.method, []).append(r)
    return {k: tuple(v) for k, v in table.items()}


# -- validation ------------------------------------------------------------------------
@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(r"\p{ASCII}", r"[\x00-\x7f]"), re.DOTALL)


def _check(shape: Shape, value: Any, where: str) -> Any:
    """``value`` converted to the shape's Python type, or ValidationException."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise ValidationException(f"{where} must be an object")
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[name] = _check(member, value[name], f"{where}.{name}" if where else name)
        for name in shape.required_members:
            if name not in out:
                raise ValidationException(f"{where + '.' if where else ''}{name} is required")
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise ValidationException(f"{where} must be a list")
        _bounds(len(value), meta, where, "items")
        return [_check(shape.member, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise ValidationException(f"{where} must be an object")
        return {_check(shape.key, k, f"{where} key"): _check(shape.value, v, f"{where}.{k}")
                for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise ValidationException(f"{where} must be a string")
        _bounds(len(value), meta, where, "characters")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise ValidationException(f"{where} must be one of {', '.join(enum)}, got {value!r}")
        if "pattern" in meta and _regex(meta["pattern"]).fullmatch(value) is None:
            raise ValidationException(
                f"{where} {value!r} does not match the pattern {meta['pattern']}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ValidationException(f"{where} must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationException(f"{where} must be an integer")
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            raise ValidationException(
                f"{where} must be between {meta.get('min')} and {meta.get('max')}, got {value}")
        return value
    if kind == "boolean":
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise ValidationException(f"{where} must be true or false")
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationException(f"{where} must be a timestamp in epoch seconds")
        return float(value)
    if kind == "blob":
        if isinstance(value, bytes):
            return value
        try:
            data = base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            raise ValidationException(f"{where} must be base64") from None
        _bounds(len(data), meta, where, "bytes")
        return data
    return value


def _bounds(n: int, meta: dict[str, Any], where: str, unit: str) -> None:
    if "min" in meta and n < meta["min"]:
        raise ValidationException(f"{where} must have at least {meta['min']} {unit}")
    if "max" in meta and n > meta["max"]:
        raise ValidationException(f"{where} must have at most {meta['max']} {unit}")


def parse_input(route: Route, labels: dict[str, str], query_string: str,
                body: bytes) -> dict[str, Any]:
    """The operation's input as a dict of member names, validated against the model."""
    shape = route.op.input_shape
    raw: dict[str, Any] = {}
    query = parse_qs(query_string, keep_blank_values=True) if query_string else {}
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        loc = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if loc == "uri":
            raw[name] = labels.get(wire)
        elif loc == "querystring" and wire in query:
            values = query[wire]
            raw[name] = values if member.type_name == "list" else values[-1]
    if body:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ValidationException(f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValidationException("the request body must be a JSON object")
        if payload:
            raw[payload] = doc
        else:
            for name, member in shape.members.items():
                if "location" not in member.serialization and name in doc:
                    raw[name] = doc[name]
    return _check(shape, raw, "")


# -- output ----------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def output_body(result: dict[str, Any]) -> bytes:
    """The JSON body of an operation's answer (None members left out)."""
    return json.dumps(_clean(result), separators=(",", ":")).encode()


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode()
