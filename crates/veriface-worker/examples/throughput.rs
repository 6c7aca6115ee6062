//! Worker throughput, messages per second per core (`docs/benchmarks.md`,
//! "Worker throughput"): the real Kafka consumer against tansu and
//! PostgreSQL, started on loopback, enrolling real photos.
//!
//! `taskset -c 1 cargo run -p veriface-worker --example throughput -- [N] [small|1mp]`
//!
//! Inference runs on a one-thread rayon pool, so the engine uses one core;
//! pin the whole process (`taskset -c 1`) to charge the broker client,
//! the database driver and the runtime to the same core. Prints one JSON
//! line with the rate over the messages after the first (the first one
//! also pays for the consumer-group join).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use veriface_core::enrol::{IdentityConfig, IdentityService};
use veriface_core::identity::{IdentityRepo, ModelId};
use veriface_store::db::{Database, DbConfig};
use veriface_testkit::kafka::KafkaBroker;
use veriface_testkit::postgres::PostgresServer;
use veriface_vision::FaceEngine;
use veriface_worker::{ImagesRoot, KafkaConfig, KafkaWorker, Processor};

const SMALL: [&str; 4] = [
    "person03/img51.jpg",
    "person05/img62.jpg",
    "person09/img25.jpg",
    "person10/img46.jpg",
];
/// About 1 MP, as phone selfies are after the upstream service resizes them.
const ONE_MP: [&str; 2] = ["person02/img53.jpg", "person02/img56.jpg"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(12);
    let set: &[&str] = if args.get(1).map(String::as_str) == Some("1mp") {
        &ONE_MP
    } else {
        &SMALL
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, set));
}

async fn run(n: usize, set: &[&str]) {
    let shared = std::env::var_os("VERIFACE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"));
    let faces = shared.join("data/faces/images");
    let models = std::env::var_os("VERIFACE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("models"));

    let broker = tokio::task::spawn_blocking(KafkaBroker::start)
        .await
        .unwrap();
    broker.create_topic("bench", 1);
    broker.create_topic("bench.dlq", 1);
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    let db = Arc::new(
        Database::connect(&DbConfig::from_url(&url).unwrap())
            .await
            .unwrap(),
    );
    let engine = Arc::new(FaceEngine::load(&models).unwrap());
    let service = Arc::new(IdentityService::new(
        db.clone(),
        engine,
        IdentityConfig::default(),
    ));
    let root = tempfile::tempdir().unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    for i in 0..n {
        let name = format!("p{i}.jpg");
        std::fs::copy(faces.join(set[i % set.len()]), root.path().join(&name)).unwrap();
        let msg = format!(r#"{{"username":"bench{i}","path":"{name}"}}"#);
        producer
            .send(
                FutureRecord::<(), str>::to("bench").payload(&msg),
                Duration::from_secs(20),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let processor = Arc::new(Processor::new(
        service,
        ImagesRoot::new(root.path()).unwrap(),
    ));
    let worker = KafkaWorker::new(
        KafkaConfig {
            brokers: broker.bootstrap(),
            topic: "bench".into(),
            group: "bench".into(),
            dlq_topic: "bench.dlq".into(),
        },
        processor,
    )
    .unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let handle = tokio::spawn(async move { worker.run(stop_rx).await });
    let model = ModelId::current();
    let mut first_done: Option<Instant> = None;
    loop {
        let count = db.template_watermark(&model).await.unwrap().count as usize;
        if count >= 1 && first_done.is_none() {
            first_done = Some(Instant::now());
        }
        if count >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end = Instant::now();
    stop.send(true).unwrap();
    let stats = handle.await.unwrap().unwrap();
    let first = first_done.unwrap();
    let steady = (n - 1) as f64 / (end - first).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "messages": n,
            "photos": set,
            "first_message_s": (first - start).as_secs_f64(),
            "total_s": (end - start).as_secs_f64(),
            "messages_per_s": steady,
            "enrolled": stats.enrolled,
        })
    );
}
