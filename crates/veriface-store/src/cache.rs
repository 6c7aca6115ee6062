//! The Redis cache of subject statuses and templates
//! ([`veriface_core::identity::Cache`]).
//!
//! Two keys per subject, each with a TTL: `<prefix>:s:<username>` (status,
//! JSON) and `<prefix>:t:<username>` (templates of one model, JSON).
//! Invalidation deletes both. Every operation has a short timeout; a
//! failure marks the cache down, answers "miss" and is retried only after
//! `retry_interval`, so a dead Redis costs the service one timeout per
//! interval instead of one per request. An invalidation lost while Redis
//! was unreachable would leave a stale entry behind, so after such a loss
//! the first reconnection deletes every key under the prefix before the
//! cache is used again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use veriface_core::identity::{
    Cache, CacheHealth, CacheState, ModelId, SubjectStatus, Template, Username,
};
use veriface_core::{Error, Result};

/// Redis settings.
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    /// Key prefix (several deployments or tests can share one Redis).
    pub prefix: String,
    /// Lifetime of a cached entry: the bound on how stale an entry can be
    /// after a missed invalidation race.
    pub ttl: Duration,
    /// Timeout of one operation, connecting included.
    pub op_timeout: Duration,
    /// After a failure, how long to answer "miss" without trying Redis.
    pub retry_interval: Duration,
}

// The URL may hold a password: never print it.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Defaults for `url` (`redis://host:port/db`): prefix `veriface`, TTL
    /// 5 minutes, 250 ms operation timeout, retry every 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "veriface".to_string(),
            ttl: Duration::from_secs(300),
            op_timeout: Duration::from_millis(250),
            retry_interval: Duration::from_secs(5),
        }
    }

    /// `REDIS_URL`, if set and not empty.
    pub fn from_env() -> Option<Self> {
        std::env::var("REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .map(|u| Self::new(u.trim()))
    }
}

const UP: u8 = 1;
const DOWN: u8 = 2;

/// The Redis implementation of [`Cache`].
#[derive(Debug)]
pub struct RedisCache {
    client: redis::Client,
    config: RedisConfig,
    conn: Mutex<Option<MultiplexedConnection>>,
    retry_at: Mutex<Option<Instant>>,
    state: AtomicU8,
    needs_flush: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct CachedTemplates {
    model: ModelId,
    templates: Vec<Template>,
}

impl RedisCache {
    /// Parses the URL and tries to connect once. An unreachable Redis is
    /// not an error: the cache starts down and keeps retrying.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (`invalid_redis_url`) for a malformed URL.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let client = redis::Client::open(config.url.as_str()).map_err(|_| Error::InvalidInput {
            code: "invalid_redis_url",
            message: "REDIS_URL is not a valid redis:// URL".to_string(),
        })?;
        let cache = Self {
            client,
            config,
            conn: Mutex::new(None),
            retry_at: Mutex::new(None),
            state: AtomicU8::new(DOWN),
            needs_flush: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        let _ = cache.connection().await;
        Ok(cache)
    }

    fn key(&self, kind: &str, username: &Username) -> String {
        format!("{}:{kind}:{}", self.config.prefix, username.as_str())
    }

    /// A live connection, or `None` while Redis is down.
    async fn connection(&self) -> Option<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Some(c.clone());
        }
        {
            let retry_at = self.retry_at.lock().await;
            if retry_at.is_some_and(|t| Instant::now() < t) {
                return None;
            }
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.op_timeout))
            .set_response_timeout(Some(self.config.op_timeout));
        let attempt = async {
            let mut c = self
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            if self.needs_flush.load(Ordering::SeqCst) {
                self.flush_prefix(&mut c).await?;
                self.needs_flush.store(false, Ordering::SeqCst);
            }
            Ok::<_, redis::RedisError>(c)
        };
        // The flush may scan many keys; give it more than one op's time.
        match tokio::time::timeout(self.config.op_timeout * 8, attempt).await {
            Ok(Ok(c)) => {
                if self.state.swap(UP, Ordering::SeqCst) != UP {
                    tracing::info!("redis cache is up");
                }
                *slot = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                drop(slot);
                self.mark_down(&e.to_string()).await;
                None
            }
            Err(_) => {
                drop(slot);
                self.mark_down("connect timed out").await;
                None
            }
        }
    }

    async fn mark_down(&self, why: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.conn.lock().await = None;
        *self.retry_at.lock().await = Some(Instant::now() + self.config.retry_interval);
        if self.state.swap(DOWN, Ordering::SeqCst) != DOWN {
            // The error text names no key or value.
            tracing::warn!(
                error = why,
                "redis cache is down; serving from the database"
            );
        }
    }

    /// Deletes every key under the prefix (after lost invalidations).
    async fn flush_prefix(&self, c: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let pattern = format!("{}:*", self.config.prefix);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(c)
                .await?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query_async::<()>(c).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Runs one command; failures mark the cache down.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(self.config.op_timeout, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.mark_down(&e.to_string()).await;
                None
            }
            Err(_) => {
                self.mark_down("operation timed out").await;
                None
            }
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, key: String) -> Option<T> {
        let raw: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(key)).await.flatten();
        let found = raw.and_then(|b| serde_json::from_slice(&b).ok());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    async fn put_json<T: Serialize>(&self, key: String, value: &T) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        let ttl_ms = u64::try_from(self.config.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let _: Option<()> = self
            .run(redis::cmd("SET").arg(key).arg(bytes).arg("PX").arg(ttl_ms))
            .await;
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get_subject(&self, username: &Username) -> Option<SubjectStatus> {
        self.get_json(self.key("s", username)).await
    }

    async fn put_subject(&self, status: &SubjectStatus) {
        self.put_json(self.key("s", &status.username), status).await;
    }

    async fn get_templates(&self, username: &Username, model: &ModelId) -> Option<Vec<Template>> {
        let cached: CachedTemplates = self.get_json(self.key("t", username)).await?;
        (cached.model == *model).then_some(cached.templates)
    }

    async fn put_templates(&self, username: &Username, model: &ModelId, templates: &[Template]) {
        let value = CachedTemplates {
            model: model.clone(),
            templates: templates.to_vec(),
        };
        self.put_json(self.key("t", username), &value).await;
    }

    async fn invalidate(&self, username: &Username) {
        let del = redis::cmd("DEL")
            .arg(self.key("s", username))
            .arg(self.key("t", username))
            .clone();
        if self.run::<()>(&del).await.is_none() {
            // Redis may still hold the old entries and come back with them.
            self.needs_flush.store(true, Ordering::SeqCst);
        }
    }

    fn health(&self) -> CacheHealth {
        CacheHealth {
            backend: "redis",
            state: if self.state.load(Ordering::SeqCst) == UP {
                CacheState::Up
            } else {
                CacheState::Down
            },
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}
