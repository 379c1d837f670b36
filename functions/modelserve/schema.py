"""Tabular input schema from the manifest, and validation of records against it (pure functions)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import ModelError, Problem
from .http import escape_for_message

INTEGER = "integer"
NUMBER = "number"
# Answers stay small whatever the request: a record lists at most its own fields' problems
# plus this many unexpected fields; MAX_PROBLEMS bounds any other list of problems.
MAX_UNEXPECTED_LISTED = 10
MAX_PROBLEMS = 20
# Numbers a float holds exactly as integers: beyond this the fast path defers to the full one.
_EXACT = 2.0**53


@dataclass(frozen=True)
class Feature:
    """One input field: its type, unit and the range seen in training."""

    name: str
    type: str
    unit: str
    minimum: float
    maximum: float
    description: str = ""
    allowed: dict[int, str] | None = None  # only these codes, with their meaning

    def range_text(self) -> str:
        if self.allowed:
            return "one of " + ", ".join(
                f"{code} ({label})" for code, label in self.allowed.items()
            )
        return f"between {format_number(self.minimum)} and {format_number(self.maximum)}"


@dataclass(frozen=True)
class TabularSchema:
    """The ordered features a regression model takes."""

    features: tuple[Feature, ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @cached_property
    def name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    @cached_property
    def _rules(self) -> tuple[tuple[str, float, float, bool, frozenset[int] | None], ...]:
        return tuple((f.name, f.minimum, f.maximum, f.type == INTEGER,
                      frozenset(f.allowed) if f.allowed else None) for f in self.features)

    def clean_values(self, record: dict[str, Any]) -> list[float] | None:
        """The model-ordered values of a record that passes every check, else None.

        The path of every valid request: one tight loop, no Problem objects. None means
        "look closer", and check_record's full pass then finds and words every problem.
        """
        rules = self._rules
        if len(record) != len(rules):
            return None
        values = []
        for name, low, high, whole, allowed in rules:
            value = record.get(name)
            kind = type(value)  # exact types: bool (an int subclass) is refused
            if (kind is not float and kind is not int) or not -_EXACT < value < _EXACT:
                return None  # missing, wrong type, not finite (NaN fails too) or huge
            number = float(value)
            if whole and not number.is_integer():
                return None
            if not (int(number) in allowed if allowed is not None else low <= number <= high):
                return None
            values.append(number)
        return values


@dataclass
class Checked:
    """The outcome of validating one record: model-ordered values, or the problems found."""

    values: list[float] | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def schema_from_manifest(input_spec: dict[str, Any]) -> TabularSchema:
    """Build the schema from a manifest's `input`; ModelError if it is malformed."""
    if input_spec.get("kind") != "tabular" or not isinstance(input_spec.get("features"), list):
        raise ModelError("manifest input is not a tabular feature list")
    features = []
    for spec in input_spec["features"]:
        try:
            allowed = spec.get("allowed")
            features.append(
                Feature(
                    name=str(spec["name"]),
                    type=spec["type"] if spec["type"] in (INTEGER, NUMBER) else _bad_type(spec),
                    unit=str(spec.get("unit", "")),
                    minimum=float(spec["min"]),
                    maximum=float(spec["max"]),
                    description=str(spec.get("description", "")),
                    allowed={int(code): str(label) for code, label in allowed.items()}
                    if allowed
                    else None,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"manifest feature {spec!r:.80} is malformed ({exc})") from None
    if not features:
        raise ModelError("manifest input has no features")
    return TabularSchema(tuple(features))


def _bad_type(spec: dict[str, Any]) -> str:
    raise ValueError(f"type must be {INTEGER} or {NUMBER}, not {spec.get('type')!r}")


def check_record(record: Any, schema: TabularSchema, out_of_range: str = "reject") -> Checked:
    """Validate one record; every problem is reported at once, in the schema's field order.

    With `out_of_range="warn"`, values outside the training range are kept and listed as
    warnings instead of problems.
    """
    if type(record) is dict:
        values = schema.clean_values(record)
        if values is not None:
            return Checked(values)
    return check_each_field(record, schema, out_of_range)


def check_each_field(record: Any, schema: TabularSchema, out_of_range: str = "reject") -> Checked:
    """check_record's full pass: every field checked on its own, every problem worded."""
    if not isinstance(record, dict):
        return Checked(
            None,
            [
                Problem(
                    None,
                    "not_object",
                    f"Each record must be a JSON object with the fields {', '.join(schema.names)}.",
                )
            ],
        )
    problems: list[Problem] = []
    warnings: list[Problem] = []
    values: list[float] = []
    for feature in schema.features:
        if feature.name not in record:
            problems.append(Problem(feature.name, "missing", f"Missing value: {feature.name}."))
            continue
        value, problem = _check_value(feature, record[feature.name])
        if problem is None:
            values.append(value)
        elif problem.code == "out_of_bounds" and out_of_range == "warn":
            warnings.append(problem)
            values.append(value)
        else:
            problems.append(problem)
    unexpected = [name for name in record if name not in schema.name_set]
    problems.extend(unexpected_field(name) for name in unexpected[:MAX_UNEXPECTED_LISTED])
    if len(unexpected) > MAX_UNEXPECTED_LISTED:
        hidden = len(unexpected) - MAX_UNEXPECTED_LISTED
        problems.append(Problem(None, "too_many_problems",
                                f"And {hidden} more unexpected fields not listed."))
    return Checked(None if problems else values, problems, warnings)


def unexpected_field(name: str) -> Problem:
    """The lesson's message for a field the schema does not have (the name bounded, escaped)."""
    shown = escape_for_message(name)
    return Problem(shown, "unexpected", f"Unexpected field: {shown}.")


def _check_value(feature: Feature, value: Any) -> tuple[float, Problem | None]:
    name = feature.name
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a whole number" if feature.type == INTEGER else "a number"
        return 0.0, Problem(
            name, "wrong_type", f"Wrong type: {name} must be {kind}, got {_json_type(value)}."
        )
    try:
        number = float(value)
    except OverflowError:  # an integer too long for a float
        number = math.inf
    if not math.isfinite(number):
        return 0.0, Problem(
            name, "not_finite", f"Invalid number: {name} must be a finite number of sensible size."
        )
    if feature.type == INTEGER and not number.is_integer():
        return 0.0, Problem(
            name,
            "not_integer",
            f"Wrong type: {name} must be a whole number, got {format_number(value)}.",
        )
    in_range = (
        (int(number) in feature.allowed)
        if feature.allowed
        else (feature.minimum <= number <= feature.maximum)
    )
    if not in_range:
        return number, Problem(
            name,
            "out_of_bounds",
            f"Out of bounds: {name}, has value of: {format_number(value)}, "
            f"but should be {feature.range_text()}.",
        )
    return number, None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def format_number(value: float) -> str:
    """Numbers as a person writes them: 1613, not 1613.0; bounded in length."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return escape_for_message(value if isinstance(value, str) else repr(value), limit=24)
