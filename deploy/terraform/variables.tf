variable "name" {
  description = "Prefix of every resource: cluster, node resource group, identity."
  type        = string
  default     = "ragpipe"
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "resource_group_name" {
  type    = string
  default = "ragpipe"
}

variable "kubernetes_version" {
  description = "AKS version; null takes the region's default."
  type        = string
  default     = null
}

variable "system_vm_size" {
  type    = string
  default = "Standard_D4s_v5"
}

variable "cpu_vm_size" {
  description = "CPU pool and spot pool: parsing, cleaning, screening, chunking, upserts, run workers."
  type        = string
  default     = "Standard_D8s_v5"
}

variable "cpu_max_count" {
  type    = number
  default = 6
}

variable "spot_max_count" {
  description = "Spot nodes that take the overflow of a sharded backfill (evictable)."
  type        = number
  default     = 10
}

variable "gpu_vm_size" {
  description = "One NVIDIA T4 per node; the embedding step requests one GPU."
  type        = string
  default     = "Standard_NC4as_T4_v3"
}

variable "gpu_max_count" {
  description = "At most one embedding step per GPU: as many as RAGPIPE_SHARDS lets a backfill run at once."
  type        = number
  default     = 4
}

variable "storage_account_name" {
  description = "ADLS Gen2 account of RAGPIPE_DATA_URL (globally unique, 3-24 lowercase letters and digits)."
  type        = string
  default     = "ragpipedata"
}

variable "data_container" {
  type    = string
  default = "ragpipe-data"
}

variable "namespace" {
  description = "Namespace of the Dagster release (deploy/helm/values.yaml runLauncher jobNamespace)."
  type        = string
  default     = "ragpipe"
}

variable "service_account" {
  description = "The Kubernetes service account the federated credential trusts (values.yaml global.serviceAccountName)."
  type        = string
  default     = "ragpipe"
}
