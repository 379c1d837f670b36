"""Property-based tests of validation: any JSON value gives an answer or a well-formed error."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from modelserve.errors import AppError
from modelserve.jsonbody import parse_json
from modelserve.schema import Feature, check_each_field, check_record
from tests.unit.test_validation import GOOD, SCHEMA

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=8),
    max_leaves=20,
)
field_values = st.one_of(json_values, st.integers(-10**40, 10**40),
                         st.floats(allow_nan=False, allow_infinity=False))
records = st.fixed_dictionaries(
    {}, optional={name: field_values for name in GOOD}
) | st.dictionaries(st.sampled_from([*GOOD, "color", "mpg"]), field_values, max_size=9)


def _valid_value(feature: Feature) -> st.SearchStrategy:
    if feature.allowed:
        return st.sampled_from(sorted(feature.allowed))
    if feature.type == "integer":
        return st.integers(int(feature.minimum), int(feature.maximum))
    return st.floats(feature.minimum, feature.maximum)


valid_records = st.fixed_dictionaries({f.name: _valid_value(f) for f in SCHEMA.features})


def assert_well_formed(problems: list) -> None:
    assert problems
    for problem in problems:
        body = problem.as_dict()
        assert set(body) == {"field", "code", "message"}
        assert body["field"] is None or isinstance(body["field"], str)
        assert body["code"] and body["message"].endswith(".")
        assert "\n" not in body["message"] and len(body["message"]) < 200


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_body_gives_values_or_well_formed_problems(value: object) -> None:
    raw = json.dumps(value).encode()
    try:
        record = parse_json(raw)
    except AppError as error:
        assert error.status == 400
        assert_well_formed(error.problems)
        return
    checked = check_record(record, SCHEMA)
    if checked.values is None:
        assert_well_formed(checked.problems)
    else:
        assert len(checked.values) == len(SCHEMA.features)


@settings(max_examples=200, deadline=None)
@given(records)
def test_any_record_is_answered_or_refused_with_named_fields(record: dict) -> None:
    checked = check_record(record, SCHEMA)
    if checked.values is None:
        assert_well_formed(checked.problems)
        named = {p.field for p in checked.problems}
        assert named <= {*GOOD, *record}
    else:
        assert all(math.isfinite(v) for v in checked.values)


@settings(max_examples=150, deadline=None)
@given(valid_records)
def test_every_valid_record_passes_with_its_values_in_order(record: dict) -> None:
    checked = check_record(record, SCHEMA)
    assert checked.problems == []
    assert checked.values == [float(record[name]) for name in SCHEMA.names]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_anything_but_a_400(body: bytes) -> None:
    try:
        parse_json(body)
    except AppError as error:
        assert error.status == 400
        assert_well_formed(error.problems)


# Valid records with one field moved to a float anywhere in its range: whole or not, for
# whole-number fields and coded ones too.
nearly_valid_records = st.builds(
    lambda record, feature, fraction: {
        **record, feature.name: feature.minimum + fraction * (feature.maximum - feature.minimum)},
    valid_records, st.sampled_from(SCHEMA.features),
    st.sampled_from([0.0, 0.2, 0.5, 1.0]) | st.floats(0, 1),
)


@settings(max_examples=300, deadline=None)
@given(records | valid_records | nearly_valid_records)
def test_fast_path_agrees_with_the_full_pass(record: dict) -> None:
    # The fast path may only ever say "clean, with these values", and must say it for every
    # record the full pass finds clean (without warnings).
    fast = SCHEMA.clean_values(record)
    full = check_each_field(record, SCHEMA)
    if fast is not None:
        assert full.problems == [] and full.warnings == []
        assert fast == full.values
    else:
        assert full.values is None or full.warnings
    assert check_record(record, SCHEMA) == full
