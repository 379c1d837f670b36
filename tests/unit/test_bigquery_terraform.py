"""terraform/bigquery.tf: BigQuery remote functions, off by default, parsed with python-hcl2.

What Terraform cannot be run to show here is held statically: nothing is created while
`bigquery_remote_functions` is null; the connection's own service account may invoke only the
chosen functions' services; each routine is a remote SCALAR_FUNCTION whose arguments are the
model's features (INT64 / FLOAT64) and whose endpoint is the function's URL; the variable's
validations accept what cloudbuild.yaml writes for the committed mpg model and refuse the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import pytest

from modelserve.schema import INTEGER, NUMBER
from tests.helpers import COMMITTED_BUCKET, REPO_ROOT, latest_version
from tests.unit.test_terraform import (
    TF_DIR,
    config,
    function_defaults,
    hcl_string,
    labelled,
    local,
    typed,
    unquote,
    variables,
)

VARIABLE = "bigquery_remote_functions"
OFF = f"var.{VARIABLE} == null"


def only(resource_type: str) -> dict[str, Any]:
    (body,) = typed("resource", resource_type).values()
    return body


def connection() -> dict[str, Any]:
    return typed("resource", "google_bigquery_connection")["remote_functions"]


def routine() -> dict[str, Any]:
    return typed("resource", "google_bigquery_routine")["remote"]


def conditions() -> list[str]:
    return [v["condition"] for v in variables()[VARIABLE]["validation"]]


def condition_with(needle: str) -> str:
    (found,) = [c for c in conditions() if needle in c]
    assert found.startswith(f"${{{OFF} ? true : "), "validations must pass while it is off"
    return found


def regexes(condition: str) -> list[re.Pattern[str]]:
    found = re.findall(r'regex\("((?:[^"\\]|\\.)*)",', condition)
    return [re.compile(hcl_string(pattern)) for pattern in found]


def committed_features() -> list[dict[str, str]]:
    manifest = json.loads((latest_version(COMMITTED_BUCKET / "mpg") / "manifest.json").read_text())
    return [{"name": f["name"], "type": f["type"]} for f in manifest["input"]["features"]]


# --- off by default ------------------------------------------------------------------------------


def test_the_feature_is_one_variable_null_by_default() -> None:
    variable = variables()[VARIABLE]
    assert variable["default"] is None
    assert "functions = map(object({" in variable["type"]
    assert local("remote_functions") == f"${{{OFF} ? {{}} : var.{VARIABLE}.functions}}"


def test_nothing_is_created_while_it_is_null() -> None:
    assert connection()["count"] == f"${{{OFF} ? 0 : 1}}"
    assert routine()["for_each"] == "${local.remote_functions}"
    invoker = typed("resource", "google_cloud_run_v2_service_iam_member")["bigquery"]
    assert invoker["for_each"] == "${local.remote_functions}"
    users = typed("resource", "google_bigquery_connection_iam_member")["users"]
    assert users["for_each"] == f"${{toset({OFF} ? [] : var.{VARIABLE}.users)}}"
    services = typed("resource", "google_project_service")["enabled"]
    assert services["for_each"] == (
        f"${{toset(concat(local.services, {OFF} ? [] : local.bigquery_services))}}")
    assert {unquote(s) for s in local("bigquery_services")} == {
        "bigquery.googleapis.com", "bigqueryconnection.googleapis.com"}
    # Every BigQuery resource hangs off the variable: no other way to switch one on.
    for kind in ("google_bigquery_connection", "google_bigquery_routine",
                 "google_bigquery_connection_iam_member"):
        for name, body in typed("resource", kind).items():
            gate = body.get("count", "") + body.get("for_each", "")
            assert VARIABLE in gate or "local.remote_functions" in gate, f"{kind}.{name}"
    assert not typed("resource", "google_bigquery_dataset"), (
        "the routines go into an existing dataset; Terraform does not own the data")


# --- the connection and who may use it -----------------------------------------------------------


def test_the_connection_is_a_cloud_resource_connection_in_the_chosen_location() -> None:
    body = connection()
    (cloud_resource,) = body["cloud_resource"]
    assert [key for key in cloud_resource if not key.startswith("__")] == []
    assert body["location"] == f"${{var.{VARIABLE}.location}}"
    assert body["connection_id"] == f"${{var.{VARIABLE}.connection_id}}"
    preconditions = [p["condition"] for p in body["lifecycle"][0]["precondition"]]
    assert any("contains(keys(var.functions), name)" in c for c in preconditions)
    assert any('var.functions[name].task, "") == "tabular"' in c for c in preconditions), (
        "only tabular functions can answer a row of features with one value")


def test_the_connection_account_may_invoke_the_chosen_services_only() -> None:
    invoker = typed("resource", "google_cloud_run_v2_service_iam_member")["bigquery"]
    assert unquote(invoker["role"]) == "roles/run.invoker"
    assert invoker["name"] == (
        "${google_cloudfunctions2_function.this[each.key].service_config[0].service}")
    assert unquote(invoker["member"]) == (
        "serviceAccount:${google_bigquery_connection.remote_functions[0].cloud_resource[0]"
        ".service_account_id}")
    grants = [
        (unquote(kind), unquote(name))
        for block in config()["resource"]
        for kind, named in block.items()
        for name, body in named.items()
        if "service_account_id" in json.dumps(body) and "iam" in unquote(kind)
    ]
    assert grants == [("google_cloud_run_v2_service_iam_member", "bigquery")], (
        "the connection's service account gets run.invoker on the chosen services, nothing else")


def test_users_get_connection_user_on_the_connection_only() -> None:
    users = typed("resource", "google_bigquery_connection_iam_member")["users"]
    assert unquote(users["role"]) == "roles/bigquery.connectionUser"
    assert users["connection_id"] == (
        "${google_bigquery_connection.remote_functions[0].connection_id}")
    assert users["member"] == "${each.value}"
    (accepted,) = regexes(condition_with(".users"))
    assert accepted.search("group:analysts@example.com")
    assert not accepted.search("allUsers") and not accepted.search("analysts@example.com")


# --- the routines ----------------------------------------------------------------------------


def test_each_routine_is_a_remote_scalar_function() -> None:
    body = routine()
    assert unquote(body["routine_type"]) == "SCALAR_FUNCTION"
    assert unquote(body["definition_body"]) == ""
    assert "language" not in body, "a remote function has no language"
    assert body["dataset_id"] == f"${{var.{VARIABLE}.dataset_id}}"
    assert body["routine_id"] == '${coalesce(each.value.routine_id, replace(each.key, "-", "_"))}'
    assert body["return_type"] == "${jsonencode({typeKind = each.value.return_type})}"
    assert 'return_type = optional(string, "FLOAT64")' in variables()[VARIABLE]["type"]


def test_arguments_are_the_features_as_int64_or_float64() -> None:
    (dynamic,) = routine()["dynamic"]
    spec = dynamic['"arguments"']
    assert spec["for_each"] == "${each.value.arguments}"
    (content,) = spec["content"]
    assert content["name"] == "${arguments.value.name}"
    assert content["data_type"] == (
        "${jsonencode({typeKind = local.sql_types[arguments.value.type]})}")
    sql_types = {k: unquote(v) for k, v in local("sql_types").items() if not k.startswith("__")}
    assert sql_types == {INTEGER: "INT64", NUMBER: "FLOAT64"}, "the manifest's feature types"
    assert f'contains(["{INTEGER}", "{NUMBER}"], a.type)' in condition_with("f.arguments")


def test_remote_function_options_call_the_function_url_through_the_connection() -> None:
    (options,) = routine()["remote_function_options"]
    assert unquote(options["endpoint"]) == (
        "${google_cloudfunctions2_function.this[each.key].service_config[0].uri}"
        "${each.value.endpoint_path}")
    assert options["connection"] == "${google_bigquery_connection.remote_functions[0].name}"
    assert options["max_batching_rows"] == "${tostring(each.value.max_batching_rows)}"
    assert options["user_defined_context"] == "${each.value.user_defined_context}"
    assert "max_batching_rows = optional(number, 500)" in variables()[VARIABLE]["type"]
    assert "user_defined_context = optional(map(string), {})" in variables()[VARIABLE]["type"]


def test_max_batching_rows_is_validated_from_1_to_50000() -> None:
    condition = condition_with("max_batching_rows")
    assert "f.max_batching_rows >= 1 && f.max_batching_rows <= 50000" in condition
    assert "floor(f.max_batching_rows) == f.max_batching_rows" in condition


# --- the validations against real values ---------------------------------------------------------


@pytest.mark.parametrize(("needle", "good", "bad"), [
    (".dataset_id", ["mydataset", "ml_2026"], ["my-dataset", "a.b", ""]),
    (".location", ["US", "EU", "us-central1", "europe-west4"], ["us", "US-EAST", "us central1"]),
    (".connection_id", ["keras_functions"], ["", "a/b", "a" * 65]),
    ("f.routine_id", ["predict_mpg", "_f2"], ["2f", "predict-mpg", "a.b"]),
    ("f.endpoint_path", ["", "/bigquery", "/v1/bq"], ["bigquery", "/", "/a?b=1", "/a b"]),
    ("keys(var.bigquery_remote_functions.functions)", ["predict-mpg"], ["Predict", "p"]),
])
def test_validation_patterns(needle: str, good: list[str], bad: list[str]) -> None:
    (pattern,) = regexes(condition_with(needle))
    for value in good:
        assert pattern.fullmatch(value), value
    for value in bad:
        assert not pattern.fullmatch(value), value


def test_the_committed_models_features_pass_the_argument_validation() -> None:
    (name_pattern,) = regexes(condition_with("f.arguments"))
    features = committed_features()
    assert features and all(name_pattern.fullmatch(f["name"]) for f in features)
    assert {f["type"] for f in features} <= {INTEGER, NUMBER}
    assert not name_pattern.fullmatch("0-60 time"), "a feature name that is no SQL identifier"


def test_default_routine_ids_of_the_tabular_functions_are_sql_names() -> None:
    (routine_id,) = regexes(condition_with("f.routine_id"))
    tabular = [name for name, entry in function_defaults().items() if entry["task"] == "tabular"]
    assert tabular == ["predict-mpg"]
    for name in tabular:
        assert routine_id.fullmatch(name.replace("-", "_")), name


def test_the_example_tfvars_block_is_valid_hcl_with_the_committed_features() -> None:
    text = (TF_DIR / "terraform.tfvars.example").read_text()
    block = re.search(rf"^# {VARIABLE} = \{{\n(?:#.*\n)*?# \}}$", text, re.MULTILINE)
    assert block, f"terraform.tfvars.example shows {VARIABLE} (commented out)"
    uncommented = re.sub(r"^# ?", "", block.group(0), flags=re.MULTILINE)
    parsed = hcl2.loads(uncommented)[VARIABLE]
    (functions,) = [value for key, value in parsed.items() if key == "functions"]
    arguments = functions['"predict-mpg"']["arguments"]
    assert [{k: unquote(v) for k, v in a.items()} for a in arguments] == committed_features()


# --- outputs and documentation -------------------------------------------------------------------


def test_outputs_name_the_routines_and_the_connection() -> None:
    outputs = labelled("output")
    assert "google_bigquery_routine.remote" in outputs["bigquery_routines"]["value"]
    assert "cloud_resource[0].service_account_id" in json.dumps(outputs["bigquery_connection"])
    for name in ("bigquery_routines", "bigquery_connection"):
        assert len(unquote(outputs[name]["description"])) > 20, name


def test_readme_shows_how_to_turn_it_on_and_how_to_do_it_by_hand() -> None:
    readme = (REPO_ROOT / "terraform" / "README.md").read_text()
    for text in ("bigquery_remote_functions", "_BIGQUERY_DATASET",
                 "mydataset.predict_mpg(cylinders, displacement, horsepower, weight, "
                 "acceleration, year, origin)",
                 "bq mk --connection", "--connection_type=CLOUD_RESOURCE",
                 "REMOTE WITH CONNECTION", "max_batching_rows = 500", "roles/run.invoker",
                 '"calls"', '"replies"', '"errorMessage"'):
        assert text in readme, text
