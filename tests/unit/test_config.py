"""Configuration: per-function settings, defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from modelserve.config import (
    COMMON_VARIABLES,
    ConfigError,
    ImageLimits,
    TabularLimits,
    all_variables,
    load_settings,
    variables_for,
)
from modelserve.declarations import FUNCTIONS, declaration

MPG = declaration("predict_mpg")
IMAGE = declaration("classify_image")


def test_defaults_point_at_the_local_bucket() -> None:
    mpg, image = load_settings(MPG, {}), load_settings(IMAGE, {})
    assert mpg.model_uri.endswith("model_bucket/mpg")
    assert image.model_uri.endswith("model_bucket/image")
    assert mpg.limits == TabularLimits(65536, 256, "reject", 1000, 1048576)
    assert image.limits == ImageLimits(10485760, 12000000)
    assert mpg.cors_origins == ()
    assert mpg.interpreter_pool_size >= 1


def test_values_are_parsed() -> None:
    settings = load_settings(MPG, {
        "MPG_MODEL_URI": "gs://models/mpg/", "OUT_OF_RANGE": "WARN", "LOG_LEVEL": "debug",
        "CORS_ORIGINS": "https://a.example, https://b.example", "MAX_BATCH_SIZE": "10",
        "INTERPRETER_POOL_SIZE": "3",
    })
    assert settings.model_uri == "gs://models/mpg"
    assert settings.limits.out_of_range == "warn"
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.limits.max_batch_size == 10
    assert settings.interpreter_pool_size == 3


@pytest.mark.parametrize(("function", "name", "value"), [
    (MPG, "MAX_JSON_BYTES", "lots"),
    (MPG, "MAX_JSON_BYTES", "0"),
    (MPG, "MAX_BATCH_SIZE", "-1"),
    (IMAGE, "MAX_IMAGE_PIXELS", "1.5"),
    (MPG, "OUT_OF_RANGE", "ignore"),
    (MPG, "LOG_LEVEL", "LOUD"),
    (IMAGE, "INTERPRETER_POOL_SIZE", "-2"),
    (MPG, "LOAD_RETRY_MAX_SECONDS", "inf"),
    (MPG, "MPG_MODEL_URI", "s3://bucket/mpg"),
    (IMAGE, "IMAGE_MODEL_URI", "gs://"),
])
def test_malformed_variable_is_named(function: object, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}=") as error:
        load_settings(function, {name: value})
    assert "expected" in str(error.value)


def test_a_function_reads_only_its_own_variables() -> None:
    # Malformed variables of the other function (and its task kind) are none of its business.
    assert load_settings(MPG, {"IMAGE_MODEL_URI": "s3://x", "MAX_IMAGE_PIXELS": "many"})
    assert load_settings(IMAGE, {"MPG_MODEL_URI": "s3://x", "MAX_BATCH_SIZE": "-1"})
    mpg_names = {variable.name for variable in variables_for(MPG)}
    assert "IMAGE_MODEL_URI" not in mpg_names and "MAX_IMAGE_BYTES" not in mpg_names
    assert {variable.name for variable in COMMON_VARIABLES} <= mpg_names


def test_every_variable_is_described_and_unique() -> None:
    for function in FUNCTIONS:
        names = [variable.name for variable in variables_for(function)]
        assert len(names) == len(set(names)), function.name
    assert all(variable.description for variable in all_variables())
