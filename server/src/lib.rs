//! mlops-console's server: configuration, the Postgres it keeps its records in (embedded when no URL is
//! given), the Azure client and its emulator, the inventory, and the router serving pages and the API.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod azure;
pub mod config;
pub mod cost;
pub mod db;
pub mod emulator;
pub mod inventory;
pub mod observe;
pub mod pg_embedded;
pub mod runs;

use app::api::SharedBackend;
use app::model::EstateInfo;
use axum::extract::FromRef;
use axum::serve::ListenerExt;
use axum::Router;
use azure::{AzureClient, Endpoints, RetryPolicy};
use config::{AzureMode, Config};
use inventory::Inventory;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub inventory: Arc<Inventory>,
    pub runs: Arc<runs::Runs>,
    pub observe: Arc<observe::Observe>,
    pub costs: Arc<cost::Costs>,
    pub alerts: Arc<alerts::Alerts>,
    pub auth: Arc<auth::Auth>,
    /// The configuration in effect, as the admin page shows it.
    pub settings: Arc<Vec<app::auth::SettingsGroup>>,
}

impl app::api::Deployments for Services {
    fn train_and_deploy(
        &self,
        endpoint: String,
        reason: Option<String>,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            let spec = runs::pipeline::PipelineSpec {
                training: app::model::TrainingJobSpec::seed_default(),
                endpoint,
                instance_count: 1,
                reason,
            };
            run_id(self.runs.start_pipeline(&spec, key.as_deref()).await)
        })
    }

    fn endpoints(
        &self,
    ) -> app::api::BoxFuture<'_, Result<Vec<app::model::EndpointView>, app::error::AppError>> {
        Box::pin(self.runs.endpoints())
    }

    fn set_traffic(
        &self,
        endpoint: String,
        spec: app::model::TrafficSpec,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            run_id(
                self.runs
                    .set_traffic(
                        &endpoint,
                        &spec,
                        runs::deploy::TRAFFIC_UPDATE,
                        key.as_deref(),
                    )
                    .await,
            )
        })
    }

    fn rollback(
        &self,
        endpoint: String,
        reason: Option<String>,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move { run_id(self.runs.rollback(&endpoint, reason, key.as_deref()).await) })
    }

    fn create_deployment(
        &self,
        endpoint: String,
        spec: app::model::DeploymentSpec,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            run_id(
                self.runs
                    .create_deployment(&endpoint, &spec, key.as_deref())
                    .await,
            )
        })
    }

    fn register_model(
        &self,
        spec: app::model::ModelSpec,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move { run_id(self.runs.register_model(&spec, key.as_deref()).await) })
    }
}

/// Who a server function or a page render acts for: the request's user (from its context), else the
/// task's actor.
fn user() -> (String, app::auth::Role) {
    match app::auth::request_user() {
        Some(u) => (u.name, u.role),
        None => (auth::actor(), app::auth::Role::Viewer),
    }
}

/// The run a page follows after an action (the first run, for a repeated idempotency key).
fn run_id(
    started: Result<(uuid::Uuid, bool), app::error::AppError>,
) -> Result<String, app::error::AppError> {
    started.map(|(id, _)| id.to_string())
}

/// What pages reach through server functions: the services, behind the app's [`app::api::Backend`].
impl app::api::Accounts for Services {
    fn users(
        &self,
    ) -> app::api::BoxFuture<'_, Result<Vec<app::auth::UserView>, app::error::AppError>> {
        Box::pin(auth::list_users(&self.db))
    }

    fn add_user(
        &self,
        name: String,
        display_name: String,
        role: app::auth::Role,
    ) -> app::api::BoxFuture<'_, Result<app::auth::NewUser, app::error::AppError>> {
        Box::pin(
            async move { auth::add_user(&self.db, &name, Some(&display_name), role, None).await },
        )
    }

    fn update_user(
        &self,
        name: String,
        role: Option<app::auth::Role>,
        disabled: Option<bool>,
    ) -> app::api::BoxFuture<'_, Result<app::auth::UserView, app::error::AppError>> {
        Box::pin(async move { auth::update_user(&self.db, &name, role, disabled).await })
    }

    fn tokens(
        &self,
    ) -> app::api::BoxFuture<'_, Result<Vec<app::auth::TokenView>, app::error::AppError>> {
        Box::pin(auth::list_tokens(&self.db))
    }

    fn create_token(
        &self,
        name: String,
        role: app::auth::Role,
        days: i64,
        by: String,
    ) -> app::api::BoxFuture<'_, Result<app::auth::NewToken, app::error::AppError>> {
        Box::pin(async move { auth::create_token(&self.db, &name, role, &by, days).await })
    }

    fn revoke_token(
        &self,
        id: String,
    ) -> app::api::BoxFuture<'_, Result<(), app::error::AppError>> {
        Box::pin(async move {
            auth::revoke_token(&self.db, &id).await?;
            self.auth.tokens.forget();
            Ok(())
        })
    }

    fn audit(
        &self,
        filter: app::auth::AuditFilter,
    ) -> app::api::BoxFuture<'_, Result<app::auth::AuditList, app::error::AppError>> {
        Box::pin(async move { auth::audit::list(&self.db, &filter).await })
    }

    fn settings(&self) -> Vec<app::auth::SettingsGroup> {
        self.settings.as_ref().clone()
    }
}

struct Services {
    db: PgPool,
    auth: Arc<auth::Auth>,
    inventory: Arc<Inventory>,
    runs: Arc<runs::Runs>,
    observe: Arc<observe::Observe>,
    costs: Arc<cost::Costs>,
    alerts: Arc<alerts::Alerts>,
    settings: Arc<Vec<app::auth::SettingsGroup>>,
}

impl app::api::Monitoring for Services {
    fn cost(&self) -> Result<app::cost::CostView, app::error::AppError> {
        self.costs.view()
    }

    fn cost_summary(&self) -> Option<app::cost::CostSummary> {
        self.costs.summary()
    }

    fn refresh_cost(
        &self,
    ) -> app::api::BoxFuture<'_, Result<app::cost::CostView, app::error::AppError>> {
        Box::pin(self.costs.refresh())
    }

    fn alerts(
        &self,
        state: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<app::cost::AlertsView, app::error::AppError>> {
        Box::pin(async move { self.alerts.view(state.as_deref()).await })
    }

    fn alert_counts(&self) -> app::cost::AlertCounts {
        self.alerts.counts()
    }

    fn change_alert_state(
        &self,
        id: String,
        change: app::cost::AlertStateChange,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            change_alert_state(&self.alerts, &self.runs, &id, &change, key.as_deref())
                .await
                .map(|(run, _)| run.to_string())
        })
    }

    fn start_runbook(
        &self,
        parameters: serde_json::Value,
        reason: Option<String>,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            let runbook = self.runs.estate().resources.runbook.clone();
            run_id(
                self.runs
                    .start_runbook(&runbook, &parameters, reason.as_deref(), key.as_deref())
                    .await,
            )
        })
    }
}

/// Checks the requested state, finds the alert (404 when there is none), and changes it as a run. Returns
/// the run and the alert as Azure shows it afterwards (from the list that also refreshes the overview's
/// counts), when that read succeeded.
pub async fn change_alert_state(
    alerts: &alerts::Alerts,
    runs: &runs::Runs,
    id: &str,
    change: &app::cost::AlertStateChange,
    key: Option<&str>,
) -> Result<(uuid::Uuid, Option<app::cost::AlertView>), app::error::AppError> {
    runs::alerts::checked_state(change)?;
    let alert = alerts.find(id).await?;
    let (run, _) = runs.change_alert_state(&alert, change, key).await?;
    let now = alerts
        .list(None)
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|a| a.id == alert.id));
    Ok((run, now))
}

impl app::api::Queries for Services {
    fn run_query(
        &self,
        req: app::query::QueryRequest,
    ) -> app::api::BoxFuture<'_, Result<app::query::QueryResult, app::error::AppError>> {
        Box::pin(async move { self.observe.run(&user().0, user().1, &req).await })
    }

    fn saved_queries(
        &self,
    ) -> app::api::BoxFuture<'_, Result<Vec<app::query::SavedQuery>, app::error::AppError>> {
        Box::pin(async move { self.observe.saved(&user().0).await })
    }

    fn save_query(
        &self,
        q: app::query::NewSavedQuery,
    ) -> app::api::BoxFuture<'_, Result<app::query::SavedQuery, app::error::AppError>> {
        Box::pin(async move { self.observe.save(&user().0, &q).await })
    }

    fn recent_queries(
        &self,
    ) -> app::api::BoxFuture<'_, Result<Vec<app::query::RecentQuery>, app::error::AppError>> {
        Box::pin(async move { self.observe.recent(&user().0, 15).await })
    }

    fn endpoint_health(
        &self,
        endpoint: String,
    ) -> app::api::BoxFuture<'_, Result<app::query::EndpointHealth, app::error::AppError>> {
        Box::pin(async move { self.observe.endpoint_health(&endpoint).await })
    }
}

impl app::api::Backend for Services {
    fn overview(&self) -> Result<app::model::Overview, app::error::AppError> {
        self.inventory.overview()
    }

    fn resource(&self, name: &str) -> Result<app::model::ResourcePage, app::error::AppError> {
        self.inventory.resource(name)
    }

    fn refresh(&self) -> app::api::BoxFuture<'_, app::model::RefreshOutcome> {
        Box::pin(self.inventory.refresh())
    }

    fn runs(
        &self,
        filter: app::model::RunFilter,
    ) -> app::api::BoxFuture<'_, Result<app::model::RunList, app::error::AppError>> {
        Box::pin(async move { self.runs.list(&filter).await })
    }

    fn run(
        &self,
        id: String,
    ) -> app::api::BoxFuture<'_, Result<app::model::RunDetail, app::error::AppError>> {
        Box::pin(async move { self.runs.detail(&id).await })
    }

    fn submit_training(
        &self,
        spec: app::model::TrainingJobSpec,
        key: Option<String>,
    ) -> app::api::BoxFuture<'_, Result<String, app::error::AppError>> {
        Box::pin(async move {
            run_id(
                self.runs
                    .submit_training(&spec, &auth::actor(), key.as_deref())
                    .await,
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Estate(#[from] config::EstateError),
    #[error("embedded Postgres: {0}")]
    EmbeddedPostgres(#[from] pg_embedded::EmbeddedPgError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("Azure client: {0}")]
    Azure(#[from] azure::error::AzureError),
    #[error("sessions: {0}")]
    Sessions(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// The pages, the server functions, the JSON API, static files and sessions.
pub fn router(
    state: AppState,
    sessions: tower_sessions::SessionManagerLayer<tower_sessions_sqlx_store::PostgresStore>,
) -> Router {
    let services = Arc::new(Services {
        db: state.db.clone(),
        auth: state.auth.clone(),
        inventory: state.inventory.clone(),
        runs: state.runs.clone(),
        observe: state.observe.clone(),
        costs: state.costs.clone(),
        alerts: state.alerts.clone(),
        settings: state.settings.clone(),
    });
    let backend: SharedBackend = services.clone();
    let deployments: app::api::SharedDeployments = services.clone();
    let queries: app::api::SharedQueries = services.clone();
    let monitoring: app::api::SharedMonitoring = services.clone();
    let accounts: app::api::SharedAccounts = services;
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    let methods = app::auth::SignInMethods {
        entra: state.auth.oidc.is_some(),
    };
    let context = {
        let backend = backend.clone();
        move || {
            provide_context(methods);
            provide_context(backend.clone());
            provide_context(deployments.clone());
            provide_context(queries.clone());
            provide_context(monitoring.clone());
            provide_context(accounts.clone());
        }
    };
    let guard = axum::middleware::from_fn_with_state(state.clone(), auth::middleware::guard);
    Router::new()
        .merge(api::routes())
        .merge(auth::routes::routes())
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(guard)
        .layer(sessions)
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<_>| {
                    let matched = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default();
                    tracing::info_span!("http", method = %req.method(), path = %matched)
                },
            ),
        )
        .with_state(state)
}

/// A running console: its URL, the emulator's (in emulator mode), and what it needs to stop cleanly.
pub struct Server {
    pub addr: SocketAddr,
    pub emulator_url: Option<String>,
    pub state: AppState,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    postgres: Option<pg_embedded::EmbeddedPostgres>,
    /// The generated password of the first admin, when this start created it (shown once).
    pub first_admin_password: Option<String>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, the background work, the in-process emulator and the embedded Postgres.
    pub async fn stop(mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
        let _ = (&mut self.served).await;
        self.state.db.close().await;
        if let Some(pg) = self.postgres.take() {
            pg.stop().await;
        }
    }
}

fn leptos_options(config: &Config, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("mlops_console")
        .site_root(config.site_root.clone())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

pub fn emulator_options(config: &Config) -> emulator::Options {
    emulator::Options {
        job_step: std::time::Duration::from_millis(config.emulator_step_ms.max(1)),
    }
}

/// Small responses go out at once: with Nagle's algorithm on, a streamed page waits ~40 ms for the
/// client's delayed ACK.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Starts everything and serves on `listener`.
pub async fn run(listener: TcpListener, config: Config) -> Result<Server, StartError> {
    let estate = config::load_estate(config.estate.as_deref())?;
    let mut shutdown = Vec::new();
    let mut tasks = Vec::new();

    let (db, postgres) = open_database(&config).await?;
    if let Some(pg) = &postgres {
        tracing::info!(port = pg.port(), dir = %pg.data_dir().display(), "embedded Postgres ready");
    }

    let (endpoints, credential, emulator_url): (
        _,
        Arc<dyn azure_core::credentials::TokenCredential>,
        _,
    ) = match config.azure {
        AzureMode::Emulator => {
            let url = match &config.emulator_url {
                Some(url) => url.trim_end_matches('/').to_string(),
                None => {
                    // Its own port: Azure's paths live at the root, as SDKs and `az` expect.
                    let emu = emulator::Emulator::start(
                        db.clone(),
                        estate.clone(),
                        emulator_options(&config),
                    )
                    .await?;
                    let l = TcpListener::bind((config.host.as_str(), 0)).await?;
                    let url = format!("http://{}", l.local_addr()?);
                    let (tx, rx) = oneshot::channel();
                    shutdown.push(tx);
                    tasks.push(tokio::spawn(async move {
                        if let Err(e) = emulator::serve(emu, l, async {
                            let _ = rx.await;
                        })
                        .await
                        {
                            tracing::error!(error = %e, "the in-process emulator stopped");
                        }
                    }));
                    url
                }
            };
            let cred = Arc::new(azure::credential::StaticTokenCredential("emulator".into()));
            (Endpoints::emulator(&url), cred as _, Some(url))
        }
        AzureMode::Azure => (
            Endpoints::azure(&config.arm_url, &estate.location),
            azure::credential::azure_credential(&config)?,
            None,
        ),
    };
    let client = Arc::new(AzureClient::new(
        endpoints,
        credential,
        RetryPolicy::default(),
    )?);
    let runs = Arc::new(runs::Runs::new(
        db.clone(),
        client.clone(),
        estate.clone(),
        std::time::Duration::from_millis(config.track_poll_ms.max(10)),
    ));
    tasks.push(runs.spawn_tracker());
    let observe = Arc::new(observe::Observe::new(
        db.clone(),
        client.clone(),
        estate.clone(),
    ));
    let costs = Arc::new(cost::Costs::new(
        db.clone(),
        client.clone(),
        estate.clone(),
        std::time::Duration::from_secs(config.cost_refresh_secs.max(60)),
    ));
    costs.load().await?;
    tasks.push(costs.spawn_refresher());
    let alerts = Arc::new(alerts::Alerts::new(client.clone(), estate.clone()));
    tasks.push(alerts.spawn_refresher());
    let estate_summary = format!(
        "{} ({}) · subscription {} · resource group {} · {}",
        estate.name,
        estate.environment,
        estate.subscription_id,
        estate.resource_group,
        estate.location
    );
    let info = EstateInfo {
        estate,
        mode: config.azure.as_str().to_string(),
        emulator_url: emulator_url.clone(),
    };
    let inventory = Arc::new(Inventory::load(db.clone(), client, info).await?);
    tasks.push(
        inventory.spawn_refresher(std::time::Duration::from_secs(config.refresh_secs.max(5))),
    );

    let store = tower_sessions_sqlx_store::PostgresStore::new(db.clone());
    store
        .migrate()
        .await
        .map_err(|e| StartError::Sessions(e.to_string()))?;
    let secure = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let sessions =
        tower_sessions::SessionManagerLayer::new(store)
            .with_name("mlops_session")
            .with_http_only(true)
            .with_same_site(tower_sessions::cookie::SameSite::Strict)
            .with_secure(secure)
            .with_expiry(tower_sessions::Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::seconds(
                    config.session_idle_secs.max(60) as i64
                ),
            ));
    let first_admin_password = auth::ensure_first_admin(&db)
        .await
        .map_err(|e| StartError::Sessions(e.to_string()))?;
    let oidc_config =
        auth::entra::configure(&config, emulator_url.as_deref(), listener.local_addr()?)
            .map_err(StartError::Config)?;
    let settings = Arc::new(config::settings(
        &config,
        &estate_summary,
        emulator_url.as_deref(),
        oidc_config.as_ref(),
    ));
    if let Some(o) = &oidc_config {
        tracing::info!(issuer = %o.issuer, redirect_uri = %o.redirect_uri, "Entra ID sign-in enabled");
    }
    let auth = Arc::new(auth::Auth {
        oidc: oidc_config.map(auth::entra::Oidc::new),
        throttle: auth::Throttle::default(),
        tokens: auth::TokenCache::default(),
        rules: auth::SessionRules {
            secure,
            absolute: std::time::Duration::from_secs(config.session_max_secs.max(1)),
        },
    });

    let addr = listener.local_addr()?;
    let state = AppState {
        leptos_options: leptos_options(&config, addr),
        db,
        inventory,
        runs,
        observe,
        costs,
        alerts,
        auth,
        settings,
    };
    let app = router(state.clone(), sessions);
    let (tx, rx) = oneshot::channel::<()>();
    shutdown.push(tx);
    let served = tokio::spawn(async move {
        axum::serve(
            listener.tap_io(no_delay),
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
    });
    Ok(Server {
        addr,
        emulator_url,
        state,
        shutdown,
        tasks,
        served,
        postgres,
        first_admin_password,
    })
}

/// The database the console uses (the embedded one when no URL is given), migrated: for the
/// `users` and `tokens` commands.
pub async fn open_database(
    config: &Config,
) -> Result<(PgPool, Option<pg_embedded::EmbeddedPostgres>), StartError> {
    match &config.database_url {
        Some(url) => Ok((db::connect(url.expose()).await?, None)),
        None => {
            let pg =
                pg_embedded::EmbeddedPostgres::start(&config.data_dir.join("postgres")).await?;
            let url = pg.database_url("mlops_console").await?;
            Ok((db::connect(&url).await?, Some(pg)))
        }
    }
}
