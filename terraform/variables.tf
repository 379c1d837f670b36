# Inputs. Every variable is typed and described; values that can be listed are validated.
# Validations only look at their own variable (Terraform >= 1.5); rules that span two
# variables are lifecycle preconditions in main.tf.

variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts the buckets and the functions."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 characters: lowercase letters, digits, hyphens), not a project number or name."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the model bucket and the image repository (one region keeps model downloads in-region)."
  default     = "us-central1"

  validation {
    condition = contains([
      "africa-south1",
      "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
      "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
      "australia-southeast1", "australia-southeast2",
      "europe-central2", "europe-north1", "europe-southwest1", "europe-west1", "europe-west2",
      "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9",
      "europe-west10", "europe-west12",
      "me-central1", "me-central2", "me-west1",
      "northamerica-northeast1", "northamerica-northeast2",
      "southamerica-east1", "southamerica-west1",
      "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
      "us-west1", "us-west2", "us-west3", "us-west4",
    ], var.region)
    error_message = "region must be a Cloud Run functions region, e.g. us-central1 or europe-west1."
  }
}

variable "model_bucket_name" {
  type        = string
  description = "Name of the model bucket (globally unique). The source and access-log buckets are named after it with -source and -logs."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,48}[a-z0-9]$", var.model_bucket_name)) && !can(regex("goog", var.model_bucket_name))
    error_message = "model_bucket_name must be 3-50 characters of lowercase letters, digits, hyphens and underscores (no dots, no \"goog\"), leaving room for the -source and -logs suffixes."
  }
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the model bucket's default encryption; null keeps Google-managed keys. The key must be in the bucket's region."
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be null or projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY."
  }
}

variable "soft_delete_retention_days" {
  type        = number
  description = "Days that deleted or overwritten objects in the model bucket stay recoverable (soft delete)."
  default     = 7

  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90 && floor(var.soft_delete_retention_days) == var.soft_delete_retention_days
    error_message = "soft_delete_retention_days must be a whole number of days from 7 to 90."
  }
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days a replaced (noncurrent) object version is kept in the model and source buckets before deletion."
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && var.noncurrent_version_retention_days <= 3650 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number from 1 to 3650."
  }
}

variable "access_log_retention_days" {
  type        = number
  description = "Days the access logs of the model and source buckets are kept in the log bucket."
  default     = 90

  validation {
    condition     = var.access_log_retention_days >= 1 && var.access_log_retention_days <= 3650 && floor(var.access_log_retention_days) == var.access_log_retention_days
    error_message = "access_log_retention_days must be a whole number from 1 to 3650."
  }
}

variable "model_versions" {
  type        = map(string)
  description = "Version folder to serve, by model folder in the model bucket, e.g. { mpg = \"20261125T120000Z\", image = \"20261125T120000Z\" } (UTC export time). A function serving model M gets gs://<model bucket>/M/<version> in its model_variable, pinned: a LATEST moved in the bucket changes nothing until the next apply. functions[name].model_version overrides the version for one function."

  validation {
    condition     = alltrue([for model in keys(var.model_versions) : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", model))])
    error_message = "Each key of model_versions must be a model folder name: 1-63 lowercase letters, digits, hyphens and underscores, starting with a letter or digit."
  }
  validation {
    condition     = alltrue([for version in values(var.model_versions) : can(regex("^[0-9]{8}T[0-9]{6}Z$", version))])
    error_message = "Each value of model_versions must be a version folder name such as 20261125T120000Z (see model_bucket/README.md)."
  }
}

variable "functions" {
  type = map(object({
    entry_point                      = string
    task                             = string
    model                            = string
    model_variable                   = string
    model_version                    = optional(string)
    available_memory                 = string
    available_cpu                    = string
    max_instance_request_concurrency = number
    threads                          = number
    workers                          = optional(number, 1)
    min_instance_count               = number
    max_instance_count               = number
    timeout_seconds                  = number
    environment                      = optional(map(string), {})
  }))
  description = <<-EOT
    The functions to deploy, by function name; each entry follows one declaration in
    functions/modelserve/declarations.py (a test holds them together). One source archive is
    deployed once per entry. entry_point: the declared function (functions/main.py binds one per
    declaration); task: the declaration's task kind, "tabular" or "image" (tabular functions get
    OUT_OF_RANGE); model: the model's folder in the model bucket; model_variable: the environment
    variable the declaration reads the model URI from (e.g. MPG_MODEL_URI); model_version:
    optional, pins this function to a version folder instead of model_versions[model];
    available_memory / available_cpu: the instance size; max_instance_request_concurrency:
    requests Cloud Run sends one instance at once; threads: functions-framework's gunicorn
    threads (THREADS), at most the concurrency: requests beyond it wait in gunicorn's queue
    instead of contending for the GIL (benchmarks/RESULTS.md; the declaration's rule:
    predict_mpg 1, classify_image 2 per vCPU); workers: gunicorn worker processes (WORKERS;
    the declaration's rule: predict_mpg 1 per vCPU, classify_image 1, each worker holding its
    own copy of the model); min/max_instance_count: autoscaling bounds;
    timeout_seconds: request timeout; environment: extra environment variables for this function.
    Sizes: LiteRT keeps predict-mpg near 110 MB resident (target peak <= 150 MB, so 256Mi) and
    classify-image below 250 MB (so 512Mi).
  EOT
  default = {
    "predict-mpg" = {
      entry_point                      = "predict_mpg"
      task                             = "tabular"
      model                            = "mpg"
      model_variable                   = "MPG_MODEL_URI"
      available_memory                 = "256Mi"
      available_cpu                    = "1"
      max_instance_request_concurrency = 8
      threads                          = 1 # GIL-bound: more threads only add lock hand-offs
      workers                          = 1 # GIL-bound: one process per vCPU
      min_instance_count               = 0
      max_instance_count               = 10
      timeout_seconds                  = 60
      environment = {
        INTERPRETER_POOL_SIZE = "1" # one LiteRT interpreter per vCPU (available_cpu)
      }
    }
    "classify-image" = {
      entry_point                      = "classify_image"
      task                             = "image"
      model                            = "image"
      model_variable                   = "IMAGE_MODEL_URI"
      available_memory                 = "512Mi"
      available_cpu                    = "1"
      max_instance_request_concurrency = 4
      threads                          = 2 # 2 per vCPU: one decodes while one invokes
      workers                          = 1 # one process: its threads share the model
      min_instance_count               = 0
      max_instance_count               = 10
      timeout_seconds                  = 60
      environment = {
        INTERPRETER_POOL_SIZE = "1" # one LiteRT interpreter per vCPU (available_cpu)
      }
    }
  }

  validation {
    # Names become the function, its Cloud Run service and its service account (NAME-fn, 6-30 characters).
    condition     = length(var.functions) > 0 && alltrue([for name in keys(var.functions) : can(regex("^[a-z][-a-z0-9]{2,25}[a-z0-9]$", name))])
    error_message = "functions needs at least one entry; names must be 4-27 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", f.entry_point))])
    error_message = "Each entry_point must be a Python function name."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["tabular", "image"], f.task)])
    error_message = "Each task must be \"tabular\" or \"image\" (the declaration's task kind)."
  }
  validation {
    # A path segment in gs://<model bucket>/<model>/<version>: nothing that could climb or escape.
    condition     = alltrue([for f in values(var.functions) : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", f.model))])
    error_message = "Each model must be a model folder name: 1-63 lowercase letters, digits, hyphens and underscores, starting with a letter or digit."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Z][A-Z0-9_]*_MODEL_URI$", f.model_variable))])
    error_message = "Each model_variable must be an upper-case environment variable name ending in _MODEL_URI, as in the function's declaration."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.model_version == null || can(regex("^[0-9]{8}T[0-9]{6}Z$", f.model_version))])
    error_message = "Each model_version must be null (serve model_versions[model]) or a version folder name such as 20261125T120000Z."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["128Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi", "8Gi", "16Gi", "32Gi"], f.available_memory)])
    error_message = "Each available_memory must be one of 128Mi, 256Mi, 512Mi, 1Gi, 2Gi, 4Gi, 8Gi, 16Gi, 32Gi."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["0.083", "0.167", "0.333", "0.583", "1", "2", "4", "6", "8"], f.available_cpu)])
    error_message = "Each available_cpu must be one of 0.083, 0.167, 0.333, 0.583, 1, 2, 4, 6, 8."
  }
  validation {
    # Cloud Run: 4 CPUs need at least 2Gi, 6 and 8 CPUs at least 4Gi.
    condition = alltrue([
      for f in values(var.functions) :
      lookup({ "128Mi" = 128, "256Mi" = 256, "512Mi" = 512, "1Gi" = 1024, "2Gi" = 2048, "4Gi" = 4096, "8Gi" = 8192, "16Gi" = 16384, "32Gi" = 32768 }, f.available_memory, 0) >= lookup({ "4" = 2048, "6" = 4096, "8" = 4096 }, f.available_cpu, 0)
    ])
    error_message = "available_cpu 4 needs available_memory of at least 2Gi; 6 or 8 need at least 4Gi."
  }
  validation {
    condition = alltrue([
      for f in values(var.functions) :
      f.max_instance_request_concurrency >= 1 && f.max_instance_request_concurrency <= 1000 && floor(f.max_instance_request_concurrency) == f.max_instance_request_concurrency
    ])
    error_message = "Each max_instance_request_concurrency must be a whole number from 1 to 1000."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.threads >= 1 && f.threads <= f.max_instance_request_concurrency && floor(f.threads) == f.threads])
    error_message = "Each threads must be a whole number from 1 to max_instance_request_concurrency."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.workers >= 1 && f.workers <= f.max_instance_request_concurrency && floor(f.workers) == f.workers])
    error_message = "Each workers must be a whole number from 1 to max_instance_request_concurrency."
  }
  validation {
    # Cloud Run functions only serve concurrent requests on instances with at least one vCPU.
    condition     = alltrue([for f in values(var.functions) : f.max_instance_request_concurrency == 1 || tonumber(f.available_cpu) >= 1])
    error_message = "max_instance_request_concurrency above 1 needs available_cpu of at least 1."
  }
  validation {
    condition = alltrue([
      for f in values(var.functions) :
      f.min_instance_count >= 0 && f.max_instance_count >= 1 && f.min_instance_count <= f.max_instance_count && f.max_instance_count <= 100 && floor(f.min_instance_count) == f.min_instance_count && floor(f.max_instance_count) == f.max_instance_count
    ])
    error_message = "Instance counts must be whole numbers with 0 <= min_instance_count <= max_instance_count, 1 <= max_instance_count <= 100."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout_seconds >= 1 && f.timeout_seconds <= 3600 && floor(f.timeout_seconds) == f.timeout_seconds])
    error_message = "Each timeout_seconds must be a whole number from 1 to 3600 (the HTTP function maximum)."
  }
  validation {
    # These are set from other inputs; an override in `environment` would make them disagree.
    condition     = alltrue([for f in values(var.functions) : length(setintersection(keys(f.environment), ["THREADS", "WORKERS", f.model_variable, "GOOGLE_CLOUD_PROJECT"])) == 0])
    error_message = "environment must not set THREADS (from threads), WORKERS (from workers), the function's own model_variable (from model_versions or model_version) or GOOGLE_CLOUD_PROJECT (from project_id)."
  }
}

variable "invoker_members" {
  type        = list(string)
  description = "Principals granted roles/run.invoker on every function's Cloud Run service, e.g. \"serviceAccount:client@PROJECT.iam.gserviceaccount.com\", \"group:ml-users@example.com\". Invocation is private: nobody else may call."
  default     = []

  validation {
    condition     = alltrue([for m in var.invoker_members : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):.+$", m))])
    error_message = "Each invoker member must be user:, serviceAccount:, group:, domain:, principal: or principalSet: followed by an identity; use public_access to open a function to everyone."
  }
}

variable "public_access" {
  type        = map(bool)
  description = "Per function name: true grants roles/run.invoker to allUsers (anyone on the internet may call it, subject to ingress). Private (false) by default."
  default = {
    "predict-mpg"    = false
    "classify-image" = false
  }
}

variable "ingress" {
  type        = string
  description = <<-EOT
    Which network paths may reach the functions. ALLOW_INTERNAL_AND_GCLB (default): only
    traffic from VPC networks of this project (or its VPC Service Controls perimeter) and from
    an external Application Load Balancer, so a public front door with Cloud Armor or IAP can be
    added later while the *.run.app URLs stay closed to the internet. ALLOW_INTERNAL_ONLY also
    closes the load-balancer path. ALLOW_ALL admits the internet; IAM (invoker_members) still
    decides who may call. cloudbuild.yaml deploys with ALLOW_ALL by default so its smoke test can
    reach the URLs (see terraform/README.md).
  EOT
  default     = "ALLOW_INTERNAL_AND_GCLB"

  validation {
    condition     = contains(["ALLOW_INTERNAL_AND_GCLB", "ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.ingress)
    error_message = "ingress must be ALLOW_INTERNAL_AND_GCLB, ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "build_service_account_email" {
  type        = string
  description = "Service account that Cloud Build uses to build the function images (created once by the bootstrap in terraform/README.md). Never the default compute service account."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\\.iam\\.gserviceaccount\\.com$", var.build_service_account_email))
    error_message = "build_service_account_email must be a user-managed service account (NAME@PROJECT.iam.gserviceaccount.com), not PROJECT_NUMBER-compute@developer.gserviceaccount.com."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of the functions."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "out_of_range" {
  type        = string
  description = "OUT_OF_RANGE policy of the tabular functions (task = \"tabular\", e.g. predict-mpg): reject (400 for inputs outside the training range) or warn (predict and add a warning)."
  default     = "reject"

  validation {
    condition     = contains(["reject", "warn"], var.out_of_range)
    error_message = "out_of_range must be reject or warn."
  }
}

variable "cors_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the functions (CORS_ORIGINS), e.g. [\"https://app.example.com\"]; [\"*\"] allows any origin. Empty: no CORS headers."
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_origins : o == "*" || can(regex("^https?://[^/,*\\s]+$", o))])
    error_message = "Each CORS origin must be \"*\" or a scheme and host such as https://app.example.com (no path, no comma)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default = {
    app = "keras-functions"
  }
}

variable "bigquery_remote_functions" {
  type = object({
    dataset_id    = string
    location      = string
    connection_id = optional(string, "keras_functions")
    users         = optional(list(string), [])
    functions = map(object({
      arguments            = list(object({ name = string, type = string }))
      routine_id           = optional(string)
      return_type          = optional(string, "FLOAT64")
      max_batching_rows    = optional(number, 500)
      user_defined_context = optional(map(string), {})
      endpoint_path        = optional(string, "")
    }))
  })
  description = <<-EOT
    BigQuery remote functions: SQL calls chosen tabular functions, one row per call, batched.
    null (default): nothing is created. Otherwise: one BigQuery connection (cloud resource)
    named connection_id in `location` (US, EU or a region: the dataset's location), whose own
    service account is granted roles/run.invoker on the chosen functions' Cloud Run services
    only; and per entry of `functions` (keyed by function name, e.g. "predict-mpg") a routine
    in the EXISTING dataset dataset_id (Terraform does not create or own the dataset), named
    routine_id (default: the function name with underscores, predict_mpg). arguments: the
    model's input features in manifest order, { name, type = "integer" | "number" } (INT64 /
    FLOAT64 in SQL; cloudbuild.yaml generates them from the model's manifest.json);
    return_type: the SQL type of one reply (FLOAT64 for a regression); max_batching_rows: most
    rows BigQuery sends in one request (1-50000, default 500); user_defined_context: sent as
    userDefinedContext in every request; endpoint_path: appended to the function URL (default:
    the URL itself). users: principals granted roles/bigquery.connectionUser on the connection
    (who may run the functions; reading the routines is the dataset owner's grant).
  EOT
  default     = null

  validation {
    condition     = var.bigquery_remote_functions == null ? true : can(regex("^[A-Za-z0-9_]{1,1024}$", var.bigquery_remote_functions.dataset_id))
    error_message = "bigquery_remote_functions.dataset_id must be a dataset ID (letters, digits, underscores) of an existing dataset in this project."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : can(regex("^(US|EU|[a-z]+-[a-z]+[0-9]+)$", var.bigquery_remote_functions.location))
    error_message = "bigquery_remote_functions.location must be the dataset's BigQuery location: US, EU or a region such as us-central1."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : can(regex("^[A-Za-z0-9_]{1,64}$", var.bigquery_remote_functions.connection_id))
    error_message = "bigquery_remote_functions.connection_id must be 1-64 letters, digits and underscores."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : alltrue([for m in var.bigquery_remote_functions.users : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):.+$", m))])
    error_message = "Each of bigquery_remote_functions.users must be user:, serviceAccount:, group:, domain:, principal: or principalSet: followed by an identity."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : length(var.bigquery_remote_functions.functions) > 0 && alltrue([for name in keys(var.bigquery_remote_functions.functions) : can(regex("^[a-z][-a-z0-9]{2,25}[a-z0-9]$", name))])
    error_message = "bigquery_remote_functions.functions needs at least one entry, keyed by a function name of var.functions (e.g. predict-mpg)."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : alltrue([for f in values(var.bigquery_remote_functions.functions) : f.routine_id == null || can(regex("^[A-Za-z_][A-Za-z0-9_]{0,255}$", f.routine_id))])
    error_message = "Each routine_id must be null (the function name with underscores) or a SQL function name: letters, digits and underscores, not starting with a digit."
  }
  validation {
    # The manifest's input.features, in order: separate SQL arguments, INT64 or FLOAT64.
    condition = var.bigquery_remote_functions == null ? true : alltrue([
      for f in values(var.bigquery_remote_functions.functions) :
      length(f.arguments) > 0 && length(distinct([for a in f.arguments : lower(a.name)])) == length(f.arguments) && alltrue([
        for a in f.arguments : can(regex("^[A-Za-z_][A-Za-z0-9_]{0,127}$", a.name)) && contains(["integer", "number"], a.type)
      ])
    ])
    error_message = "Each function's arguments must be the model's features: at least one, distinct SQL names (letters, digits, underscores), type \"integer\" or \"number\"."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : alltrue([for f in values(var.bigquery_remote_functions.functions) : contains(["FLOAT64", "INT64", "STRING", "BOOL", "JSON"], f.return_type)])
    error_message = "Each return_type must be FLOAT64 (a regression), INT64, STRING, BOOL or JSON."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : alltrue([for f in values(var.bigquery_remote_functions.functions) : f.max_batching_rows >= 1 && f.max_batching_rows <= 50000 && floor(f.max_batching_rows) == f.max_batching_rows])
    error_message = "Each max_batching_rows must be a whole number from 1 to 50000."
  }
  validation {
    condition     = var.bigquery_remote_functions == null ? true : alltrue([for f in values(var.bigquery_remote_functions.functions) : can(regex("^(/[A-Za-z0-9._~-]+)*$", f.endpoint_path))])
    error_message = "Each endpoint_path must be empty or a path such as /bigquery (no query string)."
  }
}
