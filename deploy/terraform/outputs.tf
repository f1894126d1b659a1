output "cluster_name" {
  value = azurerm_kubernetes_cluster.this.name
}

output "oidc_issuer_url" {
  value = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

# deploy/helm/values.yaml serviceAccount.annotations["azure.workload.identity/client-id"]
output "workload_identity_client_id" {
  value = azurerm_user_assigned_identity.ragpipe.client_id
}

# Grant this principal roles on the source container and the search service (docs/operations.md).
output "workload_identity_principal_id" {
  value = azurerm_user_assigned_identity.ragpipe.principal_id
}

# RAGPIPE_DATA_URL
output "data_url" {
  value = "abfs://${azurerm_storage_container.data.name}@${azurerm_storage_account.data.name}.dfs.core.windows.net/state"
}
