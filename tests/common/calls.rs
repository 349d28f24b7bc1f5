//! A batch of calls of every kind, for the tests that record many calls into one encoder.

use super::TestRng;
use gumbel_wgpu::{
    ForwardCall, GpuContext, GpuSlice, JvpCall, Kernels, Mode, Shape, Source, StorageType, Tau,
    TauGradient, TauTangent, VjpCall,
};
use gumbel_wgpu::{NoiseCall, NoiseOutput};

pub fn random(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
    let mut rng = TestRng::new(seed);
    (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()
}

/// The buffers of one batch of calls: inputs, and outputs that `record` writes.
pub struct Calls {
    logits_a: wgpu::Buffer,
    logits_b: wgpu::Buffer,
    taus_b: wgpu::Buffer,
    dy: wgpu::Buffer,
    outputs: Vec<(wgpu::Buffer, usize)>,
}

const A: (u32, u32) = (50, 33);
const B: (u32, u32) = (7, 1000);
const C: (u32, u32) = (300, 8);

impl Calls {
    pub fn new(ctx: &GpuContext) -> Self {
        let n_a = (A.0 * A.1) as usize;
        let sizes = [n_a, (B.0 * B.1) as usize, C.0 as usize, n_a, 1, n_a, 1000];
        Self {
            logits_a: ctx.upload(&random(n_a, 1, -3.0, 3.0)).unwrap(),
            logits_b: ctx
                .upload(&random((B.0 * B.1) as usize, 2, -3.0, 3.0))
                .unwrap(),
            taus_b: ctx.upload(&random(B.0 as usize, 3, 0.1, 4.0)).unwrap(),
            dy: ctx.upload(&random(n_a, 4, -1.0, 1.0)).unwrap(),
            outputs: sizes
                .iter()
                .map(|&n| (ctx.upload(&vec![0x7fa5_a5a5u32; n]).unwrap(), n))
                .collect(),
        }
    }

    /// Records call `i` of the batch: forward calls of three shapes, modes, temperatures,
    /// seeds and offsets, a VJP and a JVP that read the first call's output, and noise.
    pub fn record(&self, kernels: &Kernels, encoder: &mut wgpu::CommandEncoder, i: usize) {
        let out = |k: usize| GpuSlice::from(&self.outputs[k].0);
        let forward = |mode, shape: (u32, u32), logits, out, tau, seed, offset| {
            ForwardCall::new(
                mode,
                StorageType::F32,
                Shape::new(shape.0, shape.1),
                logits,
                out,
            )
            .with_tau(tau)
            .with_noise(seed, offset)
        };
        let a = Shape::new(A.0, A.1);
        match i {
            0 => kernels.record_forward(
                encoder,
                &forward(
                    Mode::Soft,
                    A,
                    GpuSlice::from(&self.logits_a),
                    out(0),
                    Tau::Scalar(0.5),
                    1,
                    0,
                ),
            ),
            1 => kernels.record_forward(
                encoder,
                &forward(
                    Mode::LogSoft,
                    B,
                    GpuSlice::from(&self.logits_b),
                    out(1),
                    Tau::PerRow(GpuSlice::from(&self.taus_b)),
                    2,
                    1 << 33,
                ),
            ),
            2 => kernels.record_forward(
                encoder,
                &forward(
                    Mode::Index,
                    C,
                    GpuSlice::from(&self.logits_b),
                    out(2),
                    Tau::Scalar(9.0),
                    3,
                    77,
                ),
            ),
            3 => kernels.record_vjp(
                encoder,
                &VjpCall::new(
                    Mode::Hard,
                    StorageType::F32,
                    a,
                    Source::recompute(GpuSlice::from(&self.logits_a), 1, 0),
                    GpuSlice::from(&self.dy),
                    out(3),
                )
                .with_tau(Tau::Scalar(0.5))
                .with_dtau(TauGradient::Sum(out(4))),
            ),
            4 => kernels.record_jvp(
                encoder,
                &JvpCall::new(
                    Mode::Soft,
                    StorageType::F32,
                    a,
                    Source::Saved(out(0)),
                    GpuSlice::from(&self.dy),
                    out(5),
                )
                .with_tau(Tau::Scalar(0.5))
                .with_dtau(TauTangent::Scalar(0.25)),
            ),
            _ => kernels.record_noise(
                encoder,
                &NoiseCall::new(9, 5, 1000, NoiseOutput::Gumbel, out(6)),
            ),
        }
        .unwrap();
    }

    pub fn read(&self, ctx: &GpuContext) -> Vec<Vec<u32>> {
        self.outputs
            .iter()
            .map(|(b, n)| pollster::block_on(ctx.read_back_async::<u32>(b, *n)).unwrap())
            .collect()
    }
}

pub const CALLS: usize = 6;
