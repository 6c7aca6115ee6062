//! Webhook deliveries: when a session with a `webhook_url` reaches a final
//! state, its status (the `check_status` body) is POSTed there, signed,
//! and retried with exponential backoff until a 2xx answer or the last
//! attempt. Deliveries are rows in the database, so they survive a
//! restart.
//!
//! Signature: `X-Veriface-Signature: sha256=HEX` where HEX is the
//! HMAC-SHA256, keyed with `VERIFACE_WEBHOOK_SECRET`, of
//! `"{X-Veriface-Timestamp}.{body}"` (the Unix time in seconds, a dot, the
//! exact body bytes). A receiver recomputes it, compares in constant time
//! and refuses old timestamps (replays).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use veriface_core::identity::Timestamp;
use veriface_core::session::types::PendingWebhook;
use veriface_core::session::SessionService;
use veriface_http::routes::sessions::SessionStatus;
use veriface_store::blob::Secret;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-veriface-signature";
/// The timestamp header (Unix seconds, signed with the body).
pub const TIMESTAMP_HEADER: &str = "x-veriface-timestamp";
/// The event header: always `session.finished`.
pub const EVENT_HEADER: &str = "x-veriface-event";

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The signing key.
    pub secret: Secret,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub retry_base: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// Timeout of one POST.
    pub timeout: Duration,
    /// Wait between polls when nothing is due.
    pub poll: Duration,
}

/// `sha256=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The wait before attempt `attempts + 1` after `attempts` failures.
pub fn backoff(config: &WebhookConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    config
        .retry_base
        .saturating_mul(factor)
        .min(config.retry_max)
}

/// Sends due webhooks until `stop` turns true.
pub async fn run(sessions: SessionService, config: WebhookConfig, mut stop: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the webhook client cannot start; no webhooks will be sent");
            return;
        }
    };
    // Longer than one delivery can take, so a slow receiver is not sent
    // the same event twice at once.
    let lease = config.timeout * 2;
    loop {
        if *stop.borrow() {
            break;
        }
        match sessions.repo().claim_webhook(Timestamp::now(), lease).await {
            Ok(Some(pending)) => deliver(&sessions, &client, &config, pending).await,
            Ok(None) | Err(_) => {
                tokio::select! {
                    _ = stop.changed() => {}
                    () = tokio::time::sleep(config.poll) => {}
                }
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(session = %pending.session.id, attempt = pending.attempts))]
async fn deliver(
    sessions: &SessionService,
    client: &reqwest::Client,
    config: &WebhookConfig,
    pending: PendingWebhook,
) {
    let Some(url) = pending.session.webhook_url.as_deref() else {
        return;
    };
    let body = match serde_json::to_vec(&SessionStatus::from(&pending.session)) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "serialising the webhook body failed");
            return;
        }
    };
    let timestamp = Timestamp::now().as_millis() / 1000;
    let signature = sign(config.secret.expose().as_bytes(), timestamp, &body);
    let result = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(EVENT_HEADER, "session.finished")
        .body(body)
        .send()
        .await;
    let delivered = match &result {
        Ok(res) if res.status().is_success() => true,
        Ok(res) => {
            tracing::warn!(status = res.status().as_u16(), "webhook refused");
            false
        }
        // The URL is the client's; its host is not personal data, but the
        // error text may carry the full URL: log only the kind.
        Err(e) => {
            tracing::warn!(
                timeout = e.is_timeout(),
                connect = e.is_connect(),
                "webhook delivery failed"
            );
            false
        }
    };
    let now = Timestamp::now();
    let retry_at = (!delivered && pending.attempts < config.max_attempts)
        .then(|| now.plus(backoff(config, pending.attempts)));
    if !delivered && retry_at.is_none() {
        tracing::warn!("webhook given up after the last attempt");
    }
    metrics::counter!("veriface_webhook_deliveries_total", "result" => if delivered { "delivered" } else { "failed" })
        .increment(1);
    if let Err(e) = sessions
        .repo()
        .record_webhook(&pending.session.id, delivered, retry_at, now)
        .await
    {
        tracing::warn!(error = %e, "recording the webhook attempt failed; it is retried after its lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe"), on the bytes `sign` feeds the MAC.
    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // "what do ya want " + "for nothing?" split as "{ts}.{body}" is not
        // possible, so check the construction against a direct HMAC.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let direct: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            direct,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            sign(b"k", 1_700_000_000, b"{\"a\":1}"),
            format!("sha256={expected}")
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = WebhookConfig {
            secret: Secret::new("s"),
            max_attempts: 8,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
        };
        let waits: Vec<u64> = (1..=6).map(|a| backoff(&c, a).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
    }
}
