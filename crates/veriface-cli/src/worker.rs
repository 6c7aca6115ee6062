//! `veriface worker`: the asynchronous verifier as its own process.
//!
//! With `KAFKA_BROKERS` set it consumes seed 001's enrolment topic; without
//! it (or with `--embedded`) it drains the embedded job queue in the
//! database. Configured by environment (see `docs/configuration.md`):
//! `KAFKA_BROKERS`, `KAFKA_TOPIC`, `KAFKA_GROUP`, `KAFKA_DLQ_TOPIC`,
//! `VERIFACE_IMAGES_ROOT`, `DATABASE_URL` (else a SQLite file in
//! `VERIFACE_DATA_DIR`), `REDIS_URL`. SIGTERM or SIGINT: the message in
//! hand is finished and committed, then the process exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tokio::sync::watch;
use veriface_core::enrol::{IdentityConfig, IdentityService};
use veriface_store::db::IdentityStore;
use veriface_vision::models_dir::default_models_dir;
use veriface_vision::FaceEngine;
use veriface_worker::{
    ImagesRoot, KafkaConfig, KafkaWorker, Processor, QueueWorker, QueueWorkerConfig,
};

use crate::output::CliError;

/// Arguments of `veriface worker` (the rest comes from the environment).
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// Drain the embedded job queue even when KAFKA_BROKERS is set.
    #[arg(long)]
    embedded: bool,
    /// Where the SQLite store lives when DATABASE_URL is unset (default: $VERIFACE_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory message paths are resolved under (default: $VERIFACE_IMAGES_ROOT).
    #[arg(long)]
    images_root: Option<PathBuf>,
}

fn err(code: &'static str, e: impl std::fmt::Display) -> CliError {
    CliError::new(code, e.to_string())
}

/// Runs the worker until SIGTERM/SIGINT.
///
/// # Errors
/// Configuration, model, database or broker failures at start-up.
pub fn run(args: WorkerArgs, models_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| err("internal", e))?;
    rt.block_on(run_async(args, models_dir))
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already installed, which is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

async fn run_async(args: WorkerArgs, models_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let dir = models_dir.unwrap_or_else(default_models_dir);
    let engine = tokio::task::spawn_blocking(move || FaceEngine::load(&dir))
        .await
        .map_err(|e| err("internal", e))?
        .map_err(CliError::from_engine)?;
    let data_dir = args
        .data_dir
        .or_else(|| std::env::var_os("VERIFACE_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let store = IdentityStore::open_from_env(&data_dir)
        .await
        .map_err(|e| err(e.code(), format!("{e}: {}", source_text(&e))))?;
    let (db, repo) = (store.db, store.repo);
    let service = Arc::new(IdentityService::new(
        repo,
        Arc::new(engine),
        IdentityConfig::default(),
    ));
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing the message in hand");
        let _ = stop.send(true);
    });

    match KafkaConfig::from_env().filter(|_| !args.embedded) {
        Some(kafka) => {
            let root = args
                .images_root
                .or_else(|| std::env::var_os("VERIFACE_IMAGES_ROOT").map(PathBuf::from))
                .ok_or_else(|| {
                    err(
                        "invalid_configuration",
                        "VERIFACE_IMAGES_ROOT must name the shared images directory",
                    )
                })?;
            let root = ImagesRoot::new(&root).map_err(|e| {
                err(
                    "invalid_configuration",
                    format!("images root {}: {e}", root.display()),
                )
            })?;
            let processor = Arc::new(Processor::new(service, root));
            let worker = KafkaWorker::new(kafka, processor).map_err(|e| err(e.code(), e))?;
            worker.run(stop_rx).await.map_err(|e| err(e.code(), e))?;
        }
        None => {
            let worker = QueueWorker::new(db, service, QueueWorkerConfig::default());
            let done = worker.run(stop_rx).await;
            tracing::info!(jobs = done, "queue worker stopped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn source_text(e: &veriface_core::Error) -> String {
    std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default()
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
