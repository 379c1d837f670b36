"""Argument, block and attribute names in terraform/*.tf against the Google provider's schema.

No provider can be downloaded here, so `terraform validate` only runs in Cloud Build. The schema
below is vendored from the npm package @cdktf/provider-google 16.12.1 (its latest release),
generated from hashicorp/google 6.50.0; versions.tf pins ~> 7.0, which `terraform validate` in
Cloud Build checks. It lists, for each resource and block this configuration uses, every
argument the provider accepts and the computed attributes it exports. To refresh it:

    cd /tmp && npm pack @cdktf/provider-google && tar xzf cdktf-provider-google-*.tgz
    CDKTF_PROVIDER_GOOGLE=/tmp/package pytest tests/unit/test_terraform_provider_schema.py

test_vendored_schema_matches_the_package then prints the entries to paste when they differ.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_terraform import config, unquote

PACKAGE_ENV = "CDKTF_PROVIDER_GOOGLE"
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider", "dynamic"}

# type -> block path ("" is the resource itself) -> (arguments, computed attributes).
SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "google_artifact_registry_repository": {
        "": (
            "cleanup_policies cleanup_policy_dry_run description docker_config format id "
            "kms_key_name labels location maven_config mode project "
            "remote_repository_config repository_id timeouts virtual_repository_config "
            "vulnerability_scanning_config",
            "create_time name update_time",
        ),
        "cleanup_policies": (
            "action condition id most_recent_versions",
            "",
        ),
        "cleanup_policies.condition": (
            "newer_than older_than package_name_prefixes tag_prefixes tag_state "
            "version_name_prefixes",
            "",
        ),
        "cleanup_policies.most_recent_versions": (
            "keep_count package_name_prefixes",
            "",
        ),
    },
    "google_artifact_registry_repository_iam_member": {
        "": (
            "condition id location member project repository role",
            "etag",
        ),
    },
    "google_bigquery_connection": {
        "": (
            "aws azure cloud_resource cloud_spanner cloud_sql connection_id description "
            "friendly_name id kms_key_name location project spark timeouts",
            "has_credential name",
        ),
        "cloud_resource": (
            "",
            "service_account_id",
        ),
    },
    "google_bigquery_connection_iam_member": {
        "": (
            "condition connection_id id location member project role",
            "etag",
        ),
    },
    "google_bigquery_routine": {
        "": (
            "arguments data_governance_type dataset_id definition_body description "
            "determinism_level id imported_libraries language project "
            "remote_function_options return_table_type return_type routine_id "
            "routine_type security_mode spark_options timeouts",
            "creation_time last_modified_time",
        ),
        "arguments": (
            "argument_kind data_type mode name",
            "",
        ),
        "remote_function_options": (
            "connection endpoint max_batching_rows user_defined_context",
            "",
        ),
    },
    "google_cloud_run_v2_service_iam_member": {
        "": (
            "condition id location member name project role",
            "etag",
        ),
    },
    "google_cloudfunctions2_function": {
        "": (
            "build_config description event_trigger id kms_key_name labels location name "
            "project service_config timeouts",
            "environment state update_time url",
        ),
        "build_config": (
            "automatic_update_policy docker_repository entry_point environment_variables "
            "on_deploy_update_policy runtime service_account source worker_pool",
            "build",
        ),
        "build_config.source": (
            "repo_source storage_source",
            "",
        ),
        "build_config.source.storage_source": (
            "bucket generation object",
            "",
        ),
        "service_config": (
            "all_traffic_on_latest_revision available_cpu available_memory "
            "binary_authorization_policy environment_variables ingress_settings "
            "max_instance_count max_instance_request_concurrency min_instance_count "
            "secret_environment_variables secret_volumes service service_account_email "
            "timeout_seconds vpc_connector vpc_connector_egress_settings",
            "gcf_uri uri",
        ),
    },
    "google_kms_crypto_key_iam_member": {
        "": (
            "condition crypto_key_id id member role",
            "etag",
        ),
    },
    "google_project_service": {
        "": (
            "disable_dependent_services disable_on_destroy id project service timeouts",
            "",
        ),
    },
    "google_service_account": {
        "": (
            "account_id create_ignore_already_exists description disabled display_name id "
            "project timeouts",
            "email member name unique_id",
        ),
    },
    "google_storage_bucket": {
        "": (
            "autoclass cors custom_placement_config default_event_based_hold "
            "enable_object_retention encryption force_destroy hierarchical_namespace id "
            "ip_filter labels lifecycle_rule location logging name project "
            "public_access_prevention requester_pays retention_policy rpo "
            "soft_delete_policy storage_class timeouts uniform_bucket_level_access "
            "versioning website",
            "project_number self_link time_created updated url",
        ),
        "encryption": (
            "default_kms_key_name",
            "",
        ),
        "lifecycle_rule": (
            "action condition",
            "",
        ),
        "lifecycle_rule.action": (
            "storage_class type",
            "",
        ),
        "lifecycle_rule.condition": (
            "age created_before custom_time_before days_since_custom_time "
            "days_since_noncurrent_time matches_prefix matches_storage_class "
            "matches_suffix noncurrent_time_before num_newer_versions send_age_if_zero "
            "send_days_since_custom_time_if_zero send_days_since_noncurrent_time_if_zero "
            "send_num_newer_versions_if_zero with_state",
            "",
        ),
        "logging": (
            "log_bucket log_object_prefix",
            "",
        ),
        "soft_delete_policy": (
            "retention_duration_seconds",
            "effective_time",
        ),
        "versioning": (
            "enabled",
            "",
        ),
    },
    "google_storage_bucket_iam_member": {
        "": (
            "bucket condition id member role",
            "etag",
        ),
    },
    "google_storage_bucket_object": {
        "": (
            "bucket cache_control content content_disposition content_encoding "
            "content_language content_type customer_encryption deletion_policy "
            "detect_md5hash event_based_hold force_empty_content_type id kms_key_name "
            "metadata name retention source source_md5hash storage_class temporary_hold "
            "timeouts",
            "crc32c generation md5hash md5hexhash media_link output_name self_link",
        ),
    },
    "data.google_storage_project_service_account": {
        "": (
            "id project user_project",
            "email_address member",
        ),
    },
}

REFERENCE = re.compile(r"\b(data\.)?(google_[a-z0-9_]+)\.([a-z0-9_]+)((?:\[[^\]]*\])?(?:\.[a-z_]+"
                       r"(?:\[\d+\])?)*)")


def arguments(resource_type: str, path: str) -> set[str]:
    return set(SCHEMA[resource_type][path][0].split())


def readable(resource_type: str, path: str) -> set[str]:
    settable, computed = SCHEMA[resource_type][path]
    return set(settable.split()) | set(computed.split())


def blocks_in(kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource or data block; data types are prefixed data."""
    for block in config().get(kind, []):
        for block_type, named in block.items():
            for name, body in named.items():
                prefix = "data." if kind == "data" else ""
                yield prefix + unquote(block_type), unquote(name), body


def used_names(body: dict[str, Any], path: str = "") -> Iterator[tuple[str, str]]:
    """(block path, name) of every argument and block set in a body, dynamic blocks included."""
    for key, value in body.items():
        if key.startswith("__"):
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    name = unquote(label)
                    yield path, name
                    for content in spec["content"]:
                        yield from used_names(content, f"{path}.{name}".lstrip("."))
            continue
        if path == "" and key in META_ARGUMENTS:
            continue
        yield path, key
        if isinstance(value, list) and value and all(
                isinstance(item, dict) and item.get("__is_block__") for item in value):
            for item in value:
                yield from used_names(item, f"{path}.{key}".lstrip("."))


def every_resource() -> list[tuple[str, str, dict[str, Any]]]:
    return [*blocks_in("resource"), *blocks_in("data")]


def google_resources() -> list[tuple[str, str, dict[str, Any]]]:
    return [(kind, name, body) for kind, name, body in every_resource()
            if kind.removeprefix("data.").startswith("google_")]


@pytest.mark.parametrize(("resource_type", "name", "body"), google_resources(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_argument_and_block_is_in_the_provider_schema(
        resource_type: str, name: str, body: dict[str, Any]) -> None:
    assert resource_type in SCHEMA, f"{resource_type} is not in the vendored schema: add it"
    for path, argument in used_names(body):
        assert path in SCHEMA[resource_type], f"{resource_type}.{name}: block {path} not vendored"
        assert argument in arguments(resource_type, path), (
            f"{resource_type}.{name}: {path or 'the resource'} has no argument {argument!r}")


def references() -> Iterator[tuple[str, str, str]]:
    """(type, block path, attribute) of every google_* attribute read in an expression."""
    text = json.dumps(config())
    for match in REFERENCE.finditer(text):
        data, resource_type, _name, rest = match.groups()
        steps = [step for step in re.sub(r"\[[^\]]*\]", "", rest).split(".") if step]
        if not steps:
            continue  # a whole resource, e.g. in depends_on
        yield (data or "") + resource_type, ".".join(steps[:-1]), steps[-1]


def test_every_attribute_read_is_exported_by_the_provider() -> None:
    seen = set(references())
    assert ("google_cloudfunctions2_function", "service_config", "uri") in seen
    assert ("google_bigquery_connection", "cloud_resource", "service_account_id") in seen
    for resource_type, path, attribute in sorted(seen):
        assert resource_type in SCHEMA, resource_type
        assert path in SCHEMA[resource_type], f"{resource_type}: block {path} not vendored"
        assert attribute in readable(resource_type, path), (
            f"{resource_type}: {path or 'the resource'} exports no {attribute!r}")


def test_the_bigquery_resources_are_checked() -> None:
    used = {(t, p, a) for t, _, body in google_resources() for p, a in used_names(body)}
    for expected in [
        ("google_bigquery_connection", "", "cloud_resource"),
        ("google_bigquery_routine", "", "routine_type"),
        ("google_bigquery_routine", "", "definition_body"),
        ("google_bigquery_routine", "", "return_type"),
        ("google_bigquery_routine", "", "arguments"),
        ("google_bigquery_routine", "arguments", "name"),
        ("google_bigquery_routine", "arguments", "data_type"),
        ("google_bigquery_routine", "remote_function_options", "endpoint"),
        ("google_bigquery_routine", "remote_function_options", "connection"),
        ("google_bigquery_routine", "remote_function_options", "max_batching_rows"),
        ("google_bigquery_routine", "remote_function_options", "user_defined_context"),
    ]:
        assert expected in used, expected


# --- refreshing the vendored schema ----------------------------------------------------------


def package_schema(lib: Path, resource_type: str) -> dict[str, tuple[set[str], set[str]]]:
    """Every block path of one resource in the package: (arguments, computed attributes)."""
    data = resource_type.startswith("data.")
    folder = ("data-" if data else "") + resource_type.removeprefix("data.").removeprefix(
        "google_" if not data else "").replace("_", "-")
    text = (lib / folder / "index.js").read_text()
    converters = {
        match.group(1): dict(re.findall(r"\n {8}([a-z_0-9]+): (?:cdktf\.listMapper\()?(\w+)",
                                        match.group(2)))
        for match in re.finditer(r"function (\w+)ToTerraform\(struct\) \{(.*?)\n\}", text, re.S)
    }
    getters = {
        match.group(1): set(re.findall(r"get\w*Attribute\('([a-z_0-9]+)'\)", match.group(2)))
        for match in re.finditer(r"class (\w+?)(?:OutputReference)? extends cdktf\.\w+ \{(.*?)\n\}",
                                 text, re.S)
    }
    top = re.search(r"synthesizeAttributes\(\) \{\s*return \{(.*?)\n {8}\};", text, re.S)
    assert top, folder
    top_keys = dict(re.findall(r"\n {12}([a-z_0-9]+): (?:cdktf\.listMapper\()?(\w+)", top.group(1)))
    found: dict[str, tuple[set[str], set[str]]] = {}

    def walk(keys: dict[str, str], class_name: str, path: str) -> None:
        found[path] = (set(keys), getters.get(class_name, set()) - set(keys))
        for key, converter in keys.items():
            base = converter.removesuffix("ToTerraform")
            if base != converter and base in converters:
                walk(converters[base], base[0].upper() + base[1:], f"{path}.{key}".lstrip("."))

    walk(top_keys, "".join(part.capitalize() for part in folder.split("-")), "")
    return found


def test_vendored_schema_matches_the_package() -> None:
    root = os.environ.get(PACKAGE_ENV)
    if not root:
        pytest.skip(f"set {PACKAGE_ENV} to an unpacked @cdktf/provider-google to compare")
    lib = Path(root) / "lib"
    stale = {}
    for resource_type, paths in SCHEMA.items():
        package = package_schema(lib, resource_type)
        for path, (settable, computed) in paths.items():
            fresh = package.get(path)
            assert fresh, f"{resource_type}: the package has no block {path}"
            if (set(settable.split()), set(computed.split())) != fresh:
                stale[f"{resource_type} {path}"] = [" ".join(sorted(part)) for part in fresh]
    assert not stale, json.dumps(stale, indent=1)
