//! `mlops-console`: parse configuration, set up tracing, run the console (or the emulator alone).

use clap::Parser;
use mlops_console::config::{Cli, Command, TokensCommand, UsersCommand};
use mlops_console::{emulator, run};
use tracing_subscriber::EnvFilter;

// glibc's malloc spends a third of an SSR request in locks and free-list work under load; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn")),
        )
        // Logs on stderr; stdout carries what commands print (URLs, a token, a password shown once).
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = cli.config;
    let result = match cli.command {
        Some(Command::Emulator { port }) => serve_emulator(config, port).await,
        Some(Command::Users(cmd)) => users(config, cmd).await,
        Some(Command::Tokens(cmd)) => tokens(config, cmd).await,
        None | Some(Command::Serve) => serve(config).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("mlops-console: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: mlops_console::config::Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let server = run(listener, config).await?;
    println!("mlops-console is running at {}", server.url());
    if let Some(password) = &server.first_admin_password {
        println!(
            "First start: sign in as `admin` with the password {password} — shown this once; add your own accounts under Admin."
        );
    }
    if let Some(url) = &server.emulator_url {
        println!("Azure emulator at {url} (faults: {url}/_emulator/faults)");
    }
    shutdown_signal().await;
    println!("stopping…");
    server.stop().await;
    Ok(())
}

async fn serve_emulator(
    config: mlops_console::config::Config,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    let estate = mlops_console::config::load_estate(config.estate.as_deref())?;
    let (db, pg) = match &config.database_url {
        Some(url) => (mlops_console::db::connect(url.expose()).await?, None),
        None => {
            let pg = mlops_console::pg_embedded::EmbeddedPostgres::start(
                &config.data_dir.join("emulator-postgres"),
            )
            .await?;
            let url = pg.database_url("mlops_emulator").await?;
            (mlops_console::db::connect(&url).await?, Some(pg))
        }
    };
    let emu =
        emulator::Emulator::start(db.clone(), estate, mlops_console::emulator_options(&config))
            .await?;
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), port)).await?;
    println!(
        "Azure emulator is running at http://{}",
        listener.local_addr()?
    );
    emulator::serve(emu, listener, shutdown_signal()).await?;
    db.close().await;
    if let Some(pg) = pg {
        pg.stop().await;
    }
    Ok(())
}

fn role(s: &str) -> Result<app::auth::Role, Box<dyn std::error::Error>> {
    app::auth::Role::parse(s)
        .ok_or_else(|| format!("--role must be viewer, operator or admin, not '{s}'").into())
}

/// Runs `work` on the console's database (starting the embedded one when no URL is given), then closes it.
async fn with_database<F, Fut>(
    config: &mlops_console::config::Config,
    work: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: FnOnce(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    let (db, pg) = mlops_console::open_database(config).await?;
    let result = work(db.clone()).await;
    db.close().await;
    if let Some(pg) = pg {
        pg.stop().await;
    }
    result
}

async fn users(
    config: mlops_console::config::Config,
    cmd: UsersCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    with_database(&config, |db| async move {
        match cmd {
            UsersCommand::Add {
                name,
                role: r,
                display_name,
                password_stdin,
            } => {
                let password = if password_stdin {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    Some(line.trim_end_matches(['\r', '\n']).to_string())
                } else {
                    None
                };
                let new = mlops_console::auth::add_user(
                    &db,
                    &name,
                    display_name.as_deref(),
                    role(&r)?,
                    password.as_deref(),
                )
                .await?;
                println!("added {} ({})", new.user.name, new.user.role.as_str());
                if let Some(p) = new.password {
                    println!("password (shown once): {p}");
                }
            }
            UsersCommand::List => {
                for u in mlops_console::auth::list_users(&db).await? {
                    println!(
                        "{}\t{}\t{}{}",
                        u.name,
                        u.role.as_str(),
                        u.source,
                        if u.disabled { "\tdisabled" } else { "" }
                    );
                }
            }
        }
        Ok(())
    })
    .await
}

async fn tokens(
    config: mlops_console::config::Config,
    cmd: TokensCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    with_database(&config, |db| async move {
        match cmd {
            TokensCommand::Create {
                name,
                role: r,
                days,
            } => {
                let new =
                    mlops_console::auth::create_token(&db, &name, role(&r)?, "cli", days).await?;
                println!(
                    "token {} ({}, expires {}):",
                    new.view.name,
                    new.view.role.as_str(),
                    new.view.expires_at.format("%Y-%m-%d")
                );
                println!("{}", new.token);
                eprintln!("(shown once; only its digest is stored)");
            }
            TokensCommand::Revoke { id } => {
                mlops_console::auth::revoke_token(&db, &id).await?;
                println!("revoked {id}");
            }
        }
        Ok(())
    })
    .await
}
