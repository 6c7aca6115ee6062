//! Settings: built-in defaults, then environment variables, then
//! command-line flags (each layer overrides the one before).
//!
//! Every variable is listed in `docs/configuration.md`. Seed 000's S3
//! variable names (`aws_access_key_id`, `aws_secret_access_key`,
//! `region_name`, `bucketName`) work unchanged, as do their uppercase and
//! `AWS_*` forms.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use veriface_store::blob::{S3Config, Secret};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`VERIFACE_BIND`, default 127.0.0.1).
    pub bind: IpAddr,
    /// Port (`PORT`, default 5000; 0 picks a free one).
    pub port: u16,
    /// Everything the embedded defaults keep (`VERIFACE_DATA_DIR`,
    /// default `./data`); uploads go to `<data_dir>/blobs` unless S3 is
    /// configured.
    pub data_dir: PathBuf,
    /// The dlib model files (`VERIFACE_MODELS_DIR`, default `./models`).
    pub models_dir: PathBuf,
    /// Inference jobs that run at once (`VERIFACE_WORKERS`, default: the
    /// number of CPUs).
    pub workers: usize,
    /// Jobs that may wait for a worker before requests are shed with 503
    /// (`VERIFACE_QUEUE_CAPACITY`, default 4 per worker).
    pub queue_capacity: usize,
    /// Largest request body in bytes (`VERIFACE_MAX_BODY_BYTES`, default
    /// 10 MiB).
    pub body_limit: usize,
    /// Longest a request may take (`VERIFACE_REQUEST_TIMEOUT_SECS`,
    /// default 30).
    pub request_timeout: Duration,
    /// Longest in-flight requests may take to finish after SIGTERM
    /// (`VERIFACE_SHUTDOWN_GRACE_SECS`, default 30).
    pub shutdown_grace: Duration,
    /// Largest image width x height (`VERIFACE_MAX_IMAGE_PIXELS`, default
    /// 40 000 000).
    pub max_image_pixels: u64,
    /// Largest image width or height (`VERIFACE_MAX_IMAGE_SIDE`, default
    /// 16384).
    pub max_image_side: u32,
    /// Smallest face side to look for, in pixels
    /// (`VERIFACE_MIN_FACE_SIZE`; default: 12% of the image's shorter
    /// side, at least 40).
    pub min_face_size: Option<u32>,
    /// Default match threshold (`VERIFACE_THRESHOLD`, default 0.6).
    pub threshold: f32,
    /// API keys (`VERIFACE_API_KEYS`, comma-separated, and/or
    /// `VERIFACE_API_KEYS_FILE`, one per line); hashed at startup and then
    /// dropped. Never printed by `Debug`.
    pub api_keys: Vec<Secret>,
    /// Requests per second per key (`VERIFACE_RATE_LIMIT_PER_SECOND`,
    /// default 10; 0 disables).
    pub rate_limit_per_second: f64,
    /// Burst per key (`VERIFACE_RATE_LIMIT_BURST`, default 20).
    pub rate_limit_burst: u32,
    /// S3 storage, when a bucket is configured.
    pub s3: Option<S3Config>,
    /// The identity database (`DATABASE_URL`: `postgres://...` or
    /// `sqlite:...`; default: the SQLite file `<data_dir>/veriface.db`).
    /// Never printed by `Debug` (it may hold a password).
    pub database_url: Option<Secret>,
    /// The Redis cache in front of it (`REDIS_URL`; default none). Never
    /// printed by `Debug`.
    pub redis_url: Option<Secret>,
    /// Whether the server drains the enrolment queue itself
    /// (`VERIFACE_EMBEDDED_WORKER`, default true; set false when separate
    /// `veriface worker` processes do).
    pub embedded_worker: bool,
    /// Log format (`VERIFACE_LOG_FORMAT`: `json` (default) or `pretty`).
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG`, default `info`).
    pub log_filter: String,
    /// Verification sessions (issue 5).
    pub sessions: SessionSettings,
}

/// Verification sessions: expiry, the public URL of the pages, webhooks,
/// the background processor.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// How long a session may stay unconfirmed (`VERIFACE_SESSION_TTL_SECS`,
    /// default 1800).
    pub ttl: Duration,
    /// The base URL phones reach the pages at (`VERIFACE_PUBLIC_URL`, e.g.
    /// `https://kyc.example.com`; default: the request's `Host`).
    pub public_url: Option<String>,
    /// The webhook signing key (`VERIFACE_WEBHOOK_SECRET`); without it,
    /// `start` refuses webhook URLs. Never printed by `Debug`.
    pub webhook_secret: Option<Secret>,
    /// Webhook attempts before giving up (`VERIFACE_WEBHOOK_MAX_ATTEMPTS`,
    /// default 8).
    pub webhook_max_attempts: u32,
    /// Wait after the first failed delivery, doubled after each further
    /// one up to 1 hour (`VERIFACE_WEBHOOK_RETRY_BASE_MS`, default 2000).
    pub webhook_retry_base: Duration,
    /// Processing attempts before a session goes to review as
    /// `processing_failed` (`VERIFACE_SESSION_MAX_ATTEMPTS`, default 3).
    pub max_attempts: u32,
    /// How often the processor looks for confirmed sessions
    /// (`VERIFACE_SESSION_POLL_MS`, default 500).
    pub poll: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30 * 60),
            public_url: None,
            webhook_secret: None,
            webhook_max_attempts: 8,
            webhook_retry_base: Duration::from_secs(2),
            max_attempts: 3,
            poll: Duration::from_millis(500),
        }
    }
}

impl SessionSettings {
    fn from_lookup(env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut s = Self::default();
        if let Some(v) = parse::<u64>(env, "VERIFACE_SESSION_TTL_SECS")? {
            if v == 0 {
                bail!("VERIFACE_SESSION_TTL_SECS must be above 0");
            }
            s.ttl = Duration::from_secs(v);
        }
        if let Some((_, v)) = first(env, &["VERIFACE_PUBLIC_URL"]) {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                bail!("VERIFACE_PUBLIC_URL must start with http:// or https://");
            }
            s.public_url = Some(v.trim_end_matches('/').to_string());
        }
        if let Some((_, v)) = first(env, &["VERIFACE_WEBHOOK_SECRET"]) {
            s.webhook_secret = Some(Secret::new(v));
        }
        if let Some(v) = parse(env, "VERIFACE_WEBHOOK_MAX_ATTEMPTS")? {
            s.webhook_max_attempts = v;
        }
        if let Some(v) = parse(env, "VERIFACE_WEBHOOK_RETRY_BASE_MS")? {
            s.webhook_retry_base = Duration::from_millis(v);
        }
        if let Some(v) = parse(env, "VERIFACE_SESSION_MAX_ATTEMPTS")? {
            s.max_attempts = v;
        }
        if let Some(v) = parse::<u64>(env, "VERIFACE_SESSION_POLL_MS")? {
            s.poll = Duration::from_millis(v.max(10));
        }
        Ok(s)
    }
}

/// Command-line overrides (the `veriface serve` flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--bind`.
    pub bind: Option<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--models-dir`.
    pub models_dir: Option<PathBuf>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--queue`.
    pub queue_capacity: Option<usize>,
    /// `--max-body-bytes`.
    pub body_limit: Option<usize>,
    /// `--request-timeout` (seconds).
    pub request_timeout_secs: Option<u64>,
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Default for Settings {
    fn default() -> Self {
        let workers = cpus();
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 5000,
            data_dir: PathBuf::from("data"),
            models_dir: PathBuf::from("models"),
            workers,
            queue_capacity: 4 * workers,
            body_limit: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            max_image_pixels: 40_000_000,
            max_image_side: 16_384,
            min_face_size: None,
            threshold: veriface_vision::compare::DEFAULT_THRESHOLD,
            api_keys: Vec::new(),
            rate_limit_per_second: 10.0,
            rate_limit_burst: 20,
            s3: None,
            database_url: None,
            redis_url: None,
            embedded_worker: true,
            log_format: LogFormat::Json,
            log_filter: "info".to_string(),
            sessions: SessionSettings::default(),
        }
    }
}

/// Reads the first set, non-empty variable of `names`.
fn first(env: &impl Fn(&str) -> Option<String>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        env(n)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| ((*n).to_string(), v))
    })
}

fn parse<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match first(env, &[name]) {
        None => Ok(None),
        Some((_, v)) => v
            .parse::<T>()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{name}={v:?} is invalid: {e}")),
    }
}

impl Settings {
    /// Defaults overridden by the process environment.
    ///
    /// # Errors
    /// A variable that does not parse (the message names it), or an
    /// unreadable keys file.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Defaults overridden by the variables `env` returns (for tests).
    ///
    /// # Errors
    /// As [`Settings::from_env`].
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut s = Self::default();
        if let Some(v) = parse(&env, "VERIFACE_BIND")? {
            s.bind = v;
        }
        if let Some(v) = parse(&env, "PORT")? {
            s.port = v;
        }
        if let Some((_, v)) = first(&env, &["VERIFACE_DATA_DIR"]) {
            s.data_dir = PathBuf::from(v);
        }
        if let Some((_, v)) = first(&env, &["VERIFACE_MODELS_DIR"]) {
            s.models_dir = PathBuf::from(v);
        }
        if let Some(v) = parse::<usize>(&env, "VERIFACE_WORKERS")? {
            s.workers = v.max(1);
            s.queue_capacity = 4 * s.workers;
        }
        if let Some(v) = parse(&env, "VERIFACE_QUEUE_CAPACITY")? {
            s.queue_capacity = v;
        }
        if let Some(v) = parse(&env, "VERIFACE_MAX_BODY_BYTES")? {
            s.body_limit = v;
        }
        if let Some(v) = parse(&env, "VERIFACE_REQUEST_TIMEOUT_SECS")? {
            s.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = parse(&env, "VERIFACE_SHUTDOWN_GRACE_SECS")? {
            s.shutdown_grace = Duration::from_secs(v);
        }
        if let Some(v) = parse(&env, "VERIFACE_MAX_IMAGE_PIXELS")? {
            s.max_image_pixels = v;
        }
        if let Some(v) = parse(&env, "VERIFACE_MAX_IMAGE_SIDE")? {
            s.max_image_side = v;
        }
        if let Some(v) = parse(&env, "VERIFACE_MIN_FACE_SIZE")? {
            s.min_face_size = Some(v);
        }
        if let Some(v) = parse(&env, "VERIFACE_THRESHOLD")? {
            s.threshold = v;
        }
        if let Some((_, v)) = first(&env, &["VERIFACE_API_KEYS"]) {
            s.api_keys.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Secret::new),
            );
        }
        if let Some((_, path)) = first(&env, &["VERIFACE_API_KEYS_FILE"]) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading VERIFACE_API_KEYS_FILE {path}"))?;
            s.api_keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(Secret::new),
            );
        }
        if let Some(v) = parse(&env, "VERIFACE_RATE_LIMIT_PER_SECOND")? {
            s.rate_limit_per_second = v;
        }
        if let Some(v) = parse(&env, "VERIFACE_RATE_LIMIT_BURST")? {
            s.rate_limit_burst = v;
        }
        s.s3 = s3_from(&env);
        if let Some((_, v)) = first(&env, &["DATABASE_URL"]) {
            s.database_url = Some(Secret::new(v.trim()));
        }
        if let Some((_, v)) = first(&env, &["REDIS_URL"]) {
            s.redis_url = Some(Secret::new(v.trim()));
        }
        if let Some((_, v)) = first(&env, &["VERIFACE_EMBEDDED_WORKER"]) {
            s.embedded_worker = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => bail!("VERIFACE_EMBEDDED_WORKER={other:?} is invalid: use true or false"),
            };
        }
        s.sessions = SessionSettings::from_lookup(&env)?;
        if let Some((_, v)) = first(&env, &["VERIFACE_LOG_FORMAT"]) {
            s.log_format = match v.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "pretty" | "text" => LogFormat::Pretty,
                other => bail!("VERIFACE_LOG_FORMAT={other:?} is invalid: use json or pretty"),
            };
        }
        if let Some((_, v)) = first(&env, &["RUST_LOG"]) {
            s.log_filter = v;
        }
        s.validate()?;
        Ok(s)
    }

    /// Applies command-line flags.
    ///
    /// # Errors
    /// A combination that makes no sense (zero body limit...).
    pub fn with_overrides(mut self, o: &Overrides) -> anyhow::Result<Self> {
        if let Some(v) = o.bind {
            self.bind = v;
        }
        if let Some(v) = o.port {
            self.port = v;
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = &o.models_dir {
            self.models_dir = v.clone();
        }
        if let Some(v) = o.workers {
            self.workers = v.max(1);
            if o.queue_capacity.is_none() {
                self.queue_capacity = 4 * self.workers;
            }
        }
        if let Some(v) = o.queue_capacity {
            self.queue_capacity = v;
        }
        if let Some(v) = o.body_limit {
            self.body_limit = v;
        }
        if let Some(v) = o.request_timeout_secs {
            self.request_timeout = Duration::from_secs(v);
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.body_limit == 0 {
            bail!("the body limit must be above 0 bytes");
        }
        if self.request_timeout.is_zero() {
            bail!("the request timeout must be above 0 seconds");
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0 && self.threshold <= 2.0) {
            bail!("VERIFACE_THRESHOLD must be above 0 and at most 2");
        }
        if !(self.rate_limit_per_second.is_finite() && self.rate_limit_per_second >= 0.0) {
            bail!("VERIFACE_RATE_LIMIT_PER_SECOND must be 0 or more");
        }
        Ok(())
    }

    /// Where the local blob store keeps uploads.
    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }
}

/// S3 settings when a bucket is named, from seed 000's variables or their
/// usual aliases.
fn s3_from(env: &impl Fn(&str) -> Option<String>) -> Option<S3Config> {
    let (_, bucket) = first(
        env,
        &[
            "bucketName",
            "BUCKET_NAME",
            "BUCKETNAME",
            "VERIFACE_S3_BUCKET",
        ],
    )?;
    let region = first(
        env,
        &[
            "region_name",
            "REGION_NAME",
            "VERIFACE_S3_REGION",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ],
    )
    .map_or_else(|| "us-east-1".to_string(), |(_, v)| v);
    let endpoint = first(
        env,
        &[
            "VERIFACE_S3_ENDPOINT",
            "endpoint_url",
            "ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
        ],
    )
    .map(|(_, v)| v);
    let access_key_id = first(
        env,
        &[
            "aws_access_key_id",
            "AWS_ACCESS_KEY_ID",
            "VERIFACE_S3_ACCESS_KEY_ID",
        ],
    )
    .map(|(_, v)| v);
    let secret_access_key = first(
        env,
        &[
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "VERIFACE_S3_SECRET_ACCESS_KEY",
        ],
    )
    .map(|(_, v)| Secret::new(v));
    Some(S3Config {
        bucket,
        region,
        endpoint,
        access_key_id,
        secret_access_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_environment() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 5000);
        assert_eq!(s.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(s.body_limit, 10 * 1024 * 1024);
        assert_eq!(s.blob_dir(), PathBuf::from("data/blobs"));
        assert!(s.s3.is_none());
        assert!(s.api_keys.is_empty());
    }

    #[test]
    fn seed_000_s3_variables_configure_s3() {
        let s = settings(&[
            ("bucketName", "kyc"),
            ("region_name", "eu-west-1"),
            ("aws_access_key_id", "AKIA"),
            ("aws_secret_access_key", "shh"),
            ("VERIFACE_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ])
        .unwrap();
        let s3 = s.s3.unwrap();
        assert_eq!(s3.bucket, "kyc");
        assert_eq!(s3.region, "eu-west-1");
        assert_eq!(s3.access_key_id.as_deref(), Some("AKIA"));
        assert_eq!(s3.secret_access_key.unwrap().expose(), "shh");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn uppercase_aws_forms_work_too() {
        let s = settings(&[
            ("BUCKET_NAME", "b"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL", "http://x"),
        ])
        .unwrap();
        let s3 = s.s3.unwrap();
        assert_eq!((s3.bucket.as_str(), s3.region.as_str()), ("b", "us-west-2"));
        assert_eq!(s3.endpoint.as_deref(), Some("http://x"));
    }

    #[test]
    fn api_keys_come_from_the_list_and_the_file() {
        let dir = std::env::temp_dir().join(format!("veriface-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(&file, "# comment\nfile-key\n\n").unwrap();
        let s = settings(&[
            ("VERIFACE_API_KEYS", "a, b,,"),
            ("VERIFACE_API_KEYS_FILE", file.to_str().unwrap()),
        ])
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let keys: Vec<&str> = s.api_keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["a", "b", "file-key"]);
        assert!(!format!("{s:?}").contains("file-key"));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let e = settings(&[("PORT", "eighty")]).unwrap_err().to_string();
        assert!(e.contains("PORT"), "{e}");
        let e = settings(&[("VERIFACE_THRESHOLD", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("THRESHOLD"), "{e}");
    }

    #[test]
    fn flags_override_the_environment() {
        let s = settings(&[("PORT", "8080"), ("VERIFACE_WORKERS", "3")])
            .unwrap()
            .with_overrides(&Overrides {
                port: Some(0),
                workers: Some(2),
                ..Overrides::default()
            })
            .unwrap();
        assert_eq!((s.port, s.workers, s.queue_capacity), (0, 2, 8));
    }
}
