//! Prints the adapter, draws Gumbel noise and soft samples on the GPU, and checks both
//! against the CPU reference.
//!
//! `cargo run --release --example quickstart`

use gumbel_wgpu::reference::{self, RowSample};
use gumbel_wgpu::{GpuContext, Mode, SampleArgs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.summary());

    let (seed, offset, count) = (2017, 0, 1 << 20);
    let noise = ctx.gumbel_noise(seed, offset, count)?;
    let exact = reference::gumbel_noise(seed, offset, count);
    let max_err = noise
        .iter()
        .zip(&exact)
        .map(|(&g, &e)| (f64::from(g) - e).abs())
        .fold(0.0, f64::max);
    let mean = noise.iter().map(|&g| f64::from(g)).sum::<f64>() / count as f64;
    let (lo, hi) = noise
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &g| (lo.min(g), hi.max(g)));
    println!(
        "noise: {count} draws, mean {mean:.5} (Euler's constant 0.57722), range [{lo:.3}, {hi:.3}], max |GPU - f64| = {max_err:.2e}"
    );

    let logits: Vec<f32> = (0..8).map(|k| (k as f32 * 0.7).sin()).collect();
    let args = SampleArgs::new(1, 8, 0.5, seed);
    let y = ctx.sample(&logits, Mode::Soft, &args)?;
    let Ok(RowSample::Values(expected)) = reference::forward_row(&logits, 0.5, seed, 0, Mode::Soft)
    else {
        unreachable!("finite logits always have a sample")
    };
    let err = y
        .iter()
        .zip(&expected)
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max);
    println!("soft sample at tau 0.5: {y:.4?}");
    println!("max |GPU - f64| over the sample: {err:.2e}");
    if max_err > 1e-5 || err > 1e-5 {
        return Err("GPU and CPU reference disagree".into());
    }
    println!("GPU agrees with the CPU reference");
    Ok(())
}
