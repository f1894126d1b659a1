terraform {
  required_version = ">= 1.9"
  required_providers {
    # Commit the .terraform.lock.hcl that `terraform init` writes: it pins the exact build.
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.40"
    }
  }
}

provider "azurerm" {
  features {}
  # Containers are created through the management plane (storage_account_id): no account keys.
  storage_use_azuread = true
}
