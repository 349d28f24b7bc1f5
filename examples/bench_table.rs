//! Runs the benchmark matrix once and prints one table: every forward mode at each shape, its
//! GB/s (SPEC section 6 byte counts) and its ratio to a copy kernel moving the same bytes on
//! the same adapter in the same run; soft f32 also under every strategy.
//!
//! `cargo run --release --example bench_table -- [--quick] [--markdown FILE]`
//! `--quick` runs the smaller lavapipe set (65536x64, 4096x1024, 64x65536).

use std::time::Duration;

use gumbel_wgpu::measure::{gb_per_s, time_per_run};
use gumbel_wgpu::{ForwardCall, GpuContext, GpuSlice, Mode, Shape, StorageType, Strategy, Tau};

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

    /// Time of a copy kernel moving `bytes` in all (half read, half written).
    fn copy(&self, bytes: u64) -> gumbel_wgpu::Result<Duration> {
        let half = (bytes / 2).next_multiple_of(16);
        let src = self.ctx.upload(&vec![0x3f80_0001u32; (half / 4) as usize]);
        let dst = self.ctx.storage_buffer(half);
        self.time(|e| self.ctx.kernels().record_copy(e, &src, &dst, half))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let markdown = args
        .iter()
        .position(|a| a == "--markdown")
        .and_then(|i| args.get(i + 1));
    let ctx = GpuContext::new()?;
    let bench = Bench {
        ctx: &ctx,
        budget: Duration::from_millis(if quick { 300 } else { 200 }),
    };
    let shapes: &[(u32, u32)] = if quick { &QUICK } else { &FULL };
    let mut rows_out = vec![format!("adapter: {}", ctx.summary())];
    rows_out.push(String::new());
    rows_out
        .push("| kernel | storage | shape | strategy | GB/s | copy GB/s | ratio to copy |".into());
    rows_out.push("|---|---|---|---|---|---|---|".into());
    println!("{}", rows_out.join("\n"));
    let mut seed = 1u64;
    for &(rows, cols) in shapes {
        let n = u64::from(rows) * u64::from(cols);
        let logits_f32: Vec<f32> = (0..n)
            .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f32) * 0.004 - 2.0)
            .collect();
        for storage in [StorageType::F32, StorageType::F16] {
            let logits = match storage {
                StorageType::F32 => ctx.upload(&logits_f32),
                _ => ctx.upload(
                    &logits_f32
                        .iter()
                        .map(|&x| half::f16::from_f32(x))
                        .collect::<Vec<_>>(),
                ),
            };
            let out = ctx.storage_buffer(n * storage.size());
            for mode in Mode::ALL {
                let strategies: Vec<Option<Strategy>> =
                    if mode == Mode::Soft && storage == StorageType::F32 {
                        std::iter::once(None)
                            .chain(Strategy::ALL.into_iter().map(Some))
                            .chain([Some(Strategy::RowPerWorkgroup { size: 1024 })])
                            .collect()
                    } else {
                        vec![None]
                    };
                let out_bytes = match mode {
                    Mode::Index => u64::from(rows) * 4,
                    _ => n * storage.size(),
                };
                let bytes = n * storage.size() + out_bytes;
                let copy = bench.copy(bytes)?;
                for strategy in strategies {
                    seed += 1;
                    let call = ForwardCall {
                        mode,
                        storage,
                        shape: Shape::new(rows, cols),
                        logits: GpuSlice::from(&logits),
                        out: GpuSlice::from(&out),
                        tau: Tau::Scalar(0.7),
                        seed,
                        offset: 0,
                        strategy,
                    };
                    let name = match strategy {
                        None => format!("default ({:?})", Strategy::choose(cols, ctx.kernels())),
                        Some(s) => format!("{s:?}"),
                    };
                    let line = match bench.time(|e| ctx.kernels().record_forward(e, &call)) {
                        Ok(t) => format!(
                            "| {mode:?} | {storage:?} | {rows}x{cols} | {name} | {:.2} | {:.2} | {:.3} |",
                            gb_per_s(bytes, t),
                            gb_per_s(bytes, copy),
                            copy.as_secs_f64() / t.as_secs_f64()
                        ),
                        Err(e) => format!(
                            "| {mode:?} | {storage:?} | {rows}x{cols} | {name} | refused: {e} | | |"
                        ),
                    };
                    println!("{line}");
                    rows_out.push(line);
                }
            }
        }
    }
    if let Some(path) = markdown {
        std::fs::write(path, rows_out.join("\n") + "\n")?;
    }
    Ok(())
}
