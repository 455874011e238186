//! Sign-in with Microsoft Entra ID: OpenID Connect, authorization code flow with PKCE, a confidential
//! client (issuer, client id and secret from the configuration). The ID token is checked against the
//! issuer's published keys (RS256, issuer, audience, expiry, nonce); the role comes from the `groups`
//! claim through the configured group → role mapping (the highest wins; no mapped group, no sign-in).
//!
//! The flow's state, nonce and PKCE verifier wait in Postgres (`oidc_pending`, single use, ten
//! minutes), bound to the browser by a `SameSite=Lax` cookie: the session cookie is `Strict`, so a
//! browser does not send it on the redirect back from Entra's domain.

use app::auth::Role;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The cookie that ties the redirect back from Entra to the browser that started the sign-in.
pub const FLOW_COOKIE: &str = "mlops_oidc";
/// How long a started sign-in may take.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// How long the issuer's metadata is trusted before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// What the console needs to know to sign people in with Entra ID.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// `https://login.microsoftonline.com/{tenant}/v2.0`
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// `{public url}/signin/entra/callback`, as registered with the app.
    pub redirect_uri: String,
    /// Group object id → role.
    pub groups: Vec<(String, Role)>,
}

impl OidcConfig {
    /// The role the groups give: the highest mapped one.
    pub fn role_of(&self, groups: &[String]) -> Option<Role> {
        self.groups
            .iter()
            .filter(|(g, _)| groups.iter().any(|have| have.eq_ignore_ascii_case(g)))
            .map(|(_, r)| *r)
            .max()
    }
}

/// The Entra ID sign-in the configuration asks for, if any. `emulator_url` is the emulator's, in
/// emulator mode; `listening` is the console's own address (the redirect URI's default host).
pub fn configure(
    config: &crate::config::Config,
    emulator_url: Option<&str>,
    listening: std::net::SocketAddr,
) -> Result<Option<OidcConfig>, String> {
    let Some(issuer) = config
        .oidc_issuer
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    else {
        return Ok(None);
    };
    use crate::emulator::entra as emu;
    let emulated = issuer == "emulator";
    let issuer = if emulated {
        let url = emulator_url.ok_or(
            "MLOPS_OIDC_ISSUER=emulator signs in with the emulator's Entra ID: it needs MLOPS_AZURE=emulator",
        )?;
        format!("{url}/{}/v2.0", crate::emulator::seed::TENANT)
    } else {
        url::Url::parse(issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| {
                format!("MLOPS_OIDC_ISSUER: '{issuer}' is not a URL (nor `emulator`)")
            })?;
        issuer.trim_end_matches('/').to_string()
    };
    let client_id = match (&config.oidc_client_id, emulated) {
        (Some(id), _) => id.clone(),
        (None, true) => emu::CONSOLE_CLIENT_ID.to_string(),
        (None, false) => return Err("Entra ID sign-in needs MLOPS_OIDC_CLIENT_ID".into()),
    };
    let client_secret = match (&config.oidc_client_secret, emulated) {
        (Some(s), _) => s.expose().to_string(),
        (None, true) => emu::CONSOLE_CLIENT_SECRET.to_string(),
        (None, false) => return Err("Entra ID sign-in needs MLOPS_OIDC_CLIENT_SECRET".into()),
    };
    let groups = match (&config.oidc_role_groups, emulated) {
        (Some(g), _) => parse_role_groups(g).map_err(|e| format!("MLOPS_OIDC_ROLE_GROUPS: {e}"))?,
        (None, true) => [Role::Admin, Role::Operator, Role::Viewer]
            .into_iter()
            .zip(emu::GROUPS)
            .map(|(role, (group, _))| (group.to_string(), role))
            .collect(),
        (None, false) => {
            return Err("Entra ID sign-in needs MLOPS_OIDC_ROLE_GROUPS (admin=<group id>,operator=<group id>,viewer=<group id>)".into())
        }
    };
    let public = match (&config.public_url, emulated) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, true) => format!("http://{listening}"),
        (None, false) => {
            return Err("Entra ID sign-in needs MLOPS_PUBLIC_URL: the app registration's redirect URI is {MLOPS_PUBLIC_URL}/signin/entra/callback".into())
        }
    };
    Ok(Some(OidcConfig {
        issuer,
        client_id,
        client_secret,
        redirect_uri: format!("{public}{}", emu::REDIRECT_PATH),
        groups,
    }))
}

/// `admin=<group id>,operator=<group id>,viewer=<group id>` (a role may appear more than once).
pub fn parse_role_groups(s: &str) -> Result<Vec<(String, Role)>, String> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (role, group) = pair
            .split_once('=')
            .ok_or_else(|| format!("'{pair}' is not role=group-id"))?;
        let role = Role::parse(role)
            .ok_or_else(|| format!("'{role}' is not viewer, operator or admin"))?;
        let group = group.trim();
        if group.is_empty() {
            return Err(format!("no group id for {}", role.as_str()));
        }
        out.push((group.to_string(), role));
    }
    if out.is_empty() {
        return Err("map at least one group to a role".into());
    }
    Ok(out)
}

#[derive(Clone, Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The claims of an Entra v2.0 ID token the console reads.
#[derive(Debug, Deserialize)]
pub struct IdClaims {
    /// The person's object id in the tenant: stable, unlike the sign-in name.
    pub oid: String,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Present instead of `groups` when the person is in too many groups to list (overage).
    #[serde(default)]
    pub _claim_names: Option<serde_json::Value>,
}

impl IdClaims {
    /// The sign-in name, lowercased: the console account's name (`name` is the display name).
    pub fn account_name(&self) -> String {
        self.preferred_username
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }
}

/// A sign-in that could not finish, with what to tell the person (never a token or a secret).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{0}")]
    Refused(String),
    #[error("Entra ID is not answering ({0}); try again, or sign in with a local account.")]
    Unavailable(String),
}

pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    metadata: RwLock<Option<(Metadata, Instant)>>,
    keys: RwLock<JwkSet>,
}

/// What the start of a sign-in hands back: where to send the browser, and the flow's id for the cookie.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Oidc {
        Oidc {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            metadata: RwLock::new(None),
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
        }
    }

    async fn metadata(&self) -> Result<Metadata, SignInError> {
        if let Some((m, at)) = self.metadata.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let m: Metadata = self.get_json(&url).await?;
        if m.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(SignInError::Unavailable(format!(
                "the discovery document names issuer {}, not the configured {}",
                m.issuer, self.config.issuer
            )));
        }
        *self.metadata.write().await = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, SignInError> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| SignInError::Unavailable(e.without_url().to_string()))?;
        if !r.status().is_success() {
            return Err(SignInError::Unavailable(format!(
                "{url} answered {}",
                r.status()
            )));
        }
        r.json()
            .await
            .map_err(|e| SignInError::Unavailable(format!("{url}: {}", e.without_url())))
    }

    /// Starts a sign-in: records the flow and returns the authorization request to send the browser to.
    pub async fn start(&self, db: &PgPool, next: &str) -> Result<Started, SignInError> {
        let m = self.metadata().await?;
        let state = super::random_hex();
        let nonce = super::random_hex();
        // 64 hex characters: a valid PKCE verifier (43–128 unreserved characters).
        let verifier = super::random_hex();
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        let saved = async {
            sqlx::query!(
                "delete from oidc_pending where created_at < now() - make_interval(secs => $1)",
                FLOW_TTL.as_secs_f64()
            )
            .execute(db)
            .await?;
            sqlx::query!(
                "insert into oidc_pending (state, nonce, verifier, next) values ($1, $2, $3, $4)",
                state,
                nonce,
                verifier,
                next
            )
            .execute(db)
            .await
        };
        saved.await.map_err(|e| {
            tracing::error!(error = %e, "entra: cannot record the sign-in");
            SignInError::Unavailable("the console's database".into())
        })?;
        let mut url = url::Url::parse(&m.authorization_endpoint)
            .map_err(|e| SignInError::Unavailable(format!("authorization endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid profile email")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(Started {
            authorize_url: url.into(),
            state,
        })
    }

    /// Finishes a sign-in: takes the flow (once), redeems the code, checks the ID token. Returns the
    /// claims and the page to go to.
    pub async fn finish(
        &self,
        db: &PgPool,
        state: &str,
        code: &str,
    ) -> Result<(IdClaims, String), SignInError> {
        let flow = sqlx::query!(
            "delete from oidc_pending where state = $1 and created_at > now() - make_interval(secs => $2)
             returning nonce, verifier, next",
            state,
            FLOW_TTL.as_secs_f64()
        )
        .fetch_optional(db)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "entra: cannot read the sign-in");
            SignInError::Unavailable("the console's database".into())
        })?
        .ok_or_else(|| {
            SignInError::Refused("This sign-in expired or was already used; start again.".into())
        })?;
        let m = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
            ("scope", "openid profile email"),
        ];
        let r = self
            .http
            .post(&m.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| SignInError::Unavailable(e.without_url().to_string()))?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.map_err(|e| {
            SignInError::Unavailable(format!("token endpoint: {}", e.without_url()))
        })?;
        if !status.is_success() {
            // Entra's `error_description` starts with the AADSTS code; it names no secret.
            let why = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given");
            let why = why.split(" Trace ID:").next().unwrap_or(why);
            tracing::warn!(%status, error = %why, "entra: the token endpoint refused the code");
            return Err(SignInError::Refused(format!(
                "Entra ID refused the sign-in: {why}"
            )));
        }
        let id_token = body["id_token"].as_str().ok_or_else(|| {
            SignInError::Unavailable("the token endpoint returned no id_token".into())
        })?;
        let claims = self.validate(id_token, &m, &flow.nonce).await?;
        Ok((claims, flow.next))
    }

    /// The role the person's groups give here.
    pub fn role(&self, claims: &IdClaims) -> Result<Role, SignInError> {
        if claims._claim_names.is_some() && claims.groups.is_empty() {
            return Err(SignInError::Refused(
                "Your account is in too many groups for Entra ID to list in the sign-in token. Ask an admin to assign the console's groups to the app registration (\"groups assigned to the application\").".into(),
            ));
        }
        self.config.role_of(&claims.groups).ok_or_else(|| {
            SignInError::Refused(
                "Your Entra ID account is in none of the groups that give a role in this console. Ask an admin to add you to one.".into(),
            )
        })
    }

    /// Checks the ID token: signed by one of the issuer's keys (RS256), for this app, from this
    /// issuer, not expired, and carrying the nonce this sign-in sent.
    async fn validate(
        &self,
        token: &str,
        m: &Metadata,
        nonce: &str,
    ) -> Result<IdClaims, SignInError> {
        let bad = |why: String| {
            tracing::warn!(error = %why, "entra: ID token rejected");
            SignInError::Refused("Entra ID's answer could not be verified; start again.".into())
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| bad("no kid".into()))?;
        let key = match self.key(&kid).await {
            Some(k) => k,
            None => {
                // Keys roll over: read the set again once before giving up.
                *self.keys.write().await = self.get_json(&m.jwks_uri).await?;
                self.key(&kid)
                    .await
                    .ok_or_else(|| bad(format!("unknown signing key {kid}")))?
            }
        };
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[m.issuer.as_str()]);
        v.set_audience(&[self.config.client_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = 120;
        let data =
            jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| bad(e.to_string()))?;
        if data.claims.nonce.as_deref() != Some(nonce) {
            return Err(bad("nonce mismatch".into()));
        }
        Ok(data.claims)
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        keys.find(kid).and_then(|j| DecodingKey::from_jwk(j).ok())
    }
}

/// Creates or updates the Entra person's account: the name is their sign-in name, the role what
/// their groups give today. A local account of the same name, or another person who once had that
/// name, is never taken over; a disabled account stays out.
pub async fn upsert_user(
    db: &PgPool,
    claims: &IdClaims,
    role: Role,
) -> Result<String, SignInError> {
    let name = claims.account_name();
    if !app::auth::user_name_ok(&name) {
        return Err(SignInError::Refused(format!(
            "Your Entra ID sign-in name '{name}' cannot be a console account name (2–64 letters, digits, '.', '_', '-' or '@')."
        )));
    }
    let display = claims
        .name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&name)
        .to_string();
    let db_error = |e: sqlx::Error| {
        if let sqlx::Error::Database(d) = &e {
            if d.is_unique_violation() {
                return SignInError::Refused(format!(
                    "An account named '{name}' already exists and is not this Entra ID person; ask an admin."
                ));
            }
        }
        tracing::error!(error = %e, "entra: cannot record the account");
        SignInError::Unavailable("the console's database".into())
    };
    // The person is known by their object id: a renamed sign-in name follows them.
    let updated = sqlx::query_scalar!(
        "update users set name = $1, display_name = $2, role = $3
         where source = 'entra' and external_id = $4 returning disabled",
        name,
        display,
        role.as_str(),
        claims.oid
    )
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    let row = match updated {
        Some(disabled) => Some(disabled),
        None => sqlx::query_scalar!(
            "insert into users (id, name, display_name, role, source, external_id)
             values ($1, $2, $3, $4, 'entra', $5)
             on conflict do nothing returning disabled",
            uuid::Uuid::new_v4(),
            name,
            display,
            role.as_str(),
            claims.oid
        )
        .fetch_optional(db)
        .await
        .map_err(db_error)?,
    };
    match row {
        None => Err(SignInError::Refused(format!(
            "An account named '{name}' already exists and is not this Entra ID person; ask an admin."
        ))),
        Some(true) => Err(SignInError::Refused(
            "This account is disabled; ask an admin.".into(),
        )),
        Some(false) => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::entra::{Directory, CONSOLE_CLIENT_ID, GROUPS};
    use serde_json::json;

    const ISSUER: &str = "http://127.0.0.1:9/tenant/v2.0";

    fn oidc(dir: &Directory) -> (Oidc, Metadata) {
        let config = OidcConfig {
            issuer: ISSUER.into(),
            client_id: CONSOLE_CLIENT_ID.into(),
            client_secret: "s".into(),
            redirect_uri: "http://127.0.0.1:3000/signin/entra/callback".into(),
            groups: vec![
                (GROUPS[0].0.into(), Role::Admin),
                (GROUPS[2].0.into(), Role::Viewer),
            ],
        };
        let o = Oidc::new(config);
        *o.keys.try_write().unwrap() = serde_json::from_value(dir.jwks(ISSUER)).unwrap();
        let m = Metadata {
            issuer: ISSUER.into(),
            authorization_endpoint: format!("{ISSUER}/authorize"),
            token_endpoint: format!("{ISSUER}/token"),
            // Nothing listens there: a token signed by an unknown key cannot fetch its way in.
            jwks_uri: "http://127.0.0.1:9/keys".into(),
        };
        (o, m)
    }

    fn claims() -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        json!({"aud": CONSOLE_CLIENT_ID, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
               "oid": "o1", "preferred_username": "ada@x.example", "name": "Ada", "nonce": "n1",
               "groups": [GROUPS[0].0]})
    }

    #[tokio::test]
    async fn an_id_token_is_accepted_only_when_every_check_passes() {
        let dir = Directory::new();
        let (o, m) = oidc(&dir);
        let good = o.validate(&dir.sign(&claims()), &m, "n1").await.unwrap();
        assert_eq!(good.oid, "o1");
        assert_eq!(o.config.role_of(&good.groups), Some(Role::Admin));

        let with = |k: &str, v: serde_json::Value| {
            let mut c = claims();
            c[k] = v;
            dir.sign(&c)
        };
        let now = chrono::Utc::now().timestamp();
        for (why, token, nonce) in [
            (
                "another app's token",
                with("aud", json!("someone-else")),
                "n1",
            ),
            (
                "another issuer",
                with("iss", json!("https://evil.example/v2.0")),
                "n1",
            ),
            ("expired", with("exp", json!(now - 3600)), "n1"),
            ("not yet valid", with("nbf", json!(now + 3600)), "n1"),
            ("replayed into another sign-in", dir.sign(&claims()), "n2"),
        ] {
            assert!(o.validate(&token, &m, nonce).await.is_err(), "{why}");
        }
        // A changed payload under the original signature.
        let token = dir.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged["groups"] = json!([GROUPS[0].0, "extra"]);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(forged.to_string()),
            parts[2]
        );
        assert!(o.validate(&forged, &m, "n1").await.is_err(), "tampered");
        // Signed by a key the issuer never published.
        let stranger = Directory::new();
        assert!(
            o.validate(&stranger.sign(&claims()), &m, "n1")
                .await
                .is_err(),
            "foreign key"
        );
        // `alg: none` and HMAC tricks are refused by the algorithm check.
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(claims().to_string())
        );
        assert!(o.validate(&none, &m, "n1").await.is_err(), "alg none");
    }

    #[test]
    fn role_groups_parse_and_the_highest_role_wins() {
        let g = parse_role_groups("viewer=g1, operator=g2,admin=g3,viewer=g4").unwrap();
        assert_eq!(g.len(), 4);
        let c = OidcConfig {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            redirect_uri: String::new(),
            groups: g,
        };
        assert_eq!(c.role_of(&["g4".into(), "G2".into()]), Some(Role::Operator));
        assert_eq!(c.role_of(&["g1".into(), "g3".into()]), Some(Role::Admin));
        assert_eq!(c.role_of(&["other".into()]), None);
        assert_eq!(c.role_of(&[]), None);
        for bad in ["", "admin", "boss=g1", "admin="] {
            assert!(parse_role_groups(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configuration_says_what_is_missing() {
        let addr: std::net::SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let mut c = crate::config::Config::defaults();
        assert!(
            configure(&c, None, addr).unwrap().is_none(),
            "off by default"
        );
        c.oidc_issuer = Some("emulator".into());
        assert!(configure(&c, None, addr)
            .unwrap_err()
            .contains("MLOPS_AZURE=emulator"));
        let emu = configure(&c, Some("http://127.0.0.1:4000"), addr)
            .unwrap()
            .unwrap();
        assert_eq!(
            emu.issuer,
            format!(
                "http://127.0.0.1:4000/{}/v2.0",
                crate::emulator::seed::TENANT
            )
        );
        assert_eq!(
            emu.redirect_uri,
            "http://127.0.0.1:3000/signin/entra/callback"
        );
        assert_eq!(emu.groups.len(), 3);

        c.oidc_issuer = Some("https://login.microsoftonline.com/t/v2.0".into());
        assert!(configure(&c, None, addr)
            .unwrap_err()
            .contains("MLOPS_OIDC_CLIENT_ID"));
        c.oidc_client_id = Some("id".into());
        assert!(configure(&c, None, addr)
            .unwrap_err()
            .contains("MLOPS_OIDC_CLIENT_SECRET"));
        c.oidc_client_secret = Some("secret".to_string().into());
        assert!(configure(&c, None, addr)
            .unwrap_err()
            .contains("MLOPS_OIDC_ROLE_GROUPS"));
        c.oidc_role_groups = Some("admin=g1".into());
        assert!(configure(&c, None, addr)
            .unwrap_err()
            .contains("MLOPS_PUBLIC_URL"));
        c.public_url = Some("https://console.example/".into());
        let real = configure(&c, None, addr).unwrap().unwrap();
        assert_eq!(
            real.redirect_uri,
            "https://console.example/signin/entra/callback"
        );
        c.oidc_issuer = Some("login.microsoftonline.com".into());
        assert!(configure(&c, None, addr).unwrap_err().contains("not a URL"));
    }
}
