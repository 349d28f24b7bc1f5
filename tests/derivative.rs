//! The VJP and JVP kernels against the CPU reference, for every mode x storage type x strategy
//! x source of the sample (saved or recomputed), over the K and row counts of the forward
//! issue, through the encoder API. The inputs, the run and the tolerances (derived step by step
//! from WGSL's error bounds) are in tests/common/derivative.rs, which the browser suite shares.

#[macro_use]
mod common;

use common::derivative::{
    Direction, FLOOR, GpuResult, Inputs, SourceKind, Tally, check, expect, make_inputs, run_gpu,
    tangent_of,
};
use common::{EPS, KS, TestRng, ctx, refused_long_row, row_counts, runs_at, sequential_adds};
use gumbel_wgpu::{Element, Error, HostTau, Mode, SampleArgs, Strategy};

/// One run on the test device.
fn run<T: Element>(
    inputs: &Inputs<T>,
    mode: Mode,
    source: SourceKind,
    direction: Direction,
    strategy: Strategy,
) -> Result<GpuResult, Error> {
    pollster::block_on(run_gpu(ctx(), inputs, mode, source, direction, strategy))
}

fn check_mode<T: Element>(mode: Mode) {
    let mut tally = Tally::default();
    for (case, &k) in KS.iter().enumerate() {
        for &rows in row_counts(k) {
            let inputs = make_inputs::<T>(rows, k, case as u64 + u64::from(rows), mode);
            for source in [SourceKind::Recompute, SourceKind::Saved] {
                for direction in [Direction::Vjp, Direction::Jvp] {
                    for strategy in common::strategies() {
                        // Past 65,535 rows also one (source, direction) pair per K, a
                        // different one for each K: the split is recorded by code all four
                        // pairs share.
                        let pair = (source as usize) * 2 + direction as usize;
                        if !runs_at(rows, k, strategy)
                            || (rows > 65_535
                                && strategy != Strategy::RowPerThread
                                && pair != k as usize % 4)
                        {
                            continue;
                        }
                        let result = run(&inputs, mode, source, direction, strategy);
                        if refused_long_row(&result, k, strategy) {
                            continue;
                        }
                        match result {
                            Ok(gpu) => {
                                check(&inputs, mode, source, direction, strategy, &gpu, &mut tally)
                            }
                            Err(e) => panic!(
                                "{direction:?} {mode:?} {:?} {source:?} {strategy:?} K={k} rows={rows}: {e}",
                                T::STORAGE
                            ),
                        }
                    }
                }
            }
        }
    }
    eprintln!("{mode:?} {:?}: {tally:?}", T::STORAGE);
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
}

/// Hard mode's derivatives are the soft sample's (straight-through), bit for bit: the same
/// kernel path must run, not merely a close one.
#[test]
fn hard_derivatives_are_the_soft_ones() {
    for (case, k) in [(1, 3), (2, 257), (3, 4099)] {
        let inputs = make_inputs::<f32>(5, k, case, Mode::Soft);
        for source in [SourceKind::Recompute, SourceKind::Saved] {
            for direction in [Direction::Vjp, Direction::Jvp] {
                for strategy in common::strategies() {
                    let soft = run(&inputs, Mode::Soft, source, direction, strategy).unwrap();
                    let hard = run(&inputs, Mode::Hard, source, direction, strategy).unwrap();
                    let what = format!("K={k} {source:?} {direction:?} {strategy:?}");
                    assert_eq!(soft.out, hard.out, "{what}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&soft.dtau), bits(&hard.dtau), "{what}: dtau");
                }
            }
        }
    }
}

/// The derivative from a saved sample equals the recomputed one to rounding, when the saved
/// sample is what the forward kernel wrote. Each GPU result is within its bound of its own
/// reference; the two references differ only by the forward's rounding, computed exactly.
#[test]
fn recompute_equals_saved_forward_output() {
    for (case, k) in [(2u64, 8u32), (3, 1000), (4, 4099)] {
        for mode in [Mode::Soft, Mode::LogSoft] {
            let mut inputs = make_inputs::<f32>(4, k, case, mode);
            let batch = &inputs.batch;
            let tau = if batch.taus.len() == 1 {
                HostTau::Scalar(batch.taus[0])
            } else {
                HostTau::PerRow(&batch.taus)
            };
            let args =
                SampleArgs::for_shape(batch.shape, tau, batch.seed).with_offset(batch.offset);
            inputs.saved = ctx().sample(&batch.logits, mode, &args).unwrap();
            for direction in [Direction::Vjp, Direction::Jvp] {
                for strategy in common::strategies() {
                    let n_seq = sequential_adds(strategy, k);
                    let gpu = |source| run(&inputs, mode, source, direction, strategy).unwrap();
                    let (recomputed, saved) = (gpu(SourceKind::Recompute), gpu(SourceKind::Saved));
                    for r in 0..4 {
                        let a = expect(&inputs, r, mode, SourceKind::Recompute, direction, n_seq);
                        let b = expect(&inputs, r, mode, SourceKind::Saved, direction, n_seq);
                        for c in 0..k as usize {
                            let i = r * k as usize + c;
                            let (x, y) = (
                                f64::from(f32::from_bits(recomputed.out[i])),
                                f64::from(f32::from_bits(saved.out[i])),
                            );
                            let bound = a.bound[c]
                                + b.bound[c]
                                + (a.want[c] - b.want[c]).abs()
                                + 2.0 * FLOOR;
                            assert!(
                                (x - y).abs() <= bound,
                                "{direction:?} {mode:?} {strategy:?} K={k} row {r} col {c}: recomputed {x} vs saved {y}, over {bound:e}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// <v, J u> = <J^T v, u> between the JVP and the VJP kernels, with the temperature among
/// the inputs: sum_k v_k ydot_k = sum_k dl_k u_k + dtau s, per row or summed over rows.
#[test]
fn jvp_and_vjp_are_adjoint() {
    let mut rng = TestRng::new(77);
    for (case, k, rows) in [(1u64, 5u32, 7u32), (2, 64, 3), (3, 1000, 2), (4, 8, 500)] {
        for mode in [Mode::Soft, Mode::LogSoft] {
            for strategy in common::strategies() {
                let inputs_v = make_inputs::<f32>(rows, k, case, mode);
                let mut inputs_u = make_inputs::<f32>(rows, k, case, mode);
                for g in inputs_u.grad.iter_mut().filter(|g| !g.is_nan()) {
                    *g = rng.uniform(-1.0, 1.0) as f32;
                }
                for s in inputs_u.tau_tangent.iter_mut() {
                    *s = rng.uniform(-1.0, 1.0) as f32;
                }
                let source = SourceKind::Recompute;
                let vjp = run(&inputs_v, mode, source, Direction::Vjp, strategy).unwrap();
                let jvp = run(&inputs_u, mode, source, Direction::Jvp, strategy).unwrap();
                let n_seq = sequential_adds(strategy, k);
                let shape = inputs_v.batch.shape;
                let pitch = shape.out_pitch as usize;
                let (mut lhs, mut rhs, mut bound, mut dtau_mag) = (0.0, 0.0, 0.0, 0.0);
                for r in 0..rows as usize {
                    let ev = expect(&inputs_v, r, mode, source, Direction::Vjp, n_seq);
                    let eu = expect(&inputs_u, r, mode, source, Direction::Jvp, n_seq);
                    for c in 0..k as usize {
                        let i = r * pitch + c;
                        let (v, u) = (f64::from(inputs_v.grad[i]), f64::from(inputs_u.grad[i]));
                        lhs += v * f64::from(f32::from_bits(jvp.out[i]));
                        rhs += u * f64::from(f32::from_bits(vjp.out[i]));
                        bound += v.abs() * (eu.bound[c] + FLOOR) + u.abs() * (ev.bound[c] + FLOOR);
                    }
                    let s = f64::from(tangent_of(&inputs_u, r));
                    if inputs_v.batch.taus.len() > 1 {
                        rhs += f64::from(vjp.dtau[r]) * s;
                    }
                    bound += s.abs() * ev.dtau_bound;
                    dtau_mag += ev.dtau.abs();
                }
                if inputs_v.batch.taus.len() == 1 {
                    // One scalar tau: the summed gradient times the one tangent.
                    // Its GPU sum adds the rounding that `check` allows for.
                    let s = f64::from(inputs_u.tau_tangent[0]);
                    rhs += f64::from(vjp.dtau[0]) * s;
                    bound += (f64::from(rows).log2().ceil() + 64.0) * EPS * dtau_mag * s.abs();
                }
                assert!(
                    (lhs - rhs).abs() <= bound,
                    "{mode:?} {strategy:?} K={k} rows={rows}: <v, Ju> = {lhs} vs <J^T v, u> = {rhs}, over {bound:e}"
                );
            }
        }
    }
}
