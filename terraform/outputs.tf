output "function_urls" {
  description = "HTTPS URL of each function's Cloud Run service, by function name (also the identity-token audience)."
  value       = { for name, fn in google_cloudfunctions2_function.this : name => fn.service_config[0].uri }
}

output "predict_mpg_url" {
  description = "URL of the predict-mpg function (cloudbuild.yaml's smoke test reads it with terraform output -raw)."
  value       = try(google_cloudfunctions2_function.this["predict-mpg"].service_config[0].uri, null)
}

output "classify_image_url" {
  description = "URL of the classify-image function (cloudbuild.yaml's smoke test reads it with terraform output -raw)."
  value       = try(google_cloudfunctions2_function.this["classify-image"].service_config[0].uri, null)
}

output "model_bucket" {
  description = "Name of the model bucket (publish with python -m train.publish --to gs://NAME)."
  value       = google_storage_bucket.models.name
}

output "source_bucket" {
  description = "Name of the bucket holding the functions' source archives."
  value       = google_storage_bucket.source.name
}

output "log_bucket" {
  description = "Name of the bucket receiving the model and source buckets' access logs."
  value       = google_storage_bucket.logs.name
}

output "model_uris" {
  description = "The model URI each function serves, pinned to a version folder, by function name."
  value       = local.model_uri
}

output "function_service_accounts" {
  description = "Runtime service account of each function, by function name."
  value       = { for name, account in google_service_account.function : name => account.email }
}

output "ingress" {
  description = "The functions' ingress setting (the smoke test runs only with ALLOW_ALL)."
  value       = var.ingress
}

output "bigquery_routines" {
  description = "The BigQuery remote functions by function name, as SQL names them (project.dataset.routine); empty unless bigquery_remote_functions is set."
  value       = { for name, routine in google_bigquery_routine.remote : name => "${routine.project}.${routine.dataset_id}.${routine.routine_id}" }
}

output "bigquery_connection" {
  description = "The BigQuery connection of the remote functions (projects/P/locations/L/connections/C) and its service account; null unless bigquery_remote_functions is set."
  value = var.bigquery_remote_functions == null ? null : {
    name            = google_bigquery_connection.remote_functions[0].name
    service_account = google_bigquery_connection.remote_functions[0].cloud_resource[0].service_account_id
  }
}
