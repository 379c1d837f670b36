# Cloud Run functions (gen2) serving Keras models exported to .tflite, one per entry of
# var.functions, the model bucket they read, the bucket holding their source archive, and the
# bucket receiving both buckets' access logs. IAM is in iam.tf; every grant there is on a single
# resource, never on the project. BigQuery remote functions (off by default) are in bigquery.tf.

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = var.labels
}

locals {
  # The Python runtime of the functions; pyproject.toml's requires-python must allow it and
  # cloudbuild.yaml's _PYTHON_IMAGE runs the tests on the same minor version.
  runtime = "python312"

  source_bucket_name = "${var.model_bucket_name}-source"
  log_bucket_name    = "${var.model_bucket_name}-logs"

  services = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ]
  # Enabled only with var.bigquery_remote_functions.
  bigquery_services = [
    "bigquery.googleapis.com",
    "bigqueryconnection.googleapis.com",
  ]

  # Environment variables every function gets (their names are modelserve.config.COMMON_VARIABLES).
  common_environment = {
    MODEL_CACHE_DIR      = "/tmp/model-cache" # in-memory on Cloud Run: counts against available_memory
    LOG_LEVEL            = var.log_level
    CORS_ORIGINS         = join(",", var.cors_origins)
    GOOGLE_CLOUD_PROJECT = var.project_id
  }

  # Environment variables by task kind (modelserve.config.TASK_VARIABLES).
  task_environment = {
    tabular = { OUT_OF_RANGE = var.out_of_range }
    image   = {}
  }

  # The version each function serves: its own model_version, else model_versions[model]; null
  # when neither is set (the function's precondition then names the gap).
  model_version = {
    for name, f in var.functions :
    name => try(coalesce(f.model_version, lookup(var.model_versions, f.model, "")), null)
  }

  # The model a function serves, pinned to one version folder: a LATEST that moves in the bucket
  # changes nothing until the next apply, and a rollback is an apply with the older version.
  model_uri = {
    for name, f in var.functions :
    name => local.model_version[name] == null ? null : "gs://${google_storage_bucket.models.name}/${f.model}/${local.model_version[name]}"
  }
}

resource "google_project_service" "enabled" {
  for_each = toset(concat(local.services, var.bigquery_remote_functions == null ? [] : local.bigquery_services))

  service            = each.value
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------

# Receives the usage and storage logs of the model and source buckets.
resource "google_storage_bucket" "logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log bucket itself; logging its own access into itself would log the log writes.
  name                        = local.log_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 7 * 24 * 60 * 60
  }

  lifecycle_rule {
    condition {
      age = var.access_log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The models: <model>/LATEST and immutable <model>/<version>/ folders (model_bucket/README.md),
# written by `python -m train.publish`, read by the functions' own service accounts.
resource "google_storage_bucket" "models" {
  name                        = var.model_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_days * 24 * 60 * 60
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "models/"
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_kms_crypto_key_iam_member.model_bucket_encrypter,
  ]
}

# Holds the zipped functions/ folder; one object per content hash.
resource "google_storage_bucket" "source" {
  name                        = local.source_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 7 * 24 * 60 * 60
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket        = google_storage_bucket.logs.name
    log_object_prefix = "source/"
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Source archive: functions/ without tests and caches. The object name carries the archive's
# SHA-256, so a code change is a new object and a new build; an unchanged tree is a no-op.
# ---------------------------------------------------------------------------------------------

data "archive_file" "functions" {
  type             = "zip"
  source_dir       = "${path.module}/../functions"
  output_path      = "${path.module}/../build/functions-source.zip"
  output_file_mode = "0644"
  excludes = [
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.mypy_cache",
    "**/.hypothesis",
    "**/tests",
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
    "**/.venv",
    "**/.DS_Store",
  ]
}

resource "google_storage_bucket_object" "source" {
  name         = "functions-${data.archive_file.functions.output_sha256}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.functions.output_path
  content_type = "application/zip"
}

# Images built from the source; pinned here so the build account can be granted on it alone and
# old images are cleaned up (the newest five of each function are always kept).
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:The images hold only the functions' source (already in this repository) and public PyPI packages, no model data or secrets; Google-managed encryption at rest applies. The customer-managed key (kms_key_name) protects the model bucket, where the data is.
  repository_id          = "functions"
  location               = var.region
  format                 = "DOCKER"
  description            = "Container images of the Cloud Run functions built by Cloud Build."
  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# The functions: one resource, one entry per function in var.functions.
# ---------------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "this" {
  for_each = var.functions

  name        = each.key
  location    = var.region
  description = "Serves the ${each.value.model} model (entry point ${each.value.entry_point}) with LiteRT."

  build_config {
    runtime           = local.runtime
    entry_point       = each.value.entry_point
    service_account   = "projects/${var.project_id}/serviceAccounts/${var.build_service_account_email}"
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.available_memory
    available_cpu                    = each.value.available_cpu
    max_instance_request_concurrency = each.value.max_instance_request_concurrency
    min_instance_count               = each.value.min_instance_count
    max_instance_count               = each.value.max_instance_count
    timeout_seconds                  = each.value.timeout_seconds
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function[each.key].email

    # THREADS / WORKERS: functions-framework runs gunicorn with this many threads in this many
    # worker processes; requests beyond the threads queue.
    environment_variables = merge(
      local.common_environment,
      local.task_environment[each.value.task],
      each.value.environment,
      {
        (each.value.model_variable) = local.model_uri[each.key]
        THREADS                     = tostring(each.value.threads)
        WORKERS                     = tostring(each.value.workers)
      },
    )
  }

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(var.public_access) : contains(keys(var.functions), name)])
      error_message = "Every key of public_access must name a function in var.functions."
    }
    precondition {
      condition     = local.model_version[each.key] != null
      error_message = "Every function's model needs a version: set model_versions[<model>] (or the function's own model_version)."
    }
    precondition {
      condition     = each.value.max_instance_request_concurrency == 1 || tonumber(each.value.available_cpu) >= 1
      error_message = "max_instance_request_concurrency above 1 needs available_cpu of at least 1."
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_storage_bucket_iam_member.model_reader,
    google_artifact_registry_repository_iam_member.build_writer,
  ]
}
