//! Optional API keys and a per-key token-bucket rate limit.
//!
//! Keys are kept only as SHA-256 digests, so a memory dump or a debug log
//! of the state reveals no usable key; a presented key is hashed and looked
//! up. Without configured keys every request is admitted (and not rate
//! limited: there is no key to count against).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A SHA-256 digest of a key.
pub type KeyDigest = [u8; 32];

/// The configured API keys, hashed.
#[derive(Default)]
pub struct ApiKeys {
    digests: HashSet<KeyDigest>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("count", &self.digests.len())
            .finish()
    }
}

impl ApiKeys {
    /// Hashes each non-empty, trimmed key; the plaintext is not kept.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            digests: keys
                .into_iter()
                .map(|k| k.as_ref().trim().to_string())
                .filter(|k| !k.is_empty())
                .map(|k| digest(&k))
                .collect(),
        }
    }

    /// Whether any key is configured (and so required).
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The digest of `presented` if it is a configured key.
    pub fn verify(&self, presented: &str) -> Option<KeyDigest> {
        // Only digests are compared, so lookup timing depends on the hash
        // of the presented key, never on how much of a real key it shares.
        let d = digest(presented.trim());
        self.digests.contains(&d).then_some(d)
    }
}

fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// Rate-limit settings: `rate` requests per second refilling a bucket of
/// `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per key (0 disables the limit).
    pub per_second: f64,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 20,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets, one per key digest.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<KeyDigest, Bucket>>,
}

impl RateLimiter {
    /// A limiter with these settings.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for `key`; on refusal returns how long until one is
    /// available.
    pub fn check(&self, key: &KeyDigest) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &KeyDigest, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        if per_second <= 0.0 {
            return Ok(());
        }
        let capacity = f64::from(burst.max(1));
        // A poisoned lock only means another request panicked mid-update;
        // the buckets are still usable numbers.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(*key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_by_digest_and_not_kept_in_clear() {
        let keys = ApiKeys::new(["alpha-key", " beta-key ", ""]);
        assert_eq!(keys.len(), 2);
        assert!(keys.verify("alpha-key").is_some());
        assert!(keys.verify("beta-key").is_some());
        assert!(keys.verify("alpha").is_none());
        assert!(!format!("{keys:?}").contains("alpha"));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let key = digest("k");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&key, t0).is_ok());
        }
        let wait = limiter.check_at(&key, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6);
        assert!(limiter
            .check_at(&key, t0 + Duration::from_millis(500))
            .is_ok());
        // Another key has its own bucket.
        assert!(limiter.check_at(&digest("other"), t0).is_ok());
    }

    #[test]
    fn a_zero_rate_disables_the_limit() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.0,
            burst: 1,
        });
        for _ in 0..100 {
            assert!(limiter.check(&digest("k")).is_ok());
        }
    }
}
