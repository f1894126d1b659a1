# AKS for ragpipe: a system pool, a CPU pool, a T4 GPU pool behind a taint, a spot pool for
# the overflow of backfills; Workload Identity for the Dagster pods; the ADLS Gen2 container
# of RAGPIPE_DATA_URL. Node labels and the GPU taint are the ones assets/placement.py selects
# and tolerates (POOL_LABEL "ragpipe/pool", GPU_TAINT_KEY "ragpipe/gpu").

locals {
  pool_label = "ragpipe/pool"
  gpu_taint  = "ragpipe/gpu=true:NoSchedule"
  # AKS puts this taint on every spot node; declaring it keeps plans clean.
  spot_taint = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
}

resource "azurerm_kubernetes_cluster" "this" {
  name                      = var.name
  location                  = azurerm_resource_group.this.location
  resource_group_name       = azurerm_resource_group.this.name
  dns_prefix                = var.name
  kubernetes_version        = var.kubernetes_version
  oidc_issuer_enabled       = true
  workload_identity_enabled = true

  # System pods only (CriticalAddonsOnly taint): Dagster's pods go to the CPU pool.
  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_vm_size
    only_critical_addons_enabled = true
    auto_scaling_enabled         = true
    min_count                    = 1
    max_count                    = 3
    temporary_name_for_rotation  = "systemtmp"
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
  }
}

# Webserver, daemon, code server, run workers and every CPU step.
resource "azurerm_kubernetes_cluster_node_pool" "cpu" {
  name                  = "cpu"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  vm_size               = var.cpu_vm_size
  auto_scaling_enabled  = true
  min_count             = 1
  max_count             = var.cpu_max_count
  node_labels           = { (local.pool_label) = "cpu" }
}

# The embedding step only: it selects ragpipe/pool=gpu and tolerates the taint. The NVIDIA GPU
# Operator installs the driver (>= 580 for the CUDA 13 image) and the device plugin that
# advertises nvidia.com/gpu, so AKS installs no driver here (docs/operations.md).
resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  name                  = "gpu"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  vm_size               = var.gpu_vm_size
  gpu_driver            = "None"
  auto_scaling_enabled  = true
  min_count             = 0
  max_count             = var.gpu_max_count
  node_labels           = { (local.pool_label) = "gpu" }
  node_taints           = [local.gpu_taint]
}

# Evictable CPU capacity: CPU pods tolerate the spot taint and prefer regular nodes
# (deploy/helm/values.yaml runK8sConfig), so spot nodes appear when a backfill outgrows the CPU
# pool and go when it ends.
resource "azurerm_kubernetes_cluster_node_pool" "spot" {
  name                  = "spot"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.this.id
  vm_size               = var.cpu_vm_size
  priority              = "Spot"
  eviction_policy       = "Delete"
  spot_max_price        = -1
  auto_scaling_enabled  = true
  min_count             = 0
  max_count             = var.spot_max_count
  node_labels = {
    (local.pool_label)                      = "cpu"
    "kubernetes.azure.com/scalesetpriority" = "spot"
  }
  node_taints = [local.spot_taint]
}

# The identity of the code server, runs and steps (Workload Identity): Dagster's service account
# in the release namespace exchanges its token for this identity's.
resource "azurerm_user_assigned_identity" "ragpipe" {
  name                = "${var.name}-workload"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
}

resource "azurerm_federated_identity_credential" "dagster" {
  name                = "${var.name}-dagster"
  resource_group_name = azurerm_resource_group.this.name
  parent_id           = azurerm_user_assigned_identity.ragpipe.id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${var.namespace}:${var.service_account}"
}

# RAGPIPE_DATA_URL: staged batches, step outputs, evaluation results. Hierarchical namespace
# for abfs://; no shared keys, the identity's role is the only way in.
resource "azurerm_storage_account" "data" {
  name                            = var.storage_account_name
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  is_hns_enabled                  = true
  min_tls_version                 = "TLS1_2"
  shared_access_key_enabled       = false
  allow_nested_items_to_be_public = false
}

resource "azurerm_storage_container" "data" {
  name                  = var.data_container
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

resource "azurerm_role_assignment" "data" {
  scope                = "${azurerm_storage_account.data.id}/blobServices/default/containers/${azurerm_storage_container.data.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.ragpipe.principal_id
  principal_type       = "ServicePrincipal"
}
