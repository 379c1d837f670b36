"""A table for the tabular exporter: read it, check it, choose the task, encode it, split it.

No TensorFlow here. Every problem with the data is a DataError whose message names the file
or the column and says what to do; the exporter turns it into exit status 2 before anything
is written. The manifest's features are written with modelserve.schema's writers (the rules
the functions read them with).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelserve.contract import TASK_CLASSIFICATION, TASK_REGRESSION
from modelserve.schema import (
    INTEGER,
    NUMBER,
    category_codes,
    category_entry,
    category_name,
    feature_entry,
)

DEFAULT_SEED = 42
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2
CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_INFERRED_CLASSES = 20  # a whole-number target with at most this many values: classes
MISSING_REFUSE, MISSING_DROP = "refuse", "drop"


class DataError(ValueError):
    """The data cannot train a model; the message names the file or column and the fix."""


@dataclass(frozen=True)
class FeatureInfo:
    """What the data cannot say about a column: unit, description, a fixed type or codes."""

    unit: str = ""
    description: str = ""
    type: str | None = None  # integer or number; default: integer when every value is whole
    allowed: Mapping[int, str] | None = None  # an integer column's only codes, with names


@dataclass(frozen=True)
class TableRequest:
    """Which columns to use and how (the exporter's command line, or a preset)."""

    target: str
    features: tuple[str, ...] | None = None  # default: every column but the target
    categorical: tuple[str, ...] = ()
    task: str | None = None  # regression or classification; default: inferred
    missing: str = MISSING_REFUSE  # rows with a missing feature: refuse, or drop them
    impute_median: tuple[str, ...] = ()  # columns whose gaps get the training split's median
    info: Mapping[str, FeatureInfo] = field(default_factory=dict)
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class Table:
    """The encoded table: model inputs, targets, the schema and the fixed split."""

    target: str
    features: tuple[str, ...]
    task: str
    task_reason: str  # why this task ("given", or what was inferred from the target)
    labels: tuple[str, ...]  # classification: the classes in output order
    schema: list[dict[str, Any]]  # the manifest's input.features
    x: np.ndarray  # float32 (rows, features), categories as their codes
    y: np.ndarray  # float32 targets, or int64 class indexes
    split: dict[str, np.ndarray]  # row indexes: train, test, fit, validation
    rows: dict[str, Any]  # counts: total, used, dropped and why
    imputation: dict[str, dict[str, Any]]

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one part of the split: train, test, fit or validation."""
        index = self.split[name]
        return self.x[index], self.y[index]


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; DataError naming the file if it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise DataError(f"{path}: not a table (expected {', '.join(CSV_SUFFIXES)} or "
                        f"{', '.join(PARQUET_SUFFIXES)})")
    try:
        if suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, ImportError, UnicodeDecodeError,
            pd.errors.ParserError) as error:
        raise DataError(f"{path}: cannot be read as a table ({error})") from None
    if frame.empty:
        raise DataError(f"{path}: the table has no rows")
    return frame


def split(df: pd.DataFrame, seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic (train, test) split of a frame's rows (see `split_indexes`)."""
    train, test = split_indexes(len(df), seed, test_fraction)
    return df.iloc[train].reset_index(drop=True), df.iloc[test].reset_index(drop=True)


def split_indexes(rows: int, seed: int = DEFAULT_SEED, test_fraction: float = TEST_FRACTION
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indexes: a seeded permutation, `test_fraction` held out, sorted.

    Uses numpy's legacy `RandomState`, whose stream numpy keeps stable across versions, so
    the held-out rows of a committed model can be recomputed later from its seed.
    """
    order = np.random.RandomState(seed).permutation(rows)
    n_test = round(rows * test_fraction)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def prepare(frame: pd.DataFrame, request: TableRequest) -> Table:
    """Check, encode and split `frame` as `request` says; DataError for unusable data."""
    features = _choose_features(frame, request)
    total = len(frame)
    frame = frame[frame[request.target].notna()].reset_index(drop=True)
    no_target = total - len(frame)
    frame, dropped_missing = _handle_missing(frame, features, request)
    if len(frame) < 10:
        raise DataError(f"only {len(frame)} usable rows; at least 10 are needed")
    task, reason = choose_task(frame[request.target], request.task)
    train, test = split_indexes(len(frame), request.seed)
    fit_part, validation_part = split_indexes(len(train), request.seed, VALIDATION_FRACTION)
    imputation = {}
    for name in request.impute_median:
        value = float(frame[name].iloc[train].median())
        imputation[name] = {"strategy": "median", "value": value,
                            "rows": int(frame[name].isna().sum())}
    schema, columns = [], []
    for name in features:
        column = frame[name]
        info = request.info.get(name, FeatureInfo())
        if name in request.categorical:
            codes = category_codes(column)
            schema.append(category_entry(name, codes, unit=info.unit,
                                         description=info.description))
            columns.append(np.array([codes[category_name(v)] for v in column], np.float32))
            continue
        numbers = _numeric(column, name)
        kind = info.type or (INTEGER if _whole(numbers) else NUMBER)
        present = numbers.dropna()
        schema.append(feature_entry(name, kind, present.min(), present.max(), unit=info.unit,
                                    description=info.description,
                                    allowed=dict(info.allowed) if info.allowed else None))
        if name in imputation:
            numbers = numbers.fillna(imputation[name]["value"])
        columns.append(numbers.to_numpy(dtype=np.float32))
    labels, y = _targets(frame[request.target], task)
    return Table(
        target=request.target, features=features, task=task, task_reason=reason,
        labels=labels, schema=schema,
        x=np.stack(columns, axis=1), y=y,
        split={"train": train, "test": test, "fit": train[fit_part],
               "validation": train[validation_part]},
        rows={"total": total, "used": len(frame), "dropped": total - len(frame),
              "dropped_no_target": no_target, "dropped_missing_features": dropped_missing},
        imputation=imputation,
    )


def choose_task(target: pd.Series, given: str | None) -> tuple[str, str]:
    """The task and why: as given, or inferred (text or few whole numbers: classification)."""
    name = target.name
    if given is not None:
        if given not in (TASK_REGRESSION, TASK_CLASSIFICATION):
            raise DataError(f"task {given!r} is neither {TASK_REGRESSION} nor "
                            f"{TASK_CLASSIFICATION}")
        task, reason = given, "given (--task)"
    elif not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        task, reason = TASK_CLASSIFICATION, f"inferred: target {name!r} holds text or labels"
    elif _whole(target) and target.nunique() <= MAX_INFERRED_CLASSES:
        task = TASK_CLASSIFICATION
        reason = (f"inferred: target {name!r} holds {target.nunique()} whole-number values "
                  f"(at most {MAX_INFERRED_CLASSES}); pass --task regression to predict "
                  "it as a number")
    else:
        task, reason = TASK_REGRESSION, f"inferred: target {name!r} holds numbers"
    if task == TASK_CLASSIFICATION and target.nunique() < 2:
        raise DataError(f"target {name!r} has a single class "
                        f"({category_name(target.iloc[0])!r}); classification needs two or "
                        "more")
    if task == TASK_REGRESSION:
        _numeric(target, name, role="target")
    return task, reason


def _choose_features(frame: pd.DataFrame, request: TableRequest) -> tuple[str, ...]:
    columns = [str(column) for column in frame.columns]
    if request.target not in columns:
        raise DataError(f"no target column {request.target!r}; the columns are "
                        f"{', '.join(columns)}")
    features = request.features or tuple(c for c in columns if c != request.target)
    unknown = [name for name in (*features, *request.categorical) if name not in columns]
    if unknown:
        raise DataError(f"no column {unknown[0]!r}; the columns are {', '.join(columns)}")
    if request.target in features:
        raise DataError(f"the target {request.target!r} cannot also be a feature")
    if len(set(features)) != len(features):
        raise DataError("a feature is listed twice")
    stray = [name for name in request.categorical if name not in features]
    if stray:
        raise DataError(f"categorical column {stray[0]!r} is not one of the features")
    if not features:
        raise DataError("no feature columns")
    return tuple(features)


def _handle_missing(frame: pd.DataFrame, features: Sequence[str],
                    request: TableRequest) -> tuple[pd.DataFrame, int]:
    checked = [name for name in features if name not in request.impute_median]
    gaps = frame[checked].isna()
    rows = gaps.any(axis=1)
    if not rows.any():
        return frame, 0
    if request.missing == MISSING_DROP:
        return frame[~rows].reset_index(drop=True), int(rows.sum())
    counts = ", ".join(f"{name} ({int(count)} rows)"
                       for name, count in gaps.sum().items() if count)
    raise DataError(f"missing values in feature column(s) {counts}; fill them in, or pass "
                    "--drop-missing to drop those rows")


def _numeric(column: pd.Series, name: str, role: str = "column") -> pd.Series:
    """A numeric column as float; DataError naming it if it holds text."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    if pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    numbers = pd.to_numeric(column, errors="coerce")
    bad = column[numbers.isna() & column.notna()]
    if len(bad):
        hint = (f"declare it with --categorical {name}, or leave it out of --features"
                if role == "column" else "pass --task classification to predict it as a class")
        raise DataError(f"{role} {name!r} holds text (e.g. {str(bad.iloc[0])!r}); {hint}")
    return numbers.astype("float64")


def _whole(values: pd.Series) -> bool:
    present = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(present)) and bool(np.all(np.mod(present.to_numpy(), 1) == 0))


def _targets(target: pd.Series, task: str) -> tuple[tuple[str, ...], np.ndarray]:
    if task == TASK_REGRESSION:
        return (), _numeric(target, str(target.name), role="target").to_numpy(np.float32)
    try:
        distinct = sorted(target.unique())  # numbers in numeric order, text alphabetically
    except TypeError:
        distinct = sorted(target.unique(), key=category_name)
    labels = []
    for value in distinct:
        name = category_name(value)
        if name not in labels:
            labels.append(name)
    index = {label: number for number, label in enumerate(labels)}
    return tuple(labels), np.array([index[category_name(v)] for v in target], np.int64)
