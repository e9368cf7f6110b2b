"""Template bodies CloudFormation cannot read, refused in CloudFormation's words.

moto reads a template as YAML, falls back to JSON, and lets the JSON parser's exception
escape when both fail: CreateStack crashed. CloudFormation answers 400 ValidationError
"Template format error: JSON not well-formed. (line 3, column 5)" (or "YAML not
well-formed") and, for a body that parses to something other than a mapping,
"Template format error: unsupported structure."
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Stack

_parse = Stack.parse_template


def _position(template: str) -> tuple[str, int, int] | None:
    """``(format, line, column)`` of the first error, as CloudFormation reports it."""
    if template.lstrip().startswith("{"):
        try:
            json.loads(template)
        except json.JSONDecodeError as bad:
            return "JSON", bad.lineno, bad.colno
        return None
    try:  # composing builds no objects, so CloudFormation's !Ref style tags do not matter
        yaml.compose(template, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as bad:
        mark = bad.problem_mark or bad.context_mark
        if mark is not None:
            return "YAML", mark.line + 1, mark.column + 1
    except yaml.YAMLError:
        pass
    return None


def parse_template(template: str) -> dict[str, Any]:
    """moto's parser, with CloudFormation's ValidationError for what it cannot read."""
    try:
        parsed = _parse(template)
    except Exception as exc:
        where = _position(template)
        if where is None:
            raise ValidationError(message="Template format error: unsupported structure.") \
                from exc
        kind, line, column = where
        raise ValidationError(message=f"Template format error: {kind} not well-formed. "
                              f"(line {line}, column {column})") from exc
    if not isinstance(parsed, dict):
        raise ValidationError(message="Template format error: unsupported structure.")
    return parsed


def install() -> None:
    """Put the checked parser in place of moto's (idempotent)."""
    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]
