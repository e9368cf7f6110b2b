"""Template parameters as CloudFormation resolves them, and the template's Rules.

moto resolves a parameter of type ``AWS::SSM::Parameter::Value<...>`` by reading the
SSM parameter it names, but crashes when that parameter does not exist (the CreateStack
answer was a bare 500), resolves the default even when the caller overrides it, and
treats ``AWS::SSM::Parameter::Name`` as a value to fetch. CloudFormation instead:

- fetches only the names in effect (the caller's value, else the default) and refuses
  the stack with 400 ``ValidationError`` "Unable to fetch parameters [a,b] from
  parameter store for this account." when some do not exist (the message AWS users
  meet when an account was never bootstrapped with ``cdk bootstrap``);
- refuses a SecureString ("... referenced by template have types not supported by
  CloudFormation");
- passes an ``AWS::SSM::Parameter::Name`` through as the name it is;
- checks the template's ``Rules`` once the parameters are known, answering a failed
  assertion with its ``AssertDescription`` (the CDK's ``CheckBootstrapVersion`` rule).

:func:`install` puts this resolution in place of moto's ``load_parameters``.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.parsing import ResourceMap

_SSM_VALUE = "AWS::SSM::Parameter::Value<"
_SSM_NAME = "AWS::SSM::Parameter::Name"


class _Unknown:
    """A rule value the local stack cannot compute (``Fn::ValueOf`` needs EC2 and such)."""


UNKNOWN = _Unknown()


def _fetch(account_id: str, region: str, name: str) -> Any:
    """moto's SSM parameter, or None when there is none by that name (or version/label)."""
    from moto.ssm import ssm_backends

    try:
        return ssm_backends[account_id][region].get_parameter(name)
    except Exception:  # moto raises for an unknown version or label
        return None


def effective_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Each declared parameter's value before resolution: the caller's, else the default."""
    declared = template.get("Parameters") or {}
    return {name: given.get(name, slot.get("Default")) for name, slot in declared.items()}


def check_ssm_parameters(template: dict[str, Any], given: dict[str, Any], account_id: str,
                         region: str) -> None:
    """Raise CloudFormation's ValidationError unless every SSM value parameter resolves."""
    declared = template.get("Parameters") or {}
    missing: list[str] = []
    unsupported: list[str] = []
    for key, value in effective_values(template, given).items():
        kind = str(declared[key].get("Type", "String"))
        if not kind.startswith(_SSM_VALUE) or value in (None, ""):
            continue
        found = _fetch(account_id, region, str(value))
        if found is None:
            missing.append(str(value))
        elif found.parameter_type == "SecureString":
            unsupported.append(str(value))
    if missing:
        raise ValidationError(message=f"Unable to fetch parameters [{','.join(missing)}] "
                              "from parameter store for this account.")
    if unsupported:
        raise ValidationError(message=f"Parameters [{','.join(unsupported)}] referenced by "
                              "template have types not supported by CloudFormation.")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def resolve(kind: str, value: Any, account_id: str, region: str) -> Any:
    """One parameter's value as resources see it, given its declared type."""
    if isinstance(value, str) and kind.startswith(_SSM_VALUE):
        found = _fetch(account_id, region, value)
        if found is None:  # checked before; a parameter deleted in between
            raise ValidationError(message=f"Unable to fetch parameters [{value}] from "
                                  "parameter store for this account.")
        value = found.value
        return value.split(",") if "List<" in kind else value
    if isinstance(value, str) and (kind == "CommaDelimitedList" or kind.startswith("List<")):
        items = value.split(",")
        return [_number(v) for v in items] if kind == "List<Number>" else items
    if isinstance(value, str) and kind == "Number":
        return _number(value)
    return value


def load_parameters(self: ResourceMap) -> None:
    """``ResourceMap.load_parameters`` with CloudFormation's resolution (module docstring)."""
    template, given = self._template, self.input_parameters
    declared = template.get("Parameters") or {}
    check_ssm_parameters(template, given, self._account_id, self._region_name)
    values = effective_values(template, given)
    unset = [key for key, value in values.items() if value is None]
    if unset:
        raise ValidationError(message=f"Parameters: [{', '.join(unset)}] must have values")
    self.no_echo_parameter_keys = [key for key, slot in declared.items()
                                   if slot.get("NoEcho") and key in given]
    self.resolved_parameters = {
        key: resolve(str(declared[key].get("Type", "String")), value, self._account_id,
                     self._region_name)
        for key, value in values.items()}
    self._parsed_resources.update(self.resolved_parameters)
    check_rules(template, self._parsed_resources)


# -- Rules ---------------------------------------------------------------------------------

def _value(expr: Any, known: dict[str, Any]) -> Any:
    """A rule expression's value: a string, a list, a bool, or UNKNOWN."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, args), = expr.items()
        if fn == "Ref":
            return known.get(str(args), UNKNOWN)
        if fn in ("Fn::ValueOf", "Fn::ValueOfAll", "Fn::RefAll"):
            return UNKNOWN  # attributes of EC2 and such: not known locally
        values = [_value(a, known) for a in (args if isinstance(args, list) else [args])]
        if any(v is UNKNOWN for v in values):
            return UNKNOWN
        if fn == "Fn::Equals":
            return str(values[0]) == str(values[1])
        if fn == "Fn::Not":
            return not values[0]
        if fn == "Fn::And":
            return all(values)
        if fn == "Fn::Or":
            return any(values)
        if fn == "Fn::Contains":
            return str(values[1]) in [str(v) for v in values[0]]
        if fn == "Fn::EachMemberEquals":
            return all(str(v) == str(values[1]) for v in values[0])
        if fn == "Fn::EachMemberIn":
            return all(str(v) in [str(w) for w in values[1]] for v in values[0])
        return UNKNOWN
    if isinstance(expr, list):
        return [_value(e, known) for e in expr]
    return expr


def check_rules(template: dict[str, Any], known: dict[str, Any]) -> None:
    """Raise ValidationError with the first failed assertion's description.

    ``known`` maps parameter names and pseudo parameters (``AWS::Region``) to values.
    An assertion the local stack cannot compute counts as met.
    """
    for name, rule in (template.get("Rules") or {}).items():
        if not isinstance(rule, dict):
            continue
        if "RuleCondition" in rule and _value(rule["RuleCondition"], known) is not True:
            continue
        for assertion in rule.get("Assertions") or []:
            if _value(assertion.get("Assert"), known) is False:
                raise ValidationError(message=assertion.get("AssertDescription")
                                      or f"Template assertion of rule {name} failed")


def install() -> None:
    """Put CloudFormation's parameter resolution in place of moto's (idempotent)."""
    ResourceMap.load_parameters = load_parameters  # type: ignore[method-assign]
