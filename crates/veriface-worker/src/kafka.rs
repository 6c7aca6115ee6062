//! The Kafka consumer (seed 001's verifier): a consumer group on one topic,
//! offsets committed by hand after each message is fully processed, bad
//! messages to a dead-letter topic.
//!
//! Delivery is at least once: a message is committed only after its
//! decision is stored (or it is dead-lettered) and its file deleted, so a
//! crash anywhere before the commit redelivers it; the enrolment is
//! idempotent on the message's coordinates, so the redelivery changes
//! nothing. Scaling out is more processes with the same group id (one
//! partition is processed by one consumer at a time).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde::Serialize;
use tokio::sync::watch;
use veriface_core::enrol::EnrolOutcome;
use veriface_core::identity::Timestamp;
use veriface_core::{Error, ErrorKind};

use crate::processor::{Disposition, Processor};

/// Kafka settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port,...` (`KAFKA_BROKERS`).
    pub brokers: String,
    /// The topic to consume (`KAFKA_TOPIC`, default `veriface.enrollments.v1`).
    pub topic: String,
    /// The consumer group (`KAFKA_GROUP`, default `veriface-worker`).
    pub group: String,
    /// The dead-letter topic (`KAFKA_DLQ_TOPIC`, default `<topic>.dlq`).
    pub dlq_topic: String,
}

impl KafkaConfig {
    /// From the environment; `None` unless `KAFKA_BROKERS` is set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let brokers = var("KAFKA_BROKERS")?;
        let topic = var("KAFKA_TOPIC").unwrap_or_else(|| "veriface.enrollments.v1".to_string());
        Some(Self {
            brokers,
            group: var("KAFKA_GROUP").unwrap_or_else(|| "veriface-worker".to_string()),
            dlq_topic: var("KAFKA_DLQ_TOPIC").unwrap_or_else(|| format!("{topic}.dlq")),
            topic,
        })
    }
}

/// Counters of one consumer run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    /// Templates stored.
    pub enrolled: u64,
    /// `verified = false` decisions recorded.
    pub rejected: u64,
    /// Redeliveries recognised.
    pub duplicates: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// What the dead-letter topic receives: the reason and where the message
/// came from, plus its payload as text when it was UTF-8 (else absent).
#[derive(Debug, Serialize)]
struct DeadLetter<'a> {
    reason: &'a str,
    detail: &'a str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    payload: Option<&'a str>,
    failed_at: String,
}

/// Errors that are not worth retrying more than this many times in a row
/// (an internal failure on one message must not block its partition).
const MAX_INTERNAL_ATTEMPTS: u32 = 3;

/// The consumer.
pub struct KafkaWorker {
    consumer: StreamConsumer,
    producer: FutureProducer,
    processor: Arc<Processor>,
    config: KafkaConfig,
}

impl std::fmt::Debug for KafkaWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaWorker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaWorker {
    /// Creates the consumer (subscribed) and the dead-letter producer.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the clients cannot be created.
    pub fn new(config: KafkaConfig, processor: Arc<Processor>) -> Result<Self, Error> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .create()
            .map_err(kafka_unavailable)?;
        consumer
            .subscribe(&[config.topic.as_str()])
            .map_err(kafka_unavailable)?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(kafka_unavailable)?;
        Ok(Self {
            consumer,
            producer,
            processor,
            config,
        })
    }

    /// Consumes until `shutdown` turns true. The message in hand when it
    /// does is finished and committed first; a message whose processing is
    /// failing with retryable errors is left uncommitted (it will be
    /// redelivered).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when committing an offset fails for a reason
    /// other than a lost partition assignment.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<WorkerStats, Error> {
        let mut stats = WorkerStats::default();
        tracing::info!(topic = %self.config.topic, group = %self.config.group, "kafka worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let msg = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                m = self.consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let Some(disposition) = self.process_with_retries(&msg, &shutdown).await else {
                tracing::info!("stopping with a message unprocessed; it will be redelivered");
                break;
            };
            match disposition {
                Disposition::Processed(EnrolOutcome::Enrolled { .. }) => stats.enrolled += 1,
                Disposition::Processed(EnrolOutcome::Rejected { .. }) => stats.rejected += 1,
                Disposition::Processed(_) => stats.duplicates += 1,
                Disposition::DeadLetter { reason, detail } => {
                    if !self.dead_letter(&msg, reason, &detail, &shutdown).await {
                        break;
                    }
                    stats.dead_lettered += 1;
                }
            }
            self.commit(&msg)?;
        }
        // Nothing is left uncommitted that was processed: each message is
        // committed synchronously above.
        tracing::info!(?stats, "kafka worker stopped");
        Ok(stats)
    }

    /// Processes a message, retrying retryable failures with backoff.
    /// `None` when shutdown was requested while failing.
    async fn process_with_retries(
        &self,
        msg: &BorrowedMessage<'_>,
        shutdown: &watch::Receiver<bool>,
    ) -> Option<Disposition> {
        let key = format!("kafka:{}:{}:{}", msg.topic(), msg.partition(), msg.offset());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.processor.process(msg.payload(), key.clone()).await {
                Ok(d) => return Some(d),
                Err(e) if e.kind() == ErrorKind::Internal && attempt >= MAX_INTERNAL_ATTEMPTS => {
                    return Some(Disposition::DeadLetter {
                        reason: "internal",
                        detail: e.to_string(),
                    });
                }
                Err(e) => {
                    let wait = backoff(attempt);
                    tracing::warn!(error = %e, code = e.code(), attempt, ?wait, "message failed; retrying");
                    if !sleep_unless_shutdown(wait, shutdown).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Publishes to the dead-letter topic and waits for the broker's ack
    /// (so committing the source offset cannot lose the message). Returns
    /// false when shutdown was requested while the broker was failing.
    async fn dead_letter(
        &self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
        detail: &str,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let body = DeadLetter {
            reason,
            detail,
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            payload: msg.payload().and_then(|p| std::str::from_utf8(p).ok()),
            failed_at: Timestamp::now().to_rfc3339(),
        };
        let Ok(json) = serde_json::to_vec(&body) else {
            return true;
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut record = FutureRecord::to(&self.config.dlq_topic)
                .payload(&json)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "veriface-dlq-reason",
                    value: Some(reason),
                }));
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            match self.producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => {
                    tracing::info!(
                        reason,
                        partition = msg.partition(),
                        offset = msg.offset(),
                        "dead-lettered"
                    );
                    return true;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, attempt, "dead-letter publish failed; retrying");
                    if !sleep_unless_shutdown(backoff(attempt), shutdown).await {
                        return false;
                    }
                }
            }
        }
    }

    fn commit(&self, msg: &BorrowedMessage<'_>) -> Result<(), Error> {
        match self.consumer.commit_message(msg, CommitMode::Sync) {
            Ok(()) => Ok(()),
            // The partition moved to another consumer during processing:
            // it will redeliver, and the enrolment is idempotent.
            Err(e) => {
                tracing::warn!(error = %e, "offset commit failed; the message may be redelivered");
                Ok(())
            }
        }
    }
}

/// 0.5 s, 1 s, 2 s ... capped at 30 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)))
        .min(Duration::from_secs(30))
}

async fn sleep_unless_shutdown(d: Duration, shutdown: &watch::Receiver<bool>) -> bool {
    let mut s = shutdown.clone();
    if *s.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = s.changed() => !*s.borrow(),
    }
}

fn kafka_unavailable(e: rdkafka::error::KafkaError) -> Error {
    Error::Unavailable {
        what: "kafka",
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(50), Duration::from_secs(30));
    }
}
