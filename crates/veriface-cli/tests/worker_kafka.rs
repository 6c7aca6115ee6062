//! `veriface worker` as a real process consuming a real Kafka-protocol
//! broker (tansu) into a real PostgreSQL, killed with SIGKILL in the middle
//! of a batch and stopped with SIGTERM: every message is processed exactly
//! once in effect (no lost enrolment, no duplicate template, no file
//! deleted before its template is stored).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use veriface_core::identity::{IdentityRepo, ModelId, Username};
use veriface_store::db::{Database, DbConfig};
use veriface_testkit::kafka::KafkaBroker;
use veriface_testkit::postgres::PostgresServer;

const PHOTOS: [&str; 4] = [
    "person03/img51.jpg",
    "person05/img62.jpg",
    "person09/img25.jpg",
    "person10/img46.jpg",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn faces_dir() -> PathBuf {
    std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"))
        .join("data/faces/images")
}

fn models_dir() -> PathBuf {
    std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models"))
}

fn user(i: usize) -> Username {
    Username::parse(&format!("user{i:02}")).unwrap()
}

struct Env {
    broker: KafkaBroker,
    db_url: String,
    root: tempfile::TempDir,
}

impl Env {
    fn images(&self) -> PathBuf {
        self.root.path().join("images")
    }

    fn file(&self, i: usize) -> PathBuf {
        self.images().join(format!("photo{i:02}.jpg"))
    }

    /// Starts `veriface worker`; its log goes to `log`.
    fn spawn_worker(&self, log: &Path) -> Child {
        let log = std::fs::File::create(log).unwrap();
        Command::new(env!("CARGO_BIN_EXE_veriface"))
            .arg("worker")
            .env("KAFKA_BROKERS", self.broker.bootstrap())
            .env("KAFKA_TOPIC", "kyc.enrollments")
            .env("KAFKA_GROUP", "kyc-workers")
            .env("KAFKA_DLQ_TOPIC", "kyc.enrollments.dlq")
            .env("VERIFACE_IMAGES_ROOT", self.images())
            .env("DATABASE_URL", &self.db_url)
            .env_remove("REDIS_URL")
            .env("VERIFACE_MODELS_DIR", models_dir())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }
}

async fn produce(bootstrap: &str, messages: impl IntoIterator<Item = String>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    for m in messages {
        producer
            .send(
                FutureRecord::<(), str>::to("kyc.enrollments").payload(&m),
                Duration::from_secs(20),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

async fn enrolled(db: &Database, range: std::ops::Range<usize>) -> Vec<usize> {
    let model = ModelId::current();
    let mut out = Vec::new();
    for i in range {
        let n = db.list_templates(&user(i), &model).await.unwrap().len();
        assert!(n <= 1, "user{i:02} has {n} templates");
        if n == 1 {
            out.push(i);
        }
    }
    out
}

/// Polls `ok`; on timeout fails with the worker logs found in `logs` and
/// the broker's.
async fn wait_for(what: &str, env: &Env, timeout: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let logs = env.root.path();
    let deadline = Instant::now() + timeout;
    while !ok().await {
        if Instant::now() >= deadline {
            let mut dump = String::new();
            for run in ["run1.log", "run2.log", "run3.log"] {
                if let Ok(log) = std::fs::read_to_string(logs.join(run)) {
                    dump.push_str(&format!("--- {run}\n{log}\n"));
                }
            }
            let broker = env.broker.log_tail(200);
            panic!("timed out waiting for {what}\n{dump}--- broker\n{broker}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No file is gone unless its template is stored.
async fn assert_files_outlive_their_enrolment(
    env: &Env,
    db: &Database,
    range: std::ops::Range<usize>,
) {
    let done = enrolled(db, range.clone()).await;
    for i in range {
        assert!(
            env.file(i).exists() || done.contains(&i),
            "photo{i:02} was deleted but user{i:02} has no template"
        );
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_batch_and_restarted_processes_every_message_once() {
    let broker = tokio::task::spawn_blocking(KafkaBroker::start)
        .await
        .unwrap();
    broker.create_topic("kyc.enrollments", 1);
    broker.create_topic("kyc.enrollments.dlq", 1);
    let db_url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let env = Env {
        broker,
        db_url,
        root: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir(env.images()).unwrap();
    let db = Database::connect(&DbConfig::from_url(&env.db_url).unwrap())
        .await
        .unwrap();
    let first_batch = 8;
    let total = 12;
    for i in 0..total {
        std::fs::copy(faces_dir().join(PHOTOS[i % PHOTOS.len()]), env.file(i)).unwrap();
    }
    let msg = |i: usize| format!(r#"{{"username":"user{i:02}","path":"photo{i:02}.jpg"}}"#);
    produce(&env.broker.bootstrap(), (0..first_batch).map(msg)).await;
    let logs = env.root.path();

    // 1. SIGKILL once a couple of templates are stored.
    let mut w = env.spawn_worker(&logs.join("run1.log"));
    wait_for(
        "the first enrolments",
        &env,
        Duration::from_secs(120),
        async || enrolled(&db, 0..first_batch).await.len() >= 2,
    )
    .await;
    w.kill().unwrap();
    w.wait().unwrap();
    let at_kill = enrolled(&db, 0..first_batch).await;
    eprintln!("enrolled when SIGKILL landed: {at_kill:?}");
    assert!(at_kill.len() < first_batch, "killed mid-batch: {at_kill:?}");
    assert_files_outlive_their_enrolment(&env, &db, 0..first_batch).await;

    // 2. Restart: the batch completes, nothing twice. The restart waits out
    // the group's session timeout (10 s), as an orchestrator's restart
    // backoff would: tansu 0.6 keeps a SIGKILLed leader in a rebalance that
    // a new member joins at once, hands the newcomer an empty assignment,
    // and never rebalances again after evicting the dead leader (Kafka
    // proper completes that rebalance when the session times out).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut w = env.spawn_worker(&logs.join("run2.log"));
    wait_for(
        "the whole first batch",
        &env,
        Duration::from_secs(180),
        async || enrolled(&db, 0..first_batch).await.len() == first_batch,
    )
    .await;

    // 3. SIGTERM mid-batch: the message in hand is finished and committed.
    produce(&env.broker.bootstrap(), (first_batch..total).map(msg)).await;
    wait_for(
        "an enrolment of the second batch",
        &env,
        Duration::from_secs(120),
        async || !enrolled(&db, first_batch..total).await.is_empty(),
    )
    .await;
    signal(&w, "TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = w.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "SIGTERM did not stop the worker"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert_files_outlive_their_enrolment(&env, &db, first_batch..total).await;
    let run2 = std::fs::read_to_string(logs.join("run2.log")).unwrap();
    assert!(run2.contains("kafka worker stopped"), "{run2}");

    // 4. Restart once more: the rest completes; what run 2 finished was
    // committed, so nothing comes back as a redelivery.
    let mut w = env.spawn_worker(&logs.join("run3.log"));
    wait_for(
        "the second batch",
        &env,
        Duration::from_secs(180),
        async || enrolled(&db, first_batch..total).await.len() == total - first_batch,
    )
    .await;
    signal(&w, "TERM");
    assert!(w.wait().unwrap().success());
    let run3 = std::fs::read_to_string(logs.join("run3.log")).unwrap();
    for (run, log) in [("run2", &run2), ("run3", &run3)] {
        let stopped = log.lines().find(|l| l.contains("kafka worker stopped"));
        eprintln!("{run}: {}", stopped.unwrap_or("(no stop line)"));
    }
    assert!(run3.contains("duplicates: 0"), "{run3}");

    // Exactly once in effect: one template and one enrolment decision per
    // user, every file gone, nothing dead-lettered.
    assert_eq!(enrolled(&db, 0..total).await.len(), total);
    for i in 0..total {
        let audit = db.list_audit(&user(i)).await.unwrap();
        assert_eq!(audit.len(), 1, "user{i:02}: {audit:?}");
        assert!(!env.file(i).exists(), "photo{i:02} left behind");
    }
    for run in ["run1.log", "run2.log", "run3.log"] {
        let log = std::fs::read_to_string(logs.join(run)).unwrap();
        assert!(!log.contains("dead-lettered"), "{run}: {log}");
    }
}
