//! `veriface serve`: the HTTP service on embedded defaults (a local data
//! directory, no other service needed). Settings come from the
//! environment (`docs/configuration.md`), then from these flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use veriface_server::{telemetry, Application, Overrides, Settings};

use crate::output::CliError;

/// Flags of `veriface serve` (each overrides its environment variable).
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port to listen on (default: $PORT, else 5000; 0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on (default: $VERIFACE_BIND, else 127.0.0.1; a container needs 0.0.0.0).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Directory for uploads and other state (default: $VERIFACE_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Inference jobs run at once (default: $VERIFACE_WORKERS, else the number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// Requests that may wait for a worker before the server answers 503 (default: 4 per worker).
    #[arg(long)]
    queue: Option<usize>,
    /// Largest request body in bytes (default: $VERIFACE_MAX_BODY_BYTES, else 10 MiB).
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Request timeout in seconds (default: $VERIFACE_REQUEST_TIMEOUT_SECS, else 30).
    #[arg(long)]
    request_timeout: Option<u64>,
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(args: ServeArgs, models_dir: Option<PathBuf>) -> Result<ExitCode, CliError> {
    let config_error = |e: anyhow::Error| CliError::new("invalid_configuration", format!("{e:#}"));
    let settings = Settings::from_env()
        .and_then(|s| {
            s.with_overrides(&Overrides {
                bind: args.bind,
                port: args.port,
                data_dir: args.data_dir,
                models_dir,
                workers: args.workers,
                queue_capacity: args.queue,
                body_limit: args.max_body_bytes,
                request_timeout_secs: args.request_timeout,
            })
        })
        .map_err(config_error)?;
    telemetry::init(telemetry::subscriber(
        settings.log_format,
        &settings.log_filter,
        std::io::stdout,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::from)?;
    runtime.block_on(async {
        let app = Application::build(settings)
            .await
            .map_err(|e| CliError::new("server_error", format!("{e:#}")))?;
        app.run_until_stopped().await.map_err(CliError::from)
    })?;
    Ok(ExitCode::SUCCESS)
}
