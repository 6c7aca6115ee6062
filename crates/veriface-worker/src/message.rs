//! The enrolment message of seed 001: JSON `{"username": ..., "path": ...}`,
//! extra fields allowed and ignored.

use veriface_core::identity::Username;

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolMessage {
    /// Whom to enrol.
    pub username: Username,
    /// Where the photo is, relative to (or inside) the images root.
    pub path: String,
}

/// Why a message was refused (each goes to the dead-letter topic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// No payload at all.
    #[error("message has no payload")]
    Empty,
    /// Not JSON, or not a JSON object.
    #[error("message is not a JSON object")]
    InvalidJson,
    /// `username` or `path` is missing, null or not a string.
    #[error("message lacks the string field {0:?}")]
    MissingField(&'static str),
    /// The username is not acceptable.
    #[error("username is invalid")]
    InvalidUsername,
}

impl MessageError {
    /// The stable reason code.
    pub const fn code(&self) -> &'static str {
        match self {
            MessageError::Empty => "empty_message",
            MessageError::InvalidJson => "invalid_json",
            MessageError::MissingField(_) => "missing_field",
            MessageError::InvalidUsername => "invalid_username",
        }
    }
}

impl EnrolMessage {
    /// Parses a payload.
    ///
    /// # Errors
    /// [`MessageError`].
    pub fn parse(payload: Option<&[u8]>) -> Result<Self, MessageError> {
        let bytes = payload
            .filter(|b| !b.is_empty())
            .ok_or(MessageError::Empty)?;
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|_| MessageError::InvalidJson)?;
        let obj = value.as_object().ok_or(MessageError::InvalidJson)?;
        let field = |name: &'static str| match obj.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(MessageError::MissingField(name)),
        };
        let username = field("username")?;
        let path = field("path")?;
        let username = Username::parse(&username).map_err(|_| MessageError::InvalidUsername)?;
        Ok(Self { username, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_seed_message_and_ignores_extra_fields() {
        let m = EnrolMessage::parse(Some(
            br#"{"username":"alice@example.com","path":"u/1.jpg","trace":"x","n":1}"#,
        ))
        .unwrap();
        assert_eq!(m.username.as_str(), "alice@example.com");
        assert_eq!(m.path, "u/1.jpg");
    }

    #[test]
    fn classifies_each_malformed_message() {
        let code = |p: &[u8]| EnrolMessage::parse(Some(p)).unwrap_err().code();
        assert_eq!(
            EnrolMessage::parse(None).unwrap_err().code(),
            "empty_message"
        );
        assert_eq!(code(b""), "empty_message");
        assert_eq!(code(b"not json"), "invalid_json");
        assert_eq!(code(b"[1,2]"), "invalid_json");
        assert_eq!(code(br#"{"username":"a"}"#), "missing_field");
        assert_eq!(code(br#"{"path":"a.jpg"}"#), "missing_field");
        assert_eq!(
            code(br#"{"username":null,"path":"a.jpg"}"#),
            "missing_field"
        );
        assert_eq!(code(br#"{"username":5,"path":"a.jpg"}"#), "missing_field");
        assert_eq!(
            code(br#"{"username":"a b","path":"a.jpg"}"#),
            "invalid_username"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EnrolMessage::parse(Some(&bytes));
        }
    }
}
