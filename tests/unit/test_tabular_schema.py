"""Category features and classification outputs: how the manifest writes and reads them."""

from __future__ import annotations

import pytest

from modelserve.errors import ModelError
from modelserve.schema import (
    category_codes,
    category_entry,
    check_record,
    classification_labels,
    classification_output,
    feature_entry,
    schema_from_manifest,
)

COLOUR = category_entry("colour", category_codes(["red", "green", "red", "blue"]),
                        description="Paint")
SIZE = feature_entry("size", "number", 1.5, 9, unit="cm")
SCHEMA = schema_from_manifest({"kind": "tabular", "features": [SIZE, COLOUR]})


def test_writers_give_the_documented_entries() -> None:
    assert COLOUR == {"name": "colour", "type": "category", "unit": "",
                      "categories": {"blue": 0, "green": 1, "red": 2}, "description": "Paint"}
    assert SIZE == {"name": "size", "type": "number", "unit": "cm", "min": 1.5, "max": 9,
                    "description": ""}
    assert category_codes([3.0, 1, 2.0]) == {"1": 0, "2": 1, "3": 2}
    assert classification_output("kind", ["a", "b"], "none") == {
        "name": "kind", "type": "category", "labels": ["a", "b"], "activation": "none"}


@pytest.mark.parametrize("value", ["green", 1, 1.0])
def test_a_category_is_accepted_by_name_or_code(value: object) -> None:
    assert check_record({"size": 2, "colour": value}, SCHEMA).values == [2.0, 1.0]


@pytest.mark.parametrize(("value", "code", "message"), [
    ("purple", "unknown_category", "Out of bounds: colour, has value of: purple, but should be "
     "one of blue (0), green (1), red (2)."),
    (3, "unknown_category", "Out of bounds: colour, has value of: 3, but should be one of "
     "blue (0), green (1), red (2)."),
    ("1", "unknown_category", "Out of bounds: colour, has value of: 1, but should be one of "
     "blue (0), green (1), red (2)."),
    (1.5, "wrong_type", "Wrong type: colour must be a category name or code, got float."),
    (True, "wrong_type", "Wrong type: colour must be a category name or code, got a boolean."),
    (["red"], "wrong_type", "Wrong type: colour must be a category name or code, got an array."),
])
def test_bad_categories_are_refused_even_when_out_of_range_warns(
        value: object, code: str, message: str) -> None:
    checked = check_record({"size": 2, "colour": value}, SCHEMA, out_of_range="warn")

    assert checked.values is None
    assert [(p.field, p.code, p.message) for p in checked.problems] == [
        ("colour", code, message)]
    assert check_record({"size": 2, "colour": "red"}, SCHEMA).values == [2.0, 2.0]


def test_categories_may_be_a_list_of_names() -> None:
    schema = schema_from_manifest({"kind": "tabular", "features": [
        {"name": "c", "type": "category", "categories": ["x", "y"]}]})

    assert check_record({"c": "y"}, schema).values == [1.0]
    assert check_record({"c": 0}, schema).values == [0.0]


@pytest.mark.parametrize("categories", [{}, {"a": 0, "b": 0}, {"a": "0"}, "a,b", None])
def test_malformed_categories_are_refused(categories: object) -> None:
    with pytest.raises(ModelError, match="manifest feature"):
        schema_from_manifest({"kind": "tabular", "features": [
            {"name": "c", "type": "category", "categories": categories}]})


@pytest.mark.parametrize("output", [{}, {"labels": ["only"]}, {"labels": ["a", "a"]},
                                    {"labels": ["a", 2]}])
def test_classification_needs_two_distinct_labels(output: dict) -> None:
    with pytest.raises(ModelError, match="two or more distinct class labels"):
        classification_labels(output)
    assert classification_labels({"labels": ["a", "b"]}) == ("a", "b")
