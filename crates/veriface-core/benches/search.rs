//! 1:N search latency at 10k and 1M templates (`docs/benchmarks.md`,
//! "1:N search"): the index's f32 scan on all cores and on one, against
//! the naive loop of exact f64 distances it replaces.
//!
//! `cargo bench -p veriface-core --bench search`
//!
//! Vectors are synthetic with the statistics of real descriptors (128
//! components, lengths about 1.4, different people about 0.9-1.0 apart
//! after centring); the probe's own template is planted so every search
//! has one hit. Memory: 1M templates take 512 MB.
#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use veriface_core::identity::Username;
use veriface_core::search::TemplateIndex;

/// xorshift64*, deterministic without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly normal (sum of uniforms), scaled like descriptor components.
    fn component(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.next_f32()).sum::<f32>() - 2.0;
        s * 0.21
    }

    fn vector(&mut self) -> [f32; 128] {
        let mut v = [0f32; 128];
        for x in &mut v {
            *x = self.component();
        }
        v
    }
}

fn build(n: usize) -> (TemplateIndex, [f32; 128]) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ix = TemplateIndex::default();
    let mut probe = [0f32; 128];
    for i in 0..n {
        let v = rng.vector();
        if i == n / 2 {
            probe = v;
            probe[0] += 0.05;
        }
        let u = Username::parse(&format!("user{i}")).unwrap_or_else(|_| unreachable!());
        ix.push(i as i64 + 1, &u, &v);
    }
    (ix, probe)
}

fn naive_exact(ix_vectors: &[[f32; 128]], probe: &[f32; 128], threshold: f32) -> usize {
    ix_vectors
        .iter()
        .filter(|v| veriface_vision::compare::distance(probe, v) <= threshold)
        .count()
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat): on a
/// shared machine the wall time criterion reports includes waiting for a
/// core, this does not.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median on-CPU time of one single-threaded search, printed beside
/// criterion's wall times.
fn report_cpu_time(n: usize, ix: &TemplateIndex, probe: &[f32; 128], one: &rayon::ThreadPool) {
    // schedstat advances with scheduler ticks: time batches of searches
    // long enough (about 100 ms) that the tick granularity does not show.
    let batch = (1_000_000 / n).max(1);
    let mut samples: Vec<u64> = (0..15)
        .filter_map(|_| {
            one.install(|| {
                let t0 = thread_cpu_ns()?;
                for _ in 0..batch {
                    std::hint::black_box(ix.search(probe, 10, 0.6));
                }
                Some((thread_cpu_ns()? - t0) / batch as u64)
            })
        })
        .collect();
    samples.sort_unstable();
    if let Some(m) = samples.get(samples.len() / 2) {
        eprintln!(
            "search_1n/index_one_core/{n}: median on-CPU time {:.3} ms",
            *m as f64 / 1e6
        );
    }
}

fn bench(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap_or_else(|_| unreachable!());
    let mut g = c.benchmark_group("search_1n");
    g.sample_size(20);
    for n in [10_000usize, 1_000_000] {
        let (ix, probe) = build(n);
        let hits = ix.search(&probe, 10, 0.6);
        assert_eq!(hits.len(), 1, "the planted template is found");
        report_cpu_time(n, &ix, &probe, &one);
        g.bench_with_input(BenchmarkId::new("index_all_cores", n), &n, |b, _| {
            b.iter(|| ix.search(&probe, 10, 0.6))
        });
        g.bench_with_input(BenchmarkId::new("index_one_core", n), &n, |b, _| {
            b.iter(|| one.install(|| ix.search(&probe, 10, 0.6)))
        });
        // The naive baseline: exact f64 distance per template, one core.
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let vectors: Vec<[f32; 128]> = (0..n).map(|_| rng.vector()).collect();
        g.bench_with_input(BenchmarkId::new("naive_f64_one_core", n), &n, |b, _| {
            b.iter(|| naive_exact(&vectors, &probe, 0.6))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
