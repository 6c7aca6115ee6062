//! How a processed session's evidence becomes a decision: a pure function
//! of the face distance and the document findings, so every rule is unit
//! tested and the stored reasons say exactly why.
//!
//! Reasons that prove a problem reject; reasons that only say something
//! could not be checked send the session to review; no reason verifies.

use serde::Serialize;

use super::state::Outcome;

/// A session reason: a stable snake_case code and what it does to the
/// outcome. Codes are API (`check_status`'s `reasons`, the webhook): never
/// rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReasonRule {
    /// The code.
    pub code: &'static str,
    /// Rejects (true) or asks for review (false).
    pub rejects: bool,
    /// What it means, for the documentation test.
    pub meaning: &'static str,
}

/// Every reason a decision can carry, in the order they are reported.
pub const REASONS: &[ReasonRule] = &[
    ReasonRule {
        code: "invalid_image",
        rejects: true,
        meaning: "an uploaded image could not be decoded",
    },
    ReasonRule {
        code: "no_face_on_document",
        rejects: true,
        meaning: "no portrait was found on the ID front",
    },
    ReasonRule {
        code: "no_face_on_selfie",
        rejects: true,
        meaning: "no face was found on the selfie",
    },
    ReasonRule {
        code: "face_mismatch",
        rejects: true,
        meaning: "the ID portrait and the selfie are farther apart than the threshold",
    },
    ReasonRule {
        code: "document_expired",
        rejects: true,
        meaning: "the document's expiry date has passed",
    },
    ReasonRule {
        code: "mrz_check_digit_failed",
        rejects: true,
        meaning: "an MRZ check digit does not match (misread or forged)",
    },
    ReasonRule {
        code: "mrz_invalid_date",
        rejects: true,
        meaning: "an MRZ date is not a calendar date",
    },
    ReasonRule {
        code: "mrz_barcode_name_mismatch",
        rejects: true,
        meaning: "the MRZ and the barcode name different people",
    },
    ReasonRule {
        code: "mrz_barcode_birth_date_mismatch",
        rejects: true,
        meaning: "the MRZ and the barcode give different birth dates",
    },
    ReasonRule {
        code: "document_unreadable",
        rejects: false,
        meaning: "neither an MRZ nor an AAMVA barcode could be read on the ID",
    },
    ReasonRule {
        code: "document_expiry_unknown",
        rejects: false,
        meaning: "document data was read but no expiry date",
    },
    ReasonRule {
        code: "multiple_faces_on_selfie",
        rejects: false,
        meaning: "the selfie shows more than one face",
    },
    ReasonRule {
        code: "processing_failed",
        rejects: false,
        meaning: "processing failed on every attempt (a dependency kept failing); nothing was decided about the person",
    },
];

/// What the processor found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Distance between the ID portrait and the selfie, when both have a
    /// face.
    pub distance: Option<f32>,
    /// Faces on the ID front (0: no portrait).
    pub faces_on_document: usize,
    /// Faces on the selfie (0: no face).
    pub faces_on_selfie: usize,
    /// An uploaded image did not decode.
    pub invalid_image: bool,
    /// Document findings (`veriface_document::crosscheck::Reason` codes).
    pub document_reasons: Vec<String>,
}

/// The outcome and the reasons, most serious first.
pub fn decide(evidence: &Evidence, threshold: f32) -> (Outcome, Vec<String>) {
    let mut found: Vec<String> = Vec::new();
    let mut add = |code: &str| {
        if !found.iter().any(|c| c == code) {
            found.push(code.to_string());
        }
    };
    if evidence.invalid_image {
        add("invalid_image");
    } else {
        if evidence.faces_on_document == 0 {
            add("no_face_on_document");
        }
        if evidence.faces_on_selfie == 0 {
            add("no_face_on_selfie");
        }
        if evidence.faces_on_selfie > 1 {
            add("multiple_faces_on_selfie");
        }
        if evidence
            .distance
            .is_some_and(|d| d > threshold || d.is_nan())
        {
            add("face_mismatch");
        }
    }
    for code in &evidence.document_reasons {
        add(code);
    }
    // Report in the table's order; an unknown code (a reason added to the
    // document reader but not here) sorts last and asks for review.
    let rank = |c: &String| {
        REASONS
            .iter()
            .position(|r| r.code == c)
            .unwrap_or(REASONS.len())
    };
    found.sort_by_key(rank);
    let rejects = |c: &String| REASONS.iter().any(|r| r.code == c && r.rejects);
    let outcome = if found.iter().any(rejects) {
        Outcome::Rejected
    } else if found.is_empty() {
        Outcome::Verified
    } else {
        Outcome::NeedsReview
    };
    (outcome, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> Evidence {
        Evidence {
            distance: Some(0.35),
            faces_on_document: 2,
            faces_on_selfie: 1,
            invalid_image: false,
            document_reasons: vec![],
        }
    }

    #[test]
    fn matching_faces_and_a_clean_document_verify() {
        assert_eq!(decide(&clean(), 0.6), (Outcome::Verified, vec![]));
    }

    #[test]
    fn a_distance_over_the_threshold_rejects_as_face_mismatch() {
        let e = Evidence {
            distance: Some(0.75),
            ..clean()
        };
        assert_eq!(
            decide(&e, 0.6),
            (Outcome::Rejected, vec!["face_mismatch".to_string()])
        );
        assert_eq!(decide(&e, 0.8).0, Outcome::Verified);
    }

    #[test]
    fn missing_faces_reject_and_name_the_image() {
        let e = Evidence {
            distance: None,
            faces_on_document: 0,
            ..clean()
        };
        assert_eq!(
            decide(&e, 0.6),
            (Outcome::Rejected, vec!["no_face_on_document".to_string()])
        );
        let e = Evidence {
            distance: None,
            faces_on_selfie: 0,
            ..clean()
        };
        assert_eq!(decide(&e, 0.6).1, vec!["no_face_on_selfie"]);
    }

    #[test]
    fn an_unreadable_document_asks_for_review_but_an_expired_one_rejects() {
        let e = Evidence {
            document_reasons: vec!["document_unreadable".into()],
            ..clean()
        };
        assert_eq!(
            decide(&e, 0.6),
            (
                Outcome::NeedsReview,
                vec!["document_unreadable".to_string()]
            )
        );
        let e = Evidence {
            distance: Some(0.9),
            document_reasons: vec!["document_expiry_unknown".into(), "document_expired".into()],
            ..clean()
        };
        assert_eq!(
            decide(&e, 0.6),
            (
                Outcome::Rejected,
                vec![
                    "face_mismatch".into(),
                    "document_expired".into(),
                    "document_expiry_unknown".into()
                ]
            )
        );
    }

    #[test]
    fn an_unknown_document_reason_asks_for_review() {
        let e = Evidence {
            document_reasons: vec!["something_new".into()],
            ..clean()
        };
        assert_eq!(decide(&e, 0.6).0, Outcome::NeedsReview);
    }

    #[test]
    fn every_reason_is_documented_with_its_outcome_in_sessions_md() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sessions.md");
        let doc = std::fs::read_to_string(path).unwrap();
        for r in REASONS {
            let outcome = if r.rejects {
                "rejected"
            } else {
                "needs_review"
            };
            assert!(
                doc.contains(&format!("| `{}` | {outcome} |", r.code)),
                "{} ({outcome}) is not in the reasons table of docs/sessions.md",
                r.code
            );
        }
    }

    #[test]
    fn reason_codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in REASONS {
            assert!(
                r.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                r.code
            );
            assert!(seen.insert(r.code), "duplicate {}", r.code);
        }
    }
}
