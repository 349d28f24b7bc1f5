//! The device's 16-bit conversions (WGSL's unpack2x16float / pack2x16float for f16, shifts for
//! bf16, by hand where the built-ins are undefined) against the `half` crate's, bit for bit:
//! every 16-bit value decoded, and encoded from the f32 values where rounding can go wrong.

mod common;

use common::{TestRng, ctx};
use gumbel_wgpu::Element;
use half::{bf16, f16};

/// NaN is NaN whatever its payload: the kernels only ask whether a value is NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_decode<T: Element>(from_bits: impl Fn(u16) -> T) {
    let all: Vec<T> = (0..=u16::MAX).map(from_bits).collect();
    let gpu = ctx().from_storage(&all).unwrap();
    for (h, (&g, v)) in gpu.iter().zip(&all).enumerate() {
        let want = v.to_f32();
        assert!(
            same(g, want),
            "{:?} {h:#06x}: device {g:e}, CPU {want:e}",
            T::STORAGE
        );
    }
}

/// f32 values where a conversion to 16 bits can go wrong: every 16-bit value's own f32, the
/// midpoints between neighbours (ties) and the f32 just either side of each, values near the
/// overflow and subnormal boundaries, infinities, NaNs and random bit patterns.
fn hard_f32s<T: Element>(from_bits: impl Fn(u16) -> T) -> Vec<f32> {
    let mut values = Vec::new();
    for h in 0..=u16::MAX {
        let v = from_bits(h).to_f32();
        let next = from_bits(h.wrapping_add(1)).to_f32();
        values.push(v);
        if v.is_finite() && next.is_finite() && (v < 0.0) == (next < 0.0) {
            let mid = ((f64::from(v) + f64::from(next)) / 2.0) as f32;
            let bits = mid.to_bits();
            values.extend([mid, f32::from_bits(bits - 1), f32::from_bits(bits + 1)]);
        }
    }
    values.extend([
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MAX,
        f32::MIN,
    ]);
    values.extend([
        65504.0, 65519.99, 65520.0, 65536.0, 1e-8, -1e-8, 5.9e-8, 2.9e-8, 3e-8,
    ]);
    values.extend([f32::MIN_POSITIVE, f32::from_bits(1), -f32::from_bits(1)]);
    let mut rng = TestRng::new(16);
    values.extend((0..1_000_000).map(|_| f32::from_bits(rng.next_u32())));
    values
}

fn check_encode<T: Element>(from_bits: impl Fn(u16) -> T + Copy, to_bits: impl Fn(T) -> u16) {
    let values = hard_f32s(from_bits);
    let gpu: Vec<T> = ctx().to_storage(&values).unwrap();
    for (i, (&g, &v)) in gpu.iter().zip(&values).enumerate() {
        let want = T::from_f32(v);
        assert!(
            to_bits(g) == to_bits(want) || (g.to_f32().is_nan() && want.to_f32().is_nan()),
            "{:?} [{i}] {v:e} ({:#010x}): device {:#06x}, CPU {:#06x}",
            T::STORAGE,
            v.to_bits(),
            to_bits(g),
            to_bits(want)
        );
    }
    // An odd count: the last element is a lone half of a word.
    let odd = &values[1..8];
    let gpu: Vec<T> = ctx().to_storage(odd).unwrap();
    for (&g, &v) in gpu.iter().zip(odd) {
        assert!(
            same(g.to_f32(), T::from_f32(v).to_f32()),
            "lone half of {v:e}"
        );
    }
}

#[test]
fn f16_decodes_every_value() {
    check_decode(f16::from_bits);
}

#[test]
fn bf16_decodes_every_value() {
    check_decode(bf16::from_bits);
}

#[test]
fn f16_encodes_at_every_rounding_boundary() {
    check_encode(f16::from_bits, f16::to_bits);
}

#[test]
fn bf16_encodes_at_every_rounding_boundary() {
    check_encode(bf16::from_bits, bf16::to_bits);
}

#[test]
fn f32_round_trips() {
    let mut rng = TestRng::new(32);
    let values: Vec<f32> = (0..100_001)
        .map(|_| f32::from_bits(rng.next_u32()))
        .collect();
    let there: Vec<f32> = ctx().to_storage(&values).unwrap();
    let back = ctx().from_storage(&there).unwrap();
    for (&b, &v) in back.iter().zip(&values) {
        assert!(same(b, v), "{v:e} came back as {b:e}");
    }
}
