//! Azure Resource Manager reads: resources in a group, a resource by id, child lists, role assignments,
//! and Resource Graph queries.

use super::credential::ARM_SCOPE;
use super::error::Result;
use super::wire::{
    GenericResource, QueryRequest, QueryRequestOptions, QueryResponse, RoleAssignment,
    RoleDefinition,
};
use super::AzureClient;
use serde::de::DeserializeOwned;

pub const RESOURCES_API: &str = "2025-04-01";
pub const RESOURCE_GRAPH_API: &str = "2024-04-01";
pub const AUTHORIZATION_API: &str = "2022-04-01";
pub const STORAGE_API: &str = "2025-06-01";

impl AzureClient {
    fn arm_url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("{}{}", self.endpoints().arm, path))
            .expect("ARM base URL and path form a URL");
        url.query_pairs_mut().extend_pairs(query);
        url.to_string()
    }

    /// Every resource in a resource group, with provisioning state and created/changed times.
    pub async fn list_resources_in_group(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Vec<GenericResource>> {
        let url = self.arm_url(
            &format!("/subscriptions/{subscription}/resourceGroups/{resource_group}/resources"),
            &[
                ("api-version", RESOURCES_API),
                ("$expand", "provisioningState,createdTime,changedTime"),
            ],
        );
        self.list_all(&url, ARM_SCOPE).await
    }

    /// One resource by id, with the api-version its provider supports.
    pub async fn get_resource(&self, id: &str, api_version: &str) -> Result<GenericResource> {
        self.get_json(
            &self.arm_url(id, &[("api-version", api_version)]),
            ARM_SCOPE,
        )
        .await
    }

    /// Every item of a child collection (`{id}/blobServices/default/containers`, `…/runbooks`).
    pub async fn list_children<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<Vec<T>> {
        self.list_all(
            &self.arm_url(path, &[("api-version", api_version)]),
            ARM_SCOPE,
        )
        .await
    }

    /// Role assignments of `principal_id` visible at `scope` (at, above and below it).
    pub async fn role_assignments_for(
        &self,
        scope: &str,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignment>> {
        let filter = format!("principalId eq '{principal_id}'");
        let url = self.arm_url(
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
            &[("api-version", AUTHORIZATION_API), ("$filter", &filter)],
        );
        self.list_all(&url, ARM_SCOPE).await
    }

    pub async fn role_definition(&self, id: &str) -> Result<RoleDefinition> {
        self.get_json(
            &self.arm_url(id, &[("api-version", AUTHORIZATION_API)]),
            ARM_SCOPE,
        )
        .await
    }

    /// Runs a Resource Graph query and returns every row, paging with `$skipToken`.
    pub async fn resource_graph(
        &self,
        subscriptions: &[String],
        query: &str,
    ) -> Result<Vec<serde_json::Value>> {
        self.resource_graph_paged(subscriptions, query, 1000).await
    }

    /// [`Self::resource_graph`] with `top` rows a page (1..=1000).
    pub async fn resource_graph_paged(
        &self,
        subscriptions: &[String],
        query: &str,
        top: i64,
    ) -> Result<Vec<serde_json::Value>> {
        let url = self.arm_url(
            "/providers/Microsoft.ResourceGraph/resources",
            &[("api-version", RESOURCE_GRAPH_API)],
        );
        let auth = self.bearer(ARM_SCOPE).await?;
        let mut rows = Vec::new();
        let mut skip_token: Option<String> = None;
        loop {
            let body = QueryRequest {
                subscriptions: subscriptions.to_vec(),
                query: query.to_string(),
                options: Some(QueryRequestOptions {
                    top: Some(top),
                    skip: None,
                    skip_token: skip_token.clone(),
                    result_format: Some("objectArray".into()),
                }),
            };
            // A query changes nothing, so it is retried like a GET.
            let response = self
                .send_read(&url, || {
                    self.http()
                        .post(&url)
                        .header("Authorization", &auth)
                        .json(&body)
                })
                .await?;
            let page: QueryResponse = Self::json(&url, response).await?;
            if let serde_json::Value::Array(data) = page.data {
                rows.extend(data);
            }
            match page.skip_token {
                Some(t) if !t.is_empty() => skip_token = Some(t),
                _ => return Ok(rows),
            }
        }
    }
}
