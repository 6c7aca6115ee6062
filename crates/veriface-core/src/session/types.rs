//! The session's domain types: its id, the three images, the stored
//! record and the decision.

use serde::{Deserialize, Serialize};

use super::state::{Outcome, SessionState};
use crate::identity::Timestamp;
use crate::{Error, Result};

/// A session id: 128 random bits as 32 lowercase hex digits.
///
/// Unguessable on purpose: the id is the only credential the phone page
/// has (it travels in the QR code), so knowing one session's id must tell
/// nothing about another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

/// The code of a malformed session id (404: such a session cannot exist).
pub const SESSION_NOT_FOUND: &str = "session_not_found";

impl SessionId {
    /// A fresh id from the operating system's random source.
    ///
    /// # Errors
    /// [`Error::Internal`] when the random source fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| Error::Internal(Box::new(e)))?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Checks a client-given id: exactly 32 lowercase hex digits. Anything
    /// else is a session that does not exist.
    ///
    /// # Errors
    /// [`Error::NotFound`] with code [`SESSION_NOT_FOUND`].
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(raw.to_string()))
        } else {
            Err(not_found())
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> Self {
        id.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 404 of an unknown session.
pub fn not_found() -> Error {
    Error::NotFound {
        code: SESSION_NOT_FOUND,
        what: "session",
    }
}

/// Which picture an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The front of the ID card (portrait, MRZ on TD1 cards' back or
    /// passports' data page).
    IdFront,
    /// The back of the ID card (MRZ or PDF417 barcode).
    IdBack,
    /// The user's face.
    Selfie,
}

/// The code of an unknown `side` value (400).
pub const INVALID_SIDE: &str = "invalid_side";

impl Side {
    /// Every side, in the order the pages ask for them.
    pub const ALL: [Side; 3] = [Side::IdFront, Side::IdBack, Side::Selfie];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::IdFront => "id_front",
            Side::IdBack => "id_back",
            Side::Selfie => "selfie",
        }
    }

    /// Reads a client-given side.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] with code [`INVALID_SIDE`].
    pub fn parse(raw: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw.trim())
            .ok_or_else(|| Error::InvalidInput {
                code: INVALID_SIDE,
                message: "`side` must be id_front, id_back or selfie".to_string(),
            })
    }
}

/// The face comparison behind a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceScore {
    /// Euclidean distance between the ID portrait's and the selfie's
    /// descriptors (`None` when a face was missing).
    pub distance: Option<f32>,
    /// The threshold the distance was held against.
    pub threshold: f32,
    /// Faces found on the ID front (the portrait is the largest; a ghost
    /// portrait makes two).
    pub faces_on_document: usize,
    /// Faces found on the selfie.
    pub faces_on_selfie: usize,
}

/// What was read from the document (no personal data: formats and flags
/// only, so the audit record can be kept after the images are gone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentScore {
    /// The MRZ format (`TD1`, `TD2`, `TD3`, `MRVA`, `MRVB`) if one was read.
    pub mrz_format: Option<String>,
    /// Whether every MRZ check digit verified.
    pub mrz_valid: Option<bool>,
    /// Whether an AAMVA PDF417 barcode was decoded.
    pub barcode: bool,
    /// The document's expiry date (ISO 8601), if read.
    pub expiry_date: Option<String>,
}

/// A processor's decision, stored for audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// Stable reason codes, most serious first (empty when verified).
    pub reasons: Vec<String>,
    /// The face comparison.
    pub face: FaceScore,
    /// The document reading.
    pub document: DocumentScore,
    /// The face descriptor model.
    pub model: String,
    /// Its version.
    pub model_version: String,
    /// When it was decided.
    pub decided_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The id.
    pub id: SessionId,
    /// The current state.
    pub state: SessionState,
    /// The images uploaded so far (at most one per side).
    pub scans: Vec<Side>,
    /// Where the result is posted when the session ends, if anywhere.
    pub webhook_url: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// When an unconfirmed session expires.
    pub expires_at: Timestamp,
    /// Processing attempts so far.
    pub attempts: u32,
    /// The decision, once processed.
    pub decision: Option<Decision>,
}

impl Session {
    /// The sides not yet uploaded.
    pub fn missing(&self) -> Vec<Side> {
        Side::ALL
            .into_iter()
            .filter(|s| !self.scans.contains(s))
            .collect()
    }
}

/// A session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// Optional webhook URL.
    pub webhook_url: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry of the unconfirmed session.
    pub expires_at: Timestamp,
}

/// A webhook delivery that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingWebhook {
    /// The session.
    pub session: Session,
    /// Deliveries tried so far.
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_32_hex_digits_and_distinct() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn malformed_ids_are_unknown_sessions() {
        for raw in ["", "abc", &"A".repeat(32), &"g".repeat(32), "../etc/passwd"] {
            let e = SessionId::parse(raw).unwrap_err();
            assert_eq!(e.code(), SESSION_NOT_FOUND);
        }
    }

    #[test]
    fn sides_parse_their_wire_names_only() {
        for s in Side::ALL {
            assert_eq!(Side::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(Side::parse("front").unwrap_err().code(), INVALID_SIDE);
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_32_lowercase_hex(raw in "\\PC{0,40}") {
            let ok = raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            prop_assert_eq!(SessionId::parse(&raw).is_ok(), ok);
        }
    }
}
