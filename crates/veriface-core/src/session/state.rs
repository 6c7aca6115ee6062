//! The verification session's state machine, as one exhaustive table.
//!
//! ```text
//! created --add--> collecting --confirm--> submitted --claim--> processing --finish--> verified
//!    |                 |  ^ add/restart                   ^          |                 rejected
//!    |                 |  +-----------+                   +-requeue--+                 needs_review
//!    +----cancel / expire (created, collecting) ----> cancelled / expired
//! ```
//!
//! [`transition`] is pure: the service and the store call it, so the rules
//! live in one place and are tested here exhaustively.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Started; nothing uploaded yet.
    Created,
    /// At least one image uploaded; more may come, or a restart.
    Collecting,
    /// Confirmed by the user; waiting for the processor.
    Submitted,
    /// A processor is reading the document and comparing the faces.
    Processing,
    /// Final: the document is valid and the faces match.
    Verified,
    /// Final: a check failed (see the reasons).
    Rejected,
    /// Final: nothing failed outright, but something could not be checked
    /// (e.g. the document was unreadable); a person should look.
    NeedsReview,
    /// Final: cancelled by the client.
    Cancelled,
    /// Final: not confirmed within the session's time to live.
    Expired,
}

impl SessionState {
    /// Every state, for tests and documentation.
    pub const ALL: [SessionState; 9] = [
        SessionState::Created,
        SessionState::Collecting,
        SessionState::Submitted,
        SessionState::Processing,
        SessionState::Verified,
        SessionState::Rejected,
        SessionState::NeedsReview,
        SessionState::Cancelled,
        SessionState::Expired,
    ];

    /// The stable wire and database name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionState::Created => "created",
            SessionState::Collecting => "collecting",
            SessionState::Submitted => "submitted",
            SessionState::Processing => "processing",
            SessionState::Verified => "verified",
            SessionState::Rejected => "rejected",
            SessionState::NeedsReview => "needs_review",
            SessionState::Cancelled => "cancelled",
            SessionState::Expired => "expired",
        }
    }

    /// Reads a stored name.
    ///
    /// # Errors
    /// [`Error::Internal`] for an unknown name (the database holds only
    /// names this code wrote).
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("unknown session state {s:?}").into()))
    }

    /// True for the states nothing leaves.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            SessionState::Verified
                | SessionState::Rejected
                | SessionState::NeedsReview
                | SessionState::Cancelled
                | SessionState::Expired
        )
    }

    /// True while the user may still upload (the time to live applies).
    pub const fn is_open(self) -> bool {
        matches!(self, SessionState::Created | SessionState::Collecting)
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome a processor reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// See [`SessionState::Verified`].
    Verified,
    /// See [`SessionState::Rejected`].
    Rejected,
    /// See [`SessionState::NeedsReview`].
    NeedsReview,
}

impl Outcome {
    /// The final state this outcome puts the session in.
    pub const fn state(self) -> SessionState {
        match self {
            Outcome::Verified => SessionState::Verified,
            Outcome::Rejected => SessionState::Rejected,
            Outcome::NeedsReview => SessionState::NeedsReview,
        }
    }
}

/// What happens to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// An image is uploaded (`POST /api/scan/add`).
    AddScan,
    /// The uploads are discarded to start over (`POST /api/scan/restart`).
    Restart,
    /// The user confirms the uploads (`POST /api/scan/confirm`).
    Confirm,
    /// The client cancels (`DELETE /api/verification/cancel`).
    Cancel,
    /// The time to live ran out before the confirm.
    Expire,
    /// A processor takes the session.
    Claim,
    /// A processor gave up on an attempt (a crash, a dependency down):
    /// the session waits for the next claim.
    Requeue,
    /// A processor decided.
    Finish(Outcome),
}

impl Action {
    /// Every action, for the exhaustive test.
    pub const ALL: [Action; 10] = [
        Action::AddScan,
        Action::Restart,
        Action::Confirm,
        Action::Cancel,
        Action::Expire,
        Action::Claim,
        Action::Requeue,
        Action::Finish(Outcome::Verified),
        Action::Finish(Outcome::Rejected),
        Action::Finish(Outcome::NeedsReview),
    ];

    /// A short name for messages and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::AddScan => "add a scan",
            Action::Restart => "restart",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::Expire => "expire",
            Action::Claim => "start processing",
            Action::Requeue => "requeue",
            Action::Finish(_) => "finish",
        }
    }
}

/// What an allowed action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The session moves to this state.
    To(SessionState),
    /// Nothing changes, and that is not an error: a repeated confirm of a
    /// session already confirmed (confirm is idempotent).
    Stay,
}

/// The stable code of a refused transition (409).
pub const INVALID_TRANSITION: &str = "invalid_session_transition";
/// The stable code of an action on an expired session (409).
pub const SESSION_EXPIRED: &str = "session_expired";

/// The table: what `action` does in `state`, or why it is refused.
///
/// # Errors
/// [`Error::Conflict`] with code [`SESSION_EXPIRED`] for any client action
/// on an expired session, else [`INVALID_TRANSITION`], naming the state
/// and the action.
pub fn transition(state: SessionState, action: Action) -> Result<Transition> {
    use Action as A;
    use SessionState as S;
    // Exhaustive on both axes (no `_` arm): a new state or action must
    // decide every cell.
    let to = |s| Ok(Transition::To(s));
    match (state, action) {
        (S::Created | S::Collecting, A::AddScan) => to(S::Collecting),
        (S::Created | S::Collecting, A::Restart) => to(S::Created),
        (S::Collecting, A::Confirm) => to(S::Submitted),
        (S::Submitted | S::Processing | S::Verified | S::Rejected | S::NeedsReview, A::Confirm) => {
            Ok(Transition::Stay)
        }
        (S::Created | S::Collecting, A::Cancel) => to(S::Cancelled),
        (S::Created | S::Collecting, A::Expire) => to(S::Expired),
        (S::Submitted, A::Claim) => to(S::Processing),
        // A lease that ran out: the processor that held it died.
        (S::Processing, A::Claim) => to(S::Processing),
        (S::Processing, A::Requeue) => to(S::Submitted),
        (S::Processing, A::Finish(o)) => to(o.state()),
        (S::Expired, A::AddScan | A::Restart | A::Confirm | A::Cancel) => Err(Error::Conflict {
            code: SESSION_EXPIRED,
            message: format!("the session expired; cannot {}", action.as_str()),
        }),
        (S::Created, A::Confirm | A::Claim | A::Requeue | A::Finish(_))
        | (S::Collecting, A::Claim | A::Requeue | A::Finish(_))
        | (
            S::Submitted,
            A::AddScan | A::Restart | A::Cancel | A::Expire | A::Requeue | A::Finish(_),
        )
        | (S::Processing, A::AddScan | A::Restart | A::Cancel | A::Expire)
        | (
            S::Verified | S::Rejected | S::NeedsReview | S::Cancelled,
            A::AddScan | A::Restart | A::Cancel | A::Expire | A::Claim | A::Requeue | A::Finish(_),
        )
        | (S::Cancelled, A::Confirm)
        | (S::Expired, A::Expire | A::Claim | A::Requeue | A::Finish(_)) => Err(Error::Conflict {
            code: INVALID_TRANSITION,
            message: format!("cannot {} a session that is {state}", action.as_str()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// The allowed cells, written out independently of the match above.
    fn expected(state: SessionState, action: Action) -> Option<Transition> {
        use Action as A;
        use SessionState as S;
        let t = Transition::To;
        Some(match (state, action) {
            (S::Created, A::AddScan) => t(S::Collecting),
            (S::Collecting, A::AddScan) => t(S::Collecting),
            (S::Created, A::Restart) => t(S::Created),
            (S::Collecting, A::Restart) => t(S::Created),
            (S::Collecting, A::Confirm) => t(S::Submitted),
            (S::Submitted, A::Confirm) => Transition::Stay,
            (S::Processing, A::Confirm) => Transition::Stay,
            (S::Verified, A::Confirm) => Transition::Stay,
            (S::Rejected, A::Confirm) => Transition::Stay,
            (S::NeedsReview, A::Confirm) => Transition::Stay,
            (S::Created, A::Cancel) => t(S::Cancelled),
            (S::Collecting, A::Cancel) => t(S::Cancelled),
            (S::Created, A::Expire) => t(S::Expired),
            (S::Collecting, A::Expire) => t(S::Expired),
            (S::Submitted, A::Claim) => t(S::Processing),
            (S::Processing, A::Claim) => t(S::Processing),
            (S::Processing, A::Requeue) => t(S::Submitted),
            (S::Processing, A::Finish(Outcome::Verified)) => t(S::Verified),
            (S::Processing, A::Finish(Outcome::Rejected)) => t(S::Rejected),
            (S::Processing, A::Finish(Outcome::NeedsReview)) => t(S::NeedsReview),
            _ => return None,
        })
    }

    #[test]
    fn every_cell_of_the_table_is_as_specified() {
        let mut allowed = 0;
        for state in SessionState::ALL {
            for action in Action::ALL {
                let got = transition(state, action);
                match expected(state, action) {
                    Some(t) => {
                        allowed += 1;
                        assert_eq!(got.ok(), Some(t), "{state} / {action:?}");
                    }
                    None => {
                        let e = got.expect_err(&format!("{state} / {action:?} must be refused"));
                        assert_eq!(e.kind(), ErrorKind::Conflict);
                        let code = if state == SessionState::Expired
                            && matches!(
                                action,
                                Action::AddScan
                                    | Action::Restart
                                    | Action::Confirm
                                    | Action::Cancel
                            ) {
                            SESSION_EXPIRED
                        } else {
                            INVALID_TRANSITION
                        };
                        assert_eq!(e.code(), code, "{state} / {action:?}");
                    }
                }
            }
        }
        assert_eq!(allowed, 20);
    }

    #[test]
    fn final_states_are_left_by_nothing() {
        for state in SessionState::ALL.into_iter().filter(|s| s.is_final()) {
            for action in Action::ALL {
                if let Ok(Transition::To(next)) = transition(state, action) {
                    panic!("{state} moves to {next} on {action:?}");
                }
            }
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in SessionState::ALL {
            assert_eq!(SessionState::parse(s.as_str()).unwrap(), s);
        }
        assert!(SessionState::parse("done").is_err());
    }
}
