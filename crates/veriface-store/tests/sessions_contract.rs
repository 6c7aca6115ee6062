//! The session store's contract (issue 5): the same checks on a SQLite
//! file and on a real PostgreSQL server (started by `veriface-testkit` on
//! loopback, one fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use veriface_core::identity::Timestamp;
use veriface_core::session::types::{Decision, DocumentScore, FaceScore, NewSession};
use veriface_core::session::{Outcome, SessionId, SessionRepo, SessionState, Side};
use veriface_store::db::Database;

veriface_testkit::db_contract!(
    a_session_goes_from_created_to_a_stored_decision,
    state_changes_are_compare_and_set,
    uploads_and_restarts_only_touch_open_unexpired_sessions,
    only_open_sessions_past_their_expiry_expire,
    a_processing_session_whose_lease_ran_out_is_claimed_again,
    concurrent_claimers_never_share_a_session,
    webhooks_are_due_on_final_states_and_retried_until_delivered_or_given_up,
);

const T0: i64 = 1_800_000_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

async fn new_session(db: &Database, webhook: Option<&str>, ttl_ms: i64) -> SessionId {
    let id = SessionId::generate().unwrap();
    db.insert_session(NewSession {
        id: id.clone(),
        webhook_url: webhook.map(str::to_string),
        created_at: at(0),
        expires_at: at(ttl_ms),
    })
    .await
    .unwrap();
    id
}

fn decision(outcome: Outcome, reasons: &[&str]) -> Decision {
    Decision {
        outcome,
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
        face: FaceScore {
            distance: Some(0.41),
            threshold: 0.6,
            faces_on_document: 2,
            faces_on_selfie: 1,
        },
        document: DocumentScore {
            mrz_format: None,
            mrz_valid: None,
            barcode: true,
            expiry_date: Some("2031-01-31".into()),
        },
        model: "dlib_face_recognition_resnet_model_v1".into(),
        model_version: "1".into(),
        decided_at: at(5_000),
    }
}

async fn submitted(db: &Database, webhook: Option<&str>) -> SessionId {
    let id = new_session(db, webhook, 60_000).await;
    for side in Side::ALL {
        assert!(db.add_scan(&id, side, at(10)).await.unwrap());
    }
    assert!(db
        .set_state(
            &id,
            SessionState::Collecting,
            SessionState::Submitted,
            at(20)
        )
        .await
        .unwrap());
    id
}

async fn a_session_goes_from_created_to_a_stored_decision(db: &Database) {
    let id = new_session(db, None, 60_000).await;
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Created);
    assert!(s.scans.is_empty());
    assert_eq!((s.created_at, s.expires_at), (at(0), at(60_000)));
    assert_eq!(s.webhook_url, None);

    assert!(db.add_scan(&id, Side::Selfie, at(1)).await.unwrap());
    assert!(db.add_scan(&id, Side::IdFront, at(2)).await.unwrap());
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Collecting);
    assert_eq!(s.scans, vec![Side::IdFront, Side::Selfie]);
    assert_eq!(s.missing(), vec![Side::IdBack]);
    assert!(db.add_scan(&id, Side::IdBack, at(3)).await.unwrap());
    assert!(db
        .set_state(
            &id,
            SessionState::Collecting,
            SessionState::Submitted,
            at(4)
        )
        .await
        .unwrap());

    let claimed = db
        .claim_session(at(5), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.state, SessionState::Processing);
    assert_eq!(claimed.attempts, 1);
    assert!(db
        .claim_session(at(6), Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());

    let d = decision(Outcome::Rejected, &["face_mismatch"]);
    assert!(db.finish_session(&id, &d, at(7)).await.unwrap());
    assert!(
        !db.finish_session(&id, &d, at(8)).await.unwrap(),
        "a decided session is not processing any more"
    );
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Rejected);
    assert_eq!(s.decision, Some(d));
    assert!(
        db.claim_webhook(at(9), Duration::from_secs(10))
            .await
            .unwrap()
            .is_none(),
        "no webhook URL, no delivery"
    );
    assert!(db
        .find_session(&SessionId::generate().unwrap())
        .await
        .unwrap()
        .is_none());
}

async fn state_changes_are_compare_and_set(db: &Database) {
    let id = new_session(db, None, 60_000).await;
    assert!(!db
        .set_state(
            &id,
            SessionState::Collecting,
            SessionState::Submitted,
            at(1)
        )
        .await
        .unwrap());
    assert!(db
        .set_state(&id, SessionState::Created, SessionState::Cancelled, at(2))
        .await
        .unwrap());
    assert!(!db
        .set_state(&id, SessionState::Created, SessionState::Expired, at(3))
        .await
        .unwrap());
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!(s.state, SessionState::Cancelled);
    assert_eq!(s.updated_at, at(2));
}

async fn uploads_and_restarts_only_touch_open_unexpired_sessions(db: &Database) {
    let id = new_session(db, None, 100).await;
    assert!(db.add_scan(&id, Side::IdFront, at(10)).await.unwrap());
    assert!(db.clear_scans(&id, at(20)).await.unwrap());
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!((s.state, s.scans.len()), (SessionState::Created, 0));
    assert!(
        !db.add_scan(&id, Side::IdFront, at(100)).await.unwrap(),
        "past its expiry"
    );
    assert!(!db.clear_scans(&id, at(150)).await.unwrap());

    let id = submitted(db, None).await;
    assert!(!db.add_scan(&id, Side::Selfie, at(30)).await.unwrap());
    assert!(!db.clear_scans(&id, at(30)).await.unwrap());
    let s = db.find_session(&id).await.unwrap().unwrap();
    assert_eq!((s.state, s.scans.len()), (SessionState::Submitted, 3));
}

async fn only_open_sessions_past_their_expiry_expire(db: &Database) {
    let due_created = new_session(db, None, 100).await;
    let due_collecting = new_session(db, Some("http://127.0.0.1:9/hook"), 100).await;
    assert!(db
        .add_scan(&due_collecting, Side::Selfie, at(50))
        .await
        .unwrap());
    let not_due = new_session(db, None, 10_000).await;
    let confirmed = submitted(db, None).await;

    let mut expired = db.expire_sessions(at(100)).await.unwrap();
    expired.sort();
    let mut want = vec![due_created.clone(), due_collecting.clone()];
    want.sort();
    assert_eq!(expired, want);
    assert!(db.expire_sessions(at(200)).await.unwrap().is_empty());
    for (id, state) in [
        (&due_created, SessionState::Expired),
        (&due_collecting, SessionState::Expired),
        (&not_due, SessionState::Created),
        (&confirmed, SessionState::Submitted),
    ] {
        assert_eq!(db.find_session(id).await.unwrap().unwrap().state, state);
    }
    // Expiry is a final state: the session with a webhook is told.
    let hook = db
        .claim_webhook(at(300), Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hook.session.id, due_collecting);
}

async fn a_processing_session_whose_lease_ran_out_is_claimed_again(db: &Database) {
    let id = submitted(db, None).await;
    let lease = Duration::from_secs(1);
    let first = db.claim_session(at(100), lease).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    assert!(db.claim_session(at(1_099), lease).await.unwrap().is_none());
    // The processor died: after its lease another one takes the session.
    let again = db.claim_session(at(1_101), lease).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (id.clone(), 2));
    assert!(db
        .set_state(
            &id,
            SessionState::Processing,
            SessionState::Submitted,
            at(1_200)
        )
        .await
        .unwrap());
    let third = db.claim_session(at(1_300), lease).await.unwrap().unwrap();
    assert_eq!(third.attempts, 3);
}

async fn concurrent_claimers_never_share_a_session(db: &Database) {
    let mut ids = HashSet::new();
    for _ in 0..12 {
        ids.insert(submitted(db, None).await);
    }
    let db = Arc::new(db.clone());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(s) = db
                    .claim_session(at(1_000), Duration::from_secs(60))
                    .await
                    .unwrap()
                {
                    mine.push(s.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    assert_eq!(claimed.len(), 12, "every session claimed exactly once");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), ids);
}

async fn webhooks_are_due_on_final_states_and_retried_until_delivered_or_given_up(db: &Database) {
    let url = "http://127.0.0.1:9/hook";
    let id = submitted(db, Some(url)).await;
    db.claim_session(at(100), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(
        db.claim_webhook(at(150), Duration::from_secs(10))
            .await
            .unwrap()
            .is_none(),
        "not final yet"
    );
    let d = decision(Outcome::Verified, &[]);
    assert!(db.finish_session(&id, &d, at(200)).await.unwrap());

    let lease = Duration::from_secs(10);
    let hook = db.claim_webhook(at(200), lease).await.unwrap().unwrap();
    assert_eq!(hook.attempts, 1);
    assert_eq!(hook.session.webhook_url.as_deref(), Some(url));
    assert_eq!(hook.session.decision, Some(d));
    assert!(
        db.claim_webhook(at(300), lease).await.unwrap().is_none(),
        "leased to the first sender"
    );
    db.record_webhook(&id, false, Some(at(2_000)), at(400))
        .await
        .unwrap();
    assert!(db.claim_webhook(at(1_999), lease).await.unwrap().is_none());
    let hook = db.claim_webhook(at(2_000), lease).await.unwrap().unwrap();
    assert_eq!(hook.attempts, 2);
    db.record_webhook(&id, true, None, at(2_100)).await.unwrap();
    assert!(db.claim_webhook(at(99_999), lease).await.unwrap().is_none());

    // Giving up ends the deliveries too.
    let other = submitted(db, Some(url)).await;
    assert!(db
        .set_state(
            &other,
            SessionState::Submitted,
            SessionState::Processing,
            at(10)
        )
        .await
        .unwrap());
    assert!(db
        .finish_session(
            &other,
            &decision(Outcome::NeedsReview, &["document_unreadable"]),
            at(20)
        )
        .await
        .unwrap());
    let hook = db.claim_webhook(at(30), lease).await.unwrap().unwrap();
    assert_eq!(hook.session.id, other);
    assert_eq!(hook.session.state, SessionState::NeedsReview);
    db.record_webhook(&other, false, None, at(40))
        .await
        .unwrap();
    assert!(db.claim_webhook(at(99_999), lease).await.unwrap().is_none());
}
