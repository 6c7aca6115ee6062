//! veriface's server wiring: configuration, telemetry, application start-up and graceful shutdown.
