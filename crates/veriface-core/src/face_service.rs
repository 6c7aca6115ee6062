//! The face use-cases for async callers: [`crate::face`] run on the
//! bounded [`InferencePool`] with one shared engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use veriface_vision::engine::FaceEngine;

use crate::face::{
    analyze_image, compare_images, Descriptors, FaceComparison, FacePolicy, ImageAnalysis,
    Threshold,
};
use crate::pool::InferencePool;
use crate::Result;

/// A result and how long it waited for a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued<T> {
    /// The result.
    pub value: T,
    /// Time between the call and the start of the work (0 when a worker
    /// was free).
    pub waited: Duration,
}

/// The loaded engine, the pool it runs on and the decode/detect policy;
/// cheap to clone.
#[derive(Debug, Clone)]
pub struct FaceService {
    engine: Arc<FaceEngine>,
    pool: InferencePool,
    policy: FacePolicy,
}

impl FaceService {
    /// Wires an engine to a pool.
    pub fn new(engine: Arc<FaceEngine>, pool: InferencePool, policy: FacePolicy) -> Self {
        Self {
            engine,
            pool,
            policy,
        }
    }

    /// The pool (for its gauges and `Retry-After` estimate).
    pub fn pool(&self) -> &InferencePool {
        &self.pool
    }

    /// The decode/detect policy.
    pub fn policy(&self) -> &FacePolicy {
        &self.policy
    }

    /// [`analyze_image`] on the pool.
    ///
    /// # Errors
    /// As [`analyze_image`], plus [`crate::Error::Overloaded`] when the
    /// pool sheds the request.
    pub async fn analyze(
        &self,
        label: impl Into<String>,
        bytes: Bytes,
        descriptors: Descriptors,
    ) -> Result<Queued<ImageAnalysis>> {
        let label = label.into();
        let (engine, policy) = (self.engine.clone(), self.policy);
        let called = Instant::now();
        self.pool
            .run(move || {
                let waited = called.elapsed();
                let value = analyze_image(&engine, &label, &bytes, &policy, descriptors)?;
                Ok(Queued { value, waited })
            })
            .await
    }

    /// [`compare_images`] on the pool (one worker for both images: they
    /// are analysed in parallel inside it).
    ///
    /// # Errors
    /// As [`compare_images`], plus [`crate::Error::Overloaded`].
    pub async fn compare(
        &self,
        a: (String, Bytes),
        b: (String, Bytes),
        threshold: Threshold,
    ) -> Result<Queued<FaceComparison>> {
        let (engine, policy) = (self.engine.clone(), self.policy);
        let called = Instant::now();
        self.pool
            .run(move || {
                let waited = called.elapsed();
                let value =
                    compare_images(&engine, (&a.0, &a.1), (&b.0, &b.1), &policy, threshold)?;
                Ok(Queued { value, waited })
            })
            .await
    }
}
