"""Settings: one typed object from the environment, overrides by name, errors instead of silent defaults."""

from __future__ import annotations

from dataclasses import fields

import pytest

from reviewflow.config import ConfigError, Settings, env_name, load_settings


def test_defaults_and_environment():
    settings = load_settings({"REVIEWFLOW_LAKE": "/data/lake/", "REVIEWFLOW_PROMOTE_MARGIN": "0.01"})
    assert settings.lake == "/data/lake"  # trailing slash dropped
    assert settings.promote_margin == 0.01 and isinstance(settings.promote_margin, float)
    assert settings.catalog == "duckdb" and settings.fairness_min_support == 100
    assert settings.bert_model  # the packaged MiniLM, else a hub id: never empty


def test_every_field_has_one_environment_variable():
    names = [env_name(f.name) for f in fields(Settings)]
    assert len(names) == len(set(names))
    assert env_name("review_confidence_threshold") == "REVIEWFLOW_REVIEW_CONFIDENCE"  # the documented name
    assert load_settings({"REVIEWFLOW_REVIEW_CONFIDENCE": "0.7"}).review_confidence_threshold == 0.7


def test_overrides_by_variable_or_field_name_win_over_the_environment():
    env = {"REVIEWFLOW_BIAS_FAIL_ON_ALERT": "0", "REVIEWFLOW_DRIFT_OOV_THRESHOLD": "0.3"}
    settings = load_settings(env, {"REVIEWFLOW_BIAS_FAIL_ON_ALERT": True, "drift_oov_threshold": 0.05})
    assert settings.bias_fail_on_alert is True and settings.drift_oov_threshold == 0.05


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"REVIEWFLOW_CATALOG": "mysql"}, None, "REVIEWFLOW_CATALOG='mysql': expected one of duckdb, glue"),
        ({"REVIEWFLOW_BERT_EPOCHS": "two"}, None, "REVIEWFLOW_BERT_EPOCHS='two' is not an integer"),
        ({"REVIEWFLOW_PROMOTE_MARGIN": "5%"}, None, "REVIEWFLOW_PROMOTE_MARGIN='5%' is not a number"),
        ({"REVIEWFLOW_REQUIRE_APPROVAL": "maybe"}, None, "expected true/false"),
        ({"REVIEWFLOW_DATABASE": "reviews; drop"}, None, "not a valid SQL identifier"),
        ({}, {"REVIEWFLOW_PROMOTE_MARGN": 0.1}, "unknown setting(s) REVIEWFLOW_PROMOTE_MARGN"),
        ({}, {"bert_epochs": 2.7}, "REVIEWFLOW_BERT_EPOCHS=2.7 is not an integer"),
        ({"REVIEWFLOW_BERT_MAX_LENGTH": "1024"}, None, "REVIEWFLOW_BERT_MAX_LENGTH=1024: expected 16 to 512 tokens"),
    ],
)
def test_bad_values_are_errors_not_defaults(env, overrides, message):
    with pytest.raises(ConfigError) as error:
        load_settings(env, overrides)
    assert message in str(error.value)


def test_a_bert_inference_mode_outside_the_known_ones_is_refused():
    import importlib.util

    from reviewflow.config import BERT_INFERENCE_MODES, MODELS_DIR, ConfigError, load_settings

    assert load_settings({"REVIEWFLOW_BERT_INFERENCE": "onnx-int8"}).bert_inference == "onnx-int8"
    with pytest.raises(ConfigError, match="REVIEWFLOW_BERT_INFERENCE"):
        load_settings({"REVIEWFLOW_BERT_INFERENCE": "fp16"})
    spec = importlib.util.spec_from_file_location("bert_modes", MODELS_DIR / "bert.py")
    source = spec.loader.get_source("bert_modes")
    modes = ", ".join(f'"{m}"' for m in BERT_INFERENCE_MODES)
    assert f"INFERENCE_MODES = ({modes})" in source  # the entry point's own list, kept equal
