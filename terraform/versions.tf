terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.5" # 2.5 added glob patterns (**) to archive_file excludes
    }
  }

  # Settings come from `terraform init -backend-config=bucket=... -backend-config=prefix=...`
  # (cloudbuild.yaml passes _TF_STATE_BUCKET and _TF_STATE_PREFIX).
  backend "gcs" {}
}
