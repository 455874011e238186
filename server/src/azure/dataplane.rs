//! Data-plane reads: Key Vault secret metadata (never values) and ACR repositories and tags.

use super::credential::{ACR_SCOPE, KEY_VAULT_SCOPE};
use super::error::Result;
use super::wire::{AcrAccessToken, AcrRefreshToken, Repositories, SecretItem, TagList};
use super::AzureClient;

pub const KEY_VAULT_API: &str = "7.4";

impl AzureClient {
    /// Secret names and attributes in a vault; the list call never returns values.
    pub async fn list_secrets(&self, vault: &str) -> Result<Vec<SecretItem>> {
        let url = format!(
            "{}/secrets?api-version={KEY_VAULT_API}&maxresults=25",
            self.endpoints().vault(vault)
        );
        self.list_all(&url, KEY_VAULT_SCOPE).await
    }

    /// An ACR access token for `scope` (e.g. `registry:catalog:*`), by exchanging an Entra token.
    async fn acr_token(&self, registry: &str, login_server: &str, scope: &str) -> Result<String> {
        let base = self.endpoints().registry(registry);
        let entra = self.bearer(ACR_SCOPE).await?;
        let entra = entra.trim_start_matches("Bearer ").to_string();
        let url = format!("{base}/oauth2/exchange");
        let form = [
            ("grant_type", "access_token"),
            ("service", login_server),
            ("access_token", entra.as_str()),
        ];
        let response = self
            .send_read(&url, || self.http().post(&url).form(&form))
            .await?;
        let refresh: AcrRefreshToken = Self::json(&url, response).await?;
        let url = format!("{base}/oauth2/token");
        let form = [
            ("grant_type", "refresh_token"),
            ("service", login_server),
            ("scope", scope),
            ("refresh_token", refresh.refresh_token.as_str()),
        ];
        let response = self
            .send_read(&url, || self.http().post(&url).form(&form))
            .await?;
        let access: AcrAccessToken = Self::json(&url, response).await?;
        Ok(access.access_token)
    }

    /// Repository names, following the `Link: <…>; rel="next"` header.
    pub async fn acr_repositories(
        &self,
        registry: &str,
        login_server: &str,
    ) -> Result<Vec<String>> {
        let base = self.endpoints().registry(registry);
        let token = format!(
            "Bearer {}",
            self.acr_token(registry, login_server, "registry:catalog:*")
                .await?
        );
        let mut names = Vec::new();
        let mut next = Some(format!("{base}/acr/v1/_catalog?n=100"));
        while let Some(url) = next.take() {
            let response = self
                .send_read(&url, || {
                    self.http().get(&url).header("Authorization", &token)
                })
                .await?;
            next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|l| l.to_str().ok())
                .and_then(next_link)
                .map(|path| {
                    if path.starts_with("http") {
                        path
                    } else {
                        format!("{base}{path}")
                    }
                });
            let page: Repositories = Self::json(&url, response).await?;
            names.extend(page.repositories);
        }
        Ok(names)
    }

    /// Tags of one repository, newest first.
    pub async fn acr_tags(
        &self,
        registry: &str,
        login_server: &str,
        repository: &str,
    ) -> Result<TagList> {
        let base = self.endpoints().registry(registry);
        let scope = format!("repository:{repository}:metadata_read");
        let token = format!(
            "Bearer {}",
            self.acr_token(registry, login_server, &scope).await?
        );
        let url = format!("{base}/acr/v1/{repository}/_tags?n=100&orderby=timedesc");
        let response = self
            .send_read(&url, || {
                self.http().get(&url).header("Authorization", &token)
            })
            .await?;
        Self::json(&url, response).await
    }
}

/// The target of `rel="next"` in a Link header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

impl AzureClient {
    /// Stores a new version of a secret. The value is sent and never logged; the answer's value is dropped.
    pub async fn set_secret(&self, vault: &str, name: &str, value: &str) -> Result<String> {
        let url = format!(
            "{}/secrets/{name}?api-version={KEY_VAULT_API}",
            self.endpoints().vault(vault)
        );
        let auth = self.bearer(KEY_VAULT_SCOPE).await?;
        let response = self
            .http()
            .put(&url)
            .header("Authorization", auth)
            .json(&serde_json::json!({"value": value, "contentType": "text/plain"}))
            .send()
            .await
            .map_err(|e| super::error::AzureError::Transport {
                service: "Key Vault".into(),
                reason: e.to_string(),
            })?;
        if !response.status().is_success() {
            return Err(Self::api_error("Key Vault", response).await);
        }
        let bundle: serde_json::Value = Self::json(&url, response).await?;
        Ok(bundle["id"].as_str().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_link_header() {
        assert_eq!(
            super::next_link("</acr/v1/_catalog?last=b&n=2>; rel=\"next\"").as_deref(),
            Some("/acr/v1/_catalog?last=b&n=2")
        );
        assert_eq!(super::next_link("<x>; rel=\"prev\""), None);
    }
}
