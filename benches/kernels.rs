//! criterion benchmarks: the fused forward pass (every mode, f32 and f16) and a copy kernel
//! moving the same bytes, timed on the GPU from submit to the end of a blocking poll, with
//! throughput in bytes so that the report shows GB/s (SPEC section 6 byte counts).
//!
//! `cargo bench` runs the lavapipe-sized shapes; `GUMBEL_BENCH_FULL=1 cargo bench` the full set
//! of SPEC section 6. For one table with ratios, see `examples/bench_table.rs`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gumbel_wgpu::measure::time_per_run;
use gumbel_wgpu::{ForwardCall, GpuContext, GpuSlice, Mode, Shape, StorageType, Tau};

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

fn forward(c: &mut Criterion) {
    let ctx = GpuContext::new().expect("a device for the benchmarks");
    eprintln!("adapter: {}", ctx.summary());
    for (rows, cols) in shapes() {
        let n = u64::from(rows) * u64::from(cols);
        let logits: Vec<f32> = (0..n).map(|i| (i % 997) as f32 * 0.004 - 2.0).collect();
        for storage in [StorageType::F32, StorageType::F16] {
            let input = match storage {
                StorageType::F32 => ctx.upload(&logits),
                _ => ctx.upload(
                    &logits
                        .iter()
                        .map(|&x| half::f16::from_f32(x))
                        .collect::<Vec<_>>(),
                ),
            };
            let out = ctx.storage_buffer(n * storage.size());
            let mut group = c.benchmark_group(format!("{rows}x{cols}/{storage:?}"));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(2));
            for mode in Mode::ALL {
                let out_bytes = if mode == Mode::Index {
                    u64::from(rows) * 4
                } else {
                    n * storage.size()
                };
                let bytes = n * storage.size() + out_bytes;
                group.throughput(Throughput::Bytes(bytes));
                let call = ForwardCall {
                    mode,
                    storage,
                    shape: Shape::new(rows, cols),
                    logits: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    tau: Tau::Scalar(0.7),
                    seed: 1,
                    offset: 0,
                    strategy: None,
                };
                group.bench_function(format!("{mode:?}"), |b| {
                    b.iter_custom(|iters| {
                        time_per_run(&ctx, iters as u32, |e| {
                            ctx.kernels().record_forward(e, &call)
                        })
                        .unwrap()
                            * iters as u32
                    })
                });
                let half = (bytes / 2).next_multiple_of(16);
                let src = ctx.upload(&vec![0x3f80_0001u32; (half / 4) as usize]);
                let dst = ctx.storage_buffer(half);
                group.bench_function(format!("copy same bytes as {mode:?}"), |b| {
                    b.iter_custom(|iters| {
                        time_per_run(&ctx, iters as u32, |e| {
                            ctx.kernels().record_copy(e, &src, &dst, half)
                        })
                        .unwrap()
                            * iters as u32
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
