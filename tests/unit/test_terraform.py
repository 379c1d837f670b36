"""terraform/*.tf, parsed with python-hcl2, checked against the code it deploys.

No terraform binary is needed: `terraform validate` and `plan` run in Cloud Build. These tests
hold the contract between Terraform and functions/: the map of functions against the
declarations (modelserve.declarations), the environment variables against what each function
reads (modelserve.config), runtime, the source archive, and the house rules (typed variables,
private invocation, IAM on resources only, no default service account). The BigQuery remote
functions are in test_bigquery_terraform.py, provider argument names in
test_terraform_provider_schema.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import hcl2
import pytest
from packaging.specifiers import SpecifierSet

from modelserve.config import COMMON_VARIABLES, TASK_VARIABLES, all_variables, variables_for
from modelserve.declarations import FUNCTIONS, declaration
from tests.helpers import REPO_ROOT

TF_DIR = REPO_ROOT / "terraform"
FUNCTIONS_DIR = REPO_ROOT / "functions"
TF_FILES = sorted(TF_DIR.glob("*.tf"))

# Environment variables Terraform may set that modelserve.config does not read, and who reads them.
PLATFORM_VARIABLES = {
    "THREADS": "functions-framework: gunicorn threads per instance (the `threads` field)",
    "WORKERS": "functions-framework: gunicorn worker processes (the `workers` field)",
}
VERSION_EXAMPLE = "20261125T120000Z"
EXPECTED_SIZING = {
    # name: (entry point, model, memory, cpu, concurrency)
    "predict-mpg": ("predict_mpg", "mpg", "256Mi", "1", 8),
    "classify-image": ("classify_image", "image", "512Mi", "1", 4),
}


# --- reading python-hcl2 8.x output --------------------------------------------------------------
# Strings keep their quotes ('"zip"'), expressions are wrapped ("${var.x}"), heredocs keep their
# markers; numbers and booleans are Python values.


def unquote(value: Any) -> Any:
    """The text of an HCL string literal; anything else unchanged."""
    if not isinstance(value, str):
        return value
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    heredoc = re.fullmatch(r"<<-?(\w+)\n(.*?)\n[ \t]*\1", value, re.DOTALL)
    if heredoc:
        return textwrap.dedent(heredoc.group(2))
    return value


def hcl_string(literal: str) -> str:
    """Decode the escapes of a quoted HCL string found inside an expression."""
    return json.loads(f'"{literal}"')


@functools.cache
def config() -> dict[str, list[Any]]:
    """All .tf files merged: block type -> list of blocks."""
    merged: dict[str, list[Any]] = {}
    for path in TF_FILES:
        with path.open() as handle:
            for key, blocks in hcl2.load(handle).items():
                if isinstance(blocks, list):
                    merged.setdefault(key, []).extend(blocks)
    return merged


def labelled(kind: str) -> dict[str, dict[str, Any]]:
    """Blocks with one label (variable, output): name -> body."""
    return {unquote(name): body for block in config().get(kind, []) for name, body in block.items()}


def typed(kind: str, type_name: str) -> dict[str, dict[str, Any]]:
    """Blocks with two labels (resource, data) of one type: name -> body."""
    found: dict[str, dict[str, Any]] = {}
    for block in config().get(kind, []):
        for block_type, named in block.items():
            if unquote(block_type) == type_name:
                found.update({unquote(name): body for name, body in named.items()})
    return found


def resource_types() -> set[str]:
    return {unquote(block_type) for block in config().get("resource", []) for block_type in block}


def local(name: str) -> Any:
    for block in config()["locals"]:
        if name in block:
            return block[name]
    raise KeyError(f"local.{name} is not defined")


def variables() -> dict[str, dict[str, Any]]:
    return labelled("variable")


def function_defaults() -> dict[str, dict[str, Any]]:
    default = variables()["functions"]["default"]
    return {
        unquote(name): {field: unquote(value) for field, value in entry.items()}
        for name, entry in default.items()
    }


def function_resource() -> dict[str, Any]:
    (body,) = typed("resource", "google_cloudfunctions2_function").values()
    return body


def environment_names(mapping: dict[str, Any]) -> set[str]:
    return {key for key in mapping if not key.startswith("__")}


def terraform_environment(function_name: str) -> set[str]:
    """Names of the environment variables Terraform sets on one function."""
    entry = function_defaults()[function_name]
    service = function_resource()["service_config"][0]
    expression = service["environment_variables"]
    names = environment_names(local("common_environment"))
    names |= environment_names(local("task_environment")[entry["task"]])
    names |= environment_names(entry.get("environment", {}))
    # The computed key {(each.value.model_variable) = ...}: the entry's own model variable.
    assert "(each.value.model_variable) = local.model_uri[each.key]" in expression
    names.add(entry["model_variable"])
    # Literal object keys inside the merge(...) expression, e.g. {THREADS = ...}.
    names |= set(re.findall(r"[{,]\s*([A-Z][A-Z0-9_]*)\s*=", expression))
    return names


def validation_regex(variable: str, needle: str) -> re.Pattern[str]:
    """The regex(...) pattern of the one validation of `variable` whose condition has `needle`."""
    conditions = [v["condition"] for v in variables()[variable]["validation"]
                  if needle in v["condition"]]
    assert len(conditions) == 1, (variable, needle, conditions)
    pattern = re.search(r'regex\("((?:[^"\\]|\\.)*)",', conditions[0])
    assert pattern, conditions[0]
    return re.compile(hcl_string(pattern.group(1)))


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The archive provider's doublestar matching: ** spans folders, * and ? do not."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def archived(path: str, excludes: list[str]) -> bool:
    """Whether a path below functions/ lands in the zip (an excluded folder skips all below it)."""
    patterns = [glob_regex(pattern) for pattern in excludes]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return not any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


# --- the files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["versions.tf", "variables.tf", "main.tf", "outputs.tf"])
def test_expected_files_exist(name: str) -> None:
    assert (TF_DIR / name).is_file()
    assert (TF_DIR / "terraform.tfvars.example").is_file()


@pytest.mark.parametrize("path", TF_FILES, ids=lambda path: path.name)
def test_every_tf_file_parses(path: Path) -> None:
    with path.open() as handle:
        assert isinstance(hcl2.load(handle), dict)


def test_versions_and_backend() -> None:
    (block,) = config()["terraform"]
    assert re.fullmatch(r">=\s*1\.([5-9]|\d\d)(\.\d+)?", unquote(block["required_version"]))
    providers = block["required_providers"][0]
    assert unquote(providers["google"]["source"]) == "hashicorp/google"
    assert re.fullmatch(r"~>\s*\d+\.\d+", unquote(providers["google"]["version"])), (
        "pin the google provider to one major version range, e.g. ~> 7.0"
    )
    assert unquote(providers["archive"]["source"]) == "hashicorp/archive"
    assert unquote(providers["archive"]["version"])
    (backend,) = block["backend"]
    assert [unquote(name) for name in backend] == ["gcs"]


# --- variables -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(variables()))
def test_every_variable_is_typed_and_described(name: str) -> None:
    body = variables()[name]
    assert body.get("type"), f"variable {name} has no type"
    assert len(unquote(body.get("description", ""))) >= 10, f"variable {name} has no description"


def test_numbers_are_typed_as_numbers() -> None:
    for name, body in variables().items():
        default = body.get("default")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert body["type"] == "number", f"variable {name}: number default, type not number"
    function_type = variables()["functions"]["type"]
    for field in ("max_instance_request_concurrency", "threads", "min_instance_count",
                  "max_instance_count", "timeout_seconds"):
        assert re.search(rf"\b{field} = number\b", function_type), field
        for entry in function_defaults().values():
            assert isinstance(entry[field], int), field


@pytest.mark.parametrize(
    "name",
    ["project_id", "region", "model_bucket_name", "kms_key_name", "model_versions", "functions",
     "invoker_members", "ingress", "log_level", "out_of_range", "cors_origins",
     "build_service_account_email", "bigquery_remote_functions"],
)
def test_listable_values_are_validated(name: str) -> None:
    assert variables()[name].get("validation"), f"variable {name} has no validation"


def test_region_default_is_in_its_validation_list() -> None:
    region = variables()["region"]
    (validation,) = region["validation"]
    assert "contains(" in validation["condition"]
    assert f'\\"{unquote(region["default"])}\\"' in json.dumps(validation["condition"])


def test_function_validations_cover_memory_cpu_instances_and_concurrency() -> None:
    conditions = [v["condition"] for v in variables()["functions"]["validation"]]
    assert any('"256Mi"' in c and '"512Mi"' in c and "available_memory" in c for c in conditions)
    assert any("available_cpu" in c and '"1"' in c and "contains(" in c for c in conditions)
    assert any("min_instance_count" in c and "max_instance_count" in c for c in conditions)
    assert any(
        "max_instance_request_concurrency == 1" in c and "available_cpu" in c and ">= 1" in c
        for c in conditions
    ), "concurrency above 1 must require at least one vCPU"


def test_default_sizing() -> None:
    defaults = function_defaults()
    assert set(defaults) == set(EXPECTED_SIZING)
    for name, (entry_point, model, memory, cpu, concurrency) in EXPECTED_SIZING.items():
        entry = defaults[name]
        assert (entry["entry_point"], entry["model"]) == (entry_point, model)
        assert (entry["available_memory"], entry["available_cpu"]) == (memory, cpu)
        assert entry["max_instance_request_concurrency"] == concurrency
        assert entry["min_instance_count"] == 0
        assert entry["min_instance_count"] <= entry["max_instance_count"]
        assert entry["timeout_seconds"] == 60
        assert entry["max_instance_request_concurrency"] == 1 or float(entry["available_cpu"]) >= 1
        # One interpreter per vCPU the instance gets: os.cpu_count() there sees the host's CPUs.
        pool_size = unquote(entry["environment"]["INTERPRETER_POOL_SIZE"])
        assert pool_size == unquote(entry["available_cpu"])


def test_ingress_default_is_safe() -> None:
    ingress = variables()["ingress"]
    assert unquote(ingress["default"]) in {"ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY"}
    (validation,) = ingress["validation"]
    for value in ("ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY", "ALLOW_ALL"):
        assert value in validation["condition"]


# --- the functions and the code they run ---------------------------------------------------------


def test_one_function_resource_for_each_over_the_map() -> None:
    functions = typed("resource", "google_cloudfunctions2_function")
    assert len(functions) == 1, "deploy every function from one for_each, not copied blocks"
    body = function_resource()
    assert body["for_each"] == "${var.functions}"
    build = body["build_config"][0]
    assert build["entry_point"] == "${each.value.entry_point}"
    service = body["service_config"][0]
    for field in ("available_memory", "available_cpu", "max_instance_request_concurrency",
                  "min_instance_count", "max_instance_count", "timeout_seconds"):
        assert service[field] == f"${{each.value.{field}}}", field
    assert service["ingress_settings"] == "${var.ingress}"


# --- the map of functions against the declarations ------------------------------------------------


def test_every_map_entry_is_a_declared_function_and_every_declaration_has_one() -> None:
    defaults = function_defaults()
    entry_points = [entry["entry_point"] for entry in defaults.values()]
    assert len(entry_points) == len(set(entry_points)), "two map entries deploy one entry point"
    for name, entry in defaults.items():
        declared = declaration(entry["entry_point"])  # KeyError names the declared functions
        assert entry["model_variable"] == declared.model_variable, name
        assert entry["model"] == declared.model_folder, name
        assert entry["task"] == declared.task, name
    missing = {f.name for f in FUNCTIONS} - set(entry_points)
    assert not missing, f"declared but not in Terraform's functions map: {sorted(missing)}"


def test_main_py_exposes_one_entry_point_per_declaration() -> None:
    """Import functions/main.py as functions-framework does (source folder on sys.path)."""
    probe = (
        "import json, main\n"
        "print(json.dumps({name: [callable(value), getattr(value, '__name__', '')]\n"
        "                  for name, value in vars(main).items() if not name.startswith('_')}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "FUNCTION_TARGET"}
    env["PYTHONPATH"] = str(FUNCTIONS_DIR)
    result = subprocess.run([sys.executable, "-c", probe], cwd=FUNCTIONS_DIR, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    exposed = json.loads(result.stdout.strip().splitlines()[-1])
    for function in FUNCTIONS:
        assert exposed.get(function.name) == [True, function.name], (
            f"main.py does not expose {function.name} as a function: {exposed.get(function.name)}"
        )
    for name, entry in function_defaults().items():
        assert entry["entry_point"] in exposed, f"{name}: no {entry['entry_point']} in main.py"


def test_runtime_matches_the_project_python() -> None:
    runtime = unquote(local("runtime"))
    match = re.fullmatch(r"python(\d)(\d+)", runtime)
    assert match, runtime
    version = f"{match.group(1)}.{match.group(2)}"
    assert version == "3.12"
    assert function_resource()["build_config"][0]["runtime"] == "${local.runtime}"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(version), (
        f"requires-python {project['requires-python']} does not allow the runtime {runtime}"
    )
    pinned = REPO_ROOT / ".python-version"
    if pinned.is_file():
        assert pinned.read_text().strip().startswith(version)


@pytest.mark.parametrize("name", EXPECTED_SIZING)
def test_every_variable_terraform_sets_is_read_by_that_function(name: str) -> None:
    function = declaration(function_defaults()[name]["entry_point"])
    read = {variable.name for variable in variables_for(function)}
    unknown = terraform_environment(name) - read - set(PLATFORM_VARIABLES)
    assert not unknown, f"{name}: sets what {function.name} never reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", EXPECTED_SIZING)
def test_every_variable_a_function_reads_is_set_or_has_a_default(name: str) -> None:
    function = declaration(function_defaults()[name]["entry_point"])
    set_here = terraform_environment(name)
    for variable in variables_for(function):
        assert variable.name in set_here or variable.default is not None, (
            f"{name}: {variable.name} is neither set by Terraform nor has a default"
        )
    # The default model URI points into the source tree's model_bucket/, which is not deployed.
    assert function.model_variable in set_here, f"{name}: must set {function.model_variable}"


def test_every_variable_terraform_sets_on_all_functions_is_common() -> None:
    common = {variable.name for variable in COMMON_VARIABLES}
    assert environment_names(local("common_environment")) <= common
    tasks = local("task_environment")
    assert set(tasks) == set(TASK_VARIABLES), "one task_environment entry per task kind"
    for task, environment in tasks.items():
        assert environment_names(environment) <= {v.name for v in TASK_VARIABLES[task]}, task
    assert {v.name for v in all_variables()} >= environment_names(local("common_environment"))


def test_threads_and_workers_come_from_their_fields() -> None:
    expression = function_resource()["service_config"][0]["environment_variables"]
    assert re.search(r"THREADS\s*=\s*tostring\(each\.value\.threads\)", expression)
    assert re.search(r"WORKERS\s*=\s*tostring\(each\.value\.workers\)", expression)
    assert re.search(r"\bworkers = optional\(number, 1\)", variables()["functions"]["type"])


@pytest.mark.parametrize("name", EXPECTED_SIZING)
def test_default_threads_and_workers_follow_the_declared_rule(name: str) -> None:
    entry = function_defaults()[name]
    cpus = int(float(entry["available_cpu"]))
    declared = declaration(entry["entry_point"])
    assert entry["threads"] == declared.threads.for_cpus(cpus)
    assert entry["threads"] <= entry["max_instance_request_concurrency"]
    assert entry["workers"] == declared.workers.for_cpus(cpus)


def test_model_uris_pin_version_folders_in_the_model_bucket() -> None:
    uri = local("model_uri")
    assert "for name, f in var.functions" in uri
    pinned = '"gs://${google_storage_bucket.models.name}/${f.model}/${local.model_version[name]}"'
    assert pinned in uri
    version = local("model_version")
    assert "coalesce(f.model_version, lookup(var.model_versions, f.model" in version
    assert "model_version = optional(string)" in variables()["functions"]["type"]
    assert variables()["model_versions"]["type"] == "${map(string)}"
    preconditions = function_resource()["lifecycle"][0]["precondition"]
    conditions = [p["condition"] for p in preconditions]
    assert "${local.model_version[each.key] != null}" in conditions, (
        "a function whose model has no version must stop the plan"
    )


def test_model_versions_accept_version_folders_only() -> None:
    versions = validation_regex("model_versions", "values(var.model_versions)")
    assert versions.fullmatch(VERSION_EXAMPLE)
    for bad in ("LATEST", "2026-11-25", "20261125T120000", "../20261125T120000Z", ""):
        assert not versions.fullmatch(bad), bad
    folders = validation_regex("model_versions", "keys(var.model_versions)")
    model = validation_regex("functions", "f.model))")
    assert folders.pattern == model.pattern, "one rule for model folder names"
    for good in ("mpg", "image", "churn_v2", "house-prices"):
        assert model.fullmatch(good), good
    for bad in ("", "..", "a/b", "Mpg", "-mpg", "mpg/", "a b"):
        assert not model.fullmatch(bad), bad
    pinned = validation_regex("functions", "f.model_version")
    assert pinned.pattern == versions.pattern


def test_models_are_named_only_in_the_map_of_functions() -> None:
    """A new function is one map entry: no list of models or model variables elsewhere."""
    conditions = " ".join(v["condition"] for v in variables()["functions"]["validation"])
    assert '["mpg", "image"]' not in conditions
    code = "".join(re.sub(r"<<-EOT.*?EOT", "", path.read_text(), flags=re.DOTALL)
                   for path in TF_FILES)
    for function in FUNCTIONS:
        assert code.count(f'"{function.model_variable}"') == 1, function.model_variable
    for stale in ("mpg_model_version", "image_model_version", "model_environment"):
        assert stale not in code, stale


def test_environment_may_not_override_what_terraform_sets() -> None:
    (condition,) = [v["condition"] for v in variables()["functions"]["validation"]
                    if "keys(f.environment)" in v["condition"]]
    assert '["THREADS", "WORKERS", f.model_variable, "GOOGLE_CLOUD_PROJECT"]' in condition
    model_variable = validation_regex("functions", "f.model_variable))")
    for function in FUNCTIONS:
        assert model_variable.fullmatch(function.model_variable), function.name
    assert not model_variable.fullmatch("MPG_MODEL")


def test_common_environment() -> None:
    common = local("common_environment")
    assert unquote(common["MODEL_CACHE_DIR"]) == "/tmp/model-cache"
    assert common["LOG_LEVEL"] == "${var.log_level}"
    assert local("task_environment")["tabular"]["OUT_OF_RANGE"] == "${var.out_of_range}"
    assert unquote(variables()["out_of_range"]["default"]) == "reject"
    assert common["GOOGLE_CLOUD_PROJECT"] == "${var.project_id}"
    assert "var.cors_origins" in common["CORS_ORIGINS"]
    assert variables()["cors_origins"]["default"] == []
    assert "local.common_environment" in function_resource()["service_config"][0][
        "environment_variables"]


# --- the source archive --------------------------------------------------------------------------


def test_archive_is_functions_without_tests_or_caches() -> None:
    archive = typed("data", "archive_file")["functions"]
    assert unquote(archive["source_dir"]).endswith("/../functions")
    excludes = [unquote(pattern) for pattern in archive["excludes"]]
    for path in ("__pycache__", "modelserve/__pycache__", "tests", ".pytest_cache",
                 "__pycache__/main.cpython-312.pyc", "modelserve/__pycache__/config.pyc",
                 "main.pyc", "tests/test_main.py", "modelserve/tests/conftest.py",
                 "modelserve/test_config.py", ".pytest_cache/v/cache/nodeids",
                 ".ruff_cache/content", ".mypy_cache/3.12/main.json", "conftest.py"):
        assert not archived(path, excludes), f"{path} would be deployed"
    for path in ("main.py", "requirements.txt", "modelserve/config.py", "modelserve/__init__.py"):
        assert archived(path, excludes), f"{path} would be missing from the deployment"
    for file in FUNCTIONS_DIR.rglob("*"):
        relative = file.relative_to(FUNCTIONS_DIR).as_posix()
        if file.is_file() and archived(relative, excludes):
            assert "__pycache__" not in relative and "/tests/" not in f"/{relative}", relative


def test_source_object_is_named_by_content_hash() -> None:
    source = typed("resource", "google_storage_bucket_object")["source"]
    assert re.search(r"\$\{data\.archive_file\.functions\.output_(sha256|md5|sha|base64sha256)\}",
                     unquote(source["name"]))
    assert source["source"] == "${data.archive_file.functions.output_path}"
    storage = function_resource()["build_config"][0]["source"][0]["storage_source"][0]
    assert storage["object"] == "${google_storage_bucket_object.source.name}"


# --- buckets -------------------------------------------------------------------------------------


def test_buckets_are_hardened() -> None:
    buckets = typed("resource", "google_storage_bucket")
    assert {"models", "source", "logs"} <= set(buckets)
    for name, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert unquote(bucket["public_access_prevention"]) == "enforced", name
        assert bucket["versioning"][0]["enabled"] is True, name
        assert bucket.get("soft_delete_policy"), name
        if name != "logs":
            assert bucket["logging"][0]["log_bucket"] == "${google_storage_bucket.logs.name}", name
    encryption = buckets["models"]["dynamic"][0]
    assert [unquote(key) for key in encryption if not key.startswith("__")] == ["encryption"]
    assert "var.kms_key_name" in encryption['"encryption"']["for_each"]
    assert variables()["kms_key_name"]["default"] is None


# --- identities and access -----------------------------------------------------------------------


def test_each_function_has_its_own_service_account_with_read_on_the_model_bucket_only() -> None:
    accounts = typed("resource", "google_service_account")["function"]
    assert accounts["for_each"] == "${var.functions}"
    service = function_resource()["service_config"][0]
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    reader = typed("resource", "google_storage_bucket_iam_member")["model_reader"]
    assert reader["for_each"] == "${var.functions}"
    assert unquote(reader["role"]) == "roles/storage.objectViewer"
    assert reader["bucket"] == "${google_storage_bucket.models.name}"
    assert "google_service_account.function[each.key]" in unquote(reader["member"])
    grants = [
        (kind, name)
        for block in config()["resource"]
        for kind, named in block.items()
        for name, body in named.items()
        if "iam" in unquote(kind) and "google_service_account.function" in json.dumps(body)
    ]
    assert [(unquote(kind), unquote(name)) for kind, name in grants] == [
        ("google_storage_bucket_iam_member", "model_reader")
    ], "the runtime accounts get objectViewer on the model bucket and nothing else"


def test_no_project_level_iam() -> None:
    project_level = {kind for kind in resource_types()
                     if re.match(r"google_(project|folder|organization)_iam_", kind)}
    assert not project_level, f"IAM must be granted on resources, not projects: {project_level}"


def test_no_default_compute_service_account() -> None:
    build = function_resource()["build_config"][0]
    assert "var.build_service_account_email" in unquote(build["service_account"])
    (validation,) = variables()["build_service_account_email"]["validation"]
    pattern = re.search(r'regex\(\\?"((?:[^"\\]|\\.)*?)\\?",', validation["condition"])
    assert pattern, validation["condition"]
    accepted = re.compile(hcl_string(pattern.group(1).replace('\\"', '"')))
    assert accepted.search("fn-builder@my-project.iam.gserviceaccount.com")
    assert not accepted.search("123456789012-compute@developer.gserviceaccount.com")
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if "compute@developer.gserviceaccount.com" in line:
                assert "error_message" in line, f"{path.name}: {line.strip()}"


def test_invocation_is_private_by_default() -> None:
    members = typed("resource", "google_cloud_run_v2_service_iam_member")
    invoker = members["invoker"]
    assert unquote(invoker["role"]) == "roles/run.invoker"
    assert "var.invoker_members" in invoker["for_each"]
    assert "service_config[0].service" in invoker["name"]
    assert variables()["invoker_members"]["default"] == []
    public = members["public"]
    assert unquote(public["member"]) == "allUsers"
    assert "var.public_access" in public["for_each"] and "if public" in public["for_each"]
    defaults = variables()["public_access"]["default"]
    flags = {unquote(name): value for name, value in defaults.items()}
    assert set(flags) == set(function_defaults())
    assert all(value is False for value in flags.values()), "public invocation must default to off"
    for path in TF_FILES:
        text = path.read_text()
        assert text.count('"allUsers"') == (1 if path.name == "iam.tf" else 0), path.name
        assert "allAuthenticatedUsers" not in text, path.name


def test_required_apis_stay_enabled_on_destroy() -> None:
    services = typed("resource", "google_project_service")["enabled"]
    assert services["disable_on_destroy"] is False
    enabled = {unquote(service) for service in local("services")}
    assert {"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
            "artifactregistry.googleapis.com", "storage.googleapis.com"} <= enabled


def test_outputs() -> None:
    outputs = labelled("output")
    for name in ("function_urls", "predict_mpg_url", "classify_image_url", "model_bucket",
                 "source_bucket", "log_bucket", "model_uris"):
        assert name in outputs, name
        assert unquote(outputs[name].get("description", "")), name
    for name in ("predict_mpg_url", "classify_image_url"):
        key = name.removesuffix("_url").replace("_", "-")
        assert f'this[\\"{key}\\"]' in json.dumps(outputs[name]["value"]), name
    assert outputs["model_uris"]["value"] == "${local.model_uri}"
