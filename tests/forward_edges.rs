//! Forward edge cases: rows without a sample, bad input as error values, and batches split
//! into several calls or dispatches.

mod common;

use common::forward::run_gpu;
use common::{Batch, TestRng, ctx, expect_invalid};
use gumbel_wgpu::reference::{self, NoSample, RowSample};
use gumbel_wgpu::{
    Element, Error, ForwardCall, GpuSlice, HostTau, Mode, SampleArgs, Shape, StorageType, Strategy,
    Tau,
};

fn nan_bits(storage: StorageType) -> u32 {
    match storage {
        StorageType::F32 => 0x7fc0_0000,
        StorageType::F16 => 0x7e00,
        StorageType::Bf16 => 0x7fc0,
    }
}

fn no_sample_rows<T: Element>() {
    let k = 5;
    let inf = f32::INFINITY;
    let rows: [([f32; 5], f32); 7] = [
        ([-inf; 5], 1.0),                      // all masked
        ([0.0, f32::NAN, 1.0, 2.0, 3.0], 1.0), // NaN logit
        ([0.0, 1.0, inf, 2.0, 3.0], 1.0),      // +inf logit
        ([0.5, -inf, 1.0, 2.0, -inf], 0.7),    // a valid row with masks
        ([0.0, 1.0, 2.0, 3.0, 4.0], 0.0),      // tau = 0
        ([0.0, 1.0, 2.0, 3.0, 4.0], f32::NAN),
        ([0.0, 1.0, 2.0, 3.0, 4.0], inf),
    ];
    let logits: Vec<T> = rows.iter().flat_map(|(l, _)| l.map(T::from_f32)).collect();
    let taus: Vec<f32> = rows.iter().map(|(_, t)| *t).collect();
    let shape = Shape::new(rows.len() as u32, k);
    let as_f32: Vec<f32> = logits.iter().map(|l| l.to_f32()).collect();
    let batch = Batch {
        shape,
        logits: logits.clone(),
        taus: taus.clone(),
        seed: 11,
        offset: 0,
    };
    for strategy in common::strategies() {
        for mode in Mode::ALL {
            let got = pollster::block_on(run_gpu(ctx(), &batch, mode, strategy)).unwrap();
            let expected = reference::forward(&as_f32, shape, &taus, 11, 0, mode);
            for (r, want) in expected.iter().enumerate() {
                let ctx = format!("{mode:?} {:?} {strategy:?} row {r}", T::STORAGE);
                // A bad tau is no sample in index mode too, though it does not divide by it.
                if mode == Mode::Index && r >= 4 {
                    assert_eq!(got[r], u32::MAX, "{ctx}: tau {}", taus[r]);
                }
                match (mode, want) {
                    (Mode::Index, Ok(RowSample::Index(i))) => assert_eq!(got[r], *i, "{ctx}"),
                    (Mode::Index, Err(_)) => assert_eq!(got[r], u32::MAX, "{ctx}"),
                    (_, Err(_)) => {
                        let row = &got[r * 5..][..5];
                        assert!(
                            row.iter().all(|&b| b == nan_bits(T::STORAGE)),
                            "{ctx}: {row:x?}"
                        );
                    }
                    (_, Ok(_)) => {
                        assert_eq!(r, 3, "{ctx}: only row 3 has a sample");
                        assert!(
                            got[15..20].iter().all(|&b| b != nan_bits(T::STORAGE)),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }
    // The host-slice layer turns the first row without a sample into an error.
    let args = SampleArgs::new(7, k, 1.0, 11).with_tau(HostTau::Scalar(1.0));
    match ctx().sample(&logits, Mode::Soft, &args) {
        Err(Error::NoSample { row: 0, reason }) => assert_eq!(reason, NoSample::AllMasked),
        other => panic!("expected NoSample for row 0, got {other:?}"),
    }
    // Per-row temperatures are checked on the host in every mode, top-k included.
    let bad_taus = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    let args = SampleArgs::new(7, k, 1.0, 11).with_tau_per_row(&bad_taus);
    expect_invalid(
        ctx().sample_indices(&logits, &args),
        "the tau of row 4 is 0",
    );
    expect_invalid(ctx().top_k(&logits, 2, &args), "the tau of row 4 is 0");
    let valid: Vec<T> = logits[15..].to_vec();
    let args = SampleArgs::new(4, k, 1.0, 11);
    let mut bad = valid.clone();
    bad[7] = T::from_f32(f32::NAN);
    match ctx().sample_indices(&bad, &args) {
        Err(Error::NoSample { row: 1, reason }) => assert_eq!(reason, NoSample::InvalidLogit(2)),
        other => panic!("expected NoSample for row 1, got {other:?}"),
    }
}

#[test]
fn rows_without_a_sample_f32() {
    no_sample_rows::<f32>();
}

#[test]
fn rows_without_a_sample_f16() {
    no_sample_rows::<half::f16>();
}

#[test]
fn rows_without_a_sample_bf16() {
    no_sample_rows::<half::bf16>();
}

#[test]
fn bad_input_is_an_error_value() {
    let ctx = ctx();
    let logits = vec![0.5f32; 12];
    let args = |rows, cols, tau| SampleArgs::new(rows, cols, tau, 1);
    expect_invalid(ctx.sample(&logits, Mode::Soft, &args(3, 0, 1.0)), "K = 0");
    expect_invalid(
        ctx.sample(&logits, Mode::Soft, &args(0, 4, 1.0)),
        "rows = 0",
    );
    expect_invalid(
        ctx.sample(&logits, Mode::Soft, &args(3, 5, 1.0)),
        "12 logits given",
    );
    for tau in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-40] {
        expect_invalid(ctx.sample(&logits, Mode::Soft, &args(3, 4, tau)), "tau");
    }
    let bad_taus = [1.0, -2.0, 1.0];
    let per_row = args(3, 4, 1.0).with_tau(HostTau::PerRow(&bad_taus));
    expect_invalid(
        ctx.sample(&logits, Mode::Soft, &per_row),
        "the tau of row 1 is -2",
    );
    let short_taus = [1.0, 1.0];
    let per_row = args(3, 4, 1.0).with_tau(HostTau::PerRow(&short_taus));
    expect_invalid(
        ctx.sample(&logits, Mode::Soft, &per_row),
        "2 per-row temperatures",
    );
    let narrow = args(3, 4, 1.0).with_shape(Shape::new(3, 4).with_pitches(3, 4));
    expect_invalid(ctx.sample(&logits, Mode::Soft, &narrow), "pitch");
    expect_invalid(
        ctx.sample(&logits, Mode::Index, &args(3, 4, 1.0)),
        "sample_indices",
    );
    let odd_group = args(3, 4, 1.0).with_strategy(Strategy::RowPerWorkgroup { size: 48 });
    expect_invalid(ctx.sample(&logits, Mode::Soft, &odd_group), "power of two");

    // The encoder API checks buffers: usage, size, alignment of the offset.
    let good = ctx.upload(&logits).unwrap();
    let out = ctx.storage_buffer(48).unwrap();
    let no_storage = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 48,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let call = |logits: GpuSlice<'_>, out: GpuSlice<'_>, shape: Shape| {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ctx.kernels().record_forward(
            &mut encoder,
            &ForwardCall::new(Mode::Soft, StorageType::F32, shape, logits, out)
                .with_tau(Tau::Scalar(1.0)),
        )
    };
    let shape = Shape::new(3, 4);
    expect_invalid(
        call(GpuSlice::from(&no_storage), GpuSlice::from(&out), shape),
        "STORAGE",
    );
    expect_invalid(
        call(GpuSlice::from(&good), GpuSlice::from(&no_storage), shape),
        "STORAGE",
    );
    expect_invalid(
        call(GpuSlice::new(&good, 4), GpuSlice::from(&out), shape),
        "need 52",
    );
    expect_invalid(
        call(
            GpuSlice::new(&good, 2),
            GpuSlice::from(&out),
            Shape::new(1, 4),
        ),
        "multiple of the element size",
    );
    match call(
        GpuSlice::from(&good),
        GpuSlice::from(&out),
        Shape::new(1, u32::MAX),
    ) {
        Err(Error::OverLimits(msg)) => assert!(msg.contains("storage binding"), "{msg}"),
        other => panic!("expected OverLimits, got {other:?}"),
    }
}

/// One call over many rows gives the bits of several calls over parts of it, each at its own
/// byte offset into the same buffers and with the noise offset advanced by the rows before.
fn split_calls_match<T: Element>(mode: Mode) {
    let ctx = ctx();
    let (rows, cols) = (1000u32, 33u32);
    let shape = Shape::new(rows, cols).with_pitches(35, 37);
    let mut rng = TestRng::new(77);
    let logits: Vec<T> = (0..rows * shape.in_pitch)
        .map(|_| T::from_f32(rng.uniform(-3.0, 3.0) as f32))
        .collect();
    let taus: Vec<f32> = (0..rows).map(|_| rng.uniform(0.1, 5.0) as f32).collect();
    let (input, tau_buf) = (ctx.upload(&logits).unwrap(), ctx.upload(&taus).unwrap());
    let (out_elems, out_size) = match mode {
        Mode::Index => (rows as u64, 4),
        _ => (u64::from(rows * shape.out_pitch), T::STORAGE.size()),
    };
    let whole = ctx.storage_buffer(out_elems * out_size).unwrap();
    let parts = ctx.storage_buffer(out_elems * out_size).unwrap();
    let (seed, offset) = (5, 1 << 33);
    let record = |encoder: &mut wgpu::CommandEncoder, out: &wgpu::Buffer, r0: u32, n: u32| {
        let out_pitch = if mode == Mode::Index {
            1
        } else {
            shape.out_pitch
        };
        ctx.kernels()
            .record_forward(
                encoder,
                &ForwardCall::new(
                    mode,
                    T::STORAGE,
                    Shape { rows: n, ..shape },
                    GpuSlice::new(&input, u64::from(r0 * shape.in_pitch) * T::STORAGE.size()),
                    GpuSlice::new(out, u64::from(r0 * out_pitch) * out_size),
                )
                .with_tau(Tau::PerRow(GpuSlice::new(&tau_buf, u64::from(r0) * 4)))
                .with_noise(seed, offset + u64::from(r0 * cols)),
            )
            .unwrap();
    };
    // All parts go into one encoder: each call keeps its own parameters until submit.
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    record(&mut encoder, &whole, 0, rows);
    for (r0, n) in [(0, 401), (401, 1), (402, 598)] {
        record(&mut encoder, &parts, r0, n);
    }
    ctx.queue.submit([encoder.finish()]);
    let a: Vec<u32> = ctx
        .read_back(&whole, (out_elems * out_size / 4) as usize)
        .unwrap();
    let b: Vec<u32> = ctx
        .read_back(&parts, (out_elems * out_size / 4) as usize)
        .unwrap();
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        diff.is_empty(),
        "{mode:?} {:?}: split calls differ from one call at {} words, first {:?}",
        T::STORAGE,
        diff.len(),
        &diff[..diff.len().min(8)]
    );
}

#[test]
fn split_calls_give_the_bits_of_one_call() {
    for mode in Mode::ALL {
        split_calls_match::<f32>(mode);
        split_calls_match::<half::f16>(mode);
        split_calls_match::<half::bf16>(mode);
    }
}

#[test]
fn a_batch_larger_than_one_binding_is_split_exactly() {
    // 36,000 x 1,000 f32 logits are 144 MB: past lavapipe's 128 MiB binding.
    let ctx = ctx();
    let (rows, cols) = (36_000u32, 1000u32);
    let mut rng = TestRng::new(3);
    let logits: Vec<f32> = (0..rows * cols)
        .map(|_| rng.uniform(-2.0, 2.0) as f32)
        .collect();
    let args = SampleArgs::new(rows, cols, 1.0, 99).with_offset(12345);
    let whole = ctx.sample_indices(&logits, &args).unwrap();
    // Four calls of 9,000 rows with advancing offsets.
    let mut parts = Vec::new();
    for part in 0..4u32 {
        let r0 = (part * 9000) as usize;
        let args =
            SampleArgs::new(9000, cols, 1.0, 99).with_offset(12345 + (r0 as u64) * u64::from(cols));
        parts.extend(
            ctx.sample_indices(&logits[r0 * cols as usize..][..9000 * cols as usize], &args)
                .unwrap(),
        );
    }
    assert_eq!(whole, parts);
    // And spot checks against the reference, either side of every possible split.
    for r in (0..rows as usize)
        .step_by(97)
        .chain([16_776, 16_777, 33_553, 33_554])
    {
        let row = &logits[r * cols as usize..][..cols as usize];
        let first = 12345 + r as u64 * u64::from(cols);
        let Ok(RowSample::Index(want)) = reference::forward_row(row, 1.0, 99, first, Mode::Index)
        else {
            unreachable!()
        };
        assert_eq!(whole[r], want, "row {r}");
    }
}
