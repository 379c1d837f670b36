# Identities and grants. Every grant names one resource (a bucket, a repository, a Cloud Run
# service, a KMS key); nothing here is granted on the project. The project-level roles that the
# platform itself requires (Cloud Build's deployer, the build account's log writing) are set up
# once outside Terraform: see terraform/README.md, "Bootstrap".

# One runtime identity per function, so neither runs as the default compute service account.
resource "google_service_account" "function" {
  for_each = var.functions

  account_id   = "${each.key}-fn"
  display_name = "${each.key} function runtime"
  description  = "Runtime identity of the ${each.key} Cloud Run function: reads the model bucket and nothing else."

  depends_on = [google_project_service.enabled]
}

# Read-only access to the models, on the model bucket only.
resource "google_storage_bucket_iam_member" "model_reader" {
  for_each = var.functions

  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The build account pushes the images it builds into this repository only. (It reads the
# source through the platform's staging bucket, a project-level grant made by the bootstrap.)
resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = google_artifact_registry_repository.functions.project
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${var.build_service_account_email}"
}

# Cloud Storage's usage-log writer may create objects in the log bucket.
resource "google_storage_bucket_iam_member" "log_writer" {
  bucket = google_storage_bucket.logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

# With a customer-managed key, the project's Cloud Storage service agent must use the key.
data "google_storage_project_service_account" "gcs" {
  count = var.kms_key_name == null ? 0 : 1
}

resource "google_kms_crypto_key_iam_member" "model_bucket_encrypter" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}"
}

# Invocation is private: roles/run.invoker on each function's Cloud Run service, for the named
# members only.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = {
    for pair in setproduct(keys(var.functions), var.invoker_members) :
    "${pair[0]} ${pair[1]}" => { function = pair[0], member = pair[1] }
  }

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.value.function].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value.member
}

# Opt-in, per function: anyone may call (public_access[name] = true; every flag defaults to
# false, so nothing is created unless an operator opts in).
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = toset([for name, public in var.public_access : name if public])

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# BigQuery remote functions (bigquery.tf): the connection's own service account may invoke the
# chosen functions' Cloud Run services, and no other.
resource "google_cloud_run_v2_service_iam_member" "bigquery" {
  for_each = local.remote_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_bigquery_connection.remote_functions[0].cloud_resource[0].service_account_id}"
}

# Who may run the remote functions: roles/bigquery.connectionUser on the connection only.
# (Reading the routines themselves is granted on their dataset, by its owner.)
resource "google_bigquery_connection_iam_member" "users" {
  for_each = toset(var.bigquery_remote_functions == null ? [] : var.bigquery_remote_functions.users)

  project       = google_bigquery_connection.remote_functions[0].project
  location      = google_bigquery_connection.remote_functions[0].location
  connection_id = google_bigquery_connection.remote_functions[0].connection_id
  role          = "roles/bigquery.connectionUser"
  member        = each.value
}
