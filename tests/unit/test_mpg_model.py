"""The committed MPG model through the serving code: every valid record gives a finite mpg."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings

from modelserve.app import build_endpoint
from modelserve.declarations import declaration
from modelserve.schema import check_record
from modelserve.tasks.tabular import TabularModel as MpgModel
from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST
from tests.unit.test_validation_properties import valid_records


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> MpgModel:
    cache: Path = tmp_path_factory.mktemp("cache")
    environ = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": str(cache)}
    return build_endpoint(declaration("predict_mpg"), environ).model.get()


def test_lesson_request_is_plausible(model: MpgModel) -> None:
    values = check_record(LESSON_REQUEST, model.schema).values
    assert values is not None
    assert 15 <= model.predict(values) <= 30


@settings(max_examples=150, deadline=None)
@given(valid_records)
def test_every_valid_record_gives_a_finite_mpg(model: MpgModel, record: dict) -> None:
    values = check_record(record, model.schema).values
    assert values is not None
    mpg = model.predict(values)
    assert math.isfinite(mpg)
