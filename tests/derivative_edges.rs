//! Derivative edge cases: rows without a sample, bad input as error values, the scalar
//! temperature's gradient summed deterministically, and split calls in one encoder.

mod common;

use common::{TestRng, ctx, expect_invalid};
use gumbel_wgpu::reference::{self, NoSample, SamplePoint};
use gumbel_wgpu::{
    Error, GpuSlice, HostSource, HostTau, JvpCall, Mode, SampleArgs, Shape, Source, StorageType,
    Strategy, Tau, TauGradient, TauTangent, VjpCall,
};

/// Runs a recomputing VJP (per-row dtau) and JVP on f32 host data; returns (dl, dtau, ydot).
fn derivatives(
    logits: &[f32],
    shape: Shape,
    taus: &[f32],
    grad: &[f32],
    mode: Mode,
    strategy: Strategy,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let ctx = ctx();
    let (input, tau, grad) = (
        ctx.upload(logits).unwrap(),
        ctx.upload(taus).unwrap(),
        ctx.upload(grad).unwrap(),
    );
    let n = grad.size() / 4;
    let (dl, ydot) = (
        ctx.storage_buffer(n * 4).unwrap(),
        ctx.storage_buffer(n * 4).unwrap(),
    );
    let dtau = ctx.storage_buffer(u64::from(shape.rows) * 4).unwrap();
    let tangents = ctx.upload(&vec![0.5f32; shape.rows as usize]).unwrap();
    let source = Source::recompute(GpuSlice::from(&input), 11, 0);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let kernels = ctx.kernels();
    kernels
        .record_vjp(
            &mut encoder,
            &VjpCall::new(
                mode,
                StorageType::F32,
                shape,
                source,
                GpuSlice::from(&grad),
                GpuSlice::from(&dl),
            )
            .with_tau(Tau::PerRow(GpuSlice::from(&tau)))
            .with_dtau(TauGradient::PerRow(GpuSlice::from(&dtau)))
            .with_strategy(strategy),
        )
        .unwrap();
    kernels
        .record_jvp(
            &mut encoder,
            &JvpCall::new(
                mode,
                StorageType::F32,
                shape,
                source,
                GpuSlice::from(&grad),
                GpuSlice::from(&ydot),
            )
            .with_tau(Tau::PerRow(GpuSlice::from(&tau)))
            .with_dtau(TauTangent::PerRow(GpuSlice::from(&tangents)))
            .with_strategy(strategy),
        )
        .unwrap();
    ctx.queue.submit([encoder.finish()]);
    (
        ctx.read_back(&dl, n as usize).unwrap(),
        ctx.read_back(&dtau, shape.rows as usize).unwrap(),
        ctx.read_back(&ydot, n as usize).unwrap(),
    )
}

/// A row without a sample has NaN derivatives (and a NaN dtau), as its forward output is
/// NaN; masked elements of a valid row get exactly zero.
#[test]
fn rows_without_a_sample() {
    let inf = f32::INFINITY;
    let rows: [([f32; 5], f32); 7] = [
        ([-inf; 5], 1.0),
        ([0.0, f32::NAN, 1.0, 2.0, 3.0], 1.0),
        ([0.0, 1.0, inf, 2.0, 3.0], 1.0),
        ([0.5, -inf, 1.0, 2.0, -inf], 0.7),
        ([0.0, 1.0, 2.0, 3.0, 4.0], 0.0),
        ([0.0, 1.0, 2.0, 3.0, 4.0], f32::NAN),
        ([0.0, 1.0, 2.0, 3.0, 4.0], inf),
    ];
    let logits: Vec<f32> = rows.iter().flat_map(|(l, _)| *l).collect();
    let taus: Vec<f32> = rows.iter().map(|(_, t)| *t).collect();
    let grad: Vec<f32> = (0..35).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
    let shape = Shape::new(7, 5);
    for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
        for strategy in common::strategies() {
            let (dl, dtau, ydot) = derivatives(&logits, shape, &taus, &grad, mode, strategy);
            for r in 0..7 {
                let what = format!("{mode:?} {strategy:?} row {r}");
                let (dl, ydot) = (&dl[r * 5..][..5], &ydot[r * 5..][..5]);
                if r != 3 {
                    assert!(dl.iter().all(|x| x.is_nan()), "{what}: dl {dl:?}");
                    assert!(ydot.iter().all(|x| x.is_nan()), "{what}: ydot {ydot:?}");
                    assert!(dtau[r].is_nan(), "{what}: dtau {}", dtau[r]);
                    continue;
                }
                let dy: Vec<f64> = grad[15..20].iter().map(|&x| f64::from(x)).collect();
                let want = reference::vjp_row(&rows[3].0, 0.7, 11, 15, mode, &dy).unwrap();
                for k in 0..5 {
                    if rows[3].0[k] == -inf {
                        assert_eq!(dl[k].to_bits(), 0, "{what}: masked dl[{k}]");
                        assert_eq!(ydot[k].to_bits(), 0, "{what}: masked ydot[{k}]");
                    } else {
                        assert!(
                            (f64::from(dl[k]) - want.dl[k]).abs() < 1e-5,
                            "{what}: dl[{k}]"
                        );
                    }
                }
            }
        }
    }
    // The host-slice layer turns the first row without a sample into an error.
    let args = SampleArgs::new(7, 5, 1.0, 11).with_tau(HostTau::PerRow(&[1.0; 7]));
    match ctx().vjp(HostSource::Recompute(&logits), &grad, Mode::Soft, &args) {
        Err(Error::NoSample { row: 0, reason }) => assert_eq!(reason, NoSample::AllMasked),
        other => panic!("expected NoSample for row 0, got {other:?}"),
    }
}

#[test]
fn bad_input_is_an_error_value() {
    let ctx = ctx();
    let logits = vec![0.5f32; 12];
    let dy = vec![0.25f32; 12];
    let args = SampleArgs::new(3, 4, 1.0, 1);
    let recompute = HostSource::Recompute(&logits);
    expect_invalid(ctx.vjp(recompute, &dy, Mode::Index, &args), "index mode");
    expect_invalid(
        ctx.vjp(recompute, &dy[..11], Mode::Soft, &args),
        "11 dy elements",
    );
    expect_invalid(
        ctx.vjp(HostSource::Saved(&logits[..8]), &dy, Mode::Soft, &args),
        "8 saved sample values given",
    );
    let bad_tau = SampleArgs::new(3, 4, -1.0, 1);
    expect_invalid(ctx.vjp(recompute, &dy, Mode::Soft, &bad_tau), "tau");
    expect_invalid(
        ctx.jvp(
            recompute,
            &dy,
            HostTau::PerRow(&[1.0, 2.0]),
            Mode::Soft,
            &args,
        ),
        "2 per-row tau tangents",
    );
    expect_invalid(
        ctx.jvp(recompute, &dy, HostTau::Scalar(f32::NAN), Mode::Soft, &args),
        "must be finite",
    );
    let no_slices = args.with_strategy(Strategy::SplitRow {
        size: 64,
        slices: 0,
    });
    expect_invalid(ctx.vjp(recompute, &dy, Mode::Soft, &no_slices), "0 slices");

    // The encoder API checks every buffer.
    let good = ctx.upload(&logits).unwrap();
    let short = ctx.storage_buffer(40).unwrap();
    let out = ctx.storage_buffer(48).unwrap();
    let dtau = ctx.storage_buffer(12).unwrap();
    let no_storage = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 48,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let shape = Shape::new(3, 4);
    let vjp = |source: Source<'_>, dy: &wgpu::Buffer, dl: &wgpu::Buffer, dtau: TauGradient<'_>| {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ctx.kernels().record_vjp(
            &mut encoder,
            &VjpCall::new(
                Mode::Soft,
                StorageType::F32,
                shape,
                source,
                GpuSlice::from(dy),
                GpuSlice::from(dl),
            )
            .with_tau(Tau::Scalar(1.0))
            .with_dtau(dtau),
        )
    };
    let saved = Source::Saved(GpuSlice::from(&good));
    expect_invalid(
        vjp(saved, &short, &out, TauGradient::None),
        "dy buffer holds 40",
    );
    expect_invalid(
        vjp(saved, &good, &short, TauGradient::None),
        "dl buffer holds 40",
    );
    expect_invalid(vjp(saved, &good, &no_storage, TauGradient::None), "STORAGE");
    expect_invalid(
        vjp(
            Source::Saved(GpuSlice::from(&short)),
            &good,
            &out,
            TauGradient::None,
        ),
        "saved sample buffer",
    );
    let logits_short = Source::recompute(GpuSlice::new(&good, 8), 0, 0);
    expect_invalid(
        vjp(logits_short, &good, &out, TauGradient::None),
        "logits buffer",
    );
    expect_invalid(
        vjp(
            saved,
            &good,
            &out,
            TauGradient::PerRow(GpuSlice::new(&dtau, 4)),
        ),
        "dtau buffer",
    );
    expect_invalid(
        vjp(
            saved,
            &good,
            &out,
            TauGradient::Sum(GpuSlice::new(&dtau, 2)),
        ),
        "multiple of the element size",
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    expect_invalid(
        ctx.kernels().record_jvp(
            &mut encoder,
            &JvpCall::new(
                Mode::Soft,
                StorageType::F32,
                shape,
                saved,
                GpuSlice::from(&good),
                GpuSlice::from(&out),
            )
            .with_tau(Tau::Scalar(1.0))
            .with_dtau(TauTangent::PerRow(GpuSlice::new(&short, 32))),
        ),
        "tau tangent buffer holds 40",
    );
}

/// A non-finite tau tangent is refused as a scalar and on the host; per row on the GPU, where
/// no error can be returned, its row has no result (NaN), like a row without a sample.
#[test]
fn non_finite_tau_tangents() {
    let ctx = ctx();
    let logits: Vec<f32> = (0..20).map(|i| (i as f32 * 0.3).sin()).collect();
    let dl: Vec<f32> = (0..20).map(|i| (i as f32 * 0.7).cos()).collect();
    let args = SampleArgs::new(4, 5, 0.9, 6);
    let source = HostSource::Recompute(&logits);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let tangents = [0.5, bad, 0.5, 0.5];
        expect_invalid(
            ctx.jvp(source, &dl, HostTau::PerRow(&tangents), Mode::Soft, &args),
            &format!("the tau tangent of row 1 is {bad}"),
        );
        expect_invalid(
            ctx.jvp(source, &dl, HostTau::Scalar(bad), Mode::Soft, &args),
            "must be finite",
        );
    }
    let (input, grad, taus) = (
        ctx.upload(&logits).unwrap(),
        ctx.upload(&dl).unwrap(),
        ctx.upload(&[0.9f32; 4]).unwrap(),
    );
    let tangents = ctx.upload(&[0.5, f32::NAN, f32::INFINITY, 0.5]).unwrap();
    let ydot = ctx.storage_buffer(80).unwrap();
    for strategy in common::strategies() {
        let good = HostTau::PerRow(&[0.5; 4]);
        let args = args.with_strategy(strategy);
        let want = ctx.jvp(source, &dl, good, Mode::Soft, &args).unwrap();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ctx.kernels()
            .record_jvp(
                &mut encoder,
                &JvpCall::new(
                    Mode::Soft,
                    StorageType::F32,
                    Shape::new(4, 5),
                    Source::recompute((&input).into(), 6, 0),
                    (&grad).into(),
                    (&ydot).into(),
                )
                .with_tau(Tau::PerRow((&taus).into()))
                .with_dtau(TauTangent::PerRow((&tangents).into()))
                .with_strategy(strategy),
            )
            .unwrap();
        ctx.queue.submit([encoder.finish()]);
        let got: Vec<f32> = ctx.read_back(&ydot, 20).unwrap();
        for r in 0..4 {
            let row = &got[r * 5..][..5];
            if r == 1 || r == 2 {
                assert!(
                    row.iter().all(|y| y.is_nan()),
                    "{strategy:?} row {r}: {row:?}"
                );
            } else {
                assert_eq!(row, &want[r * 5..][..5], "{strategy:?} row {r}");
            }
        }
    }
}

/// A NaN or infinite upstream gradient, logits' tangent or saved sample is refused by the host
/// layer with an error that names it, not reported as a row without a sample.
#[test]
fn non_finite_gradients_are_named() {
    let ctx = ctx();
    let logits: Vec<f32> = (0..12).map(|i| (i as f32 * 0.3).sin()).collect();
    let args = SampleArgs::new(3, 4, 0.9, 6);
    let source = HostSource::Recompute(&logits);
    let mut dy = vec![0.25f32; 12];
    dy[6] = f32::NAN;
    expect_invalid(
        ctx.vjp(source, &dy, Mode::Soft, &args),
        "dy at row 1, column 2 is NaN",
    );
    dy[6] = f32::INFINITY;
    expect_invalid(
        ctx.jvp(source, &dy, HostTau::Scalar(0.0), Mode::LogSoft, &args),
        "dl at row 1, column 2 is inf",
    );
    let mut saved = ctx.sample(&logits, Mode::Soft, &args).unwrap();
    saved[11] = f32::NAN;
    expect_invalid(
        ctx.vjp(HostSource::Saved(&saved), &[0.25; 12], Mode::Soft, &args),
        "the saved sample at row 2, column 3 is NaN",
    );
    // A saved log-soft sample may hold -inf (a masked column), not +inf.
    let mut log_y = ctx.sample(&logits, Mode::LogSoft, &args).unwrap();
    log_y[0] = f32::NEG_INFINITY;
    ctx.vjp(HostSource::Saved(&log_y), &[0.25; 12], Mode::LogSoft, &args)
        .unwrap();
    log_y[0] = f32::INFINITY;
    expect_invalid(
        ctx.vjp(HostSource::Saved(&log_y), &[0.25; 12], Mode::LogSoft, &args),
        "the saved sample at row 0, column 0 is inf",
    );
    // A good call afterwards.
    let again = ctx.vjp(source, &[0.25; 12], Mode::Soft, &args).unwrap();
    assert!(again.dl.iter().all(|d| d.is_finite()));
}

/// A scalar temperature's gradient is summed over rows on the GPU in a fixed order: the same
/// bits on every run, and the reference's sum to within the rounding of f32 sums.
#[test]
fn summed_tau_gradient_is_deterministic() {
    let ctx = ctx();
    let (rows, cols) = (40_000u32, 16u32);
    let mut rng = TestRng::new(5);
    let n = (rows * cols) as usize;
    let logits: Vec<f32> = (0..n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect();
    let dy: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let args = SampleArgs::new(rows, cols, 0.8, 9);
    let runs: Vec<u32> = (0..3)
        .map(|_| {
            let g = ctx
                .vjp(HostSource::Recompute(&logits), &dy, Mode::Soft, &args)
                .unwrap();
            g.dtau_sum.to_bits()
        })
        .collect();
    assert!(runs.iter().all(|&b| b == runs[0]), "{runs:x?}");
    let (mut want, mut magnitude) = (0.0, 0.0);
    for r in 0..rows as usize {
        let row = &logits[r * 16..][..16];
        let d: Vec<f64> = dy[r * 16..][..16].iter().map(|&x| f64::from(x)).collect();
        let z = reference::scaled_row(row, 0.8, 9, (r * 16) as u64, Mode::Soft).unwrap();
        let g = reference::vjp(&SamplePoint::from_z(&z), 0.8, Mode::Soft, &d);
        want += g.dtau;
        magnitude += g.dtau.abs();
    }
    let got = f64::from(f32::from_bits(runs[0]));
    // A sanity bound: tests/derivative.rs holds the summed gradient to the derived one. Here
    // each row's f32 dtau is allowed 1e-5 of its size, and the sum 80 sequential additions.
    let bound = (1e-5 + 80.0 * f64::from(f32::EPSILON)) * magnitude;
    assert!(
        (got - want).abs() <= bound,
        "{got} vs {want}, over {bound:e}"
    );
}

/// Calls over parts of a batch, each at its own byte offsets with the noise offset advanced,
/// recorded into one encoder, give the bits of one call over the whole batch.
#[test]
fn split_calls_in_one_encoder_match_one_call() {
    let ctx = ctx();
    let (rows, cols) = (600u32, 33u32);
    let shape = Shape::new(rows, cols);
    let mut rng = TestRng::new(8);
    let n = (rows * cols) as usize;
    let logits: Vec<f32> = (0..n).map(|_| rng.uniform(-3.0, 3.0) as f32).collect();
    let dy: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let taus: Vec<f32> = (0..rows).map(|_| rng.uniform(0.2, 4.0) as f32).collect();
    let (input, grad, tau) = (
        ctx.upload(&logits).unwrap(),
        ctx.upload(&dy).unwrap(),
        ctx.upload(&taus).unwrap(),
    );
    let (seed, offset) = (3, (1u64 << 32) - 100);
    let outputs = || {
        (
            ctx.storage_buffer(n as u64 * 4).unwrap(),
            ctx.storage_buffer(u64::from(rows) * 4).unwrap(),
        )
    };
    let record = |encoder: &mut wgpu::CommandEncoder,
                  out: &(wgpu::Buffer, wgpu::Buffer),
                  r0: u32,
                  count: u32| {
        let at = |buffer, row: u32, width: u32| GpuSlice::new(buffer, u64::from(row * width) * 4);
        ctx.kernels()
            .record_vjp(
                encoder,
                &VjpCall::new(
                    Mode::LogSoft,
                    StorageType::F32,
                    Shape {
                        rows: count,
                        ..shape
                    },
                    Source::recompute(at(&input, r0, cols), seed, offset + u64::from(r0 * cols)),
                    at(&grad, r0, cols),
                    at(&out.0, r0, cols),
                )
                .with_tau(Tau::PerRow(at(&tau, r0, 1)))
                .with_dtau(TauGradient::PerRow(at(&out.1, r0, 1))),
            )
            .unwrap();
    };
    let (whole, parts) = (outputs(), outputs());
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    record(&mut encoder, &whole, 0, rows);
    for (r0, count) in [(0, 100), (100, 1), (101, 499)] {
        record(&mut encoder, &parts, r0, count);
    }
    ctx.queue.submit([encoder.finish()]);
    let read = |b: &(wgpu::Buffer, wgpu::Buffer)| {
        (
            ctx.read_back::<u32>(&b.0, n).unwrap(),
            ctx.read_back::<u32>(&b.1, rows as usize).unwrap(),
        )
    };
    assert!(
        read(&whole) == read(&parts),
        "split calls differ from one call"
    );
}
