"""Auto MPG data: loaders, the fixed train/test split, imputation and the input schema.

Both loaders return the canonical frame: one row per car with the columns of
`CANONICAL_COLUMNS` (`mpg` first, then the seven model features in model order), NaN where
a value is missing, `year` as the two-digit model year (70..82) and `origin` as the numeric
region code (1 USA, 2 Europe, 3 Japan). This module imports no TensorFlow, so tests and
tools can reuse the split without paying for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import vega_datasets

from modelserve.schema import INTEGER, NUMBER, feature_entry
from train import tabular_data

TARGET = "mpg"
FEATURES = (
    "cylinders",
    "displacement",
    "horsepower",
    "weight",
    "acceleration",
    "year",
    "origin",
)
CANONICAL_COLUMNS = (TARGET, *FEATURES)
INTEGER_FEATURES = frozenset({"cylinders", "year", "origin"})

ORIGIN_CODES = {"USA": 1, "Europe": 2, "Japan": 3}
ORIGIN_NAMES = {code: name for name, code in ORIGIN_CODES.items()}

DEFAULT_SEED = 42
TEST_FRACTION = 0.2
CENTURY = 1900
IMPUTED_FEATURE = "horsepower"
MISSING_MARK = "?"

VEGA_CARS_PATH = Path(vega_datasets.__file__).parent / "_data" / "cars.json"
VEGA_COLUMNS = {
    "Miles_per_Gallon": "mpg",
    "Cylinders": "cylinders",
    "Displacement": "displacement",
    "Horsepower": "horsepower",
    "Weight_in_lbs": "weight",
    "Acceleration": "acceleration",
    "Year": "year",
    "Origin": "origin",
}
# Spellings of the classic UCI CSV headers found in the wild, mapped to the canonical names.
CSV_ALIASES = {
    "model year": "year",
    "model_year": "year",
    "modelyear": "year",
    "car name": "name",
    "car_name": "name",
}

FEATURE_INFO: dict[str, dict[str, str]] = {
    "cylinders": {"unit": "cylinders", "description": "Number of cylinders"},
    "displacement": {"unit": "cubic inches", "description": "Engine displacement"},
    "horsepower": {"unit": "hp", "description": "Engine power"},
    "weight": {"unit": "lb", "description": "Vehicle weight"},
    "acceleration": {
        "unit": "seconds (0-60 mph)",
        "description": "Time to accelerate from 0 to 60 mph",
    },
    "year": {
        "unit": "model year (19xx, two digits)",
        "description": "Model year, two digits (70 = 1970)",
    },
    "origin": {"unit": "region code", "description": "Region of manufacture"},
}


def load_vega(path: Path = VEGA_CARS_PATH) -> pd.DataFrame:
    """Read the vega_datasets copy of Auto MPG (`cars.json`) into the canonical frame."""
    records = json.loads(Path(path).read_text(encoding="utf-8"))
    raw = pd.DataFrame.from_records(records).rename(columns=VEGA_COLUMNS)
    raw["year"] = [_two_digit_year(int(str(value)[:4])) for value in raw["year"]]
    raw["origin"] = [_origin_code(value) for value in raw["origin"]]
    return _canonical(raw)


def load_csv(path: Path) -> pd.DataFrame:
    """Read a CSV with the classic UCI column names (`?` marks a missing value)."""
    raw = pd.read_csv(path, na_values=[MISSING_MARK], skipinitialspace=True)
    raw.columns = [str(column).strip().lower() for column in raw.columns]
    raw = raw.rename(columns=CSV_ALIASES)
    missing = [column for column in CANONICAL_COLUMNS if column not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    raw["year"] = [_two_digit_year(int(value)) for value in raw["year"]]
    raw["origin"] = [_origin_code(value) for value in raw["origin"]]
    return _canonical(raw)


def load_data(path: Path | None = None) -> pd.DataFrame:
    """Load `path` (a UCI-style CSV) or, without a path, the vega_datasets copy."""
    return load_vega() if path is None else load_csv(Path(path))


def data_path(path: Path | None = None) -> Path:
    """The file `load_data(path)` reads."""
    return VEGA_CARS_PATH if path is None else Path(path)


def with_target(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that have an mpg (the others cannot train or test anything)."""
    return df[df[TARGET].notna()].reset_index(drop=True)


def split(
    df: pd.DataFrame, seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic (train, test) split: the tabular exporter's (train.tabular_data.split)."""
    return tabular_data.split(df, seed, test_fraction)


def imputation_value(train: pd.DataFrame) -> float:
    """The horsepower median of the training split, used for rows without horsepower."""
    return float(train[IMPUTED_FEATURE].median())


def impute(df: pd.DataFrame, value: float) -> pd.DataFrame:
    """A copy of `df` with missing horsepower replaced by `value`."""
    return df.assign(**{IMPUTED_FEATURE: df[IMPUTED_FEATURE].fillna(value)})


def feature_matrix(df: pd.DataFrame) -> np.ndarray:
    """The model input: float32, shape (rows, 7), columns in `FEATURES` order."""
    values = df.loc[:, list(FEATURES)].to_numpy(dtype=np.float32)
    if np.isnan(values).any():
        raise ValueError("feature matrix has missing values; impute horsepower first")
    return values


def targets(df: pd.DataFrame) -> np.ndarray:
    """The mpg column as float32."""
    return df[TARGET].to_numpy(dtype=np.float32)


def feature_schema(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The manifest's `input.features`: name, type, unit, min, max, description (+ allowed).

    `min`/`max` come from `df` (pass the rows that have an mpg), ignoring missing values.
    """
    return [
        feature_entry(name, INTEGER if name in INTEGER_FEATURES else NUMBER,
                      df[name].dropna().min(), df[name].dropna().max(),
                      unit=FEATURE_INFO[name]["unit"],
                      description=FEATURE_INFO[name]["description"],
                      allowed=ORIGIN_NAMES if name == "origin" else None)
        for name in FEATURES
    ]


def _canonical(raw: pd.DataFrame) -> pd.DataFrame:
    """Keep the canonical columns with numeric dtypes (NaN for missing values)."""
    frame = raw.loc[:, list(CANONICAL_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    for name in ("cylinders", "year", "origin"):
        frame[name] = frame[name].astype("int64")
    for name in ("mpg", "displacement", "horsepower", "weight", "acceleration"):
        frame[name] = frame[name].astype("float64")
    return frame.reset_index(drop=True)


def _two_digit_year(year: int) -> int:
    """70 for 70 or 1970."""
    two_digit = year - CENTURY if year >= CENTURY else year
    if not 0 <= two_digit <= 99:
        raise ValueError(f"model year {year} is neither 19xx nor two digits")
    return two_digit


def _origin_code(value: Any) -> int:
    """1, 2 or 3 from a region name (USA, Europe, Japan) or a code."""
    if isinstance(value, str) and value.strip() in ORIGIN_CODES:
        return ORIGIN_CODES[value.strip()]
    try:
        code = int(value)
    except (TypeError, ValueError):
        code = None
    if code not in ORIGIN_NAMES:
        raise ValueError(f"unknown origin {value!r}; expected 1-3 or {', '.join(ORIGIN_CODES)}")
    return code
