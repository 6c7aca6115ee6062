//! veriface's asynchronous verifier: Kafka consumer and the embedded durable queue worker.
