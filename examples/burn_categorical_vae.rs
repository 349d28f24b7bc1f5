//! The categorical VAE of Jang, Gu and Poole (ICLR 2017), section 4.2, in burn: an MLP
//! encoder to 20 categorical variables of 10 classes, a Gumbel-Softmax sample (soft, or
//! straight-through with `--hard`), an MLP decoder, and the temperature annealed as
//! tau = max(0.5, exp(-r t)).
//!
//! The data are made here: 8 x 8 binary images whose four 4 x 4 quadrants each show one of ten
//! fixed patterns, with 5% of the pixels flipped, so that a discrete code explains them. The
//! same model is trained twice from the same start, once with this crate's sampler and once
//! with a sampler composed of burn's own ops (uniform noise, two logs, a softmax, as PyTorch's
//! `gumbel_softmax` does), printing the negative ELBO (nats per image) as it falls and the time
//! per step side by side.
//!
//! ```text
//! cargo run --release --features burn --example burn_categorical_vae -- [--steps 300] [--hard]
//! ```
//!
//! `--measure` times, instead, one sample of a `[8, 512, 16, 16]` tensor over axis 1 (and over
//! its last axis), burn's composed sampler, and a burn pass that reads and writes the tensor once
//! (`x + 1`, the copy yardstick), in the same run.

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu, softmax, softplus};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use gumbel_wgpu::Generator;
use gumbel_wgpu::burn::gumbel_softmax;

const PIXELS: usize = 64;
const VARIABLES: usize = 20;
const CLASSES: usize = 10;
const BATCH: usize = 100;
const HIDDEN: usize = 256;
/// The annealing rate r of tau = max(0.5, exp(-r t)).
const ANNEAL: f64 = 3e-3;

/// The temperature at `step`: tau = max(0.5, exp(-r t)).
fn tau_at(step: usize) -> f32 {
    (-ANNEAL * step as f64).exp().max(0.5) as f32
}

#[derive(Module, Debug)]
struct Vae {
    encode_hidden: Linear,
    encode_logits: Linear,
    decode_hidden: Linear,
    decode_pixels: Linear,
}

impl Vae {
    fn new(device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        Vae {
            encode_hidden: linear(PIXELS, HIDDEN),
            encode_logits: linear(HIDDEN, VARIABLES * CLASSES),
            decode_hidden: linear(VARIABLES * CLASSES, HIDDEN),
            decode_pixels: linear(HIDDEN, PIXELS),
        }
    }

    /// The negative ELBO per example (reconstruction + KL to the uniform prior), averaged over
    /// the batch, with the code sampled by `sampler`.
    fn loss(&self, x: Tensor<2>, sampler: &mut Sampler, tau: f32, hard: bool) -> Tensor<1> {
        let logits = self
            .encode_logits
            .forward(relu(self.encode_hidden.forward(x.clone())))
            .reshape([BATCH, VARIABLES, CLASSES]);
        let code = sampler.sample(logits.clone(), tau, hard);
        let pixels = self.decode_pixels.forward(relu(
            self.decode_hidden
                .forward(code.reshape([BATCH, VARIABLES * CLASSES])),
        ));
        // Bernoulli log-likelihood from logits: x p - softplus(p).
        let reconstruction = (softplus(pixels.clone(), 1.0) - x * pixels).sum_dim(1);
        let (q, log_q) = (softmax(logits.clone(), 2), log_softmax(logits, 2));
        let kl = (q * (log_q + (CLASSES as f32).ln()))
            .sum_dim(2)
            .sum_dim(1)
            .reshape([BATCH, 1]);
        (reconstruction + kl).mean()
    }
}

/// Where the code's noise comes from.
enum Sampler {
    /// This crate's fused kernel (and its VJP kernel for the gradient).
    Fused(Generator),
    /// burn's own ops: g = -ln(-ln u), softmax((logits + g) / tau), straight-through by hand.
    Composed,
}

impl Sampler {
    fn sample(&mut self, logits: Tensor<3>, tau: f32, hard: bool) -> Tensor<3> {
        match self {
            Sampler::Fused(noise) => gumbel_softmax(logits, tau, hard, -1, noise)
                .expect("sampling on a registered device"),
            Sampler::Composed => {
                let u = Tensor::<3>::random(
                    logits.shape(),
                    Distribution::Uniform(1e-10, 1.0),
                    &logits.device(),
                );
                let g = -(-u.log()).log();
                let soft = softmax((logits + g) / tau, 2);
                if !hard {
                    return soft;
                }
                let largest = soft.clone().max_dim(2).expand(soft.shape());
                let one_hot = soft.clone().greater_equal(largest).float();
                one_hot - soft.clone().detach() + soft
            }
        }
    }
}

/// The data: four quadrants, each one of ten fixed 4 x 4 patterns, 5% of pixels flipped.
struct Data {
    patterns: Vec<[bool; 16]>,
    state: u64,
}

impl Data {
    fn new() -> Self {
        let mut data = Data {
            patterns: Vec::new(),
            state: 0x9e37_79b9_7f4a_7c15,
        };
        data.patterns = (0..CLASSES)
            .map(|_| std::array::from_fn(|_| data.next() < 0.5))
            .collect();
        data
    }

    /// A uniform draw in [0, 1) (SplitMix64).
    fn next(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn batch(&mut self, device: &Device) -> Tensor<2> {
        let mut pixels = vec![0f32; BATCH * PIXELS];
        for image in pixels.chunks_mut(PIXELS) {
            for quadrant in 0..4 {
                let class = (self.next() * CLASSES as f64) as usize;
                let pattern = self.patterns[class];
                for (i, &on) in pattern.iter().enumerate() {
                    let (row, col) = (4 * (quadrant / 2) + i / 4, 4 * (quadrant % 2) + i % 4);
                    let flip = self.next() < 0.05;
                    image[row * 8 + col] = f32::from(u8::from(on != flip));
                }
            }
        }
        Tensor::from_data(TensorData::new(pixels, [BATCH, PIXELS]), device)
    }
}

/// Trains from `model` for `steps` steps; returns the negative ELBO at each tenth of the run and the
/// mean time per step (after the first, which compiles the kernels).
fn train(
    model: Vae,
    mut sampler: Sampler,
    steps: usize,
    hard: bool,
    device: &Device,
) -> (Vec<(usize, f32)>, f64) {
    let mut data = Data::new();
    let mut optimizer = AdamConfig::new().init();
    let mut model = model;
    let mut elbo = Vec::new();
    let mut timed = 0.0;
    for step in 0..steps {
        let started = Instant::now();
        let tau = tau_at(step);
        let loss = model.loss(data.batch(device), &mut sampler, tau, hard);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(3e-3, model, grads);
        // Reading the loss waits for the step's work.
        let value = loss.into_scalar::<f32>();
        if step > 0 {
            timed += started.elapsed().as_secs_f64();
        }
        if step % (steps / 10).max(1) == 0 || step + 1 == steps {
            elbo.push((step, value));
        }
    }
    (elbo, timed / (steps - 1).max(1) as f64)
}

/// The fastest of 20 runs of `run`, each waited for.
fn fastest(device: &Device, mut run: impl FnMut() -> Tensor<4>) -> f64 {
    (0..21)
        .filter_map(|i| {
            let started = Instant::now();
            let out = run();
            device.sync().expect("the device");
            drop(out);
            (i > 0).then(|| started.elapsed().as_secs_f64())
        })
        .fold(f64::MAX, f64::min)
}

/// One sample of a `[8, 512, 16, 16]` tensor against burn's composed sampler and a copy pass.
fn measure(device: &Device) {
    let x = Tensor::<4>::random([8, 512, 16, 16], Distribution::Default, device);
    let mut noise = Generator::new(5);
    let copy = fastest(device, || x.clone() + 1.0);
    let mut ours = |dim| {
        fastest(device, || {
            gumbel_softmax(x.clone(), 0.5, false, dim, &mut noise).unwrap()
        })
    };
    let (axis_1, last) = (ours(1), ours(-1));
    let composed = fastest(device, || {
        let u = Tensor::<4>::random(x.shape(), Distribution::Uniform(1e-10, 1.0), device);
        softmax((x.clone() - (-u.log()).log()) / 0.5, 1)
    });
    println!("[8, 512, 16, 16] f32, fastest of 20 (ratio: the copy pass's time over this one's)");
    for (name, t) in [
        ("x + 1 (copy yardstick)", copy),
        ("gumbel_softmax, dim 1", axis_1),
        ("gumbel_softmax, dim -1", last),
        ("burn's composed sampler, dim 1", composed),
    ] {
        println!("{name:<32} {:>8.3} ms  ratio {:.3}", t * 1e3, copy / t);
    }
}

fn main() -> gumbel_wgpu::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let steps = args
        .iter()
        .position(|a| a == "--steps")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(300);
    let hard = args.iter().any(|a| a == "--hard");
    let device = gumbel_wgpu::burn::init()?.autodiff();
    if args.iter().any(|a| a == "--measure") {
        measure(&device.clone().without_autodiff());
        return Ok(());
    }
    device.seed(1);
    let start = Vae::new(&device);
    let sample = if hard { "straight-through" } else { "soft" };
    println!("categorical VAE, 20 x 10 code, {sample} samples, batch {BATCH}, {steps} steps");

    let (fused, fused_time) = train(
        start.clone(),
        Sampler::Fused(Generator::new(11)),
        steps,
        hard,
        &device,
    );
    let (composed, composed_time) = train(start, Sampler::Composed, steps, hard, &device);
    println!(
        "{:>6}  {:>8}  {:>14}  {:>14}",
        "step", "tau", "-ELBO (fused)", "-ELBO (burn ops)"
    );
    for ((step, a), (_, b)) in fused.iter().zip(&composed) {
        let tau = tau_at(*step);
        println!("{step:>6}  {tau:>8.3}  {a:>14.2}  {b:>14.2}");
    }
    println!(
        "time per step: {:.2} ms with gumbel-wgpu, {:.2} ms with burn's composed sampler",
        fused_time * 1e3,
        composed_time * 1e3
    );
    let (first, last) = (fused[0].1, fused[fused.len() - 1].1);
    if last >= first {
        eprintln!("the negative ELBO did not fall: {first:.2} -> {last:.2}");
        std::process::exit(1);
    }
    Ok(())
}
