"""The Auto MPG loaders, mappings, split and imputation (train/mpg_data.py; no TensorFlow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from train import mpg_data

VEGA_ROWS = 406
VEGA_ROWS_WITHOUT_MPG = 8
VEGA_ROWS_WITHOUT_HORSEPOWER = 6

CSV_TEXT = """mpg,cylinders,displacement,horsepower,weight,acceleration,year,origin,name
18.0,8,307.0,130.0,3504,12.0,70,1,chevrolet chevelle malibu
?,4,97.0,88.0,2130,14.5,1970,3,datsun pl510
25.0,4,98.0,?,2046,19.0,71,1,ford pinto
31.0,4,76.0,52.0,1649,16.5,82,2,vw rabbit
"""

EXPECTED_CSV = pd.DataFrame(
    {
        "mpg": [18.0, math.nan, 25.0, 31.0],
        "cylinders": [8, 4, 4, 4],
        "displacement": [307.0, 97.0, 98.0, 76.0],
        "horsepower": [130.0, 88.0, math.nan, 52.0],
        "weight": [3504.0, 2130.0, 2046.0, 1649.0],
        "acceleration": [12.0, 14.5, 19.0, 16.5],
        "year": [70, 70, 71, 82],
        "origin": [1, 3, 1, 2],
    }
)


def _vega_record(**overrides: object) -> dict[str, object]:
    """One cars.json record (a real one), with `overrides`."""
    record: dict[str, object] = {
        "Name": "chevrolet chevelle malibu",
        "Miles_per_Gallon": 18,
        "Cylinders": 8,
        "Displacement": 307,
        "Horsepower": 130,
        "Weight_in_lbs": 3504,
        "Acceleration": 12,
        "Year": "1970-01-01",
        "Origin": "USA",
    }
    return {**record, **overrides}


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "auto-mpg.csv"
    path.write_text(CSV_TEXT)
    return path


@pytest.fixture
def used_rows():
    """The vega rows that have an mpg, tagged with their position to follow them."""
    used = mpg_data.with_target(mpg_data.load_vega())
    return used.assign(row=np.arange(len(used)))


def test_vega_loader_gives_the_canonical_frame():
    df = mpg_data.load_vega()

    assert list(df.columns) == list(mpg_data.CANONICAL_COLUMNS)
    assert len(df) == VEGA_ROWS
    assert df["mpg"].isna().sum() == VEGA_ROWS_WITHOUT_MPG
    assert df["horsepower"].isna().sum() == VEGA_ROWS_WITHOUT_HORSEPOWER
    assert df.drop(columns=["mpg", "horsepower"]).notna().all().all()
    assert set(df["origin"]) == {1, 2, 3}
    assert df["year"].between(70, 82).all()
    assert {df[name].dtype.kind for name in mpg_data.INTEGER_FEATURES} == {"i"}


def test_csv_loader_gives_the_canonical_frame(csv_path):
    pd.testing.assert_frame_equal(mpg_data.load_csv(csv_path), EXPECTED_CSV)


def test_load_data_picks_the_loader(csv_path):
    assert len(mpg_data.load_data()) == VEGA_ROWS
    pd.testing.assert_frame_equal(mpg_data.load_data(csv_path), EXPECTED_CSV)
    assert mpg_data.data_path() == mpg_data.VEGA_CARS_PATH
    assert mpg_data.data_path(csv_path) == csv_path


def test_csv_loader_accepts_the_uci_header_spellings(tmp_path):
    path = tmp_path / "uci.csv"
    path.write_text(
        CSV_TEXT.replace(",year,", ",model year,").replace(",name", ",car name"), encoding="utf-8"
    )

    pd.testing.assert_frame_equal(mpg_data.load_csv(path), EXPECTED_CSV)


def test_csv_loader_names_missing_columns(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("mpg,cylinders\n18,8\n")

    with pytest.raises(ValueError, match="displacement"):
        mpg_data.load_csv(path)


@pytest.mark.parametrize(
    ("origin", "code"), [("USA", 1), ("Europe", 2), ("Japan", 3), (1, 1), ("3", 3)]
)
def test_origin_names_and_codes_map_to_codes(tmp_path, origin, code):
    path = tmp_path / "cars.json"
    path.write_text(json.dumps([_vega_record(Origin=origin)]))

    assert mpg_data.load_vega(path)["origin"].tolist() == [code]


@pytest.mark.parametrize("origin", ["Mars", 4, 0])
def test_unknown_origin_is_refused(tmp_path, origin):
    path = tmp_path / "cars.json"
    path.write_text(json.dumps([_vega_record(Origin=origin)]))

    with pytest.raises(ValueError, match="origin"):
        mpg_data.load_vega(path)


@pytest.mark.parametrize(
    ("year", "two_digit"), [("1970-01-01", 70), ("1976-01-01", 76), ("1982-01-01", 82)]
)
def test_vega_dates_map_to_two_digit_years(tmp_path, year, two_digit):
    path = tmp_path / "cars.json"
    path.write_text(json.dumps([_vega_record(Year=year)]))

    assert mpg_data.load_vega(path)["year"].tolist() == [two_digit]


def test_vega_missing_values_become_nan(tmp_path):
    path = tmp_path / "cars.json"
    path.write_text(json.dumps([_vega_record(Miles_per_Gallon=None, Horsepower=None)]))

    row = mpg_data.load_vega(path).iloc[0]

    assert math.isnan(row["mpg"])
    assert math.isnan(row["horsepower"])


def test_with_target_drops_only_rows_without_mpg():
    df = mpg_data.load_vega()

    used = mpg_data.with_target(df)

    assert len(used) == VEGA_ROWS - VEGA_ROWS_WITHOUT_MPG
    assert used["mpg"].notna().all()
    assert list(used.index) == list(range(len(used)))


def test_split_is_deterministic_80_20_and_disjoint(used_rows):
    train, test = mpg_data.split(used_rows, seed=42)
    train_again, test_again = mpg_data.split(used_rows, seed=42)

    pd.testing.assert_frame_equal(train, train_again)
    pd.testing.assert_frame_equal(test, test_again)
    assert len(test) == round(0.2 * len(used_rows)) == 80
    assert len(train) == len(used_rows) - len(test) == 318
    assert set(train["row"]).isdisjoint(test["row"])
    assert set(train["row"]) | set(test["row"]) == set(used_rows["row"])


def test_split_depends_on_the_seed(used_rows):
    _, test_42 = mpg_data.split(used_rows, seed=42)
    _, test_7 = mpg_data.split(used_rows, seed=7)

    assert set(test_42["row"]) != set(test_7["row"])


def test_split_of_the_default_seed_is_pinned(used_rows):
    """The committed model's test rows must stay the same rows: pin a few of them."""
    _, test = mpg_data.split(used_rows)

    assert test["row"].tolist()[:8] == [0, 5, 9, 15, 22, 25, 30, 31]


def test_imputation_uses_the_training_median_and_fills_only_horsepower(used_rows):
    train, test = mpg_data.split(used_rows, seed=42)
    value = mpg_data.imputation_value(train)

    filled = mpg_data.impute(test, value)

    assert value == float(np.nanmedian(train["horsepower"]))
    assert filled["horsepower"].notna().all()
    missing = test["horsepower"].isna()
    assert (filled.loc[missing, "horsepower"] == value).all()
    pd.testing.assert_frame_equal(
        filled.drop(columns="horsepower"), test.drop(columns="horsepower")
    )


def test_feature_matrix_is_float32_in_model_order(csv_path):
    df = mpg_data.impute(mpg_data.load_csv(csv_path), 100.0)

    matrix = mpg_data.feature_matrix(df)

    assert matrix.dtype == np.float32
    assert matrix.shape == (4, 7)
    assert matrix[0].tolist() == [8, 307, 130, 3504, 12, 70, 1]


def test_feature_matrix_refuses_missing_values(csv_path):
    with pytest.raises(ValueError, match="impute"):
        mpg_data.feature_matrix(mpg_data.load_csv(csv_path))


def test_feature_schema_ranges_come_from_rows_with_mpg():
    schema = mpg_data.feature_schema(mpg_data.with_target(mpg_data.load_vega()))
    by_name = {entry["name"]: entry for entry in schema}

    assert [entry["name"] for entry in schema] == list(mpg_data.FEATURES)
    assert (by_name["weight"]["min"], by_name["weight"]["max"]) == (1613, 5140)
    assert (by_name["year"]["min"], by_name["year"]["max"]) == (70, 82)
    assert by_name["origin"]["allowed"] == {"1": "USA", "2": "Europe", "3": "Japan"}
    assert {entry["name"] for entry in schema if entry["type"] == "integer"} == {
        "cylinders",
        "year",
        "origin",
    }
    assert all({"unit", "description", "min", "max"} <= entry.keys() for entry in schema)
