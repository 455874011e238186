//! The test harness: a fresh Postgres database per test, the console on port 0 against the emulator,
//! and waiting on conditions with deadlines — never sleeps.
#![allow(dead_code)]

use mlops_console::config::{AzureMode, Config};
use mlops_console::emulator::Emulator;
use mlops_console::{run, Server};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The server that tests connect to for creating their databases.
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test, dropped when the guard goes.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        use sqlx::Connection;
        let name = format!("mlops_test_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("tests need Postgres at {admin} (set TEST_DATABASE_URL): {e}")
            });
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => unreachable!("a Postgres URL has a path"),
        };
        TestDb { url, name }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        mlops_console::db::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The configuration a test starts from: its own database, port 0, the emulator, the built site.
pub fn config(db: &TestDb) -> Config {
    let mut c = Config::defaults();
    c.database_url = Some(db.url.clone().into());
    c.host = "127.0.0.1".into();
    c.port = 0;
    c.azure = AzureMode::Emulator;
    c.emulator_url = None;
    c.estate = None;
    c.refresh_secs = 3600;
    c.emulator_step_ms = 40;
    c.track_poll_ms = 30;
    c.site_root = workspace_root()
        .join("target/site")
        .to_string_lossy()
        .into_owned();
    c
}

pub struct TestApp {
    pub server: Server,
    pub url: String,
    /// Sends an admin API token with every request.
    pub http: reqwest::Client,
}

/// A client that sends `token` as its bearer credential (requests that set their own keep theirs).
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn start(config: Config) -> TestApp {
        init_logs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = run(listener, config).await.expect("the console starts");
        let url = server.url();
        let token = mlops_console::auth::create_token(
            &server.state.db,
            "tests",
            app::auth::Role::Admin,
            "tests",
            1,
        )
        .await
        .unwrap()
        .token;
        TestApp {
            server,
            url,
            http: client_with(&token),
        }
    }

    /// A client acting with `role`, through an API token of its own.
    pub async fn client_as(&self, role: app::auth::Role) -> reqwest::Client {
        let new = mlops_console::auth::create_token(
            &self.server.state.db,
            &format!("tests-{}", role.as_str()),
            role,
            "tests",
            1,
        )
        .await
        .unwrap();
        client_with(&new.token)
    }

    /// Adds a local account (once) with a known password; returns the password.
    pub async fn user(&self, name: &str, role: app::auth::Role) -> String {
        let password = format!("{name}-correct-horse-battery");
        let _ =
            mlops_console::auth::add_user(&self.server.state.db, name, None, role, Some(&password))
                .await;
        password
    }

    /// Started, with the first inventory loaded.
    pub async fn ready(config: Config) -> TestApp {
        let app = TestApp::start(config).await;
        let probe = format!("{}/readyz", app.url);
        wait_for(
            "the console to be ready",
            Duration::from_secs(30),
            || async {
                app.http
                    .get(&probe)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await;
        app
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.get(path).await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Waits until run `id` is terminal, and returns it.
    pub async fn finished(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, run) = self.json(&format!("/api/v1/runs/{id}")).await;
            if matches!(
                run["status"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            ) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn emulator_url(&self) -> String {
        self.server.emulator_url.clone().expect("emulator mode")
    }
}

/// Where the test run's logs go: every test's server logs into one file, which the secrets test greps.
pub fn log_path() -> PathBuf {
    workspace_root().join("target/test-logs/integration.log")
}

/// Routes tracing to [`log_path`] (once per test binary), at debug for the console.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let path = log_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,mlops_console=debug,tower_http=debug,sqlx=warn",
            ))
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// A standalone emulator on port 0, stoppable to play "Azure is down".
pub struct StandaloneEmulator {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl StandaloneEmulator {
    pub async fn start(db: &TestDb) -> StandaloneEmulator {
        StandaloneEmulator::start_with(db, Duration::from_millis(40)).await
    }

    /// With each stage of a long-running operation lasting `step`.
    pub async fn start_with(db: &TestDb, step: Duration) -> StandaloneEmulator {
        let estate = mlops_console::config::load_estate(None).unwrap();
        let options = mlops_console::emulator::Options { job_step: step };
        let emu = Emulator::start(db.pool().await, estate, options)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(mlops_console::emulator::serve(emu, listener, async {
            let _ = rx.await;
        }));
        StandaloneEmulator {
            url,
            stop: Some(tx),
            task,
        }
    }

    /// `method path` on the emulator, with a bearer token when `token`, and a JSON body if given.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: bool,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.url)
        };
        let mut req = reqwest::Client::new().request(method, url);
        if token {
            req = req.bearer_auth("t");
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.unwrap()
    }

    /// GET with a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, true, None).await
    }

    /// GET with a token, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}

/// Polls `check` until it holds, failing the test with `what` after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A run's log lines, from its JSON.
pub fn log_lines(run: &serde_json::Value) -> Vec<String> {
    run["logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|l| l["line"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The 15 names of the seed's estate.
pub fn seed_names() -> Vec<String> {
    let e = mlops_console::config::load_estate(None).unwrap();
    app::model::Role::ALL
        .iter()
        .map(|r| e.name_of(*r).to_string())
        .collect()
}

/// A client that leaves redirects to the caller (sign-in answers with them), with a bearer token if given.
pub fn no_redirects(token: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(t) = token {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        b = b.default_headers(h);
    }
    b.build().unwrap()
}

/// The whole `Set-Cookie` header for cookie `name`, if the response sets it.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.to_string())
}

/// `name=value` of a `Set-Cookie` header: what a browser sends back.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Where a redirect points (empty when it is not one).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `GET /api/v1/me` with a browser's session cookie.
pub async fn me_with(app: &TestApp, cookie: &str) -> reqwest::Response {
    no_redirects(None)
        .get(format!("{}/api/v1/me", app.url))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
}
