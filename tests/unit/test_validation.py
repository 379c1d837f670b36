"""The validation table: every bad input the lesson crashed or misbehaved on, with its message."""

from __future__ import annotations

import json

import pytest

from modelserve.errors import AppError
from modelserve.jsonbody import parse_json
from modelserve.schema import check_record, schema_from_manifest

INPUT_SPEC = {
    "kind": "tabular",
    "dtype": "float32",
    "features": [
        {"name": "cylinders", "type": "integer", "unit": "cylinders", "min": 3, "max": 8},
        {"name": "displacement", "type": "number", "unit": "cubic inches", "min": 68, "max": 455},
        {"name": "horsepower", "type": "number", "unit": "hp", "min": 46, "max": 230},
        {"name": "weight", "type": "number", "unit": "lb", "min": 1613, "max": 5140},
        {"name": "acceleration", "type": "number", "unit": "s", "min": 8, "max": 24.8},
        {"name": "year", "type": "integer", "unit": "year", "min": 70, "max": 82},
        {"name": "origin", "type": "integer", "unit": "code", "min": 1, "max": 3,
         "allowed": {"1": "USA", "2": "Europe", "3": "Japan"}},
    ],
}
SCHEMA = schema_from_manifest(INPUT_SPEC)
GOOD = {"cylinders": 8, "displacement": 300, "horsepower": 78, "weight": 3500,
        "acceleration": 20, "year": 76, "origin": 1}


def with_(**changes: object) -> dict:
    record = dict(GOOD)
    record.update(changes)
    return record


def without(name: str) -> dict:
    return {key: value for key, value in GOOD.items() if key != name}


def problems_of(body: str) -> list[tuple[str | None, str, str]]:
    """Parse and validate a raw body; the (field, code, message) of every problem."""
    try:
        record = parse_json(body.encode())
    except AppError as error:
        return [(p.field, p.code, p.message) for p in error.problems]
    return [(p.field, p.code, p.message) for p in check_record(record, SCHEMA).problems]


def test_good_record_gives_values_in_model_order() -> None:
    checked = check_record(GOOD, SCHEMA)
    assert checked.problems == []
    assert checked.values == [8.0, 300.0, 78.0, 3500.0, 20.0, 76.0, 1.0]


@pytest.mark.parametrize(("body", "expected"), [
    # The lesson's three messages, word for word.
    (json.dumps(without("weight")), [("weight", "missing", "Missing value: weight.")]),
    (json.dumps(with_(color="red")), [("color", "unexpected", "Unexpected field: color.")]),
    (json.dumps(with_(weight=50000)), [("weight", "out_of_bounds",
     "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140.")]),
    # What the lesson crashed or misbehaved on.
    (json.dumps(with_(weight="3500")), [("weight", "wrong_type",
     "Wrong type: weight must be a number, got a string.")]),
    (json.dumps(with_(cylinders=True)), [("cylinders", "wrong_type",
     "Wrong type: cylinders must be a whole number, got a boolean.")]),
    (json.dumps(with_(horsepower=None)), [("horsepower", "wrong_type",
     "Wrong type: horsepower must be a number, got null.")]),
    (json.dumps(with_(weight=[3500])), [("weight", "wrong_type",
     "Wrong type: weight must be a number, got an array.")]),
    (json.dumps(with_(weight={"lb": 3500})), [("weight", "wrong_type",
     "Wrong type: weight must be a number, got an object.")]),
    (json.dumps(with_(cylinders=4.5)), [("cylinders", "not_integer",
     "Wrong type: cylinders must be a whole number, got 4.5.")]),
    (json.dumps(with_(year=76.2)), [("year", "not_integer",
     "Wrong type: year must be a whole number, got 76.2.")]),
    (json.dumps(with_(origin=1.5)), [("origin", "not_integer",
     "Wrong type: origin must be a whole number, got 1.5.")]),
    (json.dumps(with_(origin=4)), [("origin", "out_of_bounds",
     "Out of bounds: origin, has value of: 4, but should be one of "
     "1 (USA), 2 (Europe), 3 (Japan).")]),
    (json.dumps(with_(origin=0)), [("origin", "out_of_bounds",
     "Out of bounds: origin, has value of: 0, but should be one of "
     "1 (USA), 2 (Europe), 3 (Japan).")]),
    ('{"cylinders": 8, "displacement": 300, "horsepower": 78, "weight": 1e400, '
     '"acceleration": 20, "year": 76, "origin": 1}', [("weight", "not_finite",
     "Invalid number: weight must be a finite number of sensible size.")]),
    (json.dumps(GOOD).replace("3500", "9" * 5000), [("weight", "not_finite",
     "Invalid number: weight must be a finite number of sensible size.")]),
    # 31 digits is one too many (an infinity); 30 are a number, just far out of bounds.
    (json.dumps(GOOD).replace("3500", "-" + "1" * 31), [("weight", "not_finite",
     "Invalid number: weight must be a finite number of sensible size.")]),
    (json.dumps(GOOD).replace("3500", "1" * 30), [("weight", "out_of_bounds",
     "Out of bounds: weight, has value of: 111111111111111111111..., but should be "
     "between 1613 and 5140.")]),
    (json.dumps(GOOD).replace("3500", "NaN"), [(None, "invalid_json",
     "Malformed JSON: NaN is not a JSON number.")]),
    (json.dumps(GOOD).replace("3500", "-Infinity"), [(None, "invalid_json",
     "Malformed JSON: -Infinity is not a JSON number.")]),
    ('{"weight": 3500, "weight": 3600}', [("weight", "duplicate_field",
     "Duplicate field: weight.")]),
    ('{"year": 70, "weight": 1, "year": 71, "weight": 2}', [("year", "duplicate_field",
     "Duplicate field: year.")]),
    ('{"cylinders": 8,', [(None, "invalid_json",
     "Malformed JSON: Expecting property name enclosed in double quotes at line 1 column 17.")]),
    ("", [(None, "invalid_json", "Malformed JSON: the body is empty.")]),
    ("[1, 2, 3]", [(None, "not_object", "Each record must be a JSON object with the fields "
     "cylinders, displacement, horsepower, weight, acceleration, year, origin.")]),
    ('"a string"', [(None, "not_object", "Each record must be a JSON object with the fields "
     "cylinders, displacement, horsepower, weight, acceleration, year, origin.")]),
    ("[" * 100000, [(None, "invalid_json", "Malformed JSON: nested too deeply.")]),
])
def test_bad_input_is_named_with_the_right_message(body: str, expected: list) -> None:
    assert problems_of(body) == expected


def test_long_digit_runs_in_strings_change_nothing() -> None:
    # A run of 31+ digits anywhere selects the decoder that bounds integers; it must parse
    # the document exactly as the plain one does.
    body = {"note": "1" * 40, "values": [1, -2, 3.5, 10**29], "nested": {"k": "x" * 3}}
    assert parse_json(json.dumps(body).encode()) == body


def test_every_problem_is_reported_at_once_in_field_order() -> None:
    record = {"cylinders": 4.5, "weight": 50000, "origin": 9, "color": "red", "displacement": "x"}
    fields = [p.field for p in check_record(record, SCHEMA).problems]
    assert fields == ["cylinders", "displacement", "horsepower", "weight", "acceleration",
                      "year", "origin", "color"]


def test_integral_float_counts_as_whole_number() -> None:
    assert check_record(with_(cylinders=8.0), SCHEMA).problems == []


def test_bounds_are_inclusive() -> None:
    assert check_record(with_(weight=1613, acceleration=24.8), SCHEMA).problems == []


def test_warn_policy_predicts_and_lists_the_warning() -> None:
    checked = check_record(with_(weight=50000), SCHEMA, out_of_range="warn")
    assert checked.problems == []
    assert checked.values is not None and checked.values[3] == 50000.0
    assert [w.code for w in checked.warnings] == ["out_of_bounds"]


def test_warn_policy_still_rejects_wrong_types() -> None:
    checked = check_record(with_(weight="heavy"), SCHEMA, out_of_range="warn")
    assert checked.values is None
    assert [p.code for p in checked.problems] == ["wrong_type"]


def test_echoed_field_names_are_bounded_and_escaped() -> None:
    name = "evil\n{\"severity\":\"CRITICAL\"}" + "x" * 500
    problem = check_record(with_(**{name: 1}), SCHEMA).problems[0]
    assert "\n" not in problem.message
    assert len(problem.message) < 80


def test_huge_python_integer_is_not_finite() -> None:
    checked = check_record(with_(weight=10**400), SCHEMA)
    assert [p.code for p in checked.problems] == ["not_finite"]
