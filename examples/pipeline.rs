//! The sampler inside a pipeline of the caller's own, all in one encoder and one submit:
//!
//! 1. a compute pass of ours multiplies features by a weight matrix into logits;
//! 2. the sampler draws soft samples from the logits (noise position from a `Generator`);
//! 3. a pass of ours consumes the samples: each row's score `<y, v>` for a value vector `v`,
//!    and the upstream gradient `dy = v` of the summed score;
//! 4. the sampler's backward recomputes the sample from the logits and writes `dl` and the
//!    temperature's gradient, summed over rows on the GPU.
//!
//! Then it reads back, checks the sampler's outputs against the CPU reference, and prints them.
//! `cargo run --release --example pipeline`

use gumbel_wgpu::reference::{self, RowSample};
use gumbel_wgpu::{
    ForwardCall, Generator, GpuContext, GpuSlice, Mode, Shape, Source, StorageType, Tau,
    TauGradient, VjpCall,
};

const ROWS: u32 = 256;
const FEATURES: u32 = 16;
const K: u32 = 10;
const TAU: f32 = 0.7;

/// Our own kernels: a matrix product, and the consumer of the samples.
const OUR_SHADER: &str = r#"
struct Dims { rows: u32, features: u32, k: u32, _pad: u32 }
@group(0) @binding(0) var<storage, read> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> d: array<f32>;

// c = a (rows x features) * b (features x k)
@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= dims.rows * dims.k { return; }
    let r = i / dims.k;
    let col = i % dims.k;
    var s = 0.0;
    for (var j = 0u; j < dims.features; j++) {
        s += a[r * dims.features + j] * b[j * dims.k + col];
    }
    c[i] = s;
}

// For samples a (rows x k) and values b (k): c[r] = <a_r, b>, and d = dScore/dy = b per row.
@compute @workgroup_size(64)
fn score(@builtin(global_invocation_id) id: vec3<u32>) {
    let r = id.x;
    if r >= dims.rows { return; }
    var s = 0.0;
    for (var k = 0u; k < dims.k; k++) {
        s += a[r * dims.k + k] * b[k];
        d[r * dims.k + k] = b[k];
    }
    c[r] = s;
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.summary());
    let device = &ctx.device;
    let n = (ROWS * K) as usize;

    // Inputs and buffers, all ours: the sampler only borrows them.
    let features: Vec<f32> = (0..ROWS * FEATURES)
        .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
        .collect();
    let weights: Vec<f32> = (0..FEATURES * K)
        .map(|i| ((i * 53 % 97) as f32 / 48.0 - 1.0) * 0.5)
        .collect();
    let values: Vec<f32> = (0..K).map(|k| k as f32 / K as f32).collect();
    let dims_matmul = ctx.upload(&[ROWS, FEATURES, K, 0])?;
    let dims_score = ctx.upload(&[ROWS, 0, K, 0])?;
    let x = ctx.upload(&features)?;
    let w = ctx.upload(&weights)?;
    let v = ctx.upload(&values)?;
    let logits = ctx.storage_buffer(n as u64 * 4)?;
    let samples = ctx.storage_buffer(n as u64 * 4)?;
    let scores = ctx.storage_buffer(u64::from(ROWS) * 4)?;
    let dy = ctx.storage_buffer(n as u64 * 4)?;
    let dl = ctx.storage_buffer(n as u64 * 4)?;
    let dtau = ctx.storage_buffer(4)?;

    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("ours"),
        source: wgpu::ShaderSource::Wgsl(OUR_SHADER.into()),
    });
    let pipeline = |entry: &str| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let (matmul, score) = (pipeline("matmul"), pipeline("score"));
    let bind = |p: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]| {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &p.get_bind_group_layout(0),
            entries: &entries,
        })
    };
    // The matmul's automatic layout has no binding 4: it does not use it.
    let matmul_group = bind(&matmul, &[&dims_matmul, &x, &w, &logits]);
    let score_group = bind(&score, &[&dims_score, &samples, &v, &scores, &dy]);

    let shape = Shape::new(ROWS, K);
    let mut generator = Generator::new(2017);
    let (seed, offset) = generator.take(&shape);
    let kernels = ctx.kernels();
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&matmul);
        pass.set_bind_group(0, &matmul_group, &[]);
        pass.dispatch_workgroups((ROWS * K).div_ceil(64), 1, 1);
    }
    kernels.record_forward(
        &mut encoder,
        &ForwardCall::new(
            Mode::Soft,
            StorageType::F32,
            shape,
            GpuSlice::from(&logits),
            GpuSlice::from(&samples),
        )
        .with_tau(Tau::Scalar(TAU))
        .with_noise(seed, offset),
    )?;
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&score);
        pass.set_bind_group(0, &score_group, &[]);
        pass.dispatch_workgroups(ROWS.div_ceil(64), 1, 1);
    }
    kernels.record_vjp(
        &mut encoder,
        &VjpCall::new(
            Mode::Soft,
            StorageType::F32,
            shape,
            Source::recompute(GpuSlice::from(&logits), seed, offset),
            GpuSlice::from(&dy),
            GpuSlice::from(&dl),
        )
        .with_tau(Tau::Scalar(TAU))
        .with_dtau(TauGradient::Sum(GpuSlice::from(&dtau))),
    )?;
    ctx.queue.submit([encoder.finish()]);

    // Read back only now, to check and to print.
    let logits: Vec<f32> = ctx.read_back(&logits, n)?;
    let samples: Vec<f32> = ctx.read_back(&samples, n)?;
    let scores: Vec<f32> = ctx.read_back(&scores, ROWS as usize)?;
    let dl: Vec<f32> = ctx.read_back(&dl, n)?;
    let dtau: Vec<f32> = ctx.read_back(&dtau, 1)?;
    let dy: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let (mut worst_y, mut worst_dl, mut want_dtau) = (0.0f64, 0.0f64, 0.0);
    for r in 0..ROWS as usize {
        let row = &logits[r * K as usize..][..K as usize];
        let first = offset + (r * K as usize) as u64;
        let Ok(RowSample::Values(y)) = reference::forward_row(row, TAU, seed, first, Mode::Soft)
        else {
            return Err(format!("row {r} has no sample").into());
        };
        let grad = reference::vjp_row(row, TAU, seed, first, Mode::Soft, &dy)?;
        for k in 0..K as usize {
            worst_y = worst_y.max((f64::from(samples[r * K as usize + k]) - y[k]).abs());
            worst_dl = worst_dl.max((f64::from(dl[r * K as usize + k]) - grad.dl[k]).abs());
        }
        want_dtau += grad.dtau;
    }
    let total: f32 = scores.iter().sum();
    println!(
        "summed score {total:.4} over {ROWS} rows; row 0's sample {:.3?}",
        &samples[..K as usize]
    );
    println!(
        "dl of row 0 {:.4?}; dtau (summed on the GPU) {:.6} vs CPU {want_dtau:.6}",
        &dl[..K as usize],
        dtau[0]
    );
    println!("max |GPU - CPU reference|: samples {worst_y:.2e}, dl {worst_dl:.2e}");
    let dtau_err = (f64::from(dtau[0]) - want_dtau).abs();
    if worst_y > 1e-5 || worst_dl > 1e-5 || dtau_err > 1e-4 * (1.0 + want_dtau.abs()) {
        return Err("the GPU pipeline disagrees with the CPU reference".into());
    }
    println!("next call's noise starts at offset {}", generator.offset());
    Ok(())
}
