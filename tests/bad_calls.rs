//! Calls a newcomer may make that the kernels cannot take: arguments sharing one buffer,
//! allocations past the device, reads past a buffer. Each is an error value that names the
//! argument, nothing is recorded, and a good call afterwards (in the same encoder) is right.

mod common;

use common::{ctx, expect_invalid};
use gumbel_wgpu::{
    Error, ForwardCall, GpuSlice, GumbelOfWordsCall, JvpCall, Mode, SampleArgs, Shape, Source,
    StorageType, Tau, TauGradient, TauTangent, TopKCall, VjpCall,
};

const ROWS: u32 = 3;
const K: u32 = 4;
const N: u64 = (ROWS * K) as u64;
/// Byte offsets of the second and third argument in an arena buffer: past the first one's 48
/// bytes and aligned for any device's storage bindings.
const SECOND: u64 = 256;
const THIRD: u64 = 512;

fn logits() -> Vec<f32> {
    (0..N).map(|i| (i as f32 * 0.37).sin() * 2.0).collect()
}

fn forward<'a>(
    logits: GpuSlice<'a>,
    out: GpuSlice<'a>,
    tau: Tau<'a>,
    counter: Option<GpuSlice<'a>>,
) -> ForwardCall<'a> {
    let call = ForwardCall::new(
        Mode::Soft,
        StorageType::F32,
        Shape::new(ROWS, K),
        logits,
        out,
    )
    .with_tau(tau)
    .with_noise(3, 0);
    match counter {
        Some(counter) => call.with_counter(counter),
        None => call,
    }
}

fn expect_both_named<T: std::fmt::Debug>(result: gumbel_wgpu::Result<T>, a: &str, b: &str) {
    expect_invalid(result, &format!("the {a} and the {b}"));
}

#[test]
fn a_buffer_read_and_written_by_one_call_is_refused() {
    let ctx = ctx();
    let kernels = ctx.kernels();
    let arena = ctx.upload(&vec![0.0f32; 256]).unwrap();
    let at = |offset| GpuSlice::new(&arena, offset);
    let input = ctx.upload(&logits()).unwrap();
    let taus = ctx.upload(&[0.5f32, 1.0, 2.0]).unwrap();
    let out = ctx.storage_buffer(N * 4).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());

    // Forward: logits and output, per-row tau and output, counter and output.
    expect_both_named(
        kernels.record_forward(
            &mut encoder,
            &forward(at(0), at(SECOND), Tau::Scalar(1.0), None),
        ),
        "logits",
        "output",
    );
    let per_row = Tau::PerRow(at(SECOND));
    expect_both_named(
        kernels.record_forward(
            &mut encoder,
            &forward(GpuSlice::from(&input), at(0), per_row, None),
        ),
        "tau",
        "output",
    );
    let call = forward(
        GpuSlice::from(&input),
        at(0),
        Tau::Scalar(1.0),
        Some(at(SECOND)),
    );
    expect_both_named(
        kernels.record_forward(&mut encoder, &call),
        "noise counter",
        "output",
    );

    // Derivatives: dy and dl; the logits and a JVP's per-row tau tangent (bound writable).
    let shape = Shape::new(ROWS, K);
    let source = Source::recompute(GpuSlice::from(&input), 3, 0);
    let vjp = VjpCall::new(
        Mode::Soft,
        StorageType::F32,
        shape,
        source,
        at(0),
        at(SECOND),
    );
    expect_both_named(kernels.record_vjp(&mut encoder, &vjp), "dy", "dl");
    let source = Source::recompute(at(0), 3, 0);
    let jvp = JvpCall::new(
        Mode::Soft,
        StorageType::F32,
        shape,
        source,
        (&input).into(),
        (&out).into(),
    )
    .with_dtau(TauTangent::PerRow(at(SECOND)));
    expect_both_named(
        kernels.record_jvp(&mut encoder, &jvp),
        "logits",
        "tau tangent",
    );

    // Top-k's logits and indices; the word map's words and output.
    let top_k = TopKCall::new(StorageType::F32, shape, 2, at(0), at(SECOND), (&out).into())
        .with_noise(3, 0);
    expect_both_named(
        kernels.record_top_k(&mut encoder, &top_k),
        "logits",
        "indices",
    );
    let words = GumbelOfWordsCall::new(at(0), at(SECOND), N);
    expect_both_named(
        kernels.record_gumbel_of_words(&mut encoder, &words),
        "words",
        "gumbel output",
    );

    // Nothing was recorded: a good call in the same encoder submits and is right.
    let call = forward(
        GpuSlice::from(&input),
        GpuSlice::from(&out),
        Tau::PerRow(GpuSlice::from(&taus)),
        None,
    );
    kernels.record_forward(&mut encoder, &call).unwrap();
    ctx.queue.submit([encoder.finish()]);
    let got: Vec<f32> = ctx.read_back(&out, N as usize).unwrap();
    let want = ctx
        .sample(
            &logits(),
            Mode::Soft,
            &SampleArgs::new(ROWS, K, 1.0, 3).with_tau_per_row(&[0.5, 1.0, 2.0]),
        )
        .unwrap();
    assert_eq!(got, want);
}

/// Arguments that a call only reads, or outputs at ranges that do not overlap, may share a
/// buffer: the results are those of separate buffers.
#[test]
fn arguments_may_share_a_buffer_where_wgpu_allows_it() {
    let ctx = ctx();
    let kernels = ctx.kernels();
    let logits = logits();
    let taus = [0.5f32, 1.0, 2.0];
    // Logits and per-row tau in one buffer (both read).
    let mut inputs = vec![0.0f32; (SECOND / 4) as usize + 3];
    inputs[..N as usize].copy_from_slice(&logits);
    inputs[(SECOND / 4) as usize..].copy_from_slice(&taus);
    let inputs = ctx.upload(&inputs).unwrap();
    // dl and dtau in one buffer; top-k's indices and values in another.
    let outputs = ctx.storage_buffer(THIRD + 64).unwrap();
    let top = ctx.storage_buffer(THIRD + 64).unwrap();
    let dy: Vec<f32> = (0..N).map(|i| (i as f32 * 0.71).cos()).collect();
    let dy_buffer = ctx.upload(&dy).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let shape = Shape::new(ROWS, K);
    let source = Source::recompute(GpuSlice::new(&inputs, 0), 3, 0);
    let (dy_slice, dl) = ((&dy_buffer).into(), GpuSlice::new(&outputs, 0));
    let vjp = VjpCall::new(Mode::Soft, StorageType::F32, shape, source, dy_slice, dl)
        .with_tau(Tau::PerRow(GpuSlice::new(&inputs, SECOND)))
        .with_dtau(TauGradient::PerRow(GpuSlice::new(&outputs, SECOND)));
    kernels.record_vjp(&mut encoder, &vjp).unwrap();
    let (logits_slice, indices, values) = (
        GpuSlice::new(&inputs, 0),
        GpuSlice::new(&top, 0),
        GpuSlice::new(&top, SECOND),
    );
    let top_k =
        TopKCall::new(StorageType::F32, shape, 2, logits_slice, indices, values).with_noise(3, 0);
    kernels.record_top_k(&mut encoder, &top_k).unwrap();
    ctx.queue.submit([encoder.finish()]);

    let args = SampleArgs::new(ROWS, K, 1.0, 3).with_tau_per_row(&taus);
    let want = ctx
        .vjp(
            gumbel_wgpu::HostSource::Recompute(&logits),
            &dy,
            Mode::Soft,
            &args,
        )
        .unwrap();
    let dl: Vec<f32> = ctx.read_back(&outputs, N as usize).unwrap();
    let dtau: Vec<f32> = ctx.read_back(GpuSlice::new(&outputs, SECOND), 3).unwrap();
    assert_eq!((dl, dtau), (want.dl, want.dtau_rows));
    let want = ctx.top_k(&logits, 2, &args).unwrap();
    let indices: Vec<u32> = ctx.read_back(&top, 6).unwrap();
    let values: Vec<f32> = ctx.read_back(GpuSlice::new(&top, SECOND), 6).unwrap();
    assert_eq!((indices, values), (want.indices, want.values));

    // Outputs that overlap are refused.
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let mut overlapping = top_k;
    overlapping.values = GpuSlice::new(&top, 16);
    expect_invalid(
        kernels.record_top_k(&mut encoder, &overlapping),
        "the indices (bytes 0..24) and the values (bytes 16..40) overlap",
    );
    let overlapping = vjp.with_dtau(TauGradient::PerRow(GpuSlice::new(&outputs, 40)));
    expect_invalid(kernels.record_vjp(&mut encoder, &overlapping), "overlap");
}

#[test]
fn allocations_past_the_device_are_errors() {
    let ctx = ctx();
    let max = ctx.device.limits().max_buffer_size;
    let over_limits = |result: gumbel_wgpu::Result<Vec<u32>>, what: &str| match result {
        Err(Error::OverLimits(msg)) => assert!(msg.contains(what), "{msg}"),
        other => panic!("expected OverLimits naming {what}, got {other:?}"),
    };
    let past = usize::try_from(max / 4 + 1).unwrap_or(usize::MAX);
    over_limits(ctx.noise_words(1, 0, past), "noise output");
    over_limits(ctx.noise_words(1, 0, usize::MAX), "noise output");
    // The count the host layer once passed to wgpu unchecked (2 GiB of words).
    if 536_870_912 * 4 > max {
        over_limits(ctx.noise_words(1, 0, 536_870_912), "noise output");
    }
    match ctx.gumbel_noise(1, 0, past) {
        Err(Error::OverLimits(msg)) => assert!(msg.contains("noise output"), "{msg}"),
        other => panic!("expected OverLimits, got {other:?}"),
    }
    for bytes in [max + 1, u64::MAX] {
        match ctx.storage_buffer(bytes) {
            Err(Error::OverLimits(msg)) => assert!(msg.contains("storage buffer"), "{msg}"),
            other => panic!("storage_buffer({bytes}): expected OverLimits, got {other:?}"),
        }
    }
    // A good call afterwards.
    assert_eq!(
        ctx.noise_words(0, 0, 1).unwrap(),
        [gumbel_wgpu::philox::noise_word(0, 0)]
    );
}

#[test]
fn read_back_takes_a_byte_offset() {
    let ctx = ctx();
    let words: Vec<u32> = (0..100).collect();
    let buffer = ctx.upload(&words).unwrap();
    let got: Vec<u32> = ctx.read_back(GpuSlice::new(&buffer, 40), 5).unwrap();
    assert_eq!(got, [10, 11, 12, 13, 14]);
    // 16-bit elements at an offset that is not a whole word, an odd count.
    let halves: Vec<half::f16> = (0..9).map(|i| half::f16::from_f32(i as f32)).collect();
    let buffer = ctx.upload(&halves).unwrap();
    let got: Vec<half::f16> = ctx.read_back(GpuSlice::new(&buffer, 6), 5).unwrap();
    assert_eq!(got, halves[3..8]);
    expect_invalid(
        ctx.read_back::<u32>(GpuSlice::new(&buffer, 2), 1),
        "not a multiple of the element size",
    );
    expect_invalid(ctx.read_back::<u32>(&buffer, 6), "need 24");
    let no_copy = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    expect_invalid(ctx.read_back::<u32>(&no_copy, 1), "COPY_SRC");
}

#[test]
fn top_k_refuses_an_output_pitch_it_would_ignore() {
    let ctx = ctx();
    let input = ctx.upload(&logits()).unwrap();
    let out = ctx.storage_buffer(64).unwrap();
    let values = ctx.storage_buffer(64).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let shape = Shape::new(ROWS, K).with_pitches(K, K + 1);
    let (logits, indices, values) = ((&input).into(), (&out).into(), (&values).into());
    let call = TopKCall::new(StorageType::F32, shape, 2, logits, indices, values).with_noise(3, 0);
    expect_invalid(
        ctx.kernels().record_top_k(&mut encoder, &call),
        "out_pitch = 5",
    );
}

/// A noise count is checked whole before any part of it runs, and its error names the
/// caller's arguments: a count of 2^40 with a NaN threshold would otherwise run 4,096 parts of
/// 2^28 draws first; one call to the kernel counts at most 2^32 - 4 (its count is a u32).
#[test]
fn a_noise_count_is_checked_before_it_runs() {
    let ctx = ctx();
    let std = gumbel_wgpu::NoiseRange::Standard;
    expect_invalid(ctx.count_noise_above(std, 1, 0, 1 << 40, f32::NAN), "NaN");
    let out = ctx.upload(&[0u32]).unwrap();
    let call = gumbel_wgpu::NoiseCountCall::new(1, 0, 1 << 32, 5.0, GpuSlice::from(&out));
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    expect_invalid(
        ctx.kernels().record_noise_count(&mut encoder, &call),
        "4294967296 elements",
    );
}

/// Top-k's strategies as `TopKCall::strategy` documents them: any power-of-two workgroup up
/// to 1024 for k up to 32 (the merge of lists), 256 or more beyond.
#[test]
fn top_k_takes_the_strategies_it_documents() {
    let ctx = ctx();
    let cols = 2000;
    let input = ctx.upload(&vec![0.5f32; cols as usize]).unwrap();
    let (indices, values) = (
        ctx.storage_buffer(4 * 64).unwrap(),
        ctx.storage_buffer(4 * 64).unwrap(),
    );
    let record = |k: u32, size: u32| {
        let call = TopKCall::new(
            StorageType::F32,
            Shape::new(1, cols),
            k,
            GpuSlice::from(&input),
            GpuSlice::from(&indices),
            GpuSlice::from(&values),
        )
        .with_strategy(gumbel_wgpu::Strategy::RowPerWorkgroup { size });
        ctx.submit_and_wait("top-k", |encoder| {
            ctx.kernels().record_top_k(encoder, &call)
        })
    };
    for size in [64, 128, 256, 1024] {
        record(5, size).unwrap();
    }
    record(40, 256).unwrap();
    expect_invalid(record(40, 64), "256 or more");
    expect_invalid(record(5, 96), "power of two");
}
