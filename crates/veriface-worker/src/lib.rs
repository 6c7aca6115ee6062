//! veriface's asynchronous verifier: Kafka consumer and the embedded durable queue worker.
//!
//! Both feed the same use-case, [`veriface_core::enrol::IdentityService::enrol`]:
//! decode, detect (exactly one usable face, else `verified = false` with a
//! reason code), embed, store the template, and only then delete the photo
//! (Kafka) or drop it from the queue row (embedded).
//!
//! - [`kafka::KafkaWorker`]: seed 001's pipeline. Messages
//!   `{"username", "path"}` on a topic, paths resolved under
//!   [`images_root::ImagesRoot`], offsets committed by hand after each
//!   message, unprocessable messages to a dead-letter topic.
//! - [`queue::QueueWorker`]: drains the job table that
//!   `POST /v1/enrollments` fills, inside `veriface serve`; no broker.

pub mod images_root;
pub mod kafka;
pub mod message;
pub mod processor;
pub mod queue;

pub use images_root::ImagesRoot;
pub use kafka::{KafkaConfig, KafkaWorker, WorkerStats};
pub use processor::{Disposition, Processor};
pub use queue::{QueueWaker, QueueWorker, QueueWorkerConfig};
