//! A language-model server's sampling step: a batch of requests, each with its own seed,
//! temperature and filters, sampled in one call, then again with the batch in another order.
//! Each request's random state is found through a row -> state index, so a request draws the
//! same token wherever it sits in the batch; between steps each state moves on by the
//! vocabulary size.
//!
//! `cargo run --release --example token_sampler`

use gumbel_wgpu::{GpuContext, HostTokenNoise, RandomState, TokenArgs, TokenSettings};

const VOCAB: u32 = 32_000;

/// Made-up logits for a request at a step: a spread of values and a few likely tokens.
fn logits(request: usize, step: u64) -> Vec<f32> {
    (0..u64::from(VOCAB))
        .map(|t| {
            let h = (t ^ (request as u64 * 7919 + step * 104_729)).wrapping_mul(2_654_435_761);
            let likely = if h.is_multiple_of(4000) { 8.0 } else { 0.0 };
            (h % 1000) as f32 * 0.006 - 4.0 + likely
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = GpuContext::new()?;
    println!("device: {}", ctx.summary());
    let requests = [
        ("greedy", TokenSettings::greedy(), 1),
        ("plain", TokenSettings::new(1.0), 2),
        ("top-k 40", TokenSettings::new(0.8).with_top_k(40), 3),
        ("top-p 0.9", TokenSettings::new(0.7).with_top_p(0.9), 4),
        ("min-p 0.1", TokenSettings::new(1.2).with_min_p(0.1), 5),
        (
            "capped, top-k 50 + top-p 0.95",
            TokenSettings::new(1.0)
                .with_soft_cap(30.0)
                .with_top_k(50)
                .with_top_p(0.95),
            6,
        ),
    ];
    let mut states: Vec<RandomState> = requests
        .iter()
        .map(|&(_, _, seed)| RandomState { seed, offset: 0 })
        .collect();
    // Token 0 is banned for everyone.
    let mut bias = vec![0.0f32; VOCAB as usize];
    bias[0] = f32::NEG_INFINITY;

    for step in 0..3u64 {
        let sample = |order: &[usize]| -> Result<Vec<(u32, f32)>, gumbel_wgpu::Error> {
            let batch: Vec<f32> = order.iter().flat_map(|&r| logits(r, step)).collect();
            let settings: Vec<TokenSettings> = order.iter().map(|&r| requests[r].1).collect();
            let index: Vec<u32> = order.iter().map(|&r| r as u32).collect();
            let args = TokenArgs::new(VOCAB, &settings, &states)
                .with_noise(HostTokenNoise::Indexed {
                    states: &states,
                    index: &index,
                })
                .with_bias(bias.as_slice())
                .with_logprobs(true);
            let out = ctx.sample_tokens(&batch, &args)?;
            // Back to request order.
            let mut by_request = vec![(0, 0.0); requests.len()];
            for (row, &r) in order.iter().enumerate() {
                by_request[r] = (out.tokens[row], out.logprobs[row][0]);
            }
            Ok(by_request)
        };
        let first = sample(&[0, 1, 2, 3, 4, 5])?;
        let second = sample(&[4, 2, 5, 0, 3, 1])?;
        println!("step {step}:");
        for (r, (name, _, _)) in requests.iter().enumerate() {
            let (token, logprob) = first[r];
            println!("  {name:<30} token {token:>5}  log p {logprob:>8.4}");
        }
        assert_eq!(first, second, "the batch order changed a token");
        println!("  the same tokens with the batch in another order");
        for state in &mut states {
            state.offset += u64::from(VOCAB);
        }
    }
    Ok(())
}
