//! One typed configuration, from flags and environment variables. Every default is the embedded one:
//! no flag, no file, and it runs (embedded Postgres, in-process emulator, the seed's dev estate).

use app::model::Estate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mlops-console",
    version,
    about = "A web control plane for an Azure MLOps estate"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the console (the default).
    Serve,
    /// Serve only the Azure emulator, for `az`/SDKs or a second console to point at.
    Emulator {
        /// Port for the emulator (0 picks a free one).
        #[arg(long, env = "MLOPS_EMULATOR_PORT", default_value_t = 4000)]
        port: u16,
    },
    /// Local accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens for the JSON API (`Authorization: Bearer …`).
    #[command(subcommand)]
    Tokens(TokensCommand),
}

#[derive(Subcommand, Clone, Debug)]
pub enum UsersCommand {
    /// Add a local account; prints a generated password once unless `--password-stdin` is given.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
}

#[derive(Subcommand, Clone, Debug)]
pub enum TokensCommand {
    /// Create a token and print it once (only its digest is stored).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Revoke a token by id.
    Revoke {
        #[arg(long)]
        id: String,
    },
}

#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,
    /// Postgres URL. When unset, a private embedded Postgres is started in `<data-dir>/postgres`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<SecretString>,
    /// Where the embedded Postgres keeps its data (reused across restarts).
    #[arg(long, env = "MLOPS_DATA_DIR", default_value = ".data")]
    pub data_dir: PathBuf,
    /// Which Azure to talk to: the embedded emulator, or real Azure.
    #[arg(long, env = "MLOPS_AZURE", value_enum, default_value_t = AzureMode::Emulator)]
    pub azure: AzureMode,
    /// In emulator mode, use an emulator already running at this URL instead of the in-process one.
    #[arg(long, env = "MLOPS_EMULATOR_URL")]
    pub emulator_url: Option<String>,
    /// Estate file (TOML): subscription, resource group, region, resource names, budget.
    /// Defaults to the seed's dev estate.
    #[arg(long, env = "MLOPS_ESTATE")]
    pub estate: Option<PathBuf>,
    /// Seconds between inventory refreshes.
    #[arg(long, env = "MLOPS_REFRESH_SECS", default_value_t = 300)]
    pub refresh_secs: u64,
    /// Seconds between cost refreshes (Cost Management data changes a few times a day).
    #[arg(long, env = "MLOPS_COST_REFRESH_SECS", default_value_t = 14_400)]
    pub cost_refresh_secs: u64,
    /// Azure mode: how to get tokens.
    #[arg(long, env = "MLOPS_AZURE_CREDENTIAL", value_enum, default_value_t = CredentialKind::DeveloperTools)]
    pub credential: CredentialKind,
    /// Azure mode: tenant, for `client-secret`.
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub tenant_id: Option<String>,
    /// Azure mode: client id, for `client-secret` or a user-assigned managed identity.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Azure mode: client secret, for `client-secret`.
    #[arg(long, env = "AZURE_CLIENT_SECRET")]
    pub client_secret: Option<SecretString>,
    /// Azure Resource Manager endpoint (sovereign clouds differ).
    #[arg(
        long,
        env = "MLOPS_ARM_URL",
        default_value = "https://management.azure.com"
    )]
    pub arm_url: String,
    /// Emulator: milliseconds each stage of a training job takes (demos: a few seconds; tests: a few ms).
    #[arg(long, env = "MLOPS_EMULATOR_STEP_MS", default_value_t = 3000)]
    pub emulator_step_ms: u64,
    /// How often the run tracker looks at each run in flight, in milliseconds.
    #[arg(long, env = "MLOPS_TRACK_POLL_MS", default_value_t = 1000)]
    pub track_poll_ms: u64,
    /// The address users reach the console at; an `https://` URL makes session cookies `Secure`.
    #[arg(long, env = "MLOPS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A session ends after this many seconds without a request.
    #[arg(long, env = "MLOPS_SESSION_IDLE_SECS", default_value_t = 28_800)]
    pub session_idle_secs: u64,
    /// A session ends this many seconds after sign-in, however active.
    #[arg(long, env = "MLOPS_SESSION_MAX_SECS", default_value_t = 43_200)]
    pub session_max_secs: u64,
    /// Entra ID sign-in: the issuer, `https://login.microsoftonline.com/{tenant}/v2.0`, or `emulator`
    /// for the emulator's Entra ID (its demo people and groups; emulator mode only). Unset: local
    /// accounts only.
    #[arg(long, env = "MLOPS_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Entra ID sign-in: the app registration's client id.
    #[arg(long, env = "MLOPS_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Entra ID sign-in: the app registration's client secret.
    #[arg(long, env = "MLOPS_OIDC_CLIENT_SECRET")]
    pub oidc_client_secret: Option<SecretString>,
    /// Entra ID sign-in: which groups give which role, `admin=<group id>,operator=<group id>,viewer=<group id>`.
    #[arg(long, env = "MLOPS_OIDC_ROLE_GROUPS")]
    pub oidc_role_groups: Option<String>,
    /// Where the built site (wasm, JS, CSS, public files) is served from.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AzureMode {
    Emulator,
    Azure,
}

impl AzureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AzureMode::Emulator => "emulator",
            AzureMode::Azure => "azure",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CredentialKind {
    ManagedIdentity,
    WorkloadIdentity,
    ClientSecret,
    DeveloperTools,
}

/// A string that never prints: passwords, URLs with passwords, client secrets.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretString(s.to_string()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// The configuration in effect, for the admin page: values as they are, secrets only as "set".
pub fn settings(
    config: &Config,
    estate: &str,
    emulator_url: Option<&str>,
    oidc: Option<&crate::auth::entra::OidcConfig>,
) -> Vec<app::auth::SettingsGroup> {
    use app::auth::{Setting, SettingsGroup};
    let s = |name: &str, value: String, from: &str| Setting {
        name: name.into(),
        value,
        from: from.into(),
    };
    let set = |v: bool| if v { "set" } else { "not set" }.to_string();
    let secs = |n: u64| {
        if n.is_multiple_of(3600) {
            format!("{} h", n / 3600)
        } else if n.is_multiple_of(60) {
            format!("{} min", n / 60)
        } else {
            format!("{n} s")
        }
    };
    let mut azure = vec![
        s("Mode", config.azure.as_str().into(), "MLOPS_AZURE"),
        s(
            "Estate",
            estate.into(),
            config
                .estate
                .as_ref()
                .map(|p| format!("MLOPS_ESTATE={}", p.display()))
                .as_deref()
                .unwrap_or("MLOPS_ESTATE (built-in dev estate)"),
        ),
    ];
    match config.azure {
        AzureMode::Emulator => azure.push(s(
            "Emulator",
            emulator_url.unwrap_or_default().into(),
            if config.emulator_url.is_some() {
                "MLOPS_EMULATOR_URL"
            } else {
                "in-process"
            },
        )),
        AzureMode::Azure => {
            azure.push(s(
                "Resource Manager",
                config.arm_url.clone(),
                "MLOPS_ARM_URL",
            ));
            azure.push(s(
                "Credential",
                format!("{:?}", config.credential).to_ascii_lowercase(),
                "MLOPS_AZURE_CREDENTIAL",
            ));
            azure.push(s(
                "Tenant",
                config.tenant_id.clone().unwrap_or_default(),
                "AZURE_TENANT_ID",
            ));
            azure.push(s(
                "Client id",
                config.client_id.clone().unwrap_or_default(),
                "AZURE_CLIENT_ID",
            ));
            azure.push(s(
                "Client secret",
                set(config.client_secret.is_some()),
                "AZURE_CLIENT_SECRET",
            ));
        }
    }
    azure.push(s(
        "Inventory refresh",
        format!("every {}", secs(config.refresh_secs)),
        "MLOPS_REFRESH_SECS",
    ));
    azure.push(s(
        "Cost refresh",
        format!("every {}", secs(config.cost_refresh_secs)),
        "MLOPS_COST_REFRESH_SECS",
    ));
    let mut sign_in = vec![s(
        "Local accounts",
        "on (argon2id password hashes)".into(),
        "mlops-console users add",
    )];
    match oidc {
        None => sign_in.push(s("Entra ID", "off".into(), "MLOPS_OIDC_ISSUER")),
        Some(o) => {
            sign_in.push(s("Entra ID issuer", o.issuer.clone(), "MLOPS_OIDC_ISSUER"));
            sign_in.push(s("Client id", o.client_id.clone(), "MLOPS_OIDC_CLIENT_ID"));
            sign_in.push(s(
                "Client secret",
                set(!o.client_secret.is_empty()),
                "MLOPS_OIDC_CLIENT_SECRET",
            ));
            sign_in.push(s(
                "Redirect URI",
                o.redirect_uri.clone(),
                "MLOPS_PUBLIC_URL",
            ));
            let groups = o
                .groups
                .iter()
                .map(|(g, r)| format!("{} ← {g}", r.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            sign_in.push(s("Groups → roles", groups, "MLOPS_OIDC_ROLE_GROUPS"));
        }
    }
    let https = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let sessions = vec![
        s(
            "Public URL",
            config
                .public_url
                .clone()
                .unwrap_or_else(|| "not set".into()),
            "MLOPS_PUBLIC_URL",
        ),
        s(
            "Secure cookies",
            if https {
                "yes (https)"
            } else {
                "no (not served over https)"
            }
            .into(),
            "MLOPS_PUBLIC_URL",
        ),
        s(
            "Idle expiry",
            secs(config.session_idle_secs.max(60)),
            "MLOPS_SESSION_IDLE_SECS",
        ),
        s(
            "Absolute expiry",
            secs(config.session_max_secs.max(1)),
            "MLOPS_SESSION_MAX_SECS",
        ),
    ];
    // Only where the database is: a URL may carry a password.
    let database = match &config.database_url {
        None => s(
            "Postgres",
            format!(
                "embedded, in {}",
                config.data_dir.join("postgres").display()
            ),
            "MLOPS_DATA_DIR",
        ),
        Some(url) => s(
            "Postgres",
            url::Url::parse(url.expose())
                .map(|u| {
                    format!(
                        "{}:{}{}",
                        u.host_str().unwrap_or("localhost"),
                        u.port().unwrap_or(5432),
                        u.path()
                    )
                })
                .unwrap_or_else(|_| "set".into()),
            "DATABASE_URL",
        ),
    };
    vec![
        SettingsGroup {
            title: "Azure".into(),
            settings: azure,
        },
        SettingsGroup {
            title: "Sign-in".into(),
            settings: sign_in,
        },
        SettingsGroup {
            title: "Sessions".into(),
            settings: sessions,
        },
        SettingsGroup {
            title: "Database".into(),
            settings: vec![database],
        },
    ]
}

const DEV_ESTATE: &str = include_str!("../estate/dev.toml");

#[derive(Debug, thiserror::Error)]
pub enum EstateError {
    #[error("cannot read estate file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("estate file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// The estate from `path`, or the seed's dev estate.
pub fn load_estate(path: Option<&std::path::Path>) -> Result<Estate, EstateError> {
    match path {
        None => Ok(toml::from_str(DEV_ESTATE).expect("the built-in dev estate parses")),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| EstateError::Read {
                path: path.to_owned(),
                source,
            })?;
            toml::from_str(&text).map_err(|source| EstateError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })
        }
    }
}

impl Config {
    /// The defaults, as if no flag and no variable were given (tests start from here).
    pub fn defaults() -> Config {
        Cli::parse_from(["mlops-console"]).config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_estate_is_the_seed() {
        let e = load_estate(None).unwrap();
        assert_eq!(e.subscription_id, "b2b8a5e6-9a34-494b-ba62-fe9be95bd398");
        assert_eq!(e.resource_group, "mlopsnew-dev-rg");
        assert_eq!(e.budget_usd, 75.0);
        assert_eq!(e.resources.runbook, "Scale-MLOps-Resources");
    }

    #[test]
    fn bad_estate_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("estate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "name = 3").unwrap();
        let err = load_estate(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("is not valid"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s: SecretString = "postgres://u:hunter2@h/db".parse().unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn settings_show_where_things_are_but_no_secret() {
        let mut c = Config::defaults();
        c.database_url = Some(
            "postgres://u:hunter2@db.internal:5433/console"
                .parse()
                .unwrap(),
        );
        c.azure = AzureMode::Azure;
        c.credential = CredentialKind::ClientSecret;
        c.client_secret = Some("sp-secret-value".parse().unwrap());
        let text = format!("{:?}", settings(&c, "estate", None, None));
        assert!(text.contains("db.internal:5433/console"), "{text}");
        assert!(
            text.contains("AZURE_CLIENT_SECRET") && text.contains("\"set\""),
            "{text}"
        );
        assert!(
            text.contains("Entra ID") && text.contains("\"off\""),
            "{text}"
        );
        for secret in ["hunter2", "sp-secret-value"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
