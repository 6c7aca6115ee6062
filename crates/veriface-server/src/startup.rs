//! Wiring: the concrete backends behind the ports, the listener, and a
//! graceful stop.
//!
//! [`Application::build`] binds its own listener, so a test can ask for
//! port 0 and read the real port back before serving;
//! [`Application::run_until_stopped`] serves until SIGINT/SIGTERM (or a
//! [`ShutdownHandle`]), then stops accepting and lets in-flight requests
//! finish, for at most the configured grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use veriface_core::enrol::{IdentityConfig, IdentityService};
use veriface_core::face::{FacePolicy, Threshold};
use veriface_core::face_service::FaceService;
use veriface_core::identity::JobQueue;
use veriface_core::pool::InferencePool;
use veriface_core::ports::BlobStore;
use veriface_core::session::SessionService;
use veriface_http::auth::{ApiKeys, RateLimit};
use veriface_http::state::IdentityState;
use veriface_http::{AppState, HttpConfig, Sessions};
use veriface_store::blob::ObjectBlobStore;
use veriface_store::cache::RedisConfig;
use veriface_store::db::{Database, DbConfig, IdentityStore, SQLITE_FILE};
use veriface_vision::decode::DecodeLimits;
use veriface_vision::engine::{DetectOptions, FaceEngine};
use veriface_worker::{QueueWaker, QueueWorker, QueueWorkerConfig};

use crate::config::Settings;
use crate::sessions::processor::{Processor, ProcessorConfig};
use crate::sessions::webhook::{self, WebhookConfig};
use crate::telemetry;

/// Stops a running [`Application`] gracefully (what SIGTERM does).
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Starts the graceful shutdown.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    addr: SocketAddr,
    grace: Duration,
    stop: Arc<watch::Sender<bool>>,
    db: Arc<Database>,
    worker: Option<QueueWorker>,
    background: Background,
}

/// The session processor and webhook sender, started with the server.
struct Background {
    processor: Processor,
    webhooks: Option<(SessionService, WebhookConfig)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Loads the models from `settings.models_dir` and builds.
    ///
    /// # Errors
    /// Missing or corrupt models (the message names the install command),
    /// an unusable data directory or S3 configuration, a port in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let dir = settings.models_dir.clone();
        let engine = tokio::task::spawn_blocking(move || FaceEngine::load(&dir))
            .await
            .context("loading the models")?
            .with_context(|| {
                format!(
                    "loading the face models from {}",
                    settings.models_dir.display()
                )
            })?;
        Self::build_with_engine(settings, Arc::new(engine)).await
    }

    /// Builds around an already loaded engine (tests share one across
    /// apps: loading costs a second and 100 MB).
    ///
    /// # Errors
    /// As [`Application::build`], minus the models.
    pub async fn build_with_engine(
        settings: Settings,
        engine: Arc<FaceEngine>,
    ) -> anyhow::Result<Self> {
        let blobs: Arc<dyn BlobStore> = match &settings.s3 {
            Some(s3) => Arc::new(ObjectBlobStore::s3(s3).context("configuring S3 storage")?),
            None => Arc::new(
                ObjectBlobStore::local(settings.blob_dir()).with_context(|| {
                    format!(
                        "opening the data directory {}",
                        settings.blob_dir().display()
                    )
                })?,
            ),
        };
        Self::build_with(settings, engine, blobs).await
    }

    /// Builds around an engine and a blob store.
    ///
    /// # Errors
    /// A port in use or an invalid setting.
    pub async fn build_with(
        settings: Settings,
        engine: Arc<FaceEngine>,
        blobs: Arc<dyn BlobStore>,
    ) -> anyhow::Result<Self> {
        let mut detect = DetectOptions::fast();
        if let Some(m) = settings.min_face_size {
            detect.min_face_size = m;
        }
        let policy = FacePolicy {
            limits: DecodeLimits {
                // The body limit bounds what arrives; the decoder's own
                // byte limit only has to admit it.
                max_bytes: settings.body_limit.max(1),
                max_width: settings.max_image_side,
                max_height: settings.max_image_side,
                max_pixels: settings.max_image_pixels,
            },
            detect,
            num_jitters: 1,
        };
        let pool = InferencePool::new(settings.workers, settings.queue_capacity);
        let store = open_identity_store(&settings).await?;
        let identity = Arc::new(
            IdentityService::new(
                store.repo.clone(),
                Arc::clone(&engine),
                IdentityConfig {
                    limits: policy.limits,
                    detect: policy.detect,
                    threshold: settings.threshold,
                    ..IdentityConfig::default()
                },
            )
            // Enrolments, verifications and searches share the request
            // pool's cores instead of oversubscribing them.
            .with_inference_limit(pool.permits()),
        );
        let enqueued = Arc::new(tokio::sync::Notify::new());
        let jobs: Arc<dyn JobQueue> = store.db.clone();
        let worker = settings.embedded_worker.then(|| {
            QueueWorker::new(
                Arc::clone(&jobs),
                Arc::clone(&identity),
                QueueWorkerConfig::default(),
            )
            .with_waker(QueueWaker::from_notify(Arc::clone(&enqueued)))
        });
        let faces = FaceService::new(engine, pool, policy);
        let config = HttpConfig {
            body_limit: settings.body_limit,
            request_timeout: settings.request_timeout,
            default_threshold: Threshold::parse(settings.threshold)
                .context("VERIFACE_THRESHOLD")?,
        };
        let sset = &settings.sessions;
        let session_service =
            SessionService::new(store.db.clone(), blobs.clone(), sset.ttl, policy.limits)
                .with_webhooks(sset.webhook_secret.is_some());
        let processor = Processor::new(
            session_service.clone(),
            faces.clone(),
            ProcessorConfig {
                poll: sset.poll,
                lease: Duration::from_secs(300),
                max_attempts: sset.max_attempts.max(1),
                threshold: config.default_threshold,
                sweep: Duration::from_secs(30).min(sset.ttl),
            },
        );
        let webhooks = sset.webhook_secret.clone().map(|secret| {
            (
                session_service.clone(),
                WebhookConfig {
                    secret,
                    max_attempts: sset.webhook_max_attempts.max(1),
                    retry_base: sset.webhook_retry_base,
                    retry_max: Duration::from_secs(3600),
                    timeout: Duration::from_secs(10),
                    poll: sset.poll,
                },
            )
        });
        let mut state = AppState::new(faces, blobs.clone(), config)
            .with_identity(IdentityState {
                service: identity,
                jobs,
                cache: store.cache.clone(),
                enqueued,
            })
            .with_sessions(Sessions {
                service: session_service,
                public_url: sset.public_url.clone(),
            });
        if !settings.api_keys.is_empty() {
            state = state.with_api_keys(
                ApiKeys::new(settings.api_keys.iter().map(|k| k.expose())),
                RateLimit {
                    per_second: settings.rate_limit_per_second,
                    burst: settings.rate_limit_burst,
                },
            );
        }
        if let Some(handle) = telemetry::metrics_handle() {
            state = state.with_metrics(handle);
        }
        let router = veriface_http::router(state);

        let addr = SocketAddr::new(settings.bind, settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(
            %addr,
            store = blobs.backend(),
            workers = settings.workers,
            queue_capacity = settings.queue_capacity,
            body_limit = settings.body_limit,
            request_timeout_s = settings.request_timeout.as_secs(),
            api_keys = settings.api_keys.len(),
            database = store.db.backend().name(),
            cache = store.cache.health().backend,
            embedded_worker = worker.is_some(),
            "veriface is listening"
        );
        let (stop, _) = watch::channel(false);
        Ok(Self {
            listener,
            router,
            addr,
            grace: settings.shutdown_grace,
            stop: Arc::new(stop),
            db: store.db,
            worker,
            background: Background {
                processor,
                webhooks,
            },
        })
    }

    /// The bound port (the real one when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server as SIGTERM would.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serves until SIGINT, SIGTERM or [`ShutdownHandle::shutdown`]; then
    /// stops accepting connections and waits for in-flight requests, at
    /// most the grace period.
    ///
    /// # Errors
    /// An I/O error of the listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            grace,
            stop,
            db,
            worker,
            background,
            ..
        } = self;
        let upkeep = spawn_metrics_upkeep();
        // The embedded enrolment worker stops with the server: it finishes
        // the job in hand (a job cut short is requeued when its lease ends).
        let stop_worker = Arc::clone(&stop);
        let worker = worker.map(|w| {
            let stopped = stop.subscribe();
            tokio::spawn(async move { w.run(stopped).await })
        });
        // The session processor and webhook sender stop with it too: a
        // session being processed is left at its next await point, and its
        // lease makes the next start resume it.
        let processor = tokio::spawn(background.processor.run(stop.subscribe()));
        let sender = background
            .webhooks
            .map(|(service, config)| tokio::spawn(webhook::run(service, config, stop.subscribe())));
        let mut stopped = stop.subscribe();
        let mut drain_started = stop.subscribe();
        let signal = async move {
            tokio::select! {
                () = os_signal() => tracing::info!("signal received; draining in-flight requests"),
                _ = stopped.wait_for(|s| *s) => tracing::info!("shutdown requested; draining in-flight requests"),
            }
        };
        // The signal future above only fires once; the same watch channel
        // tells the drain timer when it did.
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            signal.await;
            stop.send_replace(true);
        });
        let deadline = async move {
            let _ = drain_started.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        let out = tokio::select! {
            res = serve => {
                tracing::info!("stopped");
                res
            }
            () = deadline => {
                tracing::warn!(grace_s = grace.as_secs(), "grace period over; abandoning in-flight requests");
                Ok(())
            }
        };
        if let Some(task) = upkeep {
            task.abort();
        }
        stop_worker.send_replace(true);
        if let Some(task) = worker {
            match tokio::time::timeout(grace, task).await {
                Ok(Ok(jobs)) => tracing::info!(jobs, "enrolment worker stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "enrolment worker failed"),
                Err(_) => tracing::warn!("enrolment worker still busy after the grace period"),
            }
        }
        for task in std::iter::once(processor).chain(sender) {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a session task did not stop in time");
            }
        }
        db.close().await;
        out
    }
}

/// The database named by the settings (else the SQLite file in the data
/// directory) and the optional Redis cache.
async fn open_identity_store(settings: &Settings) -> anyhow::Result<IdentityStore> {
    let db = match &settings.database_url {
        Some(url) => DbConfig::from_url(url.expose()).context("DATABASE_URL")?,
        None => DbConfig::sqlite_file(&settings.data_dir.join(SQLITE_FILE)),
    };
    let redis = settings
        .redis_url
        .as_ref()
        .map(|u| RedisConfig::new(u.expose()));
    IdentityStore::open(&db, redis)
        .await
        .map_err(|e| {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            anyhow::anyhow!("{e}{}", cause.map(|c| format!(": {c}")).unwrap_or_default())
        })
        .context("opening the identity database")
}

async fn os_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The exporter keeps histogram data in per-thread buffers that upkeep
/// folds in; without it memory grows between scrapes.
fn spawn_metrics_upkeep() -> Option<tokio::task::JoinHandle<()>> {
    let handle = telemetry::metrics_handle()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    }))
}
