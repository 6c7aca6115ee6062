//! The durable background job behind `POST /api/scan/confirm`: claims
//! submitted sessions from the database (so a restart resumes them: a
//! session whose processor died is claimed again when its lease runs
//! out), reads the document, compares the faces, decides, stores the
//! decision and deletes the images.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use veriface_core::face::{Descriptors, ImageAnalysis, Threshold};
use veriface_core::face_service::{FaceService, Queued};
use veriface_core::identity::{ModelId, Timestamp};
use veriface_core::session::decision::{decide, Evidence};
use veriface_core::session::service::blob_key;
use veriface_core::session::types::{Decision, DocumentScore, FaceScore};
use veriface_core::session::{Outcome, Session, SessionService, SessionState, Side};
use veriface_core::{Error, ErrorKind};
use veriface_document::crosscheck::cross_check;
use veriface_document::date::Date;
use veriface_document::{DocumentReader, DocumentReading};
use veriface_vision::decode::decode;

/// How the processor runs.
#[derive(Debug, Clone, Copy)]
pub struct ProcessorConfig {
    /// Wait between polls of an empty queue.
    pub poll: Duration,
    /// How long one attempt may hold a session before another processor
    /// takes it over (longer than any processing takes).
    pub lease: Duration,
    /// Attempts before the session is sent to review as
    /// `processing_failed`.
    pub max_attempts: u32,
    /// The face match threshold.
    pub threshold: Threshold,
    /// How often open sessions past their expiry are expired.
    pub sweep: Duration,
}

/// Tesseract instances are `Send` but not `Sync`: each blocking task takes
/// one from here (or starts one) and gives it back.
#[derive(Debug, Default)]
struct Readers(Mutex<Vec<DocumentReader>>);

impl Readers {
    fn read(&self, img: &image::RgbImage, today: Date) -> Result<DocumentReading, Error> {
        let taken = self.0.lock().ok().and_then(|mut v| v.pop());
        let mut reader = match taken {
            Some(r) => r,
            None => DocumentReader::new().map_err(|e| Error::Internal(Box::new(e)))?,
        };
        let reading = reader.read(img, today);
        if let Ok(mut v) = self.0.lock() {
            v.push(reader);
        }
        Ok(reading)
    }
}

/// The session processor.
#[derive(Debug, Clone)]
pub struct Processor {
    sessions: SessionService,
    faces: FaceService,
    readers: Arc<Readers>,
    config: ProcessorConfig,
}

/// An image that did not decode: the session is rejected with
/// `invalid_image` rather than retried.
fn is_image_error(e: &Error) -> bool {
    matches!(e, Error::Image { .. })
}

impl Processor {
    /// A processor over these sessions and this face service.
    pub fn new(sessions: SessionService, faces: FaceService, config: ProcessorConfig) -> Self {
        Self {
            sessions,
            faces,
            readers: Arc::new(Readers::default()),
            config,
        }
    }

    /// Claims and processes sessions until `stop` turns true; expires
    /// open sessions every `sweep`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if last_sweep.is_none_or(|t| t.elapsed() >= self.config.sweep) {
                last_sweep = Some(tokio::time::Instant::now());
                if let Err(e) = self.sessions.expire_due().await {
                    tracing::warn!(error = %e, "expiring sessions failed");
                }
            }
            let claimed = self
                .sessions
                .repo()
                .claim_session(Timestamp::now(), self.config.lease)
                .await;
            match claimed {
                Ok(Some(session)) => self.process(session).await,
                Ok(None) => {
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(self.config.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a session failed");
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(self.config.poll * 4) => {}
                    }
                }
            }
        }
        tracing::info!("session processor stopped");
    }

    /// One attempt at one claimed session.
    #[tracing::instrument(skip_all, fields(session = %session.id, attempt = session.attempts))]
    async fn process(&self, session: Session) {
        let started = std::time::Instant::now();
        let decision = match self.evaluate(&session).await {
            Ok(d) => d,
            Err(e) if session.attempts < self.config.max_attempts => {
                tracing::warn!(error = %e, kind = ?e.kind(), "processing failed; the session goes back to the queue");
                // A failing dependency fails the next attempt too: wait a
                // little (1, 2, 4 ... s, at most 30) before it, holding the
                // lease meanwhile.
                let wait = Duration::from_secs(1u64 << session.attempts.saturating_sub(1).min(5))
                    .min(Duration::from_secs(30));
                tokio::time::sleep(wait).await;
                let requeued = self
                    .sessions
                    .repo()
                    .set_state(
                        &session.id,
                        SessionState::Processing,
                        SessionState::Submitted,
                        Timestamp::now(),
                    )
                    .await;
                if let Err(e) = requeued {
                    // The lease runs out and another claim takes it.
                    tracing::warn!(error = %e, "requeueing failed");
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "processing failed on every attempt; sent to review");
                self.decision(
                    Outcome::NeedsReview,
                    vec!["processing_failed".to_string()],
                    FaceScore {
                        distance: None,
                        threshold: self.config.threshold.value(),
                        faces_on_document: 0,
                        faces_on_selfie: 0,
                    },
                    DocumentScore::default(),
                )
            }
        };
        match self
            .sessions
            .repo()
            .finish_session(&session.id, &decision, Timestamp::now())
            .await
        {
            Ok(true) => {
                metrics::counter!("veriface_sessions_total", "event" => decision.outcome.state().as_str())
                    .increment(1);
                metrics::histogram!("veriface_session_processing_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(
                    outcome = decision.outcome.state().as_str(),
                    reasons = ?decision.reasons,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "session decided"
                );
                if let Err(e) = self.sessions.delete_images(&session.id).await {
                    tracing::warn!(error = %e, "deleting the session's images failed");
                }
            }
            Ok(false) => tracing::warn!("the session left processing meanwhile; decision dropped"),
            Err(e) => {
                tracing::warn!(error = %e, "storing the decision failed; the lease will run out and the session is retried")
            }
        }
    }

    fn decision(
        &self,
        outcome: Outcome,
        reasons: Vec<String>,
        face: FaceScore,
        document: DocumentScore,
    ) -> Decision {
        let model = ModelId::current();
        Decision {
            outcome,
            reasons,
            face,
            document,
            model: model.name,
            model_version: model.version,
            decided_at: Timestamp::now(),
        }
    }

    async fn image(&self, session: &Session, side: Side) -> Result<Bytes, Error> {
        self.sessions
            .blobs()
            .get(&blob_key(&session.id, side))
            .await
            .map_err(|e| match e.kind() {
                // The image is gone (deleted by hand, a lost volume): no
                // retry will bring it back.
                ErrorKind::NotFound => Error::Internal(
                    format!(
                        "the {} image of a submitted session is missing",
                        side.as_str()
                    )
                    .into(),
                ),
                _ => e,
            })
    }

    /// Reads, compares and decides. `Err` only for failures that are not
    /// the user's (a dependency down, a bug): those are retried.
    async fn evaluate(&self, session: &Session) -> Result<Decision, Error> {
        let front = self.image(session, Side::IdFront).await?;
        let back = self.image(session, Side::IdBack).await?;
        let selfie = self.image(session, Side::Selfie).await?;
        let threshold = self.config.threshold;

        let (front_faces, selfie_faces, front_doc, back_doc) = tokio::join!(
            self.analyze("id_front", front.clone()),
            self.analyze("selfie", selfie),
            self.read_document(front),
            self.read_document(back),
        );
        let mut invalid_image = false;
        let mut faces =
            |r: Result<Queued<ImageAnalysis>, Error>| -> Result<Option<ImageAnalysis>, Error> {
                match r {
                    Ok(q) => Ok(Some(q.value)),
                    Err(e) if is_image_error(&e) => {
                        invalid_image = true;
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            };
        let front_faces = faces(front_faces)?;
        let selfie_faces = faces(selfie_faces)?;
        let front_doc = front_doc?;
        let back_doc = back_doc?;

        let largest = |a: &Option<ImageAnalysis>| {
            a.as_ref()
                .and_then(|a| a.largest())
                .and_then(|f| f.embedding)
        };
        let distance = match (largest(&front_faces), largest(&selfie_faces)) {
            (Some(a), Some(b)) => Some(a.distance(&b)),
            _ => None,
        };
        let count = |a: &Option<ImageAnalysis>| a.as_ref().map_or(0, |a| a.faces.len());

        // The MRZ may be on either side (a passport's data page, a TD1
        // card's back); a valid one wins over a misread one. The AAMVA
        // barcode is on the back of a licence.
        let readings: Vec<&DocumentReading> =
            [&back_doc, &front_doc].into_iter().flatten().collect();
        let mrz = readings
            .iter()
            .filter_map(|r| r.mrz.as_ref())
            .max_by_key(|m| m.mrz.is_valid());
        let aamva = readings.iter().find_map(|r| r.aamva.as_ref());
        let today = Date::today_utc();
        let document_reasons: Vec<String> = if front_doc.is_none() && back_doc.is_none() {
            invalid_image = true;
            Vec::new()
        } else {
            cross_check(mrz.map(|m| &m.mrz), aamva, today)
                .into_iter()
                .map(|r| r.code().to_string())
                .collect()
        };
        let expiry = mrz
            .and_then(|m| m.mrz.fields.expiry_date)
            .or_else(|| aamva.and_then(|a| a.fields().expiry_date));
        let document = DocumentScore {
            mrz_format: mrz.and_then(|m| {
                serde_json::to_value(m.mrz.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
            }),
            mrz_valid: mrz.map(|m| m.mrz.is_valid()),
            barcode: aamva.is_some(),
            expiry_date: expiry.map(|d| d.to_string()),
        };
        let evidence = Evidence {
            distance,
            faces_on_document: count(&front_faces),
            faces_on_selfie: count(&selfie_faces),
            invalid_image,
            document_reasons,
        };
        let (outcome, reasons) = decide(&evidence, threshold.value());
        Ok(self.decision(
            outcome,
            reasons,
            FaceScore {
                distance,
                threshold: threshold.value(),
                faces_on_document: evidence.faces_on_document,
                faces_on_selfie: evidence.faces_on_selfie,
            },
            document,
        ))
    }

    /// Analyses an image on the inference pool, waiting for room when the
    /// pool sheds the job: HTTP requests are refused at once under
    /// overload, but a confirmed session should wait its turn rather than
    /// spend its attempts (within its lease).
    async fn analyze(
        &self,
        label: &'static str,
        bytes: Bytes,
    ) -> Result<Queued<ImageAnalysis>, Error> {
        let deadline = tokio::time::Instant::now() + self.config.lease / 2;
        loop {
            match self
                .faces
                .analyze(label, bytes.clone(), Descriptors::Largest)
                .await
            {
                Err(Error::Overloaded { retry_after_secs })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(retry_after_secs.clamp(1, 10))).await;
                }
                other => return other,
            }
        }
    }

    /// Decodes and reads one document image on the blocking pool; `None`
    /// when the image does not decode.
    async fn read_document(&self, bytes: Bytes) -> Result<Option<DocumentReading>, Error> {
        let readers = self.readers.clone();
        let limits = self.faces.policy().limits;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let Ok(decoded) = decode(&bytes, &limits) else {
                return Ok(None);
            };
            readers.read(&decoded.image, Date::today_utc()).map(Some)
        })
        .await
        .map_err(|e| Error::Internal(Box::new(e)))?
    }
}
