"""Configuration: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from modelserve.config import VARIABLES, ConfigError, load_settings


def test_defaults_point_at_the_local_bucket() -> None:
    settings = load_settings({})
    assert settings.mpg_model_uri.endswith("model_bucket/mpg")
    assert settings.image_model_uri.endswith("model_bucket/image")
    assert settings.out_of_range == "reject"
    assert settings.cors_origins == ()
    assert settings.interpreter_pool_size >= 1


def test_values_are_parsed() -> None:
    settings = load_settings({
        "MPG_MODEL_URI": "gs://models/mpg/", "OUT_OF_RANGE": "WARN", "LOG_LEVEL": "debug",
        "CORS_ORIGINS": "https://a.example, https://b.example", "MAX_BATCH_SIZE": "10",
        "INTERPRETER_POOL_SIZE": "3",
    })
    assert settings.mpg_model_uri == "gs://models/mpg"
    assert settings.out_of_range == "warn"
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.max_batch_size == 10
    assert settings.interpreter_pool_size == 3


@pytest.mark.parametrize(("name", "value"), [
    ("MAX_JSON_BYTES", "lots"),
    ("MAX_JSON_BYTES", "0"),
    ("MAX_BATCH_SIZE", "-1"),
    ("MAX_IMAGE_PIXELS", "1.5"),
    ("OUT_OF_RANGE", "ignore"),
    ("LOG_LEVEL", "LOUD"),
    ("INTERPRETER_POOL_SIZE", "-2"),
    ("LOAD_RETRY_MAX_SECONDS", "inf"),
    ("MPG_MODEL_URI", "s3://bucket/mpg"),
    ("IMAGE_MODEL_URI", "gs://"),
])
def test_malformed_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}=") as error:
        load_settings({name: value})
    assert "expected" in str(error.value)


def test_every_variable_is_described_and_unique() -> None:
    names = [variable.name for variable in VARIABLES]
    assert len(names) == len(set(names))
    assert all(variable.description for variable in VARIABLES)
