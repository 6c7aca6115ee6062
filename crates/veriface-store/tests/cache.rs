//! The Redis cache in front of the identity store, against a real
//! `redis-server` (and a real PostgreSQL for the outage test), including
//! Redis stopping and coming back mid-run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use veriface_core::identity::{
    Cache, CacheState, CachedRepo, EnrolDecision, EnrolmentRecord, IdentityRepo, ModelId,
    NewTemplate, SourceHash, Username,
};
use veriface_store::cache::{RedisCache, RedisConfig};
use veriface_store::db::{Database, DbConfig};
use veriface_testkit::postgres::PostgresServer;
use veriface_testkit::redis::RedisServer;
use veriface_vision::engine::Embedding;

fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn accepted(u: &str, key: &str, photo: &[u8]) -> EnrolmentRecord {
    let mut v = [0f32; 128];
    v[0] = photo.len() as f32 / 100.0;
    EnrolmentRecord {
        username: user(u),
        idempotency_key: key.to_string(),
        source_sha256: Some(SourceHash::of(photo)),
        decision: EnrolDecision::Accepted(NewTemplate {
            embedding: Embedding(v),
            model: ModelId::current(),
            source_sha256: SourceHash::of(photo),
        }),
        job: None,
    }
}

fn config(redis: &RedisServer, prefix: &str) -> RedisConfig {
    let mut c = RedisConfig::new(redis.url());
    c.prefix = prefix.to_string();
    c.retry_interval = Duration::from_millis(200);
    c
}

/// Keys under `prefix` in Redis, read with a separate client.
async fn keys(redis: &RedisServer, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut k: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    k.sort();
    k
}

async fn postgres_repo() -> Arc<Database> {
    let url = tokio::task::spawn_blocking(|| PostgresServer::shared().create_database())
        .await
        .unwrap();
    Arc::new(
        Database::connect(&DbConfig::from_url(&url).unwrap())
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fill_the_cache_and_every_write_invalidates_it() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::connect(&DbConfig::sqlite_file(&dir.path().join("v.db")))
            .await
            .unwrap(),
    );
    let cache = Arc::new(RedisCache::connect(config(&redis, "t1")).await.unwrap());
    let repo = CachedRepo::new(db.clone(), cache.clone());
    let model = ModelId::current();

    repo.record_enrolment(&accepted("olga", "k1", b"photo one"))
        .await
        .unwrap();
    assert!(keys(&redis, "t1").await.is_empty());
    let s = repo.find_subject(&user("olga")).await.unwrap().unwrap();
    let t = repo.list_templates(&user("olga"), &model).await.unwrap();
    assert_eq!(keys(&redis, "t1").await, vec!["t1:s:olga", "t1:t:olga"]);
    // Served from Redis now: equal to the database's answer.
    assert_eq!(cache.get_subject(&user("olga")).await, Some(s.clone()));
    assert_eq!(repo.find_subject(&user("olga")).await.unwrap(), Some(s));
    assert_eq!(repo.list_templates(&user("olga"), &model).await.unwrap(), t);
    let h = cache.health();
    assert_eq!(h.state, CacheState::Up);
    assert!(h.hits >= 2, "{h:?}");

    // A write through the repo drops both keys; the next read sees it.
    repo.record_enrolment(&accepted("olga", "k2", b"photo two"))
        .await
        .unwrap();
    assert!(keys(&redis, "t1").await.is_empty());
    let s = repo.find_subject(&user("olga")).await.unwrap().unwrap();
    assert_eq!(s.template_count, 2);
    assert_eq!(
        repo.list_templates(&user("olga"), &model)
            .await
            .unwrap()
            .len(),
        2
    );

    repo.delete_subject(&user("olga")).await.unwrap();
    assert!(keys(&redis, "t1").await.is_empty());
    assert_eq!(repo.find_subject(&user("olga")).await.unwrap(), None);
    assert!(repo
        .list_templates(&user("olga"), &model)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_entries_expire_after_their_ttl() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let mut cfg = config(&redis, "t2");
    cfg.ttl = Duration::from_millis(300);
    let cache = RedisCache::connect(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DbConfig::sqlite_file(&dir.path().join("v.db")))
        .await
        .unwrap();
    db.record_enrolment(&accepted("pia", "k", b"p"))
        .await
        .unwrap();
    let s = db.find_subject(&user("pia")).await.unwrap().unwrap();
    cache.put_subject(&s).await;
    assert_eq!(cache.get_subject(&user("pia")).await, Some(s));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(cache.get_subject(&user("pia")).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_keeps_answering_from_postgres_while_redis_is_down() {
    let mut redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let db = postgres_repo().await;
    let cache = Arc::new(RedisCache::connect(config(&redis, "t3")).await.unwrap());
    let repo = CachedRepo::new(db.clone(), cache.clone());
    let model = ModelId::current();

    repo.record_enrolment(&accepted("quinn", "k1", b"first photo"))
        .await
        .unwrap();
    let before = repo.find_subject(&user("quinn")).await.unwrap().unwrap();
    repo.list_templates(&user("quinn"), &model).await.unwrap();
    assert_eq!(keys(&redis, "t3").await.len(), 2);
    assert_eq!(repo.cache_health().state, CacheState::Up);

    redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();

    // Reads fall back to the database, quickly, and stay correct.
    let start = std::time::Instant::now();
    assert_eq!(
        repo.find_subject(&user("quinn")).await.unwrap(),
        Some(before.clone())
    );
    assert_eq!(repo.cache_health().state, CacheState::Down);
    // Writes still land and are visible at once (no stale cache answers).
    repo.record_enrolment(&accepted("quinn", "k2", b"second photo"))
        .await
        .unwrap();
    let after = repo.find_subject(&user("quinn")).await.unwrap().unwrap();
    assert_eq!(after.template_count, 2);
    assert_eq!(
        repo.list_templates(&user("quinn"), &model)
            .await
            .unwrap()
            .len(),
        2
    );
    repo.record_enrolment(&accepted("rosa", "k3", b"rosa"))
        .await
        .unwrap();
    assert!(
        repo.find_subject(&user("rosa"))
            .await
            .unwrap()
            .unwrap()
            .verified
    );
    for _ in 0..50 {
        repo.find_subject(&user("quinn")).await.unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a down cache must not slow every request down: {:?}",
        start.elapsed()
    );
    let h = repo.cache_health();
    assert_eq!(h.state, CacheState::Down);
    assert!(h.errors >= 1);

    // Redis comes back (empty here; a partitioned Redis would come back
    // with the old entries, which the flush after a lost invalidation
    // removes): the cache is used again and answers the new state.
    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        repo.find_subject(&user("quinn"))
            .await
            .unwrap()
            .unwrap()
            .template_count,
        2
    );
    assert_eq!(repo.cache_health().state, CacheState::Up);
    assert_eq!(keys(&redis, "t3").await, vec!["t3:s:quinn"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_entries_left_by_a_lost_invalidation_are_flushed_on_reconnect() {
    let mut redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::connect(&DbConfig::sqlite_file(&dir.path().join("v.db")))
            .await
            .unwrap(),
    );
    let cache = Arc::new(RedisCache::connect(config(&redis, "t4")).await.unwrap());
    let repo = CachedRepo::new(db.clone(), cache.clone());
    repo.record_enrolment(&accepted("sam", "k1", b"p"))
        .await
        .unwrap();
    let cached = repo.find_subject(&user("sam")).await.unwrap().unwrap();
    assert_eq!(keys(&redis, "t4").await, vec!["t4:s:sam"]);

    // Redis becomes unreachable and the erasure's invalidation is lost...
    redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();
    repo.delete_subject(&user("sam")).await.unwrap();
    assert_eq!(cache.health().state, CacheState::Down);

    // ...and it comes back still holding the old entry (as after a network
    // partition; here written back by another client).
    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let other = RedisCache::connect(config(&redis, "t4")).await.unwrap();
    other.put_subject(&cached).await;
    assert_eq!(keys(&redis, "t4").await, vec!["t4:s:sam"]);

    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        repo.find_subject(&user("sam")).await.unwrap(),
        None,
        "the stale entry must not be served"
    );
    assert_eq!(cache.health().state, CacheState::Up);
    assert!(keys(&redis, "t4").await.is_empty());
}

#[tokio::test]
async fn a_malformed_redis_url_is_refused() {
    let err = RedisCache::connect(RedisConfig::new("http://nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_redis_url");
}
