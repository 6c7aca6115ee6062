//! veriface's domain: use-cases (compare, enrol, verify) and the ports
//! (traits) that storage, HTTP and the worker plug into.
//!
//! Dependencies point inward: this crate knows the face engine
//! ([`veriface_vision`]) but nothing of HTTP, SQL, Kafka or object stores.
//! Adapters implement the traits in [`ports`]; the binaries wire them.

pub mod error;
pub mod face;
pub mod face_service;
pub mod image_name;
pub mod metadata;
pub mod pool;
pub mod ports;

pub use error::{Error, ErrorKind, Result};

// Identity store, enrolment, 1:1 and 1:N matching (issue 4).
pub mod enrol;
pub mod identity;
pub mod search;

// Verification sessions (issue 5).
pub mod session;
