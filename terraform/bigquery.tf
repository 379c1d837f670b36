# BigQuery remote functions, off unless var.bigquery_remote_functions is set: SQL such as
#   SELECT mydataset.predict_mpg(cylinders, displacement, ...) FROM cars
# calls a tabular function's Cloud Run service in batches of rows. BigQuery calls through a
# connection whose own service account holds roles/run.invoker on the chosen services only
# (iam.tf). The routines go into an existing dataset: its data, access and encryption belong to
# whoever owns the tables, so Terraform neither creates nor destroys it.

locals {
  # Function name -> its remote-function settings; empty when the feature is off.
  remote_functions = var.bigquery_remote_functions == null ? {} : var.bigquery_remote_functions.functions

  # A manifest feature's type (modelserve.schema) -> the SQL type of its argument.
  sql_types = {
    integer = "INT64"
    number  = "FLOAT64"
  }
}

resource "google_bigquery_connection" "remote_functions" {
  count = var.bigquery_remote_functions == null ? 0 : 1

  connection_id = var.bigquery_remote_functions.connection_id
  location      = var.bigquery_remote_functions.location
  friendly_name = "Keras functions"
  description   = "BigQuery remote functions calling the Cloud Run functions of this deployment."

  # BigQuery creates the connection's own service account (cloud_resource[0].service_account_id).
  cloud_resource {}

  lifecycle {
    # Checked before the grants and routines that name these functions are planned.
    precondition {
      condition     = alltrue([for name in keys(local.remote_functions) : contains(keys(var.functions), name)])
      error_message = "Every key of bigquery_remote_functions.functions must name a function in var.functions."
    }
    precondition {
      condition     = alltrue([for name in keys(local.remote_functions) : try(var.functions[name].task, "") == "tabular"])
      error_message = "BigQuery remote functions call tabular functions only (task = \"tabular\"): one row's features in, one value out."
    }
  }

  depends_on = [google_project_service.enabled]
}

# One SQL function per chosen function: the model's features in manifest order as separate
# arguments, one value back per row. BigQuery posts {"requestId", "caller", "sessionUser",
# "userDefinedContext", "calls": [[...], ...]} and expects {"replies": [...]} or
# {"errorMessage": "..."}.
resource "google_bigquery_routine" "remote" {
  for_each = local.remote_functions

  dataset_id      = var.bigquery_remote_functions.dataset_id
  routine_id      = coalesce(each.value.routine_id, replace(each.key, "-", "_"))
  routine_type    = "SCALAR_FUNCTION"
  definition_body = "" # a remote function has no body; language stays unset
  description     = "Remote function: the ${each.key} Cloud Run function (model ${var.functions[each.key].model})."
  return_type     = jsonencode({ typeKind = each.value.return_type })

  dynamic "arguments" {
    for_each = each.value.arguments
    content {
      name      = arguments.value.name
      data_type = jsonencode({ typeKind = local.sql_types[arguments.value.type] })
    }
  }

  remote_function_options {
    endpoint             = "${google_cloudfunctions2_function.this[each.key].service_config[0].uri}${each.value.endpoint_path}"
    connection           = google_bigquery_connection.remote_functions[0].name
    max_batching_rows    = tostring(each.value.max_batching_rows)
    user_defined_context = each.value.user_defined_context
  }

  # A routine that exists before its connection may invoke would fail its first queries.
  depends_on = [google_cloud_run_v2_service_iam_member.bigquery]
}
