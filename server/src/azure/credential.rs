//! Tokens: azure_identity credentials chosen by configuration, a static token for the emulator, and a
//! cache that refreshes a token five minutes before it expires (as the SDK's bearer policy does).

use super::error::{AzureError, Result};
use crate::config::{Config, CredentialKind};
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
pub const LOG_ANALYTICS_SCOPE: &str = "https://api.loganalytics.io/.default";
pub const APP_INSIGHTS_SCOPE: &str = "https://api.applicationinsights.io/.default";

/// The emulator accepts any bearer token; this one names itself.
#[derive(Debug)]
pub struct StaticTokenCredential(pub String);

#[async_trait::async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
    }
}

/// The credential for real Azure, as configured.
pub fn azure_credential(config: &Config) -> Result<Arc<dyn TokenCredential>> {
    let err = |e: azure_core::Error| AzureError::Credential(e.to_string());
    Ok(match config.credential {
        CredentialKind::ManagedIdentity => {
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: config
                    .client_id
                    .clone()
                    .map(azure_identity::UserAssignedId::ClientId),
                ..Default::default()
            };
            azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(err)?
        }
        CredentialKind::WorkloadIdentity => {
            azure_identity::WorkloadIdentityCredential::new(None).map_err(err)?
        }
        CredentialKind::ClientSecret => {
            let (Some(tenant), Some(client), Some(secret)) =
                (&config.tenant_id, &config.client_id, &config.client_secret)
            else {
                return Err(AzureError::Credential(
                    "client-secret needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
                        .into(),
                ));
            };
            azure_identity::ClientSecretCredential::new(
                tenant,
                client.clone(),
                Secret::new(secret.expose().to_string()),
                None,
            )
            .map_err(err)?
        }
        CredentialKind::DeveloperTools => {
            azure_identity::DeveloperToolsCredential::new(None).map_err(err)?
        }
    })
}

/// Tokens per scope, reused until five minutes before expiry.
#[derive(Debug)]
pub struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl TokenCache {
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        TokenCache {
            credential,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A bearer token for `scope`. The lock is held across the fetch so a burst asks once.
    pub async fn token(&self, scope: &str) -> Result<Secret> {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(scope) {
            if t.expires_on > OffsetDateTime::now_utc() + Duration::minutes(5) {
                return Ok(t.token.clone());
            }
        }
        let fresh = self
            .credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| AzureError::Credential(e.to_string()))?;
        let token = fresh.token.clone();
        tokens.insert(scope.to_string(), fresh);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting(AtomicUsize, Duration);

    #[async_trait::async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            _s: &[&str],
            _o: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("t{n}"),
                OffsetDateTime::now_utc() + self.1,
            ))
        }
    }

    #[tokio::test]
    async fn reuses_a_fresh_token_per_scope() {
        let cred = Arc::new(Counting(AtomicUsize::new(0), Duration::hours(1)));
        let cache = TokenCache::new(cred.clone());
        assert_eq!(cache.token(ARM_SCOPE).await.unwrap().secret(), "t0");
        assert_eq!(cache.token(ARM_SCOPE).await.unwrap().secret(), "t0");
        assert_eq!(cache.token(KEY_VAULT_SCOPE).await.unwrap().secret(), "t1");
        assert_eq!(cred.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn client_secret_without_its_variables_is_a_clear_error() {
        let mut config = crate::config::Config::defaults();
        config.credential = CredentialKind::ClientSecret;
        config.tenant_id = None;
        let err = azure_credential(&config).unwrap_err().to_string();
        assert!(err.contains("AZURE_TENANT_ID"), "{err}");
    }

    #[tokio::test]
    async fn refreshes_a_token_about_to_expire() {
        let cred = Arc::new(Counting(AtomicUsize::new(0), Duration::minutes(4)));
        let cache = TokenCache::new(cred.clone());
        cache.token(ARM_SCOPE).await.unwrap();
        cache.token(ARM_SCOPE).await.unwrap();
        assert_eq!(cred.0.load(Ordering::SeqCst), 2);
    }
}
