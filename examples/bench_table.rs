//! Runs the benchmark matrix once and prints one table: every kernel at each shape, its GB/s (the
//! byte counts of docs/design.md, "Measuring") and its ratio to a copy kernel moving the same bytes
//! on the same adapter in the same run; the soft forward and the saved-sample VJP in f32 also under
//! every strategy. Beside them: the unfused baseline (a noise kernel writing Gumbel noise to
//! memory, then a softmax kernel reading it, as PyTorch does) with the fused soft forward's ratio
//! to it, and the CPU reference.
//!
//! `cargo run --release --features bench --example bench_table -- [--quick] [--default-only]
//! [--halves] [--markdown FILE]`
//! - `--only TEXT[,TEXT...]` keeps the kernels whose name contains one of the TEXTs (say `VJP`,
//!   `forward Soft`, `top`).
//! - `--default-only` times each kernel under its default strategy alone.
//! - `--halves` makes Philox's 64-bit products from 16-bit halves even where the device has
//!   64-bit integers (the kernels' default there), to time the difference.
//! - `--quick` runs the smaller lavapipe set (65536x64, 4096x1024, 64x65536; top-k at 256x32768
//!   and 16x262144 instead of 4096x32768 and 64x262144).
//! - `--shape ROWSxK` runs that one shape instead (the top-k and token tables too).
//!
//! Then the f32 soft and index forwards with the wide noise range beside the standard one (names
//! `forward Soft wide`, `forward Index wide` for `--only`); the soft forward and the recomputing
//! VJP over the middle axis of `[outer, K, inner]` (a strided category axis) beside the same
//! elements over the last axis (`forward Soft strided`, `VJP recompute strided`; `--quick`:
//! [4, 1024, 64] and [2, 8192, 256], otherwise [64, 1024, 64] and [8, 8192, 1024]); and last,
//! the token sampler under
//! each filter setting beside a read-only pass over its logits
//! (`--quick`: 256x32000 and 16x151936; otherwise 1024x200000, 64x262144 and 4096x32000); then
//! the verification of four drafts a request (`verify`) beside a read-only pass over the
//! target's logits and the draft probabilities, at 1 and 64 requests of K = 32,000 and 151,936
//! (`--quick`: 8 requests at 151,936; `--shape REQUESTSxK` for one).

use std::time::Duration;

use gumbel_wgpu::measure::{
    CopyWorkload, Kernel, ReadWorkload, TokenFilter, TokenWorkload, VerifyCase, VerifyWorkload,
    Workload, gb_per_s, time_per_run, timestamps_available,
};
use gumbel_wgpu::reference;
use gumbel_wgpu::{GpuContext, Mode, NoiseRange, Shape, StorageType, Strategy, WideMultiply};

const FULL: [(u32, u32); 5] = [
    (1_048_576, 8),
    (65_536, 64),
    (4_096, 1_024),
    (1_024, 32_768),
    (64, 262_144),
];
const QUICK: [(u32, u32); 3] = [(65_536, 64), (4_096, 1_024), (64, 65_536)];

struct Bench<'a> {
    ctx: &'a GpuContext,
    budget: Duration,
}

impl Bench<'_> {
    /// Seconds per run, with enough repetitions to fill about `budget`.
    fn time(
        &self,
        mut record: impl FnMut(&mut wgpu::CommandEncoder) -> gumbel_wgpu::Result<()>,
    ) -> gumbel_wgpu::Result<Duration> {
        let once = time_per_run(self.ctx, 1, &mut record)?;
        let reps = (self.budget.as_secs_f64() / once.as_secs_f64().max(1e-6)).clamp(3.0, 200.0);
        time_per_run(self.ctx, reps as u32, &mut record)
    }
}

/// Strategies to time `kernel` under: the default, and every one for the headline kernels
/// (but on a CPU driver not 1024-wide workgroups over 65,536 rows, which take minutes there;
/// a row per subgroup where the device has subgroups).
fn strategies(
    kernel: Kernel,
    storage: StorageType,
    rows: u32,
    cpu: bool,
    subgroups: bool,
) -> Vec<Option<Strategy>> {
    let headline = matches!(
        kernel,
        Kernel::Forward(Mode::Soft) | Kernel::Vjp { recompute: false }
    );
    if headline && storage == StorageType::F32 {
        std::iter::once(None)
            .chain([
                Some(Strategy::RowPerThread),
                Some(Strategy::RowPerThreadCached),
                Some(Strategy::RowPerWorkgroup { size: 64 }),
                Some(Strategy::RowPerWorkgroup { size: 256 }),
                Some(Strategy::SplitRow {
                    size: 64,
                    slices: 3,
                }),
                Some(Strategy::RowPerWorkgroup { size: 1024 }),
                Some(Strategy::SplitRow {
                    size: 1024,
                    slices: 8,
                }),
                Some(Strategy::RowPerSubgroup { lanes: 1 }),
                Some(Strategy::RowPerSubgroup { lanes: 4 }),
                Some(Strategy::RowPerSubgroup { lanes: 8 }),
                Some(Strategy::RowPerSubgroup { lanes: 32 }),
            ])
            .filter(|s| !(cpu && rows >= 65_536 && s.is_some_and(|s| s.workgroup_size() == 1024)))
            .filter(|s| subgroups || !matches!(s, Some(Strategy::RowPerSubgroup { .. })))
            .collect()
    } else {
        vec![None]
    }
}

/// The CPU reference's soft forward (f64 inside, one thread) on a slice of the shape, scaled
/// to GB/s of the same byte count as the kernels.
fn cpu_reference(rows: u32, cols: u32) -> String {
    // At most about a million elements: the reference is a yardstick, not a contender.
    let sample_rows = rows.min((1 << 20) / cols).max(1);
    let shape = Shape::new(sample_rows, cols);
    let logits: Vec<f32> = (0..shape.noise_elements())
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f32) * 0.004 - 2.0)
        .collect();
    let start = std::time::Instant::now();
    let out = reference::forward(&logits, shape, &[0.7], 1, 0, Mode::Soft);
    let t = start.elapsed();
    std::hint::black_box(out);
    let bytes = shape.noise_elements() * 8;
    format!(
        "| CPU reference (f64, 1 thread, {sample_rows} rows) | F32 | {rows}x{cols} | | {:.3} | | | |",
        gb_per_s(bytes, t)
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let markdown = args
        .iter()
        .position(|a| a == "--markdown")
        .and_then(|i| args.get(i + 1));
    let mut ctx = GpuContext::new()?;
    if args.iter().any(|a| a == "--halves") {
        ctx = ctx.with_wide_multiply(WideMultiply::Halves)?;
    }
    let bench = Bench {
        ctx: &ctx,
        budget: Duration::from_millis(if quick { 300 } else { 200 }),
    };
    // `--only TEXT`: just the kernels whose name contains TEXT (no top-k table unless it does).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|part| name.contains(part)))
    };
    let default_only = args.iter().any(|a| a == "--default-only");
    // `--shape ROWSxK`: that shape alone.
    let chosen: Vec<(u32, u32)> = args
        .iter()
        .position(|a| a == "--shape")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.split_once('x'))
        .and_then(|(r, k)| Some((r.parse().ok()?, k.parse().ok()?)))
        .into_iter()
        .collect();
    let shapes: &[(u32, u32)] = match (chosen.is_empty(), quick) {
        (false, _) => &chosen,
        (true, true) => &QUICK,
        (true, false) => &FULL,
    };
    let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let subgroups = ctx.device.features().contains(wgpu::Features::SUBGROUP);
    let mut lines = vec![format!(
        "adapter: {}; timed with {}",
        ctx.summary(),
        if timestamps_available(&ctx) {
            "GPU timestamp queries"
        } else {
            "the wall clock from submit to a blocking poll"
        }
    )];
    lines.push(String::new());
    lines.push(
        "| kernel | storage | shape | strategy | GB/s | copy GB/s | ratio to copy | ratio to unfused |"
            .into(),
    );
    lines.push("|---|---|---|---|---|---|---|---|".into());
    println!("{}", lines.join("\n"));
    let mut seed = 1u64;
    for &(rows, cols) in shapes {
        for storage in [StorageType::F32, StorageType::F16] {
            let work = Workload::new(&ctx, rows, cols, storage)?;
            // The unfused baseline (f32): noise written to memory, then a softmax reading it.
            let unfused = match storage {
                StorageType::F32 => Some(bench.time(|e| work.record_unfused(ctx.kernels(), e, 1))),
                _ => None,
            };
            if let Some(result) = &unfused {
                let line = match result {
                    Ok(t) => format!(
                        "| unfused soft (noise kernel + softmax) | F32 | {rows}x{cols} | RowPerThread | {:.2} | | | |",
                        gb_per_s(work.bytes(Kernel::Forward(Mode::Soft)), *t)
                    ),
                    Err(e) => {
                        format!("| unfused soft | F32 | {rows}x{cols} | | refused: {e} | | | |")
                    }
                };
                println!("{line}");
                lines.push(line);
            }
            if storage == StorageType::F32 {
                lines.push(cpu_reference(rows, cols));
                println!("{}", lines[lines.len() - 1]);
            }
            for kernel in Kernel::ALL.into_iter().filter(|k| wanted(&k.name())) {
                let bytes = work.bytes(kernel);
                let copy_work = CopyWorkload::new(&ctx, bytes)?;
                let copy = bench.time(|e| copy_work.record(ctx.kernels(), e))?;
                let mut timed_strategies = strategies(kernel, storage, rows, cpu, subgroups);
                if default_only {
                    timed_strategies.truncate(1);
                }
                for strategy in timed_strategies {
                    seed += 1;
                    let name = match strategy {
                        None => format!("default ({:?})", Strategy::choose(cols, ctx.kernels())),
                        Some(s) => format!("{s:?}"),
                    };
                    let timed =
                        bench.time(|e| work.record(ctx.kernels(), e, kernel, strategy, seed));
                    let line = match timed {
                        Ok(t) => format!(
                            "| {} | {storage:?} | {rows}x{cols} | {name} | {:.2} | {:.2} | {:.3} | {} |",
                            kernel.name(),
                            gb_per_s(bytes, t),
                            gb_per_s(bytes, copy),
                            copy.as_secs_f64() / t.as_secs_f64(),
                            match (&unfused, kernel) {
                                (Some(Ok(u)), Kernel::Forward(Mode::Soft)) =>
                                    format!("{:.3}", u.as_secs_f64() / t.as_secs_f64()),
                                _ => String::new(),
                            }
                        ),
                        Err(e) => format!(
                            "| {} | {storage:?} | {rows}x{cols} | {name} | refused: {e} | | | |",
                            kernel.name()
                        ),
                    };
                    println!("{line}");
                    lines.push(line);
                }
            }
        }
    }
    // Top-k beside a read-only pass over the logits (the token sampler's rows use this table).
    let top_k_shapes: &[(u32, u32)] = match (chosen.is_empty(), quick) {
        (false, _) => &chosen,
        (true, true) => &[(256, 32_768), (16, 262_144)],
        (true, false) => &[(4_096, 32_768), (64, 262_144)],
    };
    lines.push(String::new());
    lines.push(
        "| kernel | storage | shape | GB/s | read GB/s | ratio to a read of the logits |".into(),
    );
    lines.push("|---|---|---|---|---|---|".into());
    println!("{}", lines[lines.len() - 3..].join("\n"));
    for &(rows, cols) in top_k_shapes {
        let work = Workload::new(&ctx, rows, cols, StorageType::F32)?;
        let logits_bytes = u64::from(rows) * u64::from(cols) * 4;
        let read_work = ReadWorkload::new(&ctx, logits_bytes)?;
        let read = bench.time(|e| read_work.record(ctx.kernels(), e))?;
        for k in [1, 8, 64] {
            let kernel = Kernel::TopK { k };
            if !wanted(&kernel.name()) {
                continue;
            }
            let t = bench.time(|e| work.record(ctx.kernels(), e, kernel, None, 1))?;
            let bytes = work.bytes(kernel);
            let line = format!(
                "| {} | F32 | {rows}x{cols} | {:.2} | {:.2} | {:.3} |",
                kernel.name(),
                gb_per_s(bytes, t),
                gb_per_s(logits_bytes, read),
                read.as_secs_f64() / t.as_secs_f64()
            );
            println!("{line}");
            lines.push(line);
        }
    }
    // The wide noise range against the standard one: f32 soft and index forwards at each
    // shape, default strategy, the two timed in turn in the same run.
    lines.push(String::new());
    lines.push("| kernel | shape | standard GB/s | wide GB/s | wide / standard time |".into());
    lines.push("|---|---|---|---|---|".into());
    println!("{}", lines[lines.len() - 3..].join("\n"));
    for &(rows, cols) in shapes {
        let mut work = Workload::new(&ctx, rows, cols, StorageType::F32)?;
        for mode in [Mode::Soft, Mode::Index] {
            let kernel = Kernel::Forward(mode);
            if !wanted(&format!("{} wide", kernel.name())) {
                continue;
            }
            let mut time = |range| {
                work.noise_range = range;
                bench.time(|e| work.record(ctx.kernels(), e, kernel, None, 1))
            };
            // Alternated three times, the fastest of each kept: this machine's load moves.
            let (mut standard, mut wide) = (Duration::MAX, Duration::MAX);
            for _ in 0..3 {
                standard = standard.min(time(NoiseRange::Standard)?);
                wide = wide.min(time(NoiseRange::Wide)?);
            }
            let bytes = work.bytes(kernel);
            let line = format!(
                "| {} | {rows}x{cols} | {:.2} | {:.2} | {:.2} |",
                kernel.name(),
                gb_per_s(bytes, standard),
                gb_per_s(bytes, wide),
                wide.as_secs_f64() / standard.as_secs_f64()
            );
            println!("{line}");
            lines.push(line);
        }
    }
    // A category axis that is not the last (`Shape::strided`): the same elements sampled over
    // the middle axis of `[outer, K, inner]` and over the last axis of `[rows, K]`, each as a
    // ratio to a copy kernel moving the same bytes, timed in turn in the same run.
    lines.push(String::new());
    lines.push(
        "| kernel | tensor, axis 1 | contiguous / copy | strided / copy | strided / contiguous time |"
            .into(),
    );
    lines.push("|---|---|---|---|---|".into());
    println!("{}", lines[lines.len() - 3..].join("\n"));
    let strided_shapes: &[(u32, u32, u32)] = match quick {
        true => &[(4, 1024, 64), (2, 8192, 256)],
        false => &[(64, 1024, 64), (8, 8192, 1024)],
    };
    for &(outer, cols, inner) in strided_shapes {
        let rows = outer * inner;
        let mut work = Workload::new(&ctx, rows, cols, StorageType::F32)?;
        for kernel in [Kernel::Forward(Mode::Soft), Kernel::Vjp { recompute: true }] {
            if !wanted(&format!("{} strided", kernel.name())) {
                continue;
            }
            let bytes = work.bytes(kernel);
            let copy_work = CopyWorkload::new(&ctx, bytes)?;
            let copy = bench.time(|e| copy_work.record(ctx.kernels(), e))?;
            let mut time = |shape| {
                work.shape = shape;
                bench.time(|e| work.record(ctx.kernels(), e, kernel, None, 1))
            };
            let (mut dense, mut strided) = (Duration::MAX, Duration::MAX);
            for _ in 0..3 {
                dense = dense.min(time(Shape::new(rows, cols))?);
                strided = strided.min(time(Shape::strided(rows, cols, inner))?);
            }
            let line = format!(
                "| {} | [{outer}, {cols}, {inner}] | {:.3} | {:.3} | {:.2} |",
                kernel.name(),
                copy.as_secs_f64() / dense.as_secs_f64(),
                copy.as_secs_f64() / strided.as_secs_f64(),
                strided.as_secs_f64() / dense.as_secs_f64()
            );
            println!("{line}");
            lines.push(line);
        }
    }
    // The token sampler beside a read-only pass over its logits.
    let token_shapes: &[(u32, u32)] = match (chosen.is_empty(), quick) {
        (false, _) => &chosen,
        (true, true) => &[(256, 32_000), (16, 151_936)],
        (true, false) => &[(1_024, 200_000), (64, 262_144), (4_096, 32_000)],
    };
    for &(rows, cols) in token_shapes {
        let filters: Vec<TokenFilter> = TokenFilter::ALL
            .into_iter()
            .filter(|f| wanted(&f.name()))
            .collect();
        if filters.is_empty() {
            continue;
        }
        let work = TokenWorkload::new(&ctx, rows, cols)?;
        let logits_bytes = u64::from(rows) * u64::from(cols) * 4;
        let read_work = ReadWorkload::new(&ctx, logits_bytes)?;
        let read = bench.time(|e| read_work.record(ctx.kernels(), e))?;
        for filter in filters {
            let line = match bench.time(|e| work.record(ctx.kernels(), e, filter)) {
                Ok(t) => format!(
                    "| {} | F32 | {rows}x{cols} | {:.2} | {:.2} | {:.3} |",
                    filter.name(),
                    gb_per_s(work.bytes(), t),
                    gb_per_s(logits_bytes, read),
                    read.as_secs_f64() / t.as_secs_f64()
                ),
                Err(e) => format!(
                    "| {} | F32 | {rows}x{cols} | refused: {e} | | |",
                    filter.name()
                ),
            };
            println!("{line}");
            lines.push(line);
        }
    }
    // Speculative decoding's verification, four drafts a request, beside a read-only pass over
    // the target's logits and the draft probabilities.
    let verify_shapes: &[(u32, u32)] = match (chosen.is_empty(), quick) {
        (false, _) => &chosen,
        (true, true) => &[(1, 32_000), (64, 32_000), (1, 151_936), (8, 151_936)],
        (true, false) => &[(1, 32_000), (64, 32_000), (1, 151_936), (64, 151_936)],
    };
    const DRAFTS: u32 = 4;
    if VerifyCase::ALL.iter().any(|c| wanted(&c.name(DRAFTS))) {
        for line in [
            "| kernel | storage | requests (positions x K) | GB/s | read GB/s | ratio to a read of the logits and q |",
            "|---|---|---|---|---|---|",
        ] {
            println!("{line}");
            lines.push(line.into());
        }
    }
    for &(requests, cols) in verify_shapes {
        let cases: Vec<VerifyCase> = VerifyCase::ALL
            .into_iter()
            .filter(|c| wanted(&c.name(DRAFTS)))
            .collect();
        if cases.is_empty() {
            continue;
        }
        let work = VerifyWorkload::new(&ctx, requests, DRAFTS, cols)?;
        let positions = work.shape.rows;
        for case in cases {
            let bytes = work.read_bytes(case);
            let read_work = ReadWorkload::new(&ctx, bytes)?;
            let read = bench.time(|e| read_work.record(ctx.kernels(), e))?;
            let line = match bench.time(|e| work.record(ctx.kernels(), e, case)) {
                Ok(t) => format!(
                    "| {} | F32 | {requests} requests ({positions}x{cols}) | {:.2} | {:.2} | {:.3} |",
                    case.name(DRAFTS),
                    gb_per_s(bytes, t),
                    gb_per_s(bytes, read),
                    read.as_secs_f64() / t.as_secs_f64()
                ),
                Err(e) => format!(
                    "| {} | F32 | {requests} requests ({positions}x{cols}) | refused: {e} | | |",
                    case.name(DRAFTS)
                ),
            };
            println!("{line}");
            lines.push(line);
        }
    }
    if let Some(path) = markdown {
        std::fs::write(path, lines.join("\n") + "\n")?;
    }
    Ok(())
}
