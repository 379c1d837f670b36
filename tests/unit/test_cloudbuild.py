"""cloudbuild.yaml: step ids, pinned images, declared substitutions, the deploy order, and the
tfvars step's Python run for real against temporary model buckets."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST, REPO_ROOT, latest_version
from tests.unit.test_terraform import function_defaults, local, validation_regex, variables

CLOUDBUILD = REPO_ROOT / "cloudbuild.yaml"

# Substitutions Cloud Build provides itself (no leading underscore).
BUILT_IN = {
    "PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH", "COMMIT_SHA", "SHORT_SHA", "REVISION_ID", "BRANCH_NAME",
    "TAG_NAME", "REF_NAME", "REPO_NAME", "REPO_FULL_NAME", "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
}
# A tag with at least major.minor (python:3.12.7-slim, 1.9.8, 502.0.0-slim) or a digest.
PINNED_IMAGE = re.compile(
    r"^[^\s:@]+(:[A-Za-z0-9_.-]*\d+\.\d+[A-Za-z0-9_.-]*|@sha256:[0-9a-f]{64})$"
)
SUBSTITUTION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@functools.cache
def build() -> dict[str, Any]:
    return yaml.safe_load(CLOUDBUILD.read_text())


def steps() -> list[dict[str, Any]]:
    return build()["steps"]


def step(step_id: str) -> dict[str, Any]:
    (found,) = [s for s in steps() if s.get("id") == step_id]
    return found


def script(step_id: str) -> str:
    """Everything a step runs (its arguments, joined)."""
    return "\n".join(str(arg) for arg in step(step_id).get("args", []))


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in strings(key) + strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return []


def used_substitutions() -> set[str]:
    used: set[str] = set()
    for text in strings(build()):
        for braced, bare in SUBSTITUTION.findall(text.replace("$$", "")):
            used.add(braced or bare)
    return used


def index(step_id: str) -> int:
    return [s.get("id") for s in steps()].index(step_id)


def test_every_step_has_a_unique_id() -> None:
    ids = [s.get("id") for s in steps()]
    assert all(ids), "every step needs an id"
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("position", range(len(steps())))
def test_every_image_is_pinned_through_a_substitution(position: int) -> None:
    current = steps()[position]
    match = re.fullmatch(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)", current["name"])
    assert match, f"step {current.get('id')}: image {current['name']!r} is not a substitution"
    image = build()["substitutions"][match.group(1) or match.group(2)]
    assert "latest" not in image.split(":")[-1], image
    assert PINNED_IMAGE.match(image), f"step {current.get('id')}: {image} is not pinned"


def test_every_used_substitution_is_declared_and_every_declared_one_used() -> None:
    declared = set(build()["substitutions"])
    used = used_substitutions()
    user_defined = {name for name in used if name.startswith("_")}
    assert not user_defined - declared, f"undeclared: {sorted(user_defined - declared)}"
    unknown = (used - user_defined) - BUILT_IN
    assert not unknown, f"neither declared nor built in: {sorted(unknown)}"
    assert not declared - used, f"declared but never used: {sorted(declared - used)}"
    assert all(name.startswith("_") for name in declared)


def test_order_is_test_publish_apply_smoke() -> None:
    assert index("test") < index("publish-models") < index("tf-apply") < index("smoke")
    assert index("export-models") < index("publish-models")
    assert index("tf-init") < index("tf-fmt") < index("tf-validate") < index("tf-plan")
    assert index("tfvars") < index("model-bucket") < index("publish-models") < index("tf-plan")
    assert index("tf-plan") < index("tf-apply")
    for current in steps():
        assert "waitFor" not in current, "steps run in file order"


def test_test_step_runs_make_test() -> None:
    assert "make test" in script("test")


def test_runtime_requirements_are_audited_before_anything_is_published() -> None:
    assert "pip-audit --strict -r functions/requirements.txt" in script("audit")
    assert index("test") < index("audit") < index("publish-models")


def test_model_export_is_switched_by_a_substitution() -> None:
    assert build()["substitutions"]["_EXPORT_MODELS"] in {"true", "false"}
    text = script("export-models")
    assert '"${_EXPORT_MODELS}" != "true"' in text and "make models" in text


def test_publish_sets_latest_in_the_model_bucket() -> None:
    text = script("publish-models")
    assert "-m train.publish --bucket model_bucket --to gs://${_MODEL_BUCKET}" in text
    assert "--set-latest" in text
    assert "for model in mpg image" in text


def test_terraform_steps() -> None:
    init = step("tf-init")["args"]
    assert "init" in init
    assert "-backend-config=bucket=${_TF_STATE_BUCKET}" in init
    assert "-backend-config=prefix=${_TF_STATE_PREFIX}" in init
    assert {"fmt", "-check"} <= set(step("tf-fmt")["args"])
    assert "validate" in step("tf-validate")["args"]
    plan = step("tf-plan")["args"]
    assert "plan" in plan and "-out=tfplan" in plan
    assert "-var-file=../build/terraform.tfvars.json" in plan
    assert "terraform -chdir=terraform apply tfplan" in script("tf-apply")
    for output in ("predict_mpg_url", "classify_image_url"):
        assert output in script("tf-apply")
    assert (REPO_ROOT / "terraform" / "versions.tf").read_text().count('backend "gcs" {}') == 1


def test_model_versions_are_pinned_from_substitutions_or_latest() -> None:
    text = script("tfvars")
    for name in ("MPG_MODEL_VERSION", "IMAGE_MODEL_VERSION"):
        assert f"{name}=${{_{name}}}" in step("tfvars")["env"]
        assert build()["substitutions"][f"_{name}"] == ""
    assert 'pathlib.Path("model_bucket", path)' in text
    assert '"/LATEST"' in text and '"gcloud", "storage", "cat"' in text


def test_bigquery_remote_functions_are_off_by_default() -> None:
    substitutions = build()["substitutions"]
    assert substitutions["_BIGQUERY_DATASET"] == ""
    assert substitutions["_BIGQUERY_LOCATION"] == "US"
    for pair in substitutions["_BIGQUERY_FUNCTIONS"].split(","):
        function, model = pair.split(":")
        assert function_defaults()[function]["model"] == model


def test_smoke_calls_both_functions_with_an_identity_token_and_the_lesson_requests() -> None:
    text = script("smoke")
    assert "print-identity-token" in text and "--audiences=" in text
    assert '"Authorization": "Bearer "' in text
    for field, value in LESSON_REQUEST.items():
        assert re.search(rf'"{field}": {value}\b', text), field
    assert 'name=\\"image\\"' in text, "the image goes in the multipart field `image`"
    assert 'mpg.get("mpg")' in text and 'image.get("predictions")' in text
    assert 'call("predict_mpg"' in text and 'call("classify_image"' in text


def test_python_image_runs_the_functions_runtime() -> None:
    main_tf = (REPO_ROOT / "terraform" / "main.tf").read_text()
    runtime = re.search(r'runtime\s*=\s*"python(\d)(\d+)"', main_tf)
    assert runtime
    tag = build()["substitutions"]["_PYTHON_IMAGE"].split(":")[1]
    assert tag.startswith(f"{runtime.group(1)}.{runtime.group(2)}."), tag


def test_terraform_image_satisfies_required_version() -> None:
    tag = build()["substitutions"]["_TERRAFORM_IMAGE"].split(":")[1]
    major, minor = (int(part) for part in tag.split(".")[:2])
    assert (major, minor) >= (1, 5)


# --- the tfvars step, run -----------------------------------------------------------------------

FAKE_GCLOUD = """#!/bin/sh
# Stands in for `gcloud storage cat gs://BUCKET/PATH`: prints $FAKE_BUCKETS/BUCKET/PATH.
[ "$1 $2" = "storage cat" ] || { echo "fake gcloud: unexpected: $*" >&2; exit 2; }
exec cat "$FAKE_BUCKETS/${3#gs://}"
"""
DEPLOYER = "deployer@my-project.iam.gserviceaccount.com"
IMAGE_VERSION = "20261130T101500Z"


def tfvars_program() -> str:
    """The Python the tfvars step feeds to python3 (its heredoc), with Cloud Build's $$ undone."""
    match = re.search(r"python3 - << 'EOF'\n(.*?)\nEOF", script("tfvars"), re.DOTALL)
    assert match, "the tfvars step runs its Python from a heredoc"
    return match.group(1).replace("$$", "$")


def step_environment(**overrides: str) -> dict[str, str]:
    """The tfvars step's env with the declared substitution defaults (PROJECT_ID my-project)."""
    values = {"PROJECT_ID": "my-project", **build()["substitutions"]}
    environment = {}
    for line in step("tfvars")["env"]:
        name, _, value = line.partition("=")
        for _ in range(3):  # defaults may name other substitutions, e.g. ${PROJECT_ID}
            value = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], value)
        environment[name] = value
    return {**environment, **overrides}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A build workspace: model_bucket/ with the committed mpg model's manifest and LATEST, an
    image model's LATEST, and a fake gcloud whose bucket (FAKE_BUCKETS) starts empty."""
    mpg = latest_version(COMMITTED_BUCKET / "mpg")
    (tmp_path / "model_bucket" / "mpg" / mpg.name).mkdir(parents=True)
    (tmp_path / "model_bucket" / "mpg" / "LATEST").write_text(mpg.name + "\n")
    manifest = (mpg / "manifest.json").read_text()
    (tmp_path / "model_bucket" / "mpg" / mpg.name / "manifest.json").write_text(manifest)
    (tmp_path / "model_bucket" / "image").mkdir()
    (tmp_path / "model_bucket" / "image" / "LATEST").write_text(IMAGE_VERSION + "\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "gcloud").write_text(FAKE_GCLOUD)
    (tools / "gcloud").chmod(0o755)
    (tmp_path / "remote").mkdir()
    return tmp_path


def run_tfvars(workspace: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    (workspace / "build").mkdir(exist_ok=True)
    env = {
        "PATH": f"{workspace / 'tools'}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_BUCKETS": str(workspace / "remote"),
        "DEPLOYER": DEPLOYER,
        **step_environment(**overrides),
    }
    return subprocess.run([sys.executable, "-"], input=tfvars_program(), cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def written(workspace: Path) -> dict[str, Any]:
    return json.loads((workspace / "build" / "terraform.tfvars.json").read_text())


def committed_features() -> list[dict[str, str]]:
    manifest = json.loads((latest_version(COMMITTED_BUCKET / "mpg") / "manifest.json").read_text())
    return [{"name": f["name"], "type": f["type"]} for f in manifest["input"]["features"]]


def test_tfvars_pins_every_model_of_the_functions_map(workspace: Path) -> None:
    result = run_tfvars(workspace)
    assert result.returncode == 0, result.stderr
    tfvars = written(workspace)
    assert set(tfvars) <= set(variables()), "the step writes only Terraform's variables"
    assert "bigquery_remote_functions" not in tfvars, "off unless _BIGQUERY_DATASET is set"
    mpg = latest_version(COMMITTED_BUCKET / "mpg").name
    assert tfvars["model_versions"] == {"mpg": mpg, "image": IMAGE_VERSION}
    assert {entry["model"] for entry in function_defaults().values()} <= set(
        tfvars["model_versions"]), "every model of the default functions map has a version"
    version = validation_regex("model_versions", "values(var.model_versions)")
    assert all(version.fullmatch(v) for v in tfvars["model_versions"].values())
    assert tfvars["invoker_members"] == [f"serviceAccount:{DEPLOYER}"]
    assert (tfvars["project_id"], tfvars["model_bucket_name"]) == (
        "my-project", "my-project-keras-models")


def test_tfvars_prefers_a_pinned_version_then_falls_back_to_the_bucket(workspace: Path) -> None:
    (workspace / "model_bucket" / "image" / "LATEST").unlink()
    remote = workspace / "remote" / "my-project-keras-models" / "image"
    remote.mkdir(parents=True)
    (remote / "LATEST").write_text("20261001T000000Z\n")
    result = run_tfvars(workspace, MPG_MODEL_VERSION="20261101T000000Z")
    assert result.returncode == 0, result.stderr
    assert written(workspace)["model_versions"] == {"mpg": "20261101T000000Z",
                                                    "image": "20261001T000000Z"}


def test_tfvars_without_any_version_fails_naming_the_model_then_works(workspace: Path) -> None:
    (workspace / "model_bucket" / "image" / "LATEST").unlink()
    result = run_tfvars(workspace)
    assert result.returncode == 1
    assert "no image model version" in result.stderr and "_IMAGE_MODEL_VERSION" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workspace / "build" / "terraform.tfvars.json").exists()
    result = run_tfvars(workspace, IMAGE_MODEL_VERSION=IMAGE_VERSION)
    assert result.returncode == 0, result.stderr
    assert written(workspace)["model_versions"]["image"] == IMAGE_VERSION


def test_tfvars_writes_bigquery_arguments_from_the_served_manifest(workspace: Path) -> None:
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset")
    assert result.returncode == 0, result.stderr
    remote = written(workspace)["bigquery_remote_functions"]
    assert (remote["dataset_id"], remote["location"]) == ("mydataset", "US")
    assert set(remote["functions"]) == {"predict-mpg"}
    arguments = remote["functions"]["predict-mpg"]["arguments"]
    assert arguments == committed_features()
    assert [a["name"] for a in arguments] == [
        "cylinders", "displacement", "horsepower", "weight", "acceleration", "year", "origin"]
    sql_types = {name: value.strip('"') for name, value in local("sql_types").items()
                 if not name.startswith("__")}
    assert {a["type"] for a in arguments} == set(sql_types) == {"integer", "number"}
    assert function_defaults()["predict-mpg"]["task"] == "tabular"


def test_tfvars_reads_the_manifest_from_the_bucket_when_not_in_the_build(workspace: Path) -> None:
    version = "20261002T000000Z"
    remote = workspace / "remote" / "my-project-keras-models" / "mpg" / version
    remote.mkdir(parents=True)
    features = [{"name": "size", "type": "number"}, {"name": "rooms", "type": "integer"}]
    (remote / "manifest.json").write_text(json.dumps(
        {"input": {"kind": "tabular", "features": [{**f, "min": 0, "max": 9} for f in features]}}))
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset", MPG_MODEL_VERSION=version)
    assert result.returncode == 0, result.stderr
    remote_functions = written(workspace)["bigquery_remote_functions"]["functions"]
    assert remote_functions["predict-mpg"]["arguments"] == features


@pytest.mark.parametrize(("functions", "message"), [
    ("classify-image:image", "no image/20261130T101500Z/manifest.json"),
    ("predict-mpg", "is not FUNCTION:MODEL"),
])
def test_tfvars_refuses_what_cannot_be_a_remote_function_then_works(
        workspace: Path, functions: str, message: str) -> None:
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset", BIGQUERY_FUNCTIONS=functions)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("schema", "message"), [
    ({"kind": "image", "height": 224}, "is not a tabular model with input.features"),
    ({"kind": "tabular", "features": [{"name": "colour", "type": "string"}]},
     "feature 'colour' has type 'string', not one of integer, number"),
])
def test_tfvars_refuses_a_manifest_without_sql_features_then_works(
        workspace: Path, schema: dict[str, Any], message: str) -> None:
    folder = workspace / "model_bucket" / "image" / IMAGE_VERSION
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"input": schema}))
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset",
                        BIGQUERY_FUNCTIONS="classify-image:image")
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    result = run_tfvars(workspace, BIGQUERY_DATASET="mydataset")
    assert result.returncode == 0, result.stderr
