//! ms per batch of the token sampler (device-resident: no upload, no read-back) and of candle's
//! `LogitsProcessor` (one CPU thread, a row at a time, as a Rust server samples), on logits
//! N(0, 1) * 3 at temperature 0.8, with the sampler's ratio to a read pass over the same logits
//! in the same run. `--quick` takes the two smaller vocabularies and batches 1 and 8 only.
//!
//! The processed setting adds to top-k 50 + top-p 0.9 a repetition penalty over 512 tokens per
//! row and a grammar mask per row: ours with frequency and presence penalties besides (a list
//! of 512 `TokenEntry`s and a bitmask per row, in the call); candle's as its user would,
//! `utils::apply_repeat_penalty` over the row's 512 context tokens and the mask added as a
//! dense -inf / 0 row (made before the timing, which spares candle the bitmask's expansion).

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use gumbel_wgpu::measure::{ReadWorkload, time_per_run};
use gumbel_wgpu::{
    GpuContext, GpuSlice, RandomState, SampleTokensCall, Shape, StorageType, TokenEntry,
    TokenLists, TokenMasks, TokenNoise, TokenSettings, mask_words,
};
use rand::{Rng, SeedableRng};

const TEMPERATURE: f32 = 0.8;

/// A setting both samplers take.
#[derive(Clone, Copy)]
enum Filter {
    Plain,
    TopK,
    TopP,
    TopKTopP,
    /// Top-k 50 + top-p 0.9 with penalties over `LISTED` tokens and a mask.
    Processed,
}

/// The tokens of each row's penalty list.
const LISTED: usize = 512;

impl Filter {
    const ALL: [Filter; 5] = [
        Filter::TopK,
        Filter::TopP,
        Filter::TopKTopP,
        Filter::Plain,
        Filter::Processed,
    ];

    fn name(self) -> &'static str {
        match self {
            Filter::Plain => "plain",
            Filter::TopK => "top-k 50",
            Filter::TopP => "top-p 0.9",
            Filter::TopKTopP => "top-k 50 + top-p 0.9",
            Filter::Processed => "top-k 50 + top-p 0.9, penalties over 512, a mask",
        }
    }

    fn ours(self) -> TokenSettings {
        let plain = TokenSettings::new(TEMPERATURE);
        match self {
            Filter::Plain => plain,
            Filter::TopK => plain.with_top_k(50),
            Filter::TopP => plain.with_top_p(0.9),
            Filter::TopKTopP | Filter::Processed => plain.with_top_k(50).with_top_p(0.9),
        }
    }

    fn candle(self) -> Sampling {
        let temperature = f64::from(TEMPERATURE);
        match self {
            Filter::Plain => Sampling::All { temperature },
            Filter::TopK => Sampling::TopK { k: 50, temperature },
            Filter::TopP => Sampling::TopP {
                p: 0.9,
                temperature,
            },
            Filter::TopKTopP | Filter::Processed => Sampling::TopKThenTopP {
                k: 50,
                p: 0.9,
                temperature,
            },
        }
    }
}

/// N(0, 1) * 3 by Box-Muller.
fn logits(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            let z = (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            (3.0 * z) as f32
        })
        .collect()
}

/// Repetitions that take about `budget` at `each` per repetition (at least 1, at most 50).
fn reps(each: Duration, budget: Duration) -> u32 {
    (budget.as_secs_f64() / each.as_secs_f64().max(1e-6)).clamp(1.0, 50.0) as u32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.summary());
    println!("candle-transformers 0.11.1 LogitsProcessor, one thread; logits N(0, 1) * 3, T = 0.8");
    println!();
    println!("| batch x K | setting | candle ms | ours ms | candle / ours | ours / read pass |");
    println!("|---|---|---|---|---|---|");
    let vocabularies: &[usize] = if quick {
        &[32_000, 128_256]
    } else {
        &[32_000, 128_256, 151_936, 200_000]
    };
    let batches: &[usize] = if quick { &[1, 8] } else { &[1, 8, 128, 512] };
    let budget = Duration::from_millis(400);
    for &cols in vocabularies {
        for &rows in batches {
            let host = logits(rows * cols, (rows * cols) as u64);
            let shape = Shape::new(rows as u32, cols as u32);
            let input = ctx.upload(&host)?;
            let states: Vec<RandomState> = (0..rows as u64)
                .map(|r| RandomState { seed: r, offset: 0 })
                .collect();
            let states = ctx.upload(&states)?;
            let tokens = ctx.storage_buffer(4 * rows as u64)?;
            let read = ReadWorkload::new(&ctx, (rows * cols * 4) as u64)?;
            let read_time = time_per_run(&ctx, 20, |e| read.record(ctx.kernels(), e))?;
            let tensor = Tensor::from_vec(host, (rows, cols), &Device::Cpu)?;
            // Each row's penalty list (spread over the vocabulary) and mask (about one token
            // in sixteen banned), in both forms.
            let spacing = cols / LISTED;
            let context: Vec<Vec<u32>> = (0..rows)
                .map(|r| {
                    (0..LISTED)
                        .map(|i| (i * spacing + r % spacing) as u32)
                        .collect()
                })
                .collect();
            let entries: Vec<TokenEntry> = context
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, &t)| TokenEntry::new(t, 1 + (i % 3) as u32))
                .collect();
            let words = mask_words(cols as u32) as usize;
            let bitmask: Vec<u32> = (0..rows * words)
                .map(|i| {
                    !(1u32 << ((i as u32).wrapping_mul(2_654_435_761) % 32)) & !(1 << (i % 32))
                })
                .collect();
            let dense_masks: Vec<Tensor> = (0..rows)
                .map(|r| {
                    let row: Vec<f32> = (0..cols)
                        .map(|v| {
                            let allowed = bitmask[r * words + v / 32] >> (v % 32) & 1 == 1;
                            if allowed { 0.0 } else { f32::NEG_INFINITY }
                        })
                        .collect();
                    Tensor::from_vec(row, cols, &Device::Cpu)
                })
                .collect::<candle_core::Result<_>>()?;
            let entries = ctx.upload(&entries)?;
            let masks = ctx.upload(&bitmask)?;
            for filter in Filter::ALL {
                let processed = matches!(filter, Filter::Processed);
                let row_settings: Vec<TokenSettings> = (0..rows)
                    .map(|r| match filter {
                        Filter::Processed => filter
                            .ours()
                            .with_penalties(1.1, 0.3, 0.2)
                            .with_list((r * LISTED) as u32, LISTED as u32)
                            .with_mask(r as u32),
                        _ => filter.ours(),
                    })
                    .collect();
                let settings = ctx.upload(&row_settings)?;
                let mut call = SampleTokensCall::new(
                    StorageType::F32,
                    shape,
                    GpuSlice::from(&input),
                    GpuSlice::from(&settings),
                    TokenNoise::per_row(GpuSlice::from(&states)),
                    GpuSlice::from(&tokens),
                );
                if processed {
                    call = call
                        .with_lists(
                            TokenLists::new(GpuSlice::from(&entries), (rows * LISTED) as u32)
                                .with_longest(LISTED as u32),
                        )
                        .with_masks(TokenMasks {
                            words: GpuSlice::from(&masks),
                            count: rows as u32,
                        });
                }
                let mut record =
                    |e: &mut wgpu::CommandEncoder| ctx.kernels().record_sample_tokens(e, &call);
                let once = match time_per_run(&ctx, 1, &mut record) {
                    Ok(once) => once,
                    Err(gumbel_wgpu::Error::OverLimits(message)) => {
                        println!(
                            "| {rows} x {cols} | {} | | refused: {message} | | |",
                            filter.name()
                        );
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let ours = time_per_run(&ctx, reps(once, budget), &mut record)?;
                let mut processor = LogitsProcessor::from_sampling(7, filter.candle());
                let mut batch = || -> candle_core::Result<()> {
                    for r in 0..rows {
                        let row = tensor.get(r)?;
                        if processed {
                            let row = candle_transformers::utils::apply_repeat_penalty(
                                &row,
                                1.1,
                                &context[r],
                            )?;
                            processor.sample(&row.add(&dense_masks[r])?)?;
                        } else {
                            processor.sample(&row)?;
                        }
                    }
                    Ok(())
                };
                let start = Instant::now();
                batch()?;
                let once = start.elapsed();
                let n = reps(once, budget);
                let start = Instant::now();
                for _ in 0..n {
                    batch()?;
                }
                let candle = start.elapsed() / n;
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                println!(
                    "| {rows} x {cols} | {} | {:.2} | {:.2} | {:.2} | {:.3} |",
                    filter.name(),
                    ms(candle),
                    ms(ours),
                    candle.as_secs_f64() / ours.as_secs_f64(),
                    read_time.as_secs_f64() / ours.as_secs_f64(),
                );
            }
        }
    }
    Ok(())
}
