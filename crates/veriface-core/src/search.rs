//! 1:N search: "is this face already enrolled under some name?".
//!
//! The index is brute force over every template in memory, one contiguous
//! `f32` array, scanned with an 8-lane accumulator loop that the compiler
//! vectorises, split across cores with rayon. `docs/benchmarks.md`
//! ("1:N search") has the measurements behind that choice: one scan is
//! bound by memory bandwidth (512 bytes per template) and answers in well
//! under a millisecond at 10k templates and in tens of milliseconds at 1M,
//! exactly (no recall loss), so an approximate index would add complexity
//! and errors without being needed below several million templates.
//!
//! ```
//! use veriface_core::search::TemplateIndex;
//! use veriface_core::identity::Username;
//!
//! let mut index = TemplateIndex::default();
//! let alice = Username::parse("alice").unwrap();
//! let mut v = [0.0f32; 128];
//! index.push(1, &alice, &v);
//! v[0] = 0.3;
//! let hits = index.search(&v, 5, 0.6);
//! assert_eq!(hits.len(), 1);
//! assert!((hits[0].distance - 0.3).abs() < 1e-6);
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::identity::{IdentityRepo, ModelId, TemplateWatermark, Username};
use crate::{Error, Result};

/// Templates per rayon task: large enough that task overhead is noise,
/// small enough that two cores share a 10k index.
const CHUNK_ROWS: usize = 2048;

/// Rows fetched per page when (re)loading the index.
const PAGE: u32 = 10_000;

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Who.
    pub username: Username,
    /// The closest template of theirs.
    pub template_id: i64,
    /// Euclidean distance to it, computed as [`veriface_vision::compare::distance`]
    /// does, so a 1:N hit and a 1:1 verification agree.
    pub distance: f32,
}

/// Every template of one model, in memory.
#[derive(Debug, Default, Clone)]
pub struct TemplateIndex {
    ids: Vec<i64>,
    owners: Vec<u32>,
    names: Vec<Username>,
    name_ix: HashMap<Username, u32>,
    vectors: Vec<f32>,
    max_id: i64,
}

impl TemplateIndex {
    /// Number of templates.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The highest template id ever added (0 when none).
    pub fn max_id(&self) -> i64 {
        self.max_id
    }

    /// Adds a template.
    pub fn push(&mut self, id: i64, username: &Username, vector: &[f32; 128]) {
        let owner = match self.name_ix.get(username) {
            Some(&ix) => ix,
            None => {
                let ix = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
                self.names.push(username.clone());
                self.name_ix.insert(username.clone(), ix);
                ix
            }
        };
        self.ids.push(id);
        self.owners.push(owner);
        self.vectors.extend_from_slice(vector);
        self.max_id = self.max_id.max(id);
    }

    /// Removes every template of `username`; returns how many.
    pub fn remove_user(&mut self, username: &Username) -> usize {
        let Some(&owner) = self.name_ix.get(username) else {
            return 0;
        };
        let before = self.ids.len();
        let mut w = 0;
        for r in 0..before {
            if self.owners[r] != owner {
                self.ids[w] = self.ids[r];
                self.owners[w] = self.owners[r];
                self.vectors.copy_within(r * 128..(r + 1) * 128, w * 128);
                w += 1;
            }
        }
        self.ids.truncate(w);
        self.owners.truncate(w);
        self.vectors.truncate(w * 128);
        // The name slot stays (owner indices must not shift) but no longer
        // maps back, so a re-enrolment gets a fresh slot.
        self.name_ix.remove(username);
        before - w
    }

    /// The `k` closest subjects at distance `<= threshold`, closest first,
    /// one hit per subject (its closest template).
    pub fn search(&self, query: &[f32; 128], k: usize, threshold: f32) -> Vec<Hit> {
        if k == 0 || self.is_empty() || threshold.is_nan() || threshold < 0.0 {
            return Vec::new();
        }
        // The scan runs in f32; a hair of slack keeps pairs whose f32 and
        // f64 distances straddle the threshold, and the exact f64 distance
        // decides below.
        let slack = threshold + 1e-4;
        let limit = slack * slack;
        let rows = self.ids.len();
        let scan = |start: usize, end: usize| -> Vec<(f32, usize)> {
            let mut cand = Vec::new();
            for (r, v) in (start..end).zip(self.vectors[start * 128..end * 128].chunks_exact(128)) {
                let Ok(v) = <&[f32; 128]>::try_from(v) else {
                    continue;
                };
                let d2 = l2_squared(query, v);
                if d2 <= limit {
                    cand.push((d2, r));
                }
            }
            self.best_per_owner(cand, k)
        };
        let mut cand: Vec<(f32, usize)> = if rows <= CHUNK_ROWS {
            scan(0, rows)
        } else {
            (0..rows.div_ceil(CHUNK_ROWS))
                .into_par_iter()
                .flat_map_iter(|c| scan(c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows)))
                .collect()
        };
        cand = self.best_per_owner(cand, k);
        let mut hits: Vec<Hit> = cand
            .into_iter()
            .filter_map(|(_, r)| {
                let v: &[f32; 128] = self.vectors[r * 128..(r + 1) * 128].try_into().ok()?;
                let distance = veriface_vision::compare::distance(query, v);
                (distance <= threshold).then(|| Hit {
                    username: self.names[self.owners[r] as usize].clone(),
                    template_id: self.ids[r],
                    distance,
                })
            })
            .collect();
        hits.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        hits
    }

    /// Keeps each owner's closest candidate, then the `k` closest owners.
    /// Doing this per chunk is exact: an owner among the global top `k`
    /// is among the top `k` of the chunk holding its closest template.
    fn best_per_owner(&self, mut cand: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
        cand.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut seen = HashSet::new();
        cand.retain(|&(_, r)| seen.len() < k && seen.insert(self.owners[r]));
        cand
    }
}

/// Squared Euclidean distance in f32 with eight independent accumulators,
/// a shape LLVM turns into packed SIMD arithmetic. Wider variants (16, 32
/// lanes, AVX-512 via `target-cpu=native`) measured the same: the scan is
/// bound by memory bandwidth, not arithmetic (`docs/benchmarks.md`).
#[inline]
pub fn l2_squared(a: &[f32; 128], b: &[f32; 128]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            let d = ca[i] - cb[i];
            acc[i] += d * d;
        }
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// The index of one model kept in step with the repository.
///
/// [`SearchIndex::refresh`] compares the repository's watermark (highest
/// id, count) with the index: new ids are appended page by page; anything
/// else (a deletion by another process, an insert that committed out of id
/// order) triggers a full reload. Refreshes run at most once per
/// `min_refresh` so a burst of searches costs one watermark query.
#[derive(Debug)]
pub struct SearchIndex {
    model: ModelId,
    min_refresh: Duration,
    inner: Arc<RwLock<TemplateIndex>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl SearchIndex {
    /// An empty index of `model`.
    pub fn new(model: ModelId, min_refresh: Duration) -> Self {
        Self {
            model,
            min_refresh,
            inner: Arc::new(RwLock::new(TemplateIndex::default())),
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// Number of templates indexed.
    pub fn len(&self) -> usize {
        self.read(|i| i.len()).unwrap_or(0)
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&TemplateIndex) -> T) -> Result<T> {
        let guard = self.inner.read().map_err(|_| poisoned())?;
        Ok(f(&guard))
    }

    fn write<T>(&self, f: impl FnOnce(&mut TemplateIndex) -> T) -> Result<T> {
        let mut guard = self.inner.write().map_err(|_| poisoned())?;
        Ok(f(&mut guard))
    }

    /// Brings the index up to date with `repo` unless it was refreshed less
    /// than `min_refresh` ago.
    ///
    /// # Errors
    /// The repository's errors.
    pub async fn refresh(&self, repo: &dyn IdentityRepo) -> Result<()> {
        let mut last = self.last_refresh.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Ok(());
        }
        let wm = repo.template_watermark(&self.model).await?;
        let (len, max_id) = self.read(|i| (i.len() as u64, i.max_id()))?;
        let in_step = |len: u64, max_id: i64| len == wm.count && max_id == wm.max_id;
        if !in_step(len, max_id) {
            let appended = if wm.max_id > max_id && wm.count > len {
                self.append_after(repo, max_id).await?;
                let (len, max_id) = self.read(|i| (i.len() as u64, i.max_id()))?;
                len == wm.count || (len > wm.count && max_id > wm.max_id)
            } else {
                false
            };
            if !appended {
                self.reload(repo, wm).await?;
            }
        }
        *last = Some(Instant::now());
        Ok(())
    }

    /// Makes the next [`SearchIndex::refresh`] query the repository even
    /// within `min_refresh`: a template this process just stored must be
    /// found by the very next search (the throttle is for other processes'
    /// writes, which no event announces).
    pub async fn mark_stale(&self) {
        *self.last_refresh.lock().await = None;
    }

    async fn append_after(&self, repo: &dyn IdentityRepo, mut after: i64) -> Result<()> {
        loop {
            let page = repo.list_templates_after(&self.model, after, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id;
            let full = page.len() == PAGE as usize;
            self.write(|i| {
                for t in &page {
                    i.push(t.id, &t.username, &t.embedding.0);
                }
            })?;
            if !full {
                return Ok(());
            }
        }
    }

    async fn reload(&self, repo: &dyn IdentityRepo, wm: TemplateWatermark) -> Result<()> {
        let mut fresh = TemplateIndex::default();
        fresh.vectors.reserve(wm.count as usize * 128);
        let mut after = 0;
        loop {
            let page = repo.list_templates_after(&self.model, after, PAGE).await?;
            for t in &page {
                fresh.push(t.id, &t.username, &t.embedding.0);
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after = last.id,
                _ => break,
            }
        }
        tracing::info!(templates = fresh.len(), "search index reloaded");
        self.write(|i| *i = fresh)
    }

    /// Forgets a subject's templates at once (erasure in this process must
    /// not wait for the next refresh to stop matching).
    ///
    /// # Errors
    /// Only if a panic poisoned the index lock.
    pub fn remove_user(&self, username: &Username) -> Result<usize> {
        self.write(|i| i.remove_user(username))
    }

    /// Searches on the blocking pool (a 1M-template scan takes tens of
    /// milliseconds of CPU).
    ///
    /// # Errors
    /// [`Error::Internal`] if the blocking task failed.
    pub async fn search(&self, query: [f32; 128], k: usize, threshold: f32) -> Result<Vec<Hit>> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let guard = inner.read().map_err(|_| poisoned())?;
            Ok(guard.search(&query, k, threshold))
        })
        .await
        .map_err(|e| Error::Internal(Box::new(e)))?
    }
}

fn poisoned() -> Error {
    Error::Internal("search index lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    fn vec_at(x: f32) -> [f32; 128] {
        let mut v = [0.0; 128];
        v[0] = x;
        v
    }

    #[test]
    fn returns_one_hit_per_subject_closest_first_within_threshold() {
        let mut ix = TemplateIndex::default();
        ix.push(1, &user("a"), &vec_at(0.5));
        ix.push(2, &user("b"), &vec_at(0.2));
        ix.push(3, &user("a"), &vec_at(0.1));
        ix.push(4, &user("c"), &vec_at(0.9));
        let hits = ix.search(&vec_at(0.0), 10, 0.6);
        let got: Vec<_> = hits
            .iter()
            .map(|h| (h.username.as_str(), h.template_id))
            .collect();
        assert_eq!(got, vec![("a", 3), ("b", 2)]);
        assert_eq!(ix.search(&vec_at(0.0), 1, 0.6).len(), 1);
        assert!(ix.search(&vec_at(0.0), 0, 0.6).is_empty());
    }

    #[test]
    fn removing_a_user_removes_only_their_templates() {
        let mut ix = TemplateIndex::default();
        ix.push(1, &user("a"), &vec_at(0.1));
        ix.push(2, &user("b"), &vec_at(0.2));
        ix.push(3, &user("a"), &vec_at(0.3));
        assert_eq!(ix.remove_user(&user("a")), 2);
        assert_eq!(ix.len(), 1);
        let hits = ix.search(&vec_at(0.0), 10, 1.0);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].username.as_str(), "b");
        ix.push(4, &user("a"), &vec_at(0.05));
        assert_eq!(ix.search(&vec_at(0.0), 10, 1.0)[0].template_id, 4);
    }

    fn vector() -> impl Strategy<Value = [f32; 128]> {
        proptest::array::uniform32(-0.3f32..0.3).prop_map(|h| {
            let mut v = [0.0; 128];
            for (i, x) in v.iter_mut().enumerate() {
                *x = h[i % 32] * if i < 64 { 1.0 } else { -0.5 };
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_an_exhaustive_exact_search(
            rows in proptest::collection::vec((0u8..6, vector()), 1..40),
            q in vector(),
            k in 1usize..5,
            threshold in 0.1f32..2.0,
        ) {
            let mut ix = TemplateIndex::default();
            for (i, (o, v)) in rows.iter().enumerate() {
                ix.push(i as i64 + 1, &user(&format!("u{o}")), v);
            }
            let mut best: HashMap<String, (f32, i64)> = HashMap::new();
            for (i, (o, v)) in rows.iter().enumerate() {
                let d = veriface_vision::compare::distance(&q, v);
                if d <= threshold {
                    let e = best.entry(format!("u{o}")).or_insert((d, i as i64 + 1));
                    if d < e.0 { *e = (d, i as i64 + 1); }
                }
            }
            let mut want: Vec<_> = best.into_iter().map(|(u, (d, _))| (d, u)).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            want.truncate(k);
            let got: Vec<_> = ix.search(&q, k, threshold).into_iter().map(|h| (h.distance, h.username.as_str().to_string())).collect();
            prop_assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want.iter().map(|w| w.0).collect::<Vec<_>>());
        }
    }

    #[test]
    fn parallel_chunks_give_the_same_answer_as_one_scan() {
        let mut ix = TemplateIndex::default();
        let n = CHUNK_ROWS * 3 + 17;
        for i in 0..n {
            let mut v = [0.0f32; 128];
            v[i % 128] = (i % 97) as f32 / 97.0;
            v[(i * 7) % 128] += 0.25;
            ix.push(i as i64 + 1, &user(&format!("u{}", i % 501)), &v);
        }
        let q = [0.01f32; 128];
        let all = ix.search(&q, 20, 0.9);
        assert_eq!(all.len(), 20);
        // Brute force over the same rows without chunking.
        let mut best: HashMap<String, f32> = HashMap::new();
        for i in 0..n {
            let v: &[f32; 128] = ix.vectors[i * 128..(i + 1) * 128].try_into().unwrap();
            let d = veriface_vision::compare::distance(&q, v);
            let u = format!("u{}", i % 501);
            let e = best.entry(u).or_insert(f32::MAX);
            *e = e.min(d);
        }
        let mut want: Vec<f32> = best.into_values().filter(|d| *d <= 0.9).collect();
        want.sort_by(f32::total_cmp);
        want.truncate(20);
        assert_eq!(all.iter().map(|h| h.distance).collect::<Vec<_>>(), want);
    }
}
