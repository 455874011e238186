//! A private Postgres cluster for a machine with no `DATABASE_URL`: made with the machine's PostgreSQL
//! binaries in a data directory that is reused across restarts, on a loopback port picked at start, and
//! stopped cleanly on exit. initdb refuses to run as root, so as root the cluster runs as `postgres`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error("no PostgreSQL binaries found (looked for initdb via MLOPS_PG_BIN, pg_config, /usr/lib/postgresql/*/bin and PATH); install PostgreSQL or set DATABASE_URL")]
    NoBinaries,
    #[error("running as root, but there is no unprivileged `postgres` user to run the cluster as")]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("the embedded Postgres did not become ready within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct EmbeddedPostgres {
    child: Option<Child>,
    data_dir: PathBuf,
    port: u16,
}

/// The unprivileged user to run as when we are root.
#[derive(Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EmbeddedPgError + '_ {
    move |source| EmbeddedPgError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The directory holding `initdb` and `postgres`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_initdb = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(dir) = std::env::var("MLOPS_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has_initdb(d));
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&dir) {
            return Some(dir);
        }
    }
    // Debian/Ubuntu keep server binaries off PATH, one directory per major version: take the newest.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_initdb(d))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| has_initdb(d))
            .map(|d| {
                // Follow a symlinked initdb to the real bin directory, where its siblings live.
                std::fs::canonicalize(d.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(d)
            })
    })
}

fn run_as() -> Result<Option<RunAs>, EmbeddedPgError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or(EmbeddedPgError::NoPostgresUser)?;
    Ok(Some(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

fn command(bin: &Path, run_as: Option<RunAs>) -> Command {
    let mut cmd = std::process::Command::new(bin);
    if let Some(RunAs { uid, gid }) = run_as {
        cmd.uid(uid).gid(gid);
        // `postgres` must not inherit root's HOME for its own files.
        cmd.env("HOME", "/tmp");
    }
    Command::from(cmd)
}

fn chown_tree(path: &Path, who: RunAs) -> Result<(), EmbeddedPgError> {
    let owner = (
        Some(nix::unistd::Uid::from_raw(who.uid)),
        Some(nix::unistd::Gid::from_raw(who.gid)),
    );
    nix::unistd::chown(path, owner.0, owner.1).map_err(|e| EmbeddedPgError::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_err(path))? {
            chown_tree(&entry.map_err(io_err(path))?.path(), who)?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, EmbeddedPgError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err(Path::new("127.0.0.1:0")))?;
    Ok(l.local_addr()
        .map_err(io_err(Path::new("127.0.0.1:0")))?
        .port())
}

async fn check(mut cmd: Command, what: &str) -> Result<(), EmbeddedPgError> {
    let out = cmd.output().await.map_err(|e| EmbeddedPgError::Command {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EmbeddedPgError::Command {
            what: what.into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl EmbeddedPostgres {
    /// Starts the cluster in `data_dir`, creating it on first use.
    pub async fn start(data_dir: &Path) -> Result<EmbeddedPostgres, EmbeddedPgError> {
        let bin = find_bin_dir().ok_or(EmbeddedPgError::NoBinaries)?;
        let who = run_as()?;
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        let data_dir = std::fs::canonicalize(data_dir).map_err(io_err(data_dir))?;
        if let Some(who) = who {
            chown_tree(&data_dir, who)?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&data_dir))?;

        if !data_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %data_dir.display(), "creating the embedded Postgres cluster");
            let mut initdb = command(&bin.join("initdb"), who);
            initdb
                .arg("-D")
                .arg(&data_dir)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ])
                .stdin(Stdio::null());
            check(initdb, "initdb").await?;
        }

        // A previous run killed without a clean stop may have left its postmaster running: stop it first.
        if data_dir.join("postmaster.pid").exists() {
            let mut stop = command(&bin.join("pg_ctl"), who);
            stop.arg("stop")
                .arg("-D")
                .arg(&data_dir)
                .args(["-m", "fast", "-w"]);
            let _ = stop.output().await;
        }

        let port = free_port()?;
        let log_path = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let mut postgres = command(&bin.join("postgres"), who);
        postgres
            .arg("-D")
            .arg(&data_dir)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_err(&log_path))?)
            .stderr(log);
        // If this process dies without stopping the cluster, the kernel tells postgres to shut down fast.
        unsafe {
            postgres.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT)
                    .map_err(std::io::Error::from)
            });
        }
        let child = postgres.spawn().map_err(|e| EmbeddedPgError::Command {
            what: "postgres".into(),
            detail: e.to_string(),
        })?;
        let mut pg = EmbeddedPostgres {
            child: Some(child),
            data_dir,
            port,
        };
        pg.wait_ready(&log_path).await?;
        Ok(pg)
    }

    async fn wait_ready(&mut self, log_path: &Path) -> Result<(), EmbeddedPgError> {
        let limit = Duration::from_secs(60);
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(EmbeddedPgError::Command {
                        what: "postgres".into(),
                        detail: format!("exited with {status}; see {}", log_path.display()),
                    });
                }
            }
            let url = self.admin_url();
            if let Ok(conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await {
                let _ = sqlx::Connection::close(conn).await;
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EmbeddedPgError::NotReady(limit, log_path.to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL of the application database, created if missing.
    pub async fn database_url(&self, name: &str) -> Result<String, sqlx::Error> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url()).await?;
        let exists: bool =
            sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query(&format!("create database \"{}\"", name.replace('"', "")))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.port, name
        ))
    }

    /// Fast shutdown: disconnect clients, write a checkpoint, exit.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
                Ok(_) => {
                    tracing::info!(dir = %self.data_dir.display(), "embedded Postgres stopped")
                }
                Err(_) => {
                    tracing::warn!("embedded Postgres did not stop in 30 s; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Last resort when `stop` was not awaited: ask for a fast shutdown without waiting.
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real cluster: created, used, stopped, and started again with its data still there.
    #[tokio::test]
    async fn creates_reuses_and_stops_a_cluster() {
        if find_bin_dir().is_none() {
            panic!("PostgreSQL binaries are required for this test (make test installs them)");
        }
        let tmp = tempfile::tempdir().unwrap();
        // The cluster user must be able to reach the data dir.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("pg");

        let pg = EmbeddedPostgres::start(&dir).await.unwrap();
        let url = pg.database_url("probe").await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("create table kept (v int)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("insert into kept values (42)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        pg.stop().await;
        assert!(
            !dir.join("postmaster.pid").exists(),
            "clean stop removes the pid file"
        );

        let pg = EmbeddedPostgres::start(&dir).await.unwrap();
        let url = pg.database_url("probe").await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let v: i32 = sqlx::query_scalar("select v from kept")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(v, 42);
        pool.close().await;
        pg.stop().await;
    }
}
