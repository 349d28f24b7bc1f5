//! The forward family's check, shared by the native matrix (tests/forward.rs) and the browser
//! suite: one call through the encoder API on poisoned output, and its comparison with the f64
//! reference row by row.

use super::{Batch, RowBounds, poison, sequential_adds, storage_bits, storage_rounding, value_of};
use gumbel_wgpu::reference::{self, Perturbed, perturbed_row};
use gumbel_wgpu::{Element, Error, ForwardCall, GpuContext, GpuSlice, Mode, Strategy, Tau};

/// Runs one forward call through the encoder API on poisoned output; returns its words.
pub async fn run_gpu<T: Element>(
    ctx: &GpuContext,
    batch: &Batch<T>,
    mode: Mode,
    strategy: Strategy,
) -> Result<Vec<u32>, Error> {
    let shape = batch.shape;
    let logits = ctx.upload(&batch.logits).unwrap();
    let out_len = match mode {
        Mode::Index => shape.rows as usize,
        _ => (shape.rows as usize - 1) * shape.out_pitch as usize + shape.cols as usize,
    };
    let out = match mode {
        Mode::Index => ctx.upload(&vec![0xdead_beefu32; out_len]).unwrap(),
        _ => ctx.upload(&vec![poison::<T>(); out_len]).unwrap(),
    };
    let taus = ctx.upload(&batch.taus).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    ctx.kernels().record_forward(
        &mut encoder,
        &ForwardCall::new(
            mode,
            T::STORAGE,
            shape,
            GpuSlice::from(&logits),
            GpuSlice::from(&out),
        )
        .with_tau(if batch.taus.len() == 1 {
            Tau::Scalar(batch.taus[0])
        } else {
            Tau::PerRow(GpuSlice::from(&taus))
        })
        .with_noise(batch.seed, batch.offset)
        .with_strategy(strategy),
    )?;
    ctx.queue.submit([encoder.finish()]);
    Ok(match mode {
        Mode::Index => ctx.read_back_async::<u32>(&out, out_len).await?,
        _ => ctx
            .read_back_async::<T>(&out, out_len)
            .await?
            .iter()
            .map(|&v| storage_bits(v))
            .collect(),
    })
}

#[derive(Default, Debug)]
pub struct Tally {
    pub elements: usize,
    pub near_ties: usize,
    pub worst_soft_rel: f64,
    pub worst_log_abs: f64,
}

/// Compares one GPU result with the reference, row by row.
pub fn check<T: Element>(
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
