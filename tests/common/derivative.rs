//! The derivative family's check, shared by the native matrix (tests/derivative.rs) and the
//! browser suite: inputs, one VJP or JVP through the encoder API, and its comparison with the
//! f64 reference.
//!
//! Tolerances follow the kernels' arithmetic step by step, with WGSL's error bounds (WGSL spec,
//! "Floating Point Accuracy"): `+ - *` correctly rounded (EPS/2 relative each), `/` 2.5 ULP,
//! `exp(x)` 3 + 2|x| ULP, `log(x)` 3 ULP or 2^-21 absolute on [0.5, 2]. A row sum of n_seq
//! sequential additions errs by n_seq EPS/2 of the sum of magnitudes. The recomputed sample
//! itself errs as the forward tests derive (`RowBounds`). Each element's bound:
//!
//!   y error ey: 0 for a saved soft sample; y (3 + 2|log y|) EPS for exp(saved log y); the
//!   forward's bound when recomputed. w error ew (w = log y or z - m): log's bound when saved
//!   from a soft sample, 0 from log y, dv_k + dv_max when recomputed.
//!   VJP soft/hard: d = <dy, y>, ed = sum |dy| ey + (n_seq + 1) EPS/2 sum |y dy|,
//!     edl_k = (|dy_k - d| ey_k + y_k ed + 4 EPS y_k |dy_k - d|) / tau.
//!   VJP log-soft: D = sum dy, eD = n_seq EPS/2 sum |dy|,
//!     edl_k = (|D| ey_k + y_k eD + 4 EPS (|dy_k| + y_k |D|)) / tau.
//!   dtau = -sum w dl: sum (|w_k| edl_k + |dl_k| ew_k) + (n_seq + 1) EPS/2 sum |w dl|.
//!   JVP: zdot_k = (t_k - w_k s) / tau, ez_k = (|s| ew_k + 4 EPS (|t_k| + |w_k s|)) / tau;
//!     E = <zdot, y>, eE = sum (|zdot| ey + y ez) + (n_seq + 1) EPS/2 sum |y zdot|;
//!     recomputed, w is z - m rather than z: the shift m s / tau cancels only to within
//!     |1 - sum y| <= sum ey + n_seq EPS, which adds |m s / tau| (sum ey + n_seq EPS);
//!     soft: |zdot_k - E| ey_k + y_k (ez_k + eE + shift) + 2 EPS |ydot_k|;
//!     log-soft: ez_k + eE + shift + EPS |ydot_k|.
//! Every output also gets the storage type's rounding and f32's flush-to-zero floor.

use super::{
    Batch, EPS, RowBounds, TestRng, make_batch, poison, sequential_adds, storage_bits,
    storage_rounding, ulp_f32, value_of,
};
use gumbel_wgpu::reference::{self, Perturbed, SamplePoint, perturbed_row, scaled_row, softmax};
use gumbel_wgpu::{
    Element, Error, GpuContext, GpuSlice, JvpCall, Mode, Source, Strategy, Tau, TauGradient,
    TauTangent, VjpCall,
};

/// Everything a batch's derivative calls read, on the GPU and as the reference sees it.
pub struct Inputs<T> {
    pub batch: Batch<T>,
    /// dy of the VJP and the logits' tangent of the JVP: random, at out_pitch, padding poisoned.
    pub grad: Vec<T>,
    /// The tau tangent: one per row for per-row temperatures, else one.
    pub tau_tangent: Vec<f32>,
    /// The reference forward output in storage type T at in_pitch (soft, or log y).
    pub saved: Vec<T>,
}

pub fn make_inputs<T: Element>(rows: u32, cols: u32, case: u64, mode: Mode) -> Inputs<T> {
    let batch = make_batch::<T>(rows, cols, case);
    let shape = batch.shape;
    let mut rng = TestRng::new(case ^ 0xd1ff);
    let out_len = shape.span(shape.out_pitch) as usize;
    let mut grad = vec![poison::<T>(); out_len];
    let mut saved = vec![poison::<T>(); batch.logits.len()];
    for r in 0..rows as usize {
        for k in 0..cols as usize {
            grad[r * shape.out_pitch as usize + k] = T::from_f32(rng.uniform(-1.0, 1.0) as f32);
        }
        let z = scaled_row(
            &row_logits(&batch, r),
            tau_of(&batch, r),
            batch.seed,
            first(&batch, r),
            mode,
        )
        .expect("test rows have a sample");
        for (k, y) in softmax(&z, mode == Mode::LogSoft).into_iter().enumerate() {
            saved[r * shape.in_pitch as usize + k] = T::from_f32(y as f32);
        }
    }
    let tau_tangent = (0..batch.taus.len())
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    Inputs {
        batch,
        grad,
        tau_tangent,
        saved,
    }
}

pub fn row_logits<T: Element>(batch: &Batch<T>, r: usize) -> Vec<f32> {
    let shape = batch.shape;
    batch.logits[r * shape.in_pitch as usize..][..shape.cols as usize]
        .iter()
        .map(|l| l.to_f32())
        .collect()
}

pub fn tau_of<T>(batch: &Batch<T>, r: usize) -> f32 {
    if batch.taus.len() == 1 {
        batch.taus[0]
    } else {
        batch.taus[r]
    }
}

pub fn first<T>(batch: &Batch<T>, r: usize) -> u64 {
    batch.offset + r as u64 * u64::from(batch.shape.cols)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SourceKind {
    Recompute,
    Saved,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Direction {
    Vjp,
    Jvp,
}

/// One GPU run: the output words (at out_pitch) and the per-row or summed dtau (VJP).
pub struct GpuResult {
    pub out: Vec<u32>,
    pub dtau: Vec<f32>,
}

pub async fn run_gpu<T: Element>(
    ctx: &GpuContext,
    inputs: &Inputs<T>,
    mode: Mode,
    source: SourceKind,
    direction: Direction,
    strategy: Strategy,
) -> Result<GpuResult, Error> {
    let batch = &inputs.batch;
    let shape = batch.shape;
    let input = ctx
        .upload(match source {
            SourceKind::Recompute => &batch.logits,
            SourceKind::Saved => &inputs.saved,
        })
        .unwrap();
    let taus = ctx.upload(&batch.taus).unwrap();
    let grad = ctx.upload(&inputs.grad).unwrap();
    let tangent = ctx.upload(&inputs.tau_tangent).unwrap();
    let out = ctx.upload(&vec![poison::<T>(); inputs.grad.len()]).unwrap();
    let per_row = batch.taus.len() > 1;
    let dtau_len = if per_row { shape.rows as usize } else { 1 };
    let dtau = ctx.upload(&vec![f32::NAN; dtau_len]).unwrap();
    let source = match source {
        SourceKind::Recompute => {
            Source::recompute(GpuSlice::from(&input), batch.seed, batch.offset)
        }
        SourceKind::Saved => Source::Saved(GpuSlice::from(&input)),
    };
    let tau = if per_row {
        Tau::PerRow(GpuSlice::from(&taus))
    } else {
        Tau::Scalar(batch.taus[0])
    };
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let kernels = ctx.kernels();
    match direction {
        Direction::Vjp => kernels.record_vjp(
            &mut encoder,
            &VjpCall::new(
                mode,
                T::STORAGE,
                shape,
                source,
                GpuSlice::from(&grad),
                GpuSlice::from(&out),
            )
            .with_tau(tau)
            .with_dtau(if per_row {
                TauGradient::PerRow(GpuSlice::from(&dtau))
            } else {
                TauGradient::Sum(GpuSlice::from(&dtau))
            })
            .with_strategy(strategy),
        )?,
        Direction::Jvp => kernels.record_jvp(
            &mut encoder,
            &JvpCall::new(
                mode,
                T::STORAGE,
                shape,
                source,
                GpuSlice::from(&grad),
                GpuSlice::from(&out),
            )
            .with_tau(tau)
            .with_dtau(if per_row {
                TauTangent::PerRow(GpuSlice::from(&tangent))
            } else {
                TauTangent::Scalar(inputs.tau_tangent[0])
            })
            .with_strategy(strategy),
        )?,
    }
    ctx.queue.submit([encoder.finish()]);
    Ok(GpuResult {
        out: ctx
            .read_back_async::<T>(&out, inputs.grad.len())
            .await?
            .into_iter()
            .map(storage_bits)
            .collect(),
        dtau: ctx.read_back_async(&dtau, dtau_len).await?,
    })
}

/// The reference of one row and what its bounds need.
pub struct RowRef {
    pub point: SamplePoint,
    /// Error of the y the kernel uses, and of its w.
    pub ey: Vec<f64>,
    pub ew: Vec<f64>,
    /// w as the kernel forms it (z - m, or log y), where the element takes part.
    pub w: Vec<f64>,
    /// |m|: the shift between the kernel's w and z (0 when saved).
    pub shift: f64,
}

pub fn row_ref<T: Element>(
    inputs: &Inputs<T>,
    r: usize,
    mode: Mode,
    source: SourceKind,
    n_seq: f64,
) -> RowRef {
    let batch = &inputs.batch;
    let cols = batch.shape.cols as usize;
    match source {
        SourceKind::Recompute => {
            let logits = row_logits(batch, r);
            let tau = tau_of(batch, r);
            let perturbed: Vec<Option<f64>> = perturbed_row(&logits, batch.seed, first(batch, r))
                .into_iter()
                .map(|p| match p {
                    Perturbed::Value(v) => Some(v),
                    _ => None,
                })
                .collect();
            let scale = 1.0 / f64::from(tau);
            let bounds = RowBounds::new(&logits, &perturbed, scale, n_seq);
            let z = scaled_row(&logits, tau, batch.seed, first(batch, r), mode).unwrap();
            let m = z.iter().flatten().copied().fold(f64::MIN, f64::max);
            let point = SamplePoint::from_z(&z);
            let ey = (0..cols)
                .map(|k| z[k].map_or(0.0, |zk| bounds.soft(k, point.y[k], zk - m)))
                .collect();
            let ew = (0..cols)
                .map(|k| z[k].map_or(0.0, |zk| bounds.dv[k] + bounds.dv_max + ulp_f32(zk - m)))
                .collect();
            let w = z.iter().map(|zk| zk.map_or(0.0, |zk| zk - m)).collect();
            RowRef {
                point,
                ey,
                ew,
                w,
                shift: m.abs(),
            }
        }
        SourceKind::Saved => {
            let pitch = batch.shape.in_pitch as usize;
            let saved: Vec<f64> = inputs.saved[r * pitch..][..cols]
                .iter()
                .map(|s| f64::from(s.to_f32()))
                .collect();
            let point = SamplePoint::from_saved(&saved, mode);
            let (ey, ew) = (0..cols)
                .map(|k| match (point.w[k], mode) {
                    (None, _) => (0.0, 0.0),
                    (Some(s), Mode::LogSoft) => (point.y[k] * (3.0 + 2.0 * s.abs()) * EPS, 0.0),
                    (Some(w), _) => (0.0, (3.0 * ulp_f32(w)).max(2f64.powi(-21))),
                })
                .unzip();
            let w = point.w.iter().map(|w| w.unwrap_or(0.0)).collect();
            RowRef {
                point,
                ey,
                ew,
                w,
                shift: 0.0,
            }
        }
    }
}

#[derive(Default, Debug)]
pub struct Tally {
    pub elements: usize,
    /// The largest relative error among values of magnitude 1e-3 or more.
    pub worst_rel: f64,
    /// The largest error as a fraction of its bound, away from f32's flush-to-zero floor.
    pub worst_of_bound: f64,
    pub worst_dtau_rel: f64,
}

pub const FLOOR: f64 = f32::MIN_POSITIVE as f64;

/// What a row's derivative should be, and the bounds derived above.
pub struct RowExpect {
    pub on: Vec<bool>,
    /// dl (VJP) or ydot (JVP), and the f32 bound on each (before storage rounding).
    pub want: Vec<f64>,
    pub bound: Vec<f64>,
    /// VJP: the row's dtau and its bound.
    pub dtau: f64,
    pub dtau_bound: f64,
}

pub fn expect<T: Element>(
    inputs: &Inputs<T>,
    r: usize,
    mode: Mode,
    source: SourceKind,
    direction: Direction,
    n_seq: f64,
) -> RowExpect {
    let batch = &inputs.batch;
    let (cols, out_pitch) = (batch.shape.cols as usize, batch.shape.out_pitch as usize);
    let rr = row_ref(inputs, r, mode, source, n_seq);
    let (y, ey, ew, w) = (&rr.point.y, &rr.ey, &rr.ew, &rr.w);
    let on: Vec<bool> = rr.point.w.iter().map(Option::is_some).collect();
    let tau = f64::from(tau_of(batch, r));
    let t: Vec<f64> = (0..cols)
        .map(|k| f64::from(inputs.grad[r * out_pitch + k].to_f32()))
        .collect();
    let sum_on = |f: &dyn Fn(usize) -> f64| (0..cols).filter(|&k| on[k]).map(f).sum::<f64>();
    let sum_error = (n_seq + 1.0) * EPS / 2.0;
    match direction {
        Direction::Vjp => {
            let grad = reference::vjp(&rr.point, tau, mode, &t);
            let edl: Vec<f64> = if mode == Mode::LogSoft {
                let d: f64 = sum_on(&|k| t[k]);
                let ed = n_seq * EPS / 2.0 * sum_on(&|k| t[k].abs());
                (0..cols)
                    .map(|k| {
                        (d.abs() * ey[k] + y[k] * ed + 4.0 * EPS * (t[k].abs() + y[k] * d.abs()))
                            / tau
                    })
                    .collect()
            } else {
                let d: f64 = sum_on(&|k| t[k] * y[k]);
                let ed =
                    sum_on(&|k| t[k].abs() * ey[k]) + sum_error * sum_on(&|k| (t[k] * y[k]).abs());
                (0..cols)
                    .map(|k| {
                        ((t[k] - d).abs() * ey[k] + y[k] * ed + 4.0 * EPS * y[k] * (t[k] - d).abs())
                            / tau
                    })
                    .collect()
            };
            let dtau_bound = sum_on(&|k| w[k].abs() * edl[k] + grad.dl[k].abs() * ew[k])
                + sum_error * sum_on(&|k| (w[k] * grad.dl[k]).abs())
                + FLOOR;
            RowExpect {
                on,
                want: grad.dl,
                bound: edl,
                dtau: grad.dtau,
                dtau_bound,
            }
        }
        Direction::Jvp => {
            let s = f64::from(tangent_of(inputs, r));
            let want = reference::jvp(&rr.point, tau, mode, &t, s);
            let zdot: Vec<f64> = (0..cols).map(|k| (t[k] - w[k] * s) / tau).collect();
            let ez: Vec<f64> = (0..cols)
                .map(|k| (s.abs() * ew[k] + 4.0 * EPS * (t[k].abs() + (w[k] * s).abs())) / tau)
                .collect();
            let e: f64 = sum_on(&|k| y[k] * zdot[k]);
            let ee = sum_on(&|k| zdot[k].abs() * ey[k] + y[k] * ez[k])
                + sum_error * sum_on(&|k| (y[k] * zdot[k]).abs());
            let shift = rr.shift * s.abs() / tau * (sum_on(&|k| ey[k]) + n_seq * EPS);
            let bound = (0..cols)
                .map(|k| {
                    if mode == Mode::LogSoft {
                        ez[k] + ee + shift + EPS * want[k].abs()
                    } else {
                        (zdot[k] - e).abs() * ey[k]
                            + y[k] * (ez[k] + ee + shift)
                            + 2.0 * EPS * want[k].abs()
                    }
                })
                .collect();
            RowExpect {
                on,
                want,
                bound,
                dtau: 0.0,
                dtau_bound: 0.0,
            }
        }
    }
}

pub fn tangent_of<T>(inputs: &Inputs<T>, r: usize) -> f32 {
    if inputs.tau_tangent.len() == 1 {
        inputs.tau_tangent[0]
    } else {
        inputs.tau_tangent[r]
    }
}

pub fn check<T: Element>(
    inputs: &Inputs<T>,
    mode: Mode,
    source: SourceKind,
    direction: Direction,
    strategy: Strategy,
    gpu: &GpuResult,
    tally: &mut Tally,
) {
    let batch = &inputs.batch;
    let shape = batch.shape;
    let (cols, out_pitch) = (shape.cols as usize, shape.out_pitch as usize);
    let n_seq = sequential_adds(strategy, shape.cols);
    let what = |r: usize| {
        format!(
            "{direction:?} {mode:?} {:?} {source:?} {strategy:?} K={cols} rows={} row {r}",
            T::STORAGE,
            shape.rows
        )
    };
    let (mut dtau_sum, mut dtau_sum_bound, mut dtau_mag) = (0.0, 0.0, 0.0);
    for r in 0..shape.rows as usize {
        let x = expect(inputs, r, mode, source, direction, n_seq);
        if direction == Direction::Vjp {
            if batch.taus.len() > 1 {
                let err = (f64::from(gpu.dtau[r]) - x.dtau).abs();
                assert!(
                    err <= x.dtau_bound,
                    "{}: dtau {} vs {}: error {err:e} over {:e}",
                    what(r),
                    gpu.dtau[r],
                    x.dtau,
                    x.dtau_bound
                );
                tally.worst_dtau_rel = tally.worst_dtau_rel.max(err / x.dtau.abs().max(1e-30));
            }
            dtau_sum += x.dtau;
            dtau_sum_bound += x.dtau_bound;
            dtau_mag += x.dtau.abs();
        }
        for k in 0..cols {
            let got = value_of::<T>(gpu.out[r * out_pitch + k]);
            if !x.on[k] {
                assert_eq!(got, 0.0, "{}: column {k} takes no part", what(r));
                continue;
            }
            let bound = x.bound[k] + storage_rounding(T::STORAGE, x.want[k]) + FLOOR;
            let err = (got - x.want[k]).abs();
            assert!(
                err <= bound,
                "{}: column {k}: GPU {got} vs {}: error {err:e} over {bound:e}",
                what(r),
                x.want[k]
            );
            if x.want[k].abs() >= 1e-3 {
                tally.worst_rel = tally.worst_rel.max(err / x.want[k].abs());
            }
            if x.want[k].abs() > 1e3 * FLOOR {
                tally.worst_of_bound = tally.worst_of_bound.max(err / bound);
            }
        }
        tally.elements += cols;
        if r + 1 < shape.rows as usize {
            let pad = &gpu.out[r * out_pitch + cols..(r + 1) * out_pitch];
            assert!(
                pad.iter().all(|&b| b == storage_bits(poison::<T>())),
                "{}: padding overwritten",
                what(r)
            );
        }
    }
    // A scalar temperature's gradient: the sum over rows, summed on the GPU.
    if direction == Direction::Vjp && batch.taus.len() == 1 {
        let rows = f64::from(shape.rows);
        let bound = dtau_sum_bound + (rows.log2().ceil() + 64.0) * EPS * dtau_mag + FLOOR;
        let err = (f64::from(gpu.dtau[0]) - dtau_sum).abs();
        assert!(
            err <= bound,
            "{}: summed dtau {} vs {dtau_sum}: error {err:e} over {bound:e}",
            what(0),
            gpu.dtau[0]
        );
    }
}
