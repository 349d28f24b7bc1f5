//! criterion benchmarks: every kernel (forward modes; VJP and JVP from a saved or recomputed
//! sample) in f32 and f16, each beside a copy kernel moving the same bytes, timed on the GPU
//! from submit to the end of a blocking poll, with throughput in bytes so that the report
//! shows GB/s (the byte counts of docs/design.md, "Measuring").
//!
//! Top-k (k = 1, 8, 64) is timed beside a read-only pass over its logits.
//!
//! `cargo bench` runs the lavapipe-sized shapes; `GUMBEL_BENCH_FULL=1 cargo bench` the full set
//! of docs/design.md, "Measuring". For one table with ratios, see `examples/bench_table.rs`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gumbel_wgpu::measure::{CopyWorkload, Kernel, ReadWorkload, Workload, time_per_run};
use gumbel_wgpu::{GpuContext, StorageType};

fn shapes() -> Vec<(u32, u32)> {
    if std::env::var_os("GUMBEL_BENCH_FULL").is_some() {
        vec![
            (1_048_576, 8),
            (65_536, 64),
            (4_096, 1_024),
            (1_024, 32_768),
            (64, 262_144),
        ]
    } else {
        vec![(65_536, 64), (4_096, 1_024), (64, 65_536)]
    }
}

fn kernels(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("a device for the benchmarks");
    eprintln!("adapter: {}", ctx.summary());
    let timed =
        |iters: u64,
         record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> gumbel_wgpu::Result<()>| {
            time_per_run(&ctx, iters as u32, record).unwrap() * iters as u32
        };
    for (rows, cols) in shapes() {
        for storage in [StorageType::F32, StorageType::F16] {
            let work = Workload::new(&ctx, rows, cols, storage).unwrap();
            let mut group = c.benchmark_group(format!("{rows}x{cols}/{storage:?}"));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(2));
            for kernel in Kernel::ALL {
                let bytes = work.bytes(kernel);
                group.throughput(Throughput::Bytes(bytes));
                group.bench_function(kernel.name(), |b| {
                    b.iter_custom(|iters| {
                        timed(iters, &mut |e| {
                            work.record(ctx.kernels(), e, kernel, None, 1)
                        })
                    })
                });
                let copy = CopyWorkload::new(&ctx, bytes).unwrap();
                group.bench_function(format!("copy same bytes as {}", kernel.name()), |b| {
                    b.iter_custom(|iters| timed(iters, &mut |e| copy.record(ctx.kernels(), e)))
                });
            }
            group.finish();
        }
    }
}

/// Shapes of the top-k benchmark: lavapipe-sized unless GUMBEL_BENCH_FULL is set.
fn top_k_shapes() -> Vec<(u32, u32)> {
    if std::env::var_os("GUMBEL_BENCH_FULL").is_some() {
        vec![(4_096, 32_768), (64, 262_144)]
    } else {
        vec![(256, 32_768), (16, 262_144)]
    }
}

/// Gumbel-top-k for k in {1, 8, 64} (f32), beside a read-only pass over the logits.
fn top_k(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("a device for the benchmarks");
    let timed =
        |iters: u64,
         record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> gumbel_wgpu::Result<()>| {
            time_per_run(&ctx, iters as u32, record).unwrap() * iters as u32
        };
    for (rows, cols) in top_k_shapes() {
        let work = Workload::new(&ctx, rows, cols, StorageType::F32).unwrap();
        let mut group = c.benchmark_group(format!("top-k {rows}x{cols}/F32"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(2));
        let logits_bytes = u64::from(rows) * u64::from(cols) * 4;
        let read = ReadWorkload::new(&ctx, logits_bytes).unwrap();
        group.throughput(Throughput::Bytes(logits_bytes));
        group.bench_function("read the logits", |b| {
            b.iter_custom(|iters| timed(iters, &mut |e| read.record(ctx.kernels(), e)))
        });
        for k in [1, 8, 64] {
            let kernel = Kernel::TopK { k };
            group.throughput(Throughput::Bytes(work.bytes(kernel)));
            group.bench_function(kernel.name(), |b| {
                b.iter_custom(|iters| {
                    timed(iters, &mut |e| {
                        work.record(ctx.kernels(), e, kernel, None, 1)
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, kernels, top_k);
criterion_main!(benches);
