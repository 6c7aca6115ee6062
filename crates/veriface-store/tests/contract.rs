//! The identity store's contract: the same checks run on a SQLite file and
//! on a real PostgreSQL server (started by `veriface-testkit` on loopback,
//! one fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use veriface_core::identity::{
    AuditAction, EnrolDecision, EnrolmentRecord, IdentityRepo, JobId, JobQueue, JobState, ModelId,
    NewAuditEntry, NewJob, NewTemplate, RecordOutcome, SourceHash, Username,
};
use veriface_core::ErrorKind;
use veriface_store::db::{Database, DbConfig};
use veriface_vision::engine::Embedding;

fn user(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn embedding(seed: f32) -> Embedding {
    let mut v = [0f32; 128];
    for (i, x) in v.iter_mut().enumerate() {
        *x = ((i as f32 + 1.0) * seed).sin() * 0.1;
    }
    Embedding(v)
}

fn accepted(u: &str, key: &str, photo: &[u8], seed: f32) -> EnrolmentRecord {
    EnrolmentRecord {
        username: user(u),
        idempotency_key: key.to_string(),
        source_sha256: Some(SourceHash::of(photo)),
        decision: EnrolDecision::Accepted(NewTemplate {
            embedding: embedding(seed),
            model: ModelId::current(),
            source_sha256: SourceHash::of(photo),
        }),
        job: None,
    }
}

fn rejected(u: &str, key: &str, reason: &str) -> EnrolmentRecord {
    EnrolmentRecord {
        username: user(u),
        idempotency_key: key.to_string(),
        source_sha256: None,
        decision: EnrolDecision::Rejected {
            reason: reason.to_string(),
        },
        job: None,
    }
}

// Every contract check runs on both backends, one `#[tokio::test]` each.
veriface_testkit::db_contract!(
    accepted_enrolment_verifies_the_subject_with_one_template,
    redelivered_key_changes_nothing,
    same_photo_under_a_new_key_stays_one_template,
    rejection_sets_the_reason_until_a_face_is_enrolled,
    templates_page_by_id_and_filter_by_model,
    audit_log_is_append_only_and_pseudonymous,
    audit_distances_may_be_null_or_not_in_any_order,
    erasure_removes_templates_jobs_and_keys_but_keeps_the_audit,
    concurrent_deliveries_of_one_key_record_once,
    enrolment_of_an_erased_job_records_nothing,
    jobs_are_claimed_in_order_and_completed,
    expired_leases_are_requeued,
    failed_jobs_retry_after_a_delay_or_give_up,
    concurrent_claimers_never_share_a_job,
);

async fn accepted_enrolment_verifies_the_subject_with_one_template(db: &Database) {
    assert!(db.find_subject(&user("alice")).await.unwrap().is_none());
    let out = db
        .record_enrolment(&accepted("alice", "k1", b"photo-1", 1.0))
        .await
        .unwrap();
    let RecordOutcome::Recorded {
        template_id: Some(id),
    } = out
    else {
        panic!("expected a template id, got {out:?}");
    };
    let s = db.find_subject(&user("alice")).await.unwrap().unwrap();
    assert!(s.verified);
    assert_eq!(s.reason, None);
    assert_eq!(s.template_count, 1);
    assert!(s.enrolled_at.is_some());
    let t = db
        .list_templates(&user("alice"), &ModelId::current())
        .await
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, id);
    assert_eq!(t[0].embedding, embedding(1.0), "vectors survive bit-exact");
    assert_eq!(t[0].source_sha256, SourceHash::of(b"photo-1"));
    assert!(db.is_recorded("k1").await.unwrap());
    assert!(!db.is_recorded("k2").await.unwrap());
    db.ping().await.unwrap();
}

async fn redelivered_key_changes_nothing(db: &Database) {
    db.record_enrolment(&accepted("bob", "kafka:t:0:7", b"p", 1.0))
        .await
        .unwrap();
    let again = db
        .record_enrolment(&accepted("bob", "kafka:t:0:7", b"other photo", 2.0))
        .await
        .unwrap();
    assert_eq!(again, RecordOutcome::Duplicate);
    let again = db
        .record_enrolment(&rejected("bob", "kafka:t:0:7", "no_face_detected"))
        .await
        .unwrap();
    assert_eq!(again, RecordOutcome::Duplicate);
    let model = ModelId::current();
    assert_eq!(
        db.list_templates(&user("bob"), &model).await.unwrap().len(),
        1
    );
    assert_eq!(db.list_audit(&user("bob")).await.unwrap().len(), 1);
    assert!(
        db.find_subject(&user("bob"))
            .await
            .unwrap()
            .unwrap()
            .verified
    );
}

async fn same_photo_under_a_new_key_stays_one_template(db: &Database) {
    let a = db
        .record_enrolment(&accepted("carol", "k1", b"same", 1.0))
        .await
        .unwrap();
    let b = db
        .record_enrolment(&accepted("carol", "k2", b"same", 1.0))
        .await
        .unwrap();
    assert_eq!(a, b, "the second delivery points at the first template");
    let c = db
        .record_enrolment(&accepted("carol", "k3", b"another photo", 1.5))
        .await
        .unwrap();
    assert_ne!(a, c);
    let s = db.find_subject(&user("carol")).await.unwrap().unwrap();
    assert_eq!(s.template_count, 2);
    assert_eq!(db.list_audit(&user("carol")).await.unwrap().len(), 3);
}

async fn rejection_sets_the_reason_until_a_face_is_enrolled(db: &Database) {
    let out = db
        .record_enrolment(&rejected("dave", "k1", "no_face_detected"))
        .await
        .unwrap();
    assert_eq!(out, RecordOutcome::Recorded { template_id: None });
    let s = db.find_subject(&user("dave")).await.unwrap().unwrap();
    assert!(!s.verified);
    assert_eq!(s.reason.as_deref(), Some("no_face_detected"));
    assert_eq!(s.template_count, 0);
    assert_eq!(s.enrolled_at, None);

    db.record_enrolment(&rejected("dave", "k2", "multiple_faces"))
        .await
        .unwrap();
    let s = db.find_subject(&user("dave")).await.unwrap().unwrap();
    assert_eq!(
        s.reason.as_deref(),
        Some("multiple_faces"),
        "latest reason wins"
    );

    db.record_enrolment(&accepted("dave", "k3", b"good", 1.0))
        .await
        .unwrap();
    let s = db.find_subject(&user("dave")).await.unwrap().unwrap();
    assert!(s.verified);
    assert_eq!(s.reason, None);

    db.record_enrolment(&rejected("dave", "k4", "invalid_image"))
        .await
        .unwrap();
    let s = db.find_subject(&user("dave")).await.unwrap().unwrap();
    assert!(
        s.verified,
        "a later bad photo does not unverify an enrolled face"
    );
    assert_eq!(s.reason, None);
    let audit = db.list_audit(&user("dave")).await.unwrap();
    let outcomes: Vec<_> = audit
        .iter()
        .map(|a| (a.outcome.as_str(), a.reason.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("rejected", Some("no_face_detected")),
            ("rejected", Some("multiple_faces")),
            ("verified", None),
            ("rejected", Some("invalid_image")),
        ]
    );
}

async fn templates_page_by_id_and_filter_by_model(db: &Database) {
    let model = ModelId::current();
    let wm = db.template_watermark(&model).await.unwrap();
    assert_eq!((wm.max_id, wm.count), (0, 0));
    for i in 0..25 {
        db.record_enrolment(&accepted(
            &format!("u{i}"),
            &format!("k{i}"),
            format!("photo{i}").as_bytes(),
            i as f32,
        ))
        .await
        .unwrap();
    }
    let mut other = accepted("u0", "k-old-model", b"old", 9.0);
    if let EnrolDecision::Accepted(t) = &mut other.decision {
        t.model.version = "0000000000000000".into();
    }
    db.record_enrolment(&other).await.unwrap();

    let wm = db.template_watermark(&model).await.unwrap();
    assert_eq!(wm.count, 25, "the other model's template is not counted");
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = db.list_templates_after(&model, after, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().id;
        all.extend(page);
    }
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all.last().unwrap().id, wm.max_id);
    assert!(all.iter().all(|t| t.model == model));
    assert_eq!(
        db.list_templates(&user("u0"), &model).await.unwrap().len(),
        1
    );
}

async fn audit_log_is_append_only_and_pseudonymous(db: &Database) {
    db.record_enrolment(&accepted("erin@example.com", "k1", b"p", 1.0))
        .await
        .unwrap();
    db.append_audit(&NewAuditEntry {
        username: user("erin@example.com"),
        action: AuditAction::Verify,
        outcome: "match".into(),
        reason: None,
        distance: Some(0.25),
        idempotency_key: None,
    })
    .await
    .unwrap();
    let audit = db.list_audit(&user("erin@example.com")).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].action, AuditAction::Verify);
    assert_eq!(audit[1].distance, Some(0.25));
    assert!(audit
        .iter()
        .all(|a| a.subject_key == user("erin@example.com").audit_key()));
    for sql in [
        "UPDATE audit_log SET outcome = 'forged'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::query(sql).execute(db.pool()).await;
        assert!(err.is_err(), "{sql} must be refused");
    }
    let rows: Vec<(String,)> = sqlx::query_as("SELECT subject_key FROM audit_log")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(rows.iter().all(|(k,)| !k.contains("erin")));
}

// sqlx 0.8's Any driver binds a NULL f64 as PostgreSQL float4; a pooled
// connection that cached the insert with a NULL distance then refused the
// next real one. Sequential inserts reuse one connection, so alternating
// NULL and non-NULL distances reproduces it.
async fn audit_distances_may_be_null_or_not_in_any_order(db: &Database) {
    let distances = [
        None,
        Some(0.3125),
        None,
        Some(0.123_456_789_012_345_68),
        Some(1.5),
    ];
    for d in distances {
        db.append_audit(&NewAuditEntry {
            username: user("gina"),
            action: AuditAction::Verify,
            outcome: "match".into(),
            reason: None,
            distance: d,
            idempotency_key: None,
        })
        .await
        .unwrap();
    }
    let audit = db.list_audit(&user("gina")).await.unwrap();
    let got: Vec<Option<f64>> = audit.iter().map(|a| a.distance).collect();
    assert_eq!(got, distances);
}

async fn erasure_removes_templates_jobs_and_keys_but_keeps_the_audit(db: &Database) {
    let model = ModelId::current();
    db.record_enrolment(&accepted("frank", "k1", b"p1", 1.0))
        .await
        .unwrap();
    db.record_enrolment(&accepted("frank", "k2", b"p2", 2.0))
        .await
        .unwrap();
    db.record_enrolment(&accepted("grace", "k3", b"p3", 3.0))
        .await
        .unwrap();
    db.enqueue(NewJob {
        username: user("frank"),
        image: Bytes::from_static(b"queued photo"),
    })
    .await
    .unwrap();
    let report = db.delete_subject(&user("frank")).await.unwrap();
    assert!(report.subject);
    assert_eq!((report.templates, report.jobs), (2, 1));
    assert!(db.find_subject(&user("frank")).await.unwrap().is_none());
    assert!(db
        .list_templates(&user("frank"), &model)
        .await
        .unwrap()
        .is_empty());
    assert!(!db.is_recorded("k1").await.unwrap());
    assert_eq!(db.claim(Duration::from_secs(60)).await.unwrap(), None);
    assert_eq!(db.template_watermark(&model).await.unwrap().count, 1);
    assert!(db.find_subject(&user("grace")).await.unwrap().is_some());
    let audit = db.list_audit(&user("frank")).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert_eq!(audit[2].action, AuditAction::Erase);

    let again = db.delete_subject(&user("frank")).await.unwrap();
    assert!(!again.subject);
    assert_eq!(db.list_audit(&user("frank")).await.unwrap().len(), 3);
}

async fn concurrent_deliveries_of_one_key_record_once(db: &Database) {
    let db = Arc::new(db.clone());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                db.record_enrolment(&accepted(
                    "heidi",
                    "same-key",
                    format!("p{i}").as_bytes(),
                    1.0,
                ))
                .await
                .unwrap()
            })
        })
        .collect();
    let mut recorded = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), RecordOutcome::Recorded { .. }) {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
    let model = ModelId::current();
    assert_eq!(
        db.list_templates(&user("heidi"), &model)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn enrolment_of_an_erased_job_records_nothing(db: &Database) {
    let job = db
        .enqueue(NewJob {
            username: user("ivan"),
            image: Bytes::from_static(b"x"),
        })
        .await
        .unwrap();
    let mut rec = accepted("ivan", &format!("job:{}", job.0), b"x", 1.0);
    rec.job = Some(job);
    db.delete_subject(&user("ivan")).await.unwrap();
    assert_eq!(
        db.record_enrolment(&rec).await.unwrap(),
        RecordOutcome::JobGone
    );
    assert!(db.find_subject(&user("ivan")).await.unwrap().is_none());
    assert!(!db.is_recorded(&rec.idempotency_key).await.unwrap());

    let job = db
        .enqueue(NewJob {
            username: user("ivan"),
            image: Bytes::from_static(b"y"),
        })
        .await
        .unwrap();
    rec.job = Some(job);
    rec.idempotency_key = format!("job:{}", job.0);
    assert!(matches!(
        db.record_enrolment(&rec).await.unwrap(),
        RecordOutcome::Recorded {
            template_id: Some(_)
        }
    ));
}

async fn jobs_are_claimed_in_order_and_completed(db: &Database) {
    let lease = Duration::from_secs(60);
    assert_eq!(db.claim(lease).await.unwrap(), None);
    let a = db
        .enqueue(NewJob {
            username: user("judy"),
            image: Bytes::from_static(b"first"),
        })
        .await
        .unwrap();
    let b = db
        .enqueue(NewJob {
            username: user("judy"),
            image: Bytes::from_static(b"second"),
        })
        .await
        .unwrap();
    assert!(a < b);
    let s = db.find_job(a).await.unwrap().unwrap();
    assert_eq!((s.state, s.attempts), (JobState::Queued, 0));

    let j = db.claim(lease).await.unwrap().unwrap();
    assert_eq!((j.id, j.attempts), (a, 1));
    assert_eq!(j.image, Bytes::from_static(b"first"));
    assert_eq!(j.username, user("judy"));
    assert_eq!(
        db.find_job(a).await.unwrap().unwrap().state,
        JobState::Running
    );
    db.complete(a, "enrolled").await.unwrap();
    let s = db.find_job(a).await.unwrap().unwrap();
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (JobState::Done, Some("enrolled"))
    );
    let image: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT image FROM enrollment_jobs WHERE id = $1")
            .bind(a.0)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(image, None, "a finished job keeps no photo");

    assert_eq!(db.claim(lease).await.unwrap().unwrap().id, b);
    assert_eq!(db.claim(lease).await.unwrap(), None);
    assert_eq!(db.find_job(JobId(9_999_999)).await.unwrap(), None);
}

async fn expired_leases_are_requeued(db: &Database) {
    let id = db
        .enqueue(NewJob {
            username: user("ken"),
            image: Bytes::from_static(b"p"),
        })
        .await
        .unwrap();
    db.claim(Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!(db.claim(Duration::from_secs(60)).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(db.requeue_expired().await.unwrap(), 1);
    let j = db.claim(Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((j.id, j.attempts), (id, 2));
    assert_eq!(db.requeue_expired().await.unwrap(), 0, "a live lease stays");
}

async fn failed_jobs_retry_after_a_delay_or_give_up(db: &Database) {
    let lease = Duration::from_secs(60);
    let id = db
        .enqueue(NewJob {
            username: user("leo"),
            image: Bytes::from_static(b"p"),
        })
        .await
        .unwrap();
    db.claim(lease).await.unwrap().unwrap();
    db.fail(id, "unavailable", Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(db.claim(lease).await.unwrap(), None, "not before the delay");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let j = db.claim(lease).await.unwrap().unwrap();
    assert_eq!(j.attempts, 2);
    db.fail(id, "internal", None).await.unwrap();
    let s = db.find_job(id).await.unwrap().unwrap();
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (JobState::Failed, Some("internal"))
    );
    assert_eq!(db.claim(lease).await.unwrap(), None);
}

async fn concurrent_claimers_never_share_a_job(db: &Database) {
    let mut ids = HashSet::new();
    for i in 0..20 {
        ids.insert(
            db.enqueue(NewJob {
                username: user(&format!("m{i}")),
                image: Bytes::from(vec![i as u8; 10]),
            })
            .await
            .unwrap(),
        );
    }
    let db = Arc::new(db.clone());
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(j) = db.claim(Duration::from_secs(60)).await.unwrap() {
                    got.push(j.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    assert_eq!(claimed.len(), 20, "every job claimed exactly once");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test]
async fn sqlite_file_keeps_its_data_across_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DbConfig::sqlite_file(&dir.path().join("veriface.db"));
    let db = Database::connect(&cfg).await.unwrap();
    db.record_enrolment(&accepted("nina", "k1", b"p", 1.0))
        .await
        .unwrap();
    db.enqueue(NewJob {
        username: user("nina"),
        image: Bytes::from_static(b"q"),
    })
    .await
    .unwrap();
    db.close().await;
    let db = Database::connect(&cfg).await.unwrap();
    assert!(
        db.find_subject(&user("nina"))
            .await
            .unwrap()
            .unwrap()
            .verified
    );
    assert!(db.claim(Duration::from_secs(5)).await.unwrap().is_some());
}

#[tokio::test]
async fn unreachable_postgres_is_reported_as_unavailable() {
    let port = veriface_testkit::server::free_port();
    let mut cfg = DbConfig::from_url(&format!("postgres://postgres@127.0.0.1:{port}/x")).unwrap();
    cfg.acquire_timeout = Duration::from_secs(2);
    let err = Database::connect(&cfg).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn database_url_selects_the_backend() {
    use veriface_store::db::Backend;
    let pg = DbConfig::from_url("postgres://u:secret@h/db").unwrap();
    assert_eq!(pg.backend(), Backend::Postgres);
    assert!(!format!("{pg:?}").contains("secret"));
    assert_eq!(
        DbConfig::from_url("sqlite:///tmp/x.db").unwrap().backend(),
        Backend::Sqlite
    );
    assert_eq!(
        DbConfig::from_url("mysql://h/db").unwrap_err().code(),
        "invalid_database_url"
    );
}
