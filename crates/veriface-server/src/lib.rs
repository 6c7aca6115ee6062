//! veriface's server wiring: configuration, telemetry, application start-up and graceful shutdown.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use veriface_server::{config::Settings, startup::Application};
//!
//! let settings = Settings::from_env()?; // PORT, VERIFACE_DATA_DIR, ...
//! let app = Application::build(settings).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped().await?;
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod sessions;
pub mod startup;
pub mod telemetry;

pub use config::{Overrides, Settings};
pub use startup::{Application, ShutdownHandle};
