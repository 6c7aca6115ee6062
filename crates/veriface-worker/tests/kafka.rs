//! The Kafka consumer against a real Kafka-protocol broker (tansu, started
//! on loopback) and a real PostgreSQL, consuming messages that point at
//! real photos copied into a temporary images root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use tokio::sync::watch;
use veriface_core::enrol::{EnrolOutcome, IdentityConfig, IdentityService};
use veriface_core::identity::{IdentityRepo, ModelId, Username};
use veriface_store::db::{Database, DbConfig};
use veriface_testkit::kafka::KafkaBroker;
use veriface_testkit::postgres::PostgresServer;
use veriface_worker::{Disposition, ImagesRoot, KafkaConfig, KafkaWorker, Processor, WorkerStats};

use common::{engine, no_face_png, photo, two_faces_jpeg};

fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}

/// Produces `payload` and returns its (partition, offset).
async fn produce(bootstrap: &str, topic: &str, payload: &[u8]) -> (i32, i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let d = producer
        .send(
            FutureRecord::<(), [u8]>::to(topic).payload(payload),
            Duration::from_secs(20),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    (d.partition, d.offset)
}

/// Reads `n` messages of `topic` from the start (fresh group).
async fn read_topic(bootstrap: &str, topic: &str, n: usize) -> Vec<serde_json::Value> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages on {topic}", out.len()))
            .unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let header = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "veriface-dlq-reason"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).to_string());
        v["header_reason"] = serde_json::json!(header);
        out.push(v);
    }
    out
}

struct Setup {
    broker: KafkaBroker,
    db: Arc<Database>,
    processor: Arc<Processor>,
    root: tempfile::TempDir,
    config: KafkaConfig,
}

async fn setup(topic: &str) -> Setup {
    let broker = tokio::task::spawn_blocking(KafkaBroker::start)
        .await
        .unwrap();
    let dlq = format!("{topic}.dlq");
    broker.create_topic(topic, 1);
    broker.create_topic(&dlq, 1);
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let db = Arc::new(
        Database::connect(&DbConfig::from_url(&url).unwrap())
            .await
            .unwrap(),
    );
    let service = Arc::new(IdentityService::new(
        db.clone(),
        engine(),
        IdentityConfig::default(),
    ));
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("images")).unwrap();
    let images = ImagesRoot::new(&root.path().join("images")).unwrap();
    let processor = Arc::new(Processor::new(service, images));
    let config = KafkaConfig {
        brokers: broker.bootstrap(),
        topic: topic.to_string(),
        group: "veriface-test".to_string(),
        dlq_topic: dlq,
    };
    Setup {
        broker,
        db,
        processor,
        root,
        config,
    }
}

/// Runs a worker until `done` holds (checked every 200 ms), then stops it.
async fn run_until<F, Fut>(s: &Setup, mut done: F) -> WorkerStats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let worker = KafkaWorker::new(s.config.clone(), s.processor.clone()).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let handle = tokio::spawn(async move { worker.run(stop_rx).await });
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done().await {
        assert!(Instant::now() < deadline, "worker did not finish in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the worker stops after shutdown")
        .unwrap()
        .unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_enrols_photos_and_routes_every_bad_message_while_it_keeps_going() {
    let s = setup("enrol").await;
    let images = s.root.path().join("images");
    write(&images, "good1.jpg", &photo("person09/img25.jpg"));
    write(&images, "good2.jpg", &photo("person10/img46.jpg"));
    write(
        &images,
        "notimage.jpg",
        b"plain text pretending to be a photo",
    );
    write(&images, "noface.png", &no_face_png());
    write(&images, "two.jpg", &two_faces_jpeg());
    write(s.root.path(), "secret.jpg", &photo("person03/img51.jpg"));
    let abs_good2 = images.canonicalize().unwrap().join("good2.jpg");

    let bootstrap = s.broker.bootstrap();
    let messages: Vec<String> = vec![
        "not json at all".into(),
        r#"{"username":"u1"}"#.into(),
        r#"{"username":"bad name","path":"good1.jpg"}"#.into(),
        r#"{"username":"u2","path":"../secret.jpg"}"#.into(),
        r#"{"username":"u3","path":"missing.jpg"}"#.into(),
        r#"{"username":"u4","path":"notimage.jpg"}"#.into(),
        r#"{"username":"u5","path":"noface.png"}"#.into(),
        r#"{"username":"u6","path":"two.jpg"}"#.into(),
        r#"{"username":"good1","path":"good1.jpg","source":"auth-service","ts":1}"#.into(),
        format!(r#"{{"username":"good2","path":"{}"}}"#, abs_good2.display()),
    ];
    let mut coords = Vec::new();
    for m in &messages {
        coords.push(produce(&bootstrap, "enrol", m.as_bytes()).await);
    }

    // A previous worker stored good1's template and died before committing
    // (and before deleting the file): the broker will redeliver it.
    let (p, o) = coords[8];
    let first = s
        .processor
        .process(Some(messages[8].as_bytes()), format!("kafka:enrol:{p}:{o}"))
        .await
        .unwrap();
    assert!(matches!(
        first,
        Disposition::Processed(EnrolOutcome::Enrolled { .. })
    ));
    write(&images, "good1.jpg", &photo("person09/img25.jpg"));

    let db = s.db.clone();
    let stats = run_until(&s, || {
        let db = db.clone();
        async move { db.find_subject(&user("good2")).await.unwrap().is_some() }
    })
    .await;
    assert_eq!(
        stats,
        WorkerStats {
            enrolled: 1,
            rejected: 3,
            duplicates: 1,
            dead_lettered: 5,
        }
    );

    // Dead letters: one per malformed message, with the reason and origin.
    let dlq = read_topic(&bootstrap, "enrol.dlq", 5).await;
    let reasons: BTreeMap<i64, String> = dlq
        .iter()
        .map(|d| {
            (
                d["offset"].as_i64().unwrap(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<i64, String> = [
        (coords[0].1, "invalid_json"),
        (coords[1].1, "missing_field"),
        (coords[2].1, "invalid_username"),
        (coords[3].1, "path_outside_root"),
        (coords[4].1, "file_not_found"),
    ]
    .into_iter()
    .map(|(o, r)| (o, r.to_string()))
    .collect();
    assert_eq!(reasons, want);
    for d in &dlq {
        assert_eq!(d["header_reason"], d["reason"]);
        assert_eq!(d["topic"], "enrol");
        let o = d["offset"].as_i64().unwrap();
        let i = coords.iter().position(|c| c.1 == o).unwrap();
        assert_eq!(d["payload"].as_str().unwrap(), messages[i]);
    }

    // Unprocessable photos: verified = false with the reason, file removed.
    for (u, reason) in [
        ("u4", "unsupported_image_format"),
        ("u5", "no_face_detected"),
        ("u6", "multiple_faces"),
    ] {
        let st = s.db.find_subject(&user(u)).await.unwrap().unwrap();
        assert!(!st.verified, "{u}");
        assert_eq!(st.reason.as_deref(), Some(reason), "{u}");
    }
    for u in ["u1", "u2", "u3"] {
        assert!(s.db.find_subject(&user(u)).await.unwrap().is_none());
    }
    // Enrolled once each, the redelivered one included.
    let model = ModelId::current();
    for u in ["good1", "good2"] {
        assert!(s.db.find_subject(&user(u)).await.unwrap().unwrap().verified);
        assert_eq!(
            s.db.list_templates(&user(u), &model).await.unwrap().len(),
            1,
            "{u}"
        );
    }
    let left: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(left.is_empty(), "processed files are deleted: {left:?}");
    assert!(
        s.root.path().join("secret.jpg").exists(),
        "a file outside the root is never touched"
    );

    // Offsets were committed: a new worker in the group sees only new work.
    write(&images, "late.jpg", &photo("person05/img62.jpg"));
    produce(
        &bootstrap,
        "enrol",
        br#"{"username":"late","path":"late.jpg"}"#,
    )
    .await;
    let db = s.db.clone();
    let stats = run_until(&s, || {
        let db = db.clone();
        async move { db.find_subject(&user("late")).await.unwrap().is_some() }
    })
    .await;
    assert_eq!(
        stats,
        WorkerStats {
            enrolled: 1,
            ..WorkerStats::default()
        }
    );
}
