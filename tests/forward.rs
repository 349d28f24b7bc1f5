//! Every forward mode x storage type x strategy against the CPU reference, through the
//! encoder API, over the K and row counts of the forward issue (the largest ones at fewer rows,
//! so that the suite runs in minutes on lavapipe).

mod common;

use common::{RowBounds, TestRng, ctx, storage_bits, storage_rounding};
use gumbel_wgpu::reference::{self, Perturbed, perturbed_row};
use gumbel_wgpu::{Element, Error, ForwardCall, GpuSlice, Mode, Shape, Strategy, Tau};

const KS: [u32; 15] = [
    1, 2, 3, 7, 8, 31, 32, 33, 255, 256, 257, 1000, 4099, 65537, 1_048_576,
];

fn row_counts(k: u32) -> &'static [u32] {
    match k {
        1 | 3 | 8 => &[1, 3, 70_000],
        ..=4099 => &[1, 3],
        65537 => &[1, 3],
        _ => &[1],
    }
}

/// A test batch: logits (stored as T, padding poisoned), temperatures, noise position.
struct Batch<T> {
    shape: Shape,
    logits: Vec<T>,
    taus: Vec<f32>,
    seed: u64,
    offset: u64,
}

/// Poison for padding and for outputs before the kernel runs: a NaN payload no kernel writes.
fn poison<T: Element>() -> T {
    match T::STORAGE {
        gumbel_wgpu::StorageType::F32 => bytemuck::cast(0x7fa5_a5a5u32),
        _ => bytemuck::cast(0x7da5u16),
    }
}

fn make_batch<T: Element>(rows: u32, cols: u32, case: u64) -> Batch<T> {
    let mut rng = TestRng::new(case * 7919 + u64::from(cols));
    // Padded rows for some K; per-row temperatures for odd case numbers.
    let pad = if [7, 33, 257].contains(&cols) {
        (3, 1)
    } else {
        (0, 0)
    };
    let shape = Shape::new(rows, cols).with_pitches(cols + pad.0, cols + pad.1);
    let spread = rng.uniform(0.5, 6.0);
    let mut logits =
        vec![poison::<T>(); shape.in_pitch as usize * (rows as usize - 1) + cols as usize];
    for r in 0..rows as usize {
        let row = &mut logits[r * shape.in_pitch as usize..][..cols as usize];
        for l in row.iter_mut() {
            *l = T::from_f32(rng.uniform(-spread, spread) as f32);
        }
        // Every third row has masked entries, but keeps at least one valid one.
        if r % 3 == 1 && cols > 1 {
            for (k, l) in row.iter_mut().enumerate() {
                if k > 0 && rng.next_u32().is_multiple_of(4) {
                    *l = T::from_f32(f32::NEG_INFINITY);
                }
            }
        }
    }
    let log_tau = |rng: &mut TestRng| rng.uniform(0.05f64.ln(), 20f64.ln()).exp() as f32;
    let taus = if case % 2 == 1 {
        (0..rows).map(|_| log_tau(&mut rng)).collect()
    } else {
        vec![log_tau(&mut rng)]
    };
    Batch {
        shape,
        logits,
        taus,
        seed: rng.next_u64(),
        offset: rng.next_u64() >> 20,
    }
}

/// Runs one forward call through the encoder API on poisoned output; returns its words.
fn run_gpu<T: Element>(
    batch: &Batch<T>,
    mode: Mode,
    strategy: Strategy,
) -> Result<Vec<u32>, Error> {
    let ctx = ctx();
    let shape = batch.shape;
    let logits = ctx.upload(&batch.logits);
    let out_len = match mode {
        Mode::Index => shape.rows as usize,
        _ => (shape.rows as usize - 1) * shape.out_pitch as usize + shape.cols as usize,
    };
    let out = match mode {
        Mode::Index => ctx.upload(&vec![0xdead_beefu32; out_len]),
        _ => ctx.upload(&vec![poison::<T>(); out_len]),
    };
    let taus = ctx.upload(&batch.taus);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    ctx.kernels().record_forward(
        &mut encoder,
        &ForwardCall {
            mode,
            storage: T::STORAGE,
            shape,
            logits: GpuSlice::from(&logits),
            out: GpuSlice::from(&out),
            tau: if batch.taus.len() == 1 {
                Tau::Scalar(batch.taus[0])
            } else {
                Tau::PerRow(GpuSlice::from(&taus))
            },
            seed: batch.seed,
            offset: batch.offset,
            strategy: Some(strategy),
        },
    )?;
    ctx.queue.submit([encoder.finish()]);
    Ok(match mode {
        Mode::Index => ctx.read_back::<u32>(&out, out_len)?,
        _ => ctx
            .read_back::<T>(&out, out_len)?
            .iter()
            .map(|&v| storage_bits(v))
            .collect(),
    })
}

fn value_of<T: Element>(bits: u32) -> f64 {
    let v: T = match T::STORAGE {
        gumbel_wgpu::StorageType::F32 => bytemuck::cast(bits),
        _ => bytemuck::cast(bits as u16),
    };
    f64::from(v.to_f32())
}

/// Longest chain of sequential additions in a strategy's row sum (see RowBounds).
fn sequential_adds(strategy: Strategy, cols: u32) -> f64 {
    match strategy {
        Strategy::RowPerThread => f64::from(cols),
        Strategy::RowPerWorkgroup { size } => {
            (f64::from(cols) / f64::from(size)).ceil() + 4.0 + f64::from(size).log2()
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    elements: usize,
    near_ties: usize,
    worst_soft_rel: f64,
    worst_log_abs: f64,
}

/// Compares one GPU result with the reference, row by row.
fn check<T: Element>(
    batch: &Batch<T>,
    mode: Mode,
    strategy: Strategy,
    gpu: &[u32],
    tally: &mut Tally,
) {
    let shape = batch.shape;
    let (cols, in_pitch, out_pitch) = (
        shape.cols as usize,
        shape.in_pitch as usize,
        shape.out_pitch as usize,
    );
    let what = |r: usize| {
        format!(
            "{mode:?} {:?} {strategy:?} K={cols} rows={} row {r}",
            T::STORAGE,
            shape.rows
        )
    };
    for r in 0..shape.rows as usize {
        let logits: Vec<f32> = batch.logits[r * in_pitch..][..cols]
            .iter()
            .map(|l| l.to_f32())
            .collect();
        let tau = if batch.taus.len() == 1 {
            batch.taus[0]
        } else {
            batch.taus[r]
        };
        let first = batch.offset + (r * cols) as u64;
        let perturbed: Vec<Option<f64>> = perturbed_row(&logits, batch.seed, first)
            .into_iter()
            .map(|p| match p {
                Perturbed::Value(v) => Some(v),
                _ => None,
            })
            .collect();
        let scale = if mode == Mode::Index {
            1.0
        } else {
            1.0 / f64::from(tau)
        };
        let bounds = RowBounds::new(
            &logits,
            &perturbed,
            scale,
            sequential_adds(strategy, shape.cols),
        );
        let expected = reference::forward_row(&logits, tau, batch.seed, first, mode)
            .unwrap_or_else(|e| panic!("{}: test rows always have a sample: {e}", what(r)));
        let v: Vec<Option<f64>> = perturbed.iter().map(|p| p.map(|p| p * scale)).collect();
        let argmax_ok = |got: usize, want: usize, tally: &mut Tally| {
            if got != want {
                let (a, b) = (v[want].unwrap(), v[got].map_or(f64::NEG_INFINITY, |x| x));
                assert!(
                    a - b <= bounds.dv[want] + bounds.dv[got],
                    "{}: argmax {got} (v = {b}) instead of {want} (v = {a})",
                    what(r)
                );
                tally.near_ties += 1;
            }
        };
        match expected {
            reference::RowSample::Index(want) => {
                argmax_ok(gpu[r] as usize, want as usize, tally);
            }
            reference::RowSample::Values(want) => {
                let row = &gpu[r * out_pitch..][..cols];
                let got: Vec<f64> = row.iter().map(|&b| value_of::<T>(b)).collect();
                if mode == Mode::Hard {
                    let ones: Vec<usize> = (0..cols).filter(|&k| got[k] == 1.0).collect();
                    assert!(
                        ones.len() == 1 && got.iter().all(|&x| x == 0.0 || x == 1.0),
                        "{}: not one-hot: {got:?}",
                        what(r)
                    );
                    let want_k = want.iter().position(|&x| x == 1.0).unwrap();
                    argmax_ok(ones[0], want_k, tally);
                    continue;
                }
                let m = v.iter().flatten().copied().fold(f64::MIN, f64::max);
                let log_s = v.iter().flatten().map(|x| (x - m).exp()).sum::<f64>().ln();
                for k in 0..cols {
                    let (y, g) = (want[k], got[k]);
                    let Some(vk) = v[k] else {
                        let masked = if mode == Mode::Soft {
                            0.0
                        } else {
                            f64::NEG_INFINITY
                        };
                        assert_eq!(g, masked, "{}: masked column {k}", what(r));
                        continue;
                    };
                    let bound = match mode {
                        Mode::Soft => bounds.soft(k, y, vk - m),
                        _ => bounds.log_soft(k, y, log_s),
                    } + storage_rounding(T::STORAGE, y);
                    let err = (g - y).abs();
                    assert!(
                        err <= bound,
                        "{}: column {k}: GPU {g} vs {y}: error {err:e} over {bound:e}",
                        what(r)
                    );
                    if mode == Mode::Soft && y > 1e-30 {
                        tally.worst_soft_rel = tally.worst_soft_rel.max(err / y);
                    } else if mode == Mode::LogSoft {
                        tally.worst_log_abs = tally.worst_log_abs.max(err);
                    }
                }
                tally.elements += cols;
            }
        }
        // Padding between rows is untouched.
        if mode != Mode::Index && r + 1 < shape.rows as usize {
            let pad = &gpu[r * out_pitch + cols..(r + 1) * out_pitch];
            assert!(
                pad.iter().all(|&b| b == storage_bits(poison::<T>())),
                "{}: padding overwritten",
                what(r)
            );
        }
    }
}

fn check_mode<T: Element>(mode: Mode) {
    let mut tally = Tally::default();
    for (case, &k) in KS.iter().enumerate() {
        for &rows in row_counts(k) {
            let batch = make_batch::<T>(rows, k, case as u64 + u64::from(rows));
            for strategy in Strategy::ALL {
                match run_gpu(&batch, mode, strategy) {
                    Ok(gpu) => check(&batch, mode, strategy, &gpu, &mut tally),
                    // A thread per row cannot walk a million elements within lavapipe's loop
                    // budget; the library says so instead of computing garbage.
                    Err(Error::OverLimits(msg))
                        if strategy == Strategy::RowPerThread && k > 100_000 =>
                    {
                        eprintln!("K={k} {strategy:?}: refused: {msg}");
                    }
                    Err(e) => panic!(
                        "{mode:?} {:?} {strategy:?} K={k} rows={rows}: {e}",
                        T::STORAGE
                    ),
                }
            }
        }
    }
    eprintln!("{mode:?} {:?}: {tally:?}", T::STORAGE);
}

macro_rules! matrix {
    ($($name:ident: $t:ty, $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            check_mode::<$t>($mode);
        }
    )*};
}

matrix! {
    soft_f32: f32, Mode::Soft;
    soft_f16: half::f16, Mode::Soft;
    soft_bf16: half::bf16, Mode::Soft;
    log_soft_f32: f32, Mode::LogSoft;
    log_soft_f16: half::f16, Mode::LogSoft;
    log_soft_bf16: half::bf16, Mode::LogSoft;
    hard_f32: f32, Mode::Hard;
    hard_f16: half::f16, Mode::Hard;
    hard_bf16: half::bf16, Mode::Hard;
    index_f32: f32, Mode::Index;
    index_f16: half::f16, Mode::Index;
    index_bf16: half::bf16, Mode::Index;
}
