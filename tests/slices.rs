//! Every call of the encoder API writes each output at its own slice and nowhere else.
//!
//! A binding starts at the device's storage offset alignment, below a caller's byte offset, so
//! a kernel that forgets the window's base writes before the slice. Each call here runs twice:
//! with every output at byte 0 of a buffer of its own, and at an odd element offset inside a
//! buffer of sentinel bytes. The second must leave every byte outside the slices as it was and
//! hold, inside them, the bytes of the first.
mod common;

use common::ctx;
use gumbel_wgpu::{
    Conversion, ConvertCall, ForwardCall, GpuSlice, GumbelOfWordsCall, JvpCall, Mode, NoiseCall,
    NoiseCountCall, NoiseOutput, NoiseRange, SampleTokensCall, Shape, Source, StorageType, Tau,
    TauGradient, TauTangent, TokenNoise, TokenSettings, TopKCall, VjpCall,
};

const SENTINEL: u16 = 0xa5a5;
/// Elements before each placed output: odd, so that no output starts at an aligned binding.
const BEFORE: u64 = 7;
/// Bytes after each placed output.
const AFTER: u64 = 64;

/// One output of a call: how many bytes it takes and its element size.
#[derive(Clone, Copy)]
struct Out {
    bytes: u64,
    elem: u64,
}

fn out(elems: u64, elem: u64) -> Out {
    Out {
        bytes: elems * elem,
        elem,
    }
}

/// Runs `record` with every output at byte 0 of a zeroed buffer, then at `BEFORE` elements into
/// a buffer of sentinels, and checks the bytes of both.
fn assert_writes_only_its_slices(
    what: &str,
    outputs: &[Out],
    record: impl Fn(&mut wgpu::CommandEncoder, &[GpuSlice]),
) {
    let ctx = ctx();
    let run = |placed: bool| -> Vec<(wgpu::Buffer, u64)> {
        let buffers: Vec<(wgpu::Buffer, u64)> = outputs
            .iter()
            .map(|o| {
                if placed {
                    let offset = BEFORE * o.elem;
                    let halves = (offset + o.bytes + AFTER).div_ceil(2) as usize;
                    (ctx.upload(&vec![SENTINEL; halves]).unwrap(), offset)
                } else {
                    (ctx.storage_buffer(o.bytes).unwrap(), 0)
                }
            })
            .collect();
        let slices: Vec<GpuSlice> = buffers
            .iter()
            .map(|(b, offset)| GpuSlice::new(b, *offset))
            .collect();
        ctx.submit_and_wait(what, |encoder| {
            record(encoder, &slices);
            Ok(())
        })
        .unwrap();
        buffers
    };
    let plain = run(false);
    let placed = run(true);
    for (i, (o, ((plain, _), (placed, offset)))) in
        outputs.iter().zip(plain.iter().zip(&placed)).enumerate()
    {
        let want: Vec<u16> = ctx.read_back(plain, (o.bytes / 2) as usize).unwrap();
        let got: Vec<u16> = ctx.read_back(placed, (placed.size() / 2) as usize).unwrap();
        let (first, last) = ((offset / 2) as usize, ((offset + o.bytes) / 2) as usize);
        for (h, &v) in got.iter().enumerate() {
            if h < first || h >= last {
                assert_eq!(
                    v, SENTINEL,
                    "{what}, output {i}: half-word {h} outside its slice written"
                );
            } else {
                assert_eq!(
                    v,
                    want[h - first],
                    "{what}, output {i}: half-word {} of the slice",
                    h - first
                );
            }
        }
    }
}

fn logits(n: usize) -> Vec<f32> {
    common::calls::random(n, 3, -3.0, 3.0)
}

/// `values` uploaded in `storage`.
fn upload_as(values: &[f32], storage: StorageType) -> wgpu::Buffer {
    let ctx = ctx();
    match storage {
        StorageType::F32 => ctx.upload(values),
        StorageType::F16 => ctx.upload(
            &values
                .iter()
                .map(|&v| half::f16::from_f32(v))
                .collect::<Vec<_>>(),
        ),
        StorageType::Bf16 => ctx.upload(
            &values
                .iter()
                .map(|&v| half::bf16::from_f32(v))
                .collect::<Vec<_>>(),
        ),
    }
    .unwrap()
}

#[test]
fn forward_calls_write_only_their_slices() {
    let shape = Shape::new(5, 37);
    let n = 5 * 37;
    let ctx = ctx();
    let taus = ctx.upload(&[0.5f32, 1.0, 2.0, 0.7, 3.0]).unwrap();
    for (mode, storage) in [
        (Mode::Soft, StorageType::F32),
        (Mode::LogSoft, StorageType::F16),
        (Mode::Hard, StorageType::Bf16),
        (Mode::Index, StorageType::F32),
    ] {
        let input = upload_as(&logits(n), storage);
        let elems = if mode == Mode::Index { 5 } else { n as u64 };
        let size = if mode == Mode::Index {
            4
        } else {
            storage.size()
        };
        assert_writes_only_its_slices(
            &format!("forward {mode:?} {storage:?}"),
            &[out(elems, size)],
            |encoder, outs| {
                let call = ForwardCall::new(mode, storage, shape, GpuSlice::from(&input), outs[0])
                    .with_tau(Tau::PerRow(GpuSlice::from(&taus)))
                    .with_noise(9, 3);
                ctx.kernels().record_forward(encoder, &call).unwrap();
            },
        );
    }
}

#[test]
fn derivative_calls_write_only_their_slices() {
    let shape = Shape::new(5, 37);
    let n = 5 * 37;
    let ctx = ctx();
    let taus = ctx.upload(&[0.5f32, 1.0, 2.0, 0.7, 3.0]).unwrap();
    let tau = Tau::PerRow(GpuSlice::from(&taus));
    // dtau per row at a per-row tau; dtau summed (its own dispatches) at a scalar one.
    for (mode, storage, summed) in [
        (Mode::Soft, StorageType::F32, false),
        (Mode::LogSoft, StorageType::F16, true),
    ] {
        let input = upload_as(&logits(n), storage);
        let dy = upload_as(&common::calls::random(n, 4, -1.0, 1.0), storage);
        let source = Source::recompute(GpuSlice::from(&input), 9, 3);
        let dtau_len = if summed { 1 } else { 5 };
        let outputs = [out(n as u64, storage.size()), out(dtau_len, 4)];
        let what = format!("VJP {mode:?} {storage:?}, dtau summed: {summed}");
        assert_writes_only_its_slices(&what, &outputs, |encoder, outs| {
            let (tau, dtau) = match summed {
                true => (Tau::Scalar(0.8), TauGradient::Sum(outs[1])),
                false => (tau, TauGradient::PerRow(outs[1])),
            };
            let dy = GpuSlice::from(&dy);
            let call = VjpCall::new(mode, storage, shape, source, dy, outs[0])
                .with_tau(tau)
                .with_dtau(dtau);
            ctx.kernels().record_vjp(encoder, &call).unwrap();
        });
    }
    let input = ctx.upload(&logits(n)).unwrap();
    let dy = ctx.upload(&common::calls::random(n, 4, -1.0, 1.0)).unwrap();
    let source = Source::recompute(GpuSlice::from(&input), 9, 3);
    assert_writes_only_its_slices("JVP", &[out(n as u64, 4)], |encoder, outs| {
        let call = JvpCall::new(
            Mode::Soft,
            StorageType::F32,
            shape,
            source,
            GpuSlice::from(&dy),
            outs[0],
        )
        .with_tau(tau)
        .with_dtau(TauTangent::Scalar(0.25));
        ctx.kernels().record_jvp(encoder, &call).unwrap();
    });
}

#[test]
fn top_k_and_token_calls_write_only_their_slices() {
    let ctx = ctx();
    let input = ctx.upload(&logits(5 * 300)).unwrap();
    for (cols, k) in [(37, 3), (300, 40)] {
        let shape = Shape::new(5, cols);
        assert_writes_only_its_slices(
            &format!("top-k {k} of {cols}"),
            &[out(5 * k as u64, 4), out(5 * k as u64, 4)],
            |encoder, outs| {
                let call = TopKCall::new(
                    StorageType::F32,
                    shape,
                    k,
                    GpuSlice::from(&input),
                    outs[0],
                    outs[1],
                )
                .with_noise(2, 0);
                ctx.kernels().record_top_k(encoder, &call).unwrap();
            },
        );
    }
    let settings = ctx
        .upload(&[
            TokenSettings::new(0.8),
            TokenSettings::greedy(),
            TokenSettings::new(1.0).with_top_k(5),
            TokenSettings::new(1.0).with_top_p(0.9),
            TokenSettings::new(0.5).with_min_p(0.1),
        ])
        .unwrap();
    assert_writes_only_its_slices("tokens", &[out(5, 4), out(10, 4)], |encoder, outs| {
        let call = SampleTokensCall::new(
            StorageType::F32,
            Shape::new(5, 300),
            GpuSlice::from(&input),
            GpuSlice::from(&settings),
            TokenNoise::call(4, 0),
            outs[0],
        )
        .with_logprobs(outs[1]);
        ctx.kernels().record_sample_tokens(encoder, &call).unwrap();
    });
}

#[test]
fn noise_and_conversion_calls_write_only_their_slices() {
    let ctx = ctx();
    for (output, range) in [
        (NoiseOutput::Words, NoiseRange::Standard),
        (NoiseOutput::Gumbel, NoiseRange::Wide),
    ] {
        assert_writes_only_its_slices(
            &format!("noise {output:?}"),
            &[out(101, 4)],
            |encoder, outs| {
                let call = NoiseCall::new(5, 3, 101, output, outs[0]).with_noise_range(range);
                ctx.kernels().record_noise(encoder, &call).unwrap();
            },
        );
    }
    let words = ctx
        .upload(
            &(0..202u32)
                .map(|i| i.wrapping_mul(0x9e37_79b9))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    assert_writes_only_its_slices("gumbel of words", &[out(101, 4)], |encoder, outs| {
        let call = GumbelOfWordsCall::new(GpuSlice::from(&words), outs[0], 101)
            .with_range(NoiseRange::Wide);
        ctx.kernels()
            .record_gumbel_of_words(encoder, &call)
            .unwrap();
    });
    let values = ctx.upload(&logits(101)).unwrap();
    for storage in [StorageType::F16, StorageType::Bf16] {
        assert_writes_only_its_slices(
            &format!("encode {storage:?}"),
            &[out(101, 2)],
            |encoder, outs| {
                let call = ConvertCall::new(
                    storage,
                    Conversion::Encode,
                    GpuSlice::from(&values),
                    outs[0],
                    101,
                );
                ctx.kernels().record_convert(encoder, &call).unwrap();
            },
        );
    }
    let halves = ctx.upload(&[0x3c00u16; 102]).unwrap();
    assert_writes_only_its_slices("decode f16", &[out(101, 4)], |encoder, outs| {
        let call = ConvertCall::new(
            StorageType::F16,
            Conversion::Decode,
            GpuSlice::from(&halves),
            outs[0],
            101,
        );
        ctx.kernels().record_convert(encoder, &call).unwrap();
    });
}

/// A count adds to the u32 at its slice: every other word stays as it was.
#[test]
fn the_noise_count_adds_at_its_slice() {
    let ctx = ctx();
    let count = |offset: u64| {
        let b = ctx.upload(&[1000u32; 16]).unwrap();
        ctx.submit_and_wait("noise count", |encoder| {
            let call = NoiseCountCall::new(3, 0, 64, 1.0, GpuSlice::new(&b, offset));
            ctx.kernels().record_noise_count(encoder, &call)
        })
        .unwrap();
        ctx.read_back::<u32>(&b, 16).unwrap()
    };
    let at_0 = count(0);
    let added = at_0[0] - 1000;
    assert!(
        added > 0 && at_0[1..].iter().all(|&w| w == 1000),
        "{at_0:?}"
    );
    for offset in [4u64, 36] {
        let words = count(offset);
        let at = (offset / 4) as usize;
        for (i, &w) in words.iter().enumerate() {
            let want = if i == at { 1000 + added } else { 1000 };
            assert_eq!(w, want, "count at byte {offset}: word {i} of {words:?}");
        }
    }
}
