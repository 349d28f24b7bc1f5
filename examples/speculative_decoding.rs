//! Speculative decoding with two toy language models: a target, a bigram table of logits over a
//! small vocabulary, and a draft, a slightly different table. Many sequences are generated
//! twice: by the target alone, one sampler call a token, and by drafting four tokens from the
//! draft model and verifying them against the target in one call a round
//! (`GpuContext::verify_drafts`). The emitted text has the same token statistics either way
//! (the bigram frequencies are compared with the target's own), while the speculative run needs
//! fewer calls of the target: in a real server each is a forward pass of the large model.
//!
//! `cargo run --release --example speculative_decoding [-- --sequences N --tokens L]`

use gumbel_wgpu::{GpuContext, RandomState, TokenArgs, TokenSettings, VerifyArgs};

const VOCAB: usize = 48;
const DRAFTS: usize = 4;

/// A bigram model: the logits of the next token after each token.
struct Bigram {
    logits: Vec<f32>,
}

impl Bigram {
    /// A table with a few strong continuations per token, from `seed`; `noise` moves every
    /// logit by up to that much (the draft is the target with noise).
    fn new(seed: u64, noise: f32) -> Self {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as f32) / (1u64 << 31) as f32
        };
        let logits = (0..VOCAB * VOCAB)
            .map(|i| {
                let (prev, tok) = (i / VOCAB, i % VOCAB);
                // The same structure for both models: each token favours a few others.
                let favoured = (prev * 7 + 3) % VOCAB == tok || (prev * 13 + 5) % VOCAB == tok;
                let base = if favoured {
                    3.0
                } else {
                    ((prev * 31 + tok * 17) % 11) as f32 * 0.2
                };
                base + noise * (2.0 * next() - 1.0)
            })
            .collect();
        Self { logits }
    }

    fn row(&self, prev: u32) -> &[f32] {
        &self.logits[prev as usize * VOCAB..][..VOCAB]
    }

    /// The probabilities after `prev` at temperature `tau`.
    fn probs(&self, prev: u32, tau: f32) -> Vec<f32> {
        let row = self.row(prev);
        let top = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f64> = row
            .iter()
            .map(|&l| f64::from((l - top) / tau).exp())
            .collect();
        let total: f64 = w.iter().sum();
        w.iter().map(|v| (v / total) as f32).collect()
    }
}

/// A draw from `p` by inversion with a small generator of the caller's.
fn draw(p: &[f32], state: &mut u64) -> u32 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let u = (*state >> 11) as f64 / (1u64 << 53) as f64;
    let mut acc = 0.0;
    for (t, &v) in p.iter().enumerate() {
        acc += f64::from(v);
        if u < acc {
            return t as u32;
        }
    }
    (p.len() - 1) as u32
}

/// Bigram counts of the sequences, as frequencies.
fn bigram_frequencies(sequences: &[Vec<u32>]) -> Vec<f64> {
    let mut counts = vec![0.0; VOCAB * VOCAB];
    for s in sequences {
        for pair in s.windows(2) {
            counts[pair[0] as usize * VOCAB + pair[1] as usize] += 1.0;
        }
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total).collect()
}

/// The total variation distance between the next-token frequencies of `freq` and the model's
/// probabilities, weighted by how often each previous token occurs.
fn distance_to_model(freq: &[f64], model: &Bigram, tau: f32) -> f64 {
    (0..VOCAB as u32)
        .map(|prev| {
            let row = &freq[prev as usize * VOCAB..][..VOCAB];
            let mass: f64 = row.iter().sum();
            if mass == 0.0 {
                return 0.0;
            }
            let p = model.probs(prev, tau);
            let tv: f64 = row
                .iter()
                .zip(&p)
                .map(|(f, &p)| (f / mass - f64::from(p)).abs())
                .sum();
            mass * tv / 2.0
        })
        .sum()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sequences = arg("--sequences", 256);
    let length = arg("--tokens", 64);
    let ctx = GpuContext::new()?;
    println!("device: {}", ctx.summary());
    let tau = 0.8;
    let target = Bigram::new(1, 0.0);
    let draft = Bigram::new(2, 0.6);
    let settings = TokenSettings::new(tau);

    // The target alone: one sampler call a token for every sequence.
    let mut states: Vec<RandomState> = (0..sequences as u64)
        .map(|s| RandomState {
            seed: 10 + s,
            offset: 0,
        })
        .collect();
    let mut plain: Vec<Vec<u32>> = (0..sequences).map(|s| vec![(s % VOCAB) as u32]).collect();
    let mut plain_calls = 0;
    for _ in 1..length {
        let logits: Vec<f32> = plain
            .iter()
            .flat_map(|s| target.row(*s.last().unwrap()).to_vec())
            .collect();
        let all = vec![settings; sequences];
        let got = ctx.sample_tokens(&logits, &TokenArgs::new(VOCAB as u32, &all, &states))?;
        plain_calls += 1;
        for (s, &t) in plain.iter_mut().zip(&got.tokens) {
            s.push(t);
        }
        for state in &mut states {
            state.offset += VOCAB as u64;
        }
    }

    // Speculative: each round the draft proposes DRAFTS tokens per sequence from its own
    // probabilities; the target scores DRAFTS + 1 positions (here a lookup of its table: in a
    // server, one forward pass) and one call verifies every sequence's drafts.
    let mut states: Vec<RandomState> = (0..sequences as u64)
        .map(|s| RandomState {
            seed: 1_000_000 + s,
            offset: 0,
        })
        .collect();
    let mut spec: Vec<Vec<u32>> = (0..sequences).map(|s| vec![(s % VOCAB) as u32]).collect();
    let (mut spec_calls, mut proposed, mut accepted) = (0, 0, 0);
    let mut draft_rng = 99u64;
    while spec.iter().any(|s| s.len() < length) {
        let (mut logits, mut drafts, mut probs, mut offsets) = (vec![], vec![], vec![], vec![0u32]);
        for s in &spec {
            let mut prev = *s.last().unwrap();
            for _ in 0..DRAFTS {
                logits.extend_from_slice(target.row(prev));
                let q = draft.probs(prev, tau);
                let d = draw(&q, &mut draft_rng);
                probs.extend(q);
                drafts.push(d);
                prev = d;
            }
            logits.extend_from_slice(target.row(prev));
            offsets.push(drafts.len() as u32);
        }
        let all = vec![settings; drafts.len() + sequences];
        let args = VerifyArgs::new(VOCAB as u32, &all, &offsets, &drafts, &states)
            .with_draft_probs(probs.as_slice());
        let got = ctx.verify_drafts(&logits, &args)?;
        spec_calls += 1;
        for (s, tokens) in spec.iter_mut().zip(&got.tokens) {
            if s.len() < length {
                s.extend(tokens.iter().take(length - s.len()));
            }
        }
        proposed += drafts.len();
        accepted += got.accepted.iter().map(|&a| a as usize).sum::<usize>();
        // Each verification takes (DRAFTS + 1) K + DRAFTS elements of a request's stream.
        for state in &mut states {
            state.offset += ((DRAFTS + 1) * VOCAB + DRAFTS) as u64;
        }
    }

    let plain_freq = bigram_frequencies(&plain);
    let spec_freq = bigram_frequencies(&spec);
    let between: f64 = plain_freq
        .iter()
        .zip(&spec_freq)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / 2.0;
    let pairs = sequences * (length - 1);
    println!(
        "{sequences} sequences of {length} tokens over a vocabulary of {VOCAB}, temperature {tau}"
    );
    println!(
        "target alone: {plain_calls} target calls; distance of its bigrams to the target's: {:.4}",
        distance_to_model(&plain_freq, &target, tau)
    );
    println!(
        "speculative:  {spec_calls} target calls ({:.2} tokens a call), {accepted} of {proposed} drafts accepted ({:.0}%); distance to the target's: {:.4} (to the draft's: {:.4})",
        (length - 1) as f64 / spec_calls as f64,
        100.0 * accepted as f64 / proposed as f64,
        distance_to_model(&spec_freq, &target, tau),
        distance_to_model(&spec_freq, &draft, tau)
    );
    println!(
        "the two runs' bigram frequencies ({pairs} pairs each) apart by {between:.4} in total variation"
    );
    Ok(())
}
