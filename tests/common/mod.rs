//! What the GPU tests share: one device for the whole test binary, and ULP arithmetic.
#![allow(dead_code)]

use std::sync::OnceLock;

use gumbel_wgpu::GpuContext;

/// The test device. Without an adapter every GPU test fails with the error's message (which
/// says how to install lavapipe); none passes by skipping.
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("test device: {}", ctx.summary());
            ctx
        }
        Err(e) => panic!("no device for the GPU tests: {e}"),
    })
}

/// The spacing of f32 values at |x| (the ULP of the f32 nearest x).
pub fn ulp_f32(x: f64) -> f64 {
    let a = (x as f32).abs();
    if a < f32::MIN_POSITIVE {
        return f64::from(f32::from_bits(1));
    }
    let e = (a.to_bits() >> 23) as i32 - 127;
    2f64.powi(e - 23)
}

/// SPEC section 5: GPU Gumbel noise is within 1e-6 + 4 ULP(g) of the exact value.
pub fn noise_tolerance(g: f64) -> f64 {
    1e-6 + 4.0 * ulp_f32(g)
}

/// A small deterministic generator for test inputs (not the one under test).
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
