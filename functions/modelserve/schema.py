"""Tabular input schema from the manifest, and validation of records against it (pure functions).

Also the one definition of how a table's features and a classifier's classes are written into a
manifest (`feature_entry`, `category_entry`, `category_codes`, `classification_output`): train/
writes with these, the functions read with `schema_from_manifest` and `classification_labels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import ModelError, Problem
from .http import escape_for_message

INTEGER = "integer"
NUMBER = "number"
CATEGORY = "category"  # a fixed set of names, each with an integer code (the model's input)
FEATURE_TYPES = (INTEGER, NUMBER, CATEGORY)
CATEGORIES_KEY = "categories"
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
    codes: dict[str, int] | None = None  # a category's names -> codes (names accepted too)

    def range_text(self) -> str:
        if self.codes:
            return "one of " + ", ".join(f"{name} ({code})" for name, code in self.codes.items())
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
    def _rules(self) -> tuple[tuple[str, float, float, bool, frozenset[int] | None,
                                    dict[str, int] | None], ...]:
        return tuple((f.name, f.minimum, f.maximum, f.type in (INTEGER, CATEGORY),
                      frozenset(f.allowed) if f.allowed else None, f.codes)
                     for f in self.features)

    def clean_values(self, record: dict[str, Any]) -> list[float] | None:
        """The model-ordered values of a record that passes every check, else None.

        The path of every valid request: one tight loop, no Problem objects. None means
        "look closer", and check_record's full pass then finds and words every problem.
        """
        rules = self._rules
        if len(record) != len(rules):
            return None
        values = []
        for name, low, high, whole, allowed, codes in rules:
            value = record.get(name)
            kind = type(value)  # exact types: bool (an int subclass) is refused
            if codes is not None and kind is str:
                if value not in codes:
                    return None
                values.append(float(codes[value]))
                continue
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
            features.append(_feature(spec))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"manifest feature {spec!r:.80} is malformed ({exc})") from None
    if not features:
        raise ModelError("manifest input has no features")
    names = [feature.name for feature in features]
    if len(set(names)) != len(names):
        raise ModelError("manifest input names a feature twice")
    return TabularSchema(tuple(features))


def _feature(spec: dict[str, Any]) -> Feature:
    """One manifest feature: integer/number with min and max (and maybe `allowed` codes), or
    a category with its `categories` (names -> codes, or a list of names coded 0, 1, ...)."""
    kind = spec["type"]
    if kind not in FEATURE_TYPES:
        raise ValueError(f"type must be one of {', '.join(FEATURE_TYPES)}, not {kind!r}")
    common = {"name": str(spec["name"]), "type": kind, "unit": str(spec.get("unit", "")),
              "description": str(spec.get("description", ""))}
    if kind == CATEGORY:
        codes = read_categories(spec[CATEGORIES_KEY])
        return Feature(**common, minimum=float(min(codes.values())),
                       maximum=float(max(codes.values())),
                       allowed={code: name for name, code in codes.items()}, codes=codes)
    allowed = spec.get("allowed")
    return Feature(**common, minimum=float(spec["min"]), maximum=float(spec["max"]),
                   allowed={int(code): str(label) for code, label in allowed.items()}
                   if allowed else None)


def read_categories(value: Any) -> dict[str, int]:
    """A category's names -> codes from the manifest: an object of name: code, or a list of
    names (coded by position). Names and codes must each be unique; ValueError if not."""
    if isinstance(value, list):
        value = {name: code for code, name in enumerate(value)}
    if not isinstance(value, dict) or not value:
        raise ValueError("categories must be a non-empty object of name: code, or a list")
    codes = {}
    for name, code in value.items():
        if not isinstance(name, str) or type(code) is not int:
            raise ValueError(f"category {name!r}: names are strings, codes integers")
        codes[name] = code
    if len(set(codes.values())) != len(codes):
        raise ValueError("two categories share a code")
    return codes


def category_name(value: Any) -> str:
    """How a data value is named as a category: text as is, 3.0 and 3 both as "3"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() if isinstance(value, str) else str(value)


def category_codes(values: Any) -> dict[str, int]:
    """The codes of a column's categories: its distinct names, sorted, coded 0, 1, ..."""
    names = sorted({category_name(value) for value in values})
    return {name: code for code, name in enumerate(names)}


def feature_entry(name: str, kind: str, minimum: float, maximum: float, *, unit: str = "",
                  description: str = "",
                  allowed: dict[int, str] | None = None) -> dict[str, Any]:
    """The manifest's description of an integer or number feature (min/max from the data)."""
    if kind not in (INTEGER, NUMBER):
        raise ValueError(f"{name}: a {kind} feature is written with category_entry")
    entry: dict[str, Any] = {"name": name, "type": kind, "unit": unit,
                             "min": _plain(minimum), "max": _plain(maximum)}
    if allowed:
        entry["allowed"] = {str(code): label for code, label in allowed.items()}
    entry["description"] = description
    return entry


def category_entry(name: str, codes: dict[str, int], *, unit: str = "",
                   description: str = "") -> dict[str, Any]:
    """The manifest's description of a category feature: its names and their codes."""
    read_categories(codes)  # the rules the reader applies
    return {"name": name, "type": CATEGORY, "unit": unit, CATEGORIES_KEY: dict(codes),
            "description": description}


def classification_output(name: str, labels: list[str], activation: str) -> dict[str, Any]:
    """The manifest's `output` of a classifier: the class labels in the model's output order."""
    return {"name": name, "type": CATEGORY, "labels": list(labels), "activation": activation}


def classification_labels(output: dict[str, Any]) -> tuple[str, ...]:
    """A classifier's labels from the manifest's `output`; ModelError if malformed."""
    labels = output.get("labels")
    if (not isinstance(labels, list) or len(labels) < 2
            or not all(isinstance(label, str) for label in labels)
            or len(set(labels)) != len(labels)):
        raise ModelError("manifest output.labels must list two or more distinct class labels")
    return tuple(labels)


def _plain(value: float) -> int | float:
    """A plain int when the value is whole (1613, not 1613.0), else a float."""
    number = float(value)
    return int(number) if number.is_integer() else number


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
    if feature.codes is not None:
        return _check_category(feature, value)
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


def _check_category(feature: Feature, value: Any) -> tuple[float, Problem | None]:
    """A category's value: one of its names (a string) or one of its codes (a whole number)."""
    codes = feature.codes or {}
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())
    if not (isinstance(value, str) or whole):
        return 0.0, Problem(feature.name, "wrong_type", f"Wrong type: {feature.name} must be "
                            f"a category name or code, got {_json_type(value)}.")
    if isinstance(value, str) and value in codes:
        return float(codes[value]), None
    if whole and int(value) in (feature.allowed or {}):
        return float(int(value)), None
    # Its own code: OUT_OF_RANGE=warn never turns an unknown category into a prediction.
    return 0.0, Problem(feature.name, "unknown_category",
                        f"Out of bounds: {feature.name}, has value of: {format_number(value)}, "
                        f"but should be {feature.range_text()}.")


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
