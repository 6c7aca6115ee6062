//! The identity store's domain types: who is enrolled, with which face
//! templates, and what was decided about them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use veriface_vision::engine::Embedding;

use crate::{Error, Result};

/// Longest accepted username, in bytes.
pub const MAX_USERNAME_LEN: usize = 128;

/// A subject's key, as the client system names its user.
///
/// 1 to 128 ASCII letters, digits and `. _ @ + -`, not starting with `.`:
/// wide enough for the e-mail addresses and ids seed 001's auth service uses,
/// narrow enough that a username is safe in a cache key, a log field or a
/// blob key segment without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Checks and wraps a username.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] with code `invalid_username`.
    pub fn parse(raw: &str) -> Result<Self> {
        let ok_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-');
        if raw.is_empty() || raw.len() > MAX_USERNAME_LEN {
            return Err(invalid_username(format!(
                "username must be 1 to {MAX_USERNAME_LEN} characters"
            )));
        }
        if raw.starts_with('.') || !raw.chars().all(ok_char) {
            return Err(invalid_username(
                "username may contain only ASCII letters, digits and . _ @ + - and must not start with ."
                    .to_string(),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pseudonymous key the audit log stores instead of the username:
    /// hex sha256 of it. Audit rows survive erasure of the subject (the log
    /// is append-only) without keeping the name in clear.
    pub fn audit_key(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

fn invalid_username(message: String) -> Error {
    Error::InvalidInput {
        code: "invalid_username",
        message,
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> Self {
        u.0
    }
}

/// Milliseconds since the Unix epoch, UTC: how both SQL backends store
/// times, so that the contract tests compare the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Wraps a stored value.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// The stored value.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This time plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T02:14:31.123Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The sha256 of an enrolment's source image, hex. Lets the store refuse a
/// second template from the same photo and lets an auditor tie a template
/// to a file without keeping the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceHash(String);

impl SourceHash {
    /// Hashes image bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex(&Sha256::digest(bytes)))
    }

    /// Wraps a stored hex digest.
    ///
    /// # Errors
    /// [`Error::Internal`] unless it is 64 lowercase hex digits (a stored
    /// value that is not is a corrupt row, not a user error).
    pub fn parse(hex: &str) -> Result<Self> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(hex.to_string()))
        } else {
            Err(Error::Internal(
                "stored source hash is not a sha256 hex digest".into(),
            ))
        }
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which network produced a template. Descriptors of different models (or
/// versions) are not comparable, so 1:1 and 1:N only use templates of the
/// engine's own model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelId {
    /// The model's name (its file name without extension).
    pub name: String,
    /// Its version: the first 16 hex digits of the pinned file's sha256.
    pub version: String,
}

impl ModelId {
    /// The descriptor network [`veriface_vision::FaceEngine`] loads.
    pub fn current() -> Self {
        use veriface_vision::models_dir::{pinned_sha256, RESNET_FILE};
        let name = RESNET_FILE.trim_end_matches(".dat").to_string();
        let version = pinned_sha256(RESNET_FILE)
            .map(|h| h.chars().take(16).collect())
            .unwrap_or_else(|| "unpinned".to_string());
        Self { name, version }
    }
}

/// A template about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// The descriptor.
    pub embedding: Embedding,
    /// The network that computed it.
    pub model: ModelId,
    /// The source photo's hash.
    pub source_sha256: SourceHash,
}

/// A stored face template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Store-assigned id, increasing with insertion (the search index uses
    /// it as a watermark).
    pub id: i64,
    /// Whose face.
    pub username: Username,
    /// The 128-D descriptor.
    #[serde(with = "embedding_serde")]
    pub embedding: Embedding,
    /// The network that computed it.
    pub model: ModelId,
    /// The source photo's hash.
    pub source_sha256: SourceHash,
    /// When it was stored.
    pub created_at: Timestamp,
}

/// Encodes a descriptor as its 128 little-endian f32s (512 bytes): how the
/// SQL backends store it.
pub fn embedding_to_bytes(e: &Embedding) -> Vec<u8> {
    e.0.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes [`embedding_to_bytes`].
///
/// # Errors
/// [`Error::Internal`] unless there are exactly 512 bytes.
pub fn embedding_from_bytes(bytes: &[u8]) -> Result<Embedding> {
    if bytes.len() != 512 {
        return Err(Error::Internal(
            format!("stored embedding has {} bytes, expected 512", bytes.len()).into(),
        ));
    }
    let mut out = [0f32; 128];
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(Embedding(out))
}

mod embedding_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use veriface_vision::engine::Embedding;

    pub fn serialize<S: Serializer>(e: &Embedding, s: S) -> Result<S::Ok, S::Error> {
        e.0.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Embedding, D::Error> {
        let v = Vec::<f32>::deserialize(d)?;
        let arr: [f32; 128] = v
            .try_into()
            .map_err(|_| serde::de::Error::custom("embedding must have 128 values"))?;
        Ok(Embedding(arr))
    }
}

/// What the store knows about a subject (never the vectors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectStatus {
    /// The subject.
    pub username: Username,
    /// True once at least one template is stored.
    pub verified: bool,
    /// Why the subject is not verified: the reason code of the latest
    /// rejected enrolment (`no_face_detected`, `multiple_faces`, ...).
    /// `None` when verified.
    pub reason: Option<String>,
    /// Stored templates.
    pub template_count: u32,
    /// First seen.
    pub created_at: Timestamp,
    /// Last enrolment decision.
    pub updated_at: Timestamp,
    /// When the first template was stored.
    pub enrolled_at: Option<Timestamp>,
}

/// The decision an enrolment reached.
// The template is stored inline: a decision is built once per enrolment and
// moved once, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum EnrolDecision {
    /// Exactly one usable face: store its template, `verified = true`.
    Accepted(NewTemplate),
    /// No template: the reason code (`no_face_detected`,
    /// `multiple_faces`, `invalid_image`, ...).
    Rejected {
        /// Stable snake_case reason code.
        reason: String,
    },
}

/// One enrolment decision to record atomically: subject upsert, template,
/// idempotency key and audit entry in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolmentRecord {
    /// The subject.
    pub username: Username,
    /// Identifies the delivery (`kafka:<topic>:<partition>:<offset>`,
    /// `job:<id>`): a second record with the same key is a redelivery and
    /// changes nothing.
    pub idempotency_key: String,
    /// Hash of the source image, when it was readable.
    pub source_sha256: Option<SourceHash>,
    /// What was decided.
    pub decision: EnrolDecision,
    /// The queued job this enrolment runs, if any: the record is written
    /// only while the job still exists, so an erasure that deleted the job
    /// mid-flight wins over the worker.
    pub job: Option<super::ports::JobId>,
}

/// What [`crate::identity::IdentityRepo::record_enrolment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Recorded; the template's id when one was accepted (an existing id
    /// when the same photo was already enrolled for this subject).
    Recorded {
        /// The template id, for accepted decisions.
        template_id: Option<i64>,
    },
    /// The idempotency key was already recorded: nothing changed.
    Duplicate,
    /// The record's job no longer exists (the subject was erased while the
    /// job ran): nothing changed.
    JobGone,
}

/// Kinds of audited decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// An enrolment was accepted or rejected.
    Enrol,
    /// A 1:1 verification was decided.
    Verify,
    /// The subject was erased.
    Erase,
}

impl AuditAction {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Enrol => "enrol",
            AuditAction::Verify => "verify",
            AuditAction::Erase => "erase",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// [`Error::Internal`] for an unknown name (a corrupt row).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "enrol" => Ok(AuditAction::Enrol),
            "verify" => Ok(AuditAction::Verify),
            "erase" => Ok(AuditAction::Erase),
            _ => Err(Error::Internal(
                format!("unknown audit action {s:?} in store").into(),
            )),
        }
    }
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Whose decision.
    pub username: Username,
    /// What kind.
    pub action: AuditAction,
    /// The outcome (`verified`, `rejected`, `match`, `no_match`, `erased`).
    pub outcome: String,
    /// A reason code, when rejected.
    pub reason: Option<String>,
    /// The decisive distance of a verification.
    pub distance: Option<f64>,
    /// The delivery that caused it, when any.
    pub idempotency_key: Option<String>,
}

/// A stored audit entry. Holds the username's [`Username::audit_key`], not
/// the username.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Store-assigned, increasing.
    pub id: i64,
    /// sha256 of the username.
    pub subject_key: String,
    /// What kind.
    pub action: AuditAction,
    /// The outcome.
    pub outcome: String,
    /// A reason code.
    pub reason: Option<String>,
    /// The decisive distance of a verification.
    pub distance: Option<f64>,
    /// The delivery that caused it.
    pub idempotency_key: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErasureReport {
    /// Whether the subject existed.
    pub subject: bool,
    /// Templates deleted.
    pub templates: u64,
    /// Queued or finished jobs deleted (with their images).
    pub jobs: u64,
}

/// Detects changes to the template table cheaply: ids only grow, so a
/// larger `max_id` means inserts and a smaller `count` than expected means
/// deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemplateWatermark {
    /// Highest template id (0 when empty).
    pub max_id: i64,
    /// Number of templates of the model.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_email_like_usernames() {
        for ok in ["alice", "a.b-c_d+e@example.com", "U123", "x"] {
            assert_eq!(Username::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_usernames_that_could_escape_a_key_or_path() {
        for bad in [
            "",
            ".hidden",
            "a/b",
            "a b",
            "..",
            "é",
            "a\nb",
            &"x".repeat(129),
        ] {
            let e = Username::parse(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_username");
        }
    }

    #[test]
    fn audit_key_is_the_hex_sha256_of_the_username() {
        let u = Username::parse("abc").unwrap();
        assert_eq!(
            u.audit_key(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_314_871_123).to_rfc3339(),
            "2026-11-22T02:34:31.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn embeddings_round_trip_through_their_byte_form() {
        let mut v = [0f32; 128];
        for (i, x) in v.iter_mut().enumerate() {
            *x = (i as f32 - 64.0) / 37.0;
        }
        let e = Embedding(v);
        assert_eq!(embedding_from_bytes(&embedding_to_bytes(&e)).unwrap(), e);
        assert!(embedding_from_bytes(&[0u8; 511]).is_err());
    }

    proptest! {
        #[test]
        fn parsed_usernames_contain_only_key_safe_characters(s in "\\PC{0,140}") {
            if let Ok(u) = Username::parse(&s) {
                prop_assert!(u.as_str().len() <= MAX_USERNAME_LEN);
                prop_assert!(!u.as_str().starts_with('.'));
                prop_assert!(u.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c)));
            }
        }

        #[test]
        fn valid_usernames_round_trip(s in "[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,127}") {
            let u = Username::parse(&s).unwrap();
            prop_assert_eq!(u.as_str(), s.as_str());
        }
    }
}
