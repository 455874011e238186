//! `mlops-console`: parse configuration, set up tracing, run the console (or the emulator alone).

use clap::Parser;
use mlops_console::config::{Cli, Command};
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
        .init();
    let cli = Cli::parse();
    let config = cli.config;
    let result = match cli.command {
        Some(Command::Emulator { port }) => serve_emulator(config, port).await,
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
