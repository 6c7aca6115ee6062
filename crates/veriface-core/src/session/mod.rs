//! Verification sessions (seed 002): a user uploads the front and back of
//! an ID card and a selfie, confirms, and a processor decides whether the
//! document is valid and shows the same person.
//!
//! - [`state`]: the state machine, one exhaustive transition table.
//! - [`types`]: ids, sides, the stored session and its decision.
//! - [`decision`]: evidence to outcome and reasons (pure).
//! - [`ports`]: the [`SessionRepo`] the SQL store implements.
//! - [`service`]: the use-cases the HTTP routes call.
//!
//! ```
//! use veriface_core::session::state::{transition, Action, SessionState, Transition};
//!
//! let next = transition(SessionState::Collecting, Action::Confirm).unwrap();
//! assert_eq!(next, Transition::To(SessionState::Submitted));
//! // Confirm is idempotent; a finished session cannot be cancelled.
//! assert_eq!(transition(SessionState::Submitted, Action::Confirm).unwrap(), Transition::Stay);
//! assert!(transition(SessionState::Verified, Action::Cancel).is_err());
//! ```

pub mod decision;
pub mod ports;
pub mod service;
pub mod state;
pub mod types;

pub use ports::SessionRepo;
pub use service::SessionService;
pub use state::{Outcome, SessionState};
pub use types::{Decision, Session, SessionId, Side};
