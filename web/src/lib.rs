//! The browser demo's wasm side: a token-sampler playground on a vocabulary-sized row that stays
//! on the page's GPU (only 4 bytes a draw come back), the same draws made the way web engines do
//! today (the logits read back, top-p by a sort) for comparison, and the Gumbel-Softmax samples
//! of the paper's Figure 1. `index.html` and `app.js` drive it; `scripts/web.sh` builds it.

use std::rc::Rc;

use gumbel_wgpu::reference::{self, TokenDraw};
use gumbel_wgpu::{
    GpuContext, GpuSlice, Mode, RandomState, SampleArgs, SampleTokensCall, Shape, StorageType,
    TokenNoise, TokenSettings, philox::Philox4x32,
};
use rand_core::RngCore as _;
use wasm_bindgen::prelude::*;

/// The seed of every draw the page makes; each draw takes its own offset.
const SEED: u64 = 2017;

/// The page's GPU, the logits (one row, copied to `rows` rows on the device) and the buffers of
/// one batch of draws.
#[wasm_bindgen]
pub struct Playground {
    inner: Rc<Inner>,
}

struct Inner {
    ctx: GpuContext,
    row: Vec<f32>,
    rows: u32,
    logits: wgpu::Buffer,
    tokens: wgpu::Buffer,
}

/// Logits shaped like a language model's over `cols` tokens: a Zipf-like slope (token k about
/// as likely as (k + 1)^-0.9 at temperature 1) roughened by uniform noise and a few boosted
/// tokens, the same on every run.
fn make_logits(cols: u32) -> Vec<f32> {
    let mut rng = Philox4x32::new(7, 0);
    (0..cols)
        .map(|k| {
            let u = f64::from(rng.next_u32()) / 4_294_967_296.0;
            let slope = -0.9 * f64::from(k + 1).ln();
            (slope + u + if k % 997 == 5 { 2.0 } else { 0.0 }) as f32
        })
        .collect()
}

/// Opens the page's WebGPU adapter and puts `rows` copies of a row of `cols` logits on it.
#[wasm_bindgen]
pub async fn start(cols: u32, rows: u32) -> Result<Playground, JsError> {
    let ctx = GpuContext::new_async().await.map_err(js)?;
    let row = make_logits(cols);
    let all: Vec<f32> = (0..rows).flat_map(|_| row.iter().copied()).collect();
    let logits = ctx.upload(&all).map_err(js)?;
    let tokens = ctx.storage_buffer(u64::from(rows) * 4).map_err(js)?;
    Ok(Playground {
        inner: Rc::new(Inner {
            ctx,
            row,
            rows,
            logits,
            tokens,
        }),
    })
}

fn js(e: gumbel_wgpu::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn settings(temperature: f32, top_k: u32, top_p: f32, min_p: f32, soft_cap: f32) -> TokenSettings {
    let mut s = TokenSettings::new(temperature)
        .with_top_p(top_p)
        .with_min_p(min_p)
        .with_soft_cap(soft_cap);
    if top_k > 0 {
        s = s.with_top_k(top_k);
    }
    s
}

/// The draws of one call: how often each token came up, beside the exact probabilities of the
/// filtered distribution (from the crate's f64 reference).
#[wasm_bindgen]
pub struct Draws {
    kept: Vec<u32>,
    probs: Vec<f64>,
    counts: Vec<u32>,
    outside: u32,
    draws: u32,
    bytes_read: f64,
}

#[wasm_bindgen]
impl Draws {
    /// The tokens the filters keep, most likely first.
    #[wasm_bindgen(getter)]
    pub fn kept(&self) -> Vec<u32> {
        self.kept.clone()
    }
    /// Their exact probabilities.
    #[wasm_bindgen(getter)]
    pub fn probs(&self) -> Vec<f64> {
        self.probs.clone()
    }
    /// How often each was drawn.
    #[wasm_bindgen(getter)]
    pub fn counts(&self) -> Vec<u32> {
        self.counts.clone()
    }
    /// Draws of a token the filters drop (none, if the sampler is right).
    #[wasm_bindgen(getter)]
    pub fn outside(&self) -> u32 {
        self.outside
    }
    /// Tokens drawn.
    #[wasm_bindgen(getter)]
    pub fn draws(&self) -> u32 {
        self.draws
    }
    /// Bytes read back from the GPU.
    #[wasm_bindgen(getter)]
    pub fn bytes_read(&self) -> f64 {
        self.bytes_read
    }
}

impl Inner {
    fn exact(&self, s: &TokenSettings) -> Result<TokenDraw, JsError> {
        let state = RandomState {
            seed: SEED,
            offset: 0,
        };
        reference::sample_token_row(&self.row, None, s, state)
            .map_err(|e| JsError::new(&format!("no token: {e}")))
    }

    fn tally(&self, exact: TokenDraw, tokens: &[u32], bytes_read: f64) -> Draws {
        let mut counts = vec![0; exact.kept.len()];
        let mut outside = 0;
        for &t in tokens {
            match exact.kept.iter().position(|&k| k == t) {
                Some(i) => counts[i] += 1,
                None => outside += 1,
            }
        }
        Draws {
            kept: exact.kept,
            probs: exact.probs,
            counts,
            outside,
            draws: tokens.len() as u32,
            bytes_read,
        }
    }

    /// `batches` batches of `rows` draws by the token sampler on the device-resident logits;
    /// draw `d` takes noise from offset `d * K` of the seed's stream.
    async fn sample(
        &self,
        s: TokenSettings,
        first_batch: u32,
        batches: u32,
    ) -> Result<Draws, JsError> {
        let exact = self.exact(&s)?;
        let cols = self.row.len() as u32;
        let shape = Shape::new(self.rows, cols);
        let settings = self.ctx.upload(&vec![s; self.rows as usize]).map_err(js)?;
        let mut tokens = Vec::new();
        for b in first_batch..first_batch + batches {
            let states: Vec<RandomState> = (0..self.rows)
                .map(|r| RandomState {
                    seed: SEED,
                    offset: (u64::from(b) * u64::from(self.rows) + u64::from(r)) * u64::from(cols),
                })
                .collect();
            let states = self.ctx.upload(&states).map_err(js)?;
            let call = SampleTokensCall::new(
                StorageType::F32,
                shape,
                GpuSlice::from(&self.logits),
                GpuSlice::from(&settings),
                TokenNoise::per_row(GpuSlice::from(&states)),
                GpuSlice::from(&self.tokens),
            );
            let kernels = self.ctx.kernels();
            self.ctx
                .submit_async("sample tokens", |encoder| {
                    kernels.record_sample_tokens(encoder, &call)
                })
                .await
                .map_err(js)?;
            let got: Vec<u32> = self
                .ctx
                .read_back_async(&self.tokens, self.rows as usize)
                .await
                .map_err(js)?;
            tokens.extend(got);
        }
        let bytes = 4.0 * tokens.len() as f64;
        Ok(self.tally(exact, &tokens, bytes))
    }

    /// The same draws as web engines make them today: each batch's logits read back to wasm,
    /// then per row a softmax at the temperature, a sort, the filters, and one uniform.
    async fn sample_on_cpu(&self, s: TokenSettings, batches: u32) -> Result<Draws, JsError> {
        let exact = self.exact(&s)?;
        let cols = self.row.len();
        let mut rng = Philox4x32::new(SEED, 1 << 40);
        let mut tokens = Vec::new();
        let mut bytes = 0.0;
        for _ in 0..batches {
            let all: Vec<f32> = self
                .ctx
                .read_back_async(&self.logits, self.rows as usize * cols)
                .await
                .map_err(js)?;
            bytes += 4.0 * all.len() as f64;
            for row in all.chunks_exact(cols) {
                tokens.push(cpu_draw(row, &s, &mut rng));
            }
        }
        Ok(self.tally(exact, &tokens, bytes))
    }
}

/// One draw as a web engine makes it on the CPU: cap, temperature, softmax, a descending sort,
/// top-k, top-p and min-p on the sorted probabilities, then inversion of one uniform.
fn cpu_draw(row: &[f32], s: &TokenSettings, rng: &mut Philox4x32) -> u32 {
    let cap = |x: f32| match s.soft_cap {
        c if c > 0.0 => c * (x / c).tanh(),
        _ => x,
    };
    let scaled: Vec<f32> = row.iter().map(|&x| cap(x) / s.temperature).collect();
    let m = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(f32, u32)> = scaled
        .iter()
        .enumerate()
        .map(|(k, &v)| ((v - m).exp(), k as u32))
        .collect();
    probs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let total: f32 = probs.iter().map(|p| p.0).sum();
    let mut keep = probs.len();
    if s.top_k != TokenSettings::NO_TOP_K {
        keep = keep.min(s.top_k as usize);
    }
    let mut running = 0.0;
    for (i, p) in probs[..keep].iter().enumerate() {
        if p.0 < s.min_p * probs[0].0 {
            keep = i;
            break;
        }
        running += p.0;
        if running >= s.top_p * total {
            keep = i + 1;
            break;
        }
    }
    let kept = &probs[..keep.max(1)];
    let sum: f32 = kept.iter().map(|p| p.0).sum();
    let u = (f64::from(rng.next_u32()) / 4_294_967_296.0) as f32 * sum;
    let mut acc = 0.0;
    for p in kept {
        acc += p.0;
        if u < acc {
            return p.1;
        }
    }
    kept[kept.len() - 1].1
}

/// A promise of what `draws` resolves to.
fn promise(draws: impl Future<Output = Result<Draws, JsError>> + 'static) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        draws.await.map(JsValue::from).map_err(JsValue::from)
    })
}

#[wasm_bindgen]
impl Playground {
    /// The adapter and the features the crate uses on it.
    pub fn adapter(&self) -> String {
        self.inner.ctx.summary()
    }

    /// Tokens per row (K).
    pub fn cols(&self) -> u32 {
        self.inner.row.len() as u32
    }

    /// Draws per batch.
    pub fn rows(&self) -> u32 {
        self.inner.rows
    }

    /// `batches` batches of draws on the GPU with these settings (top_k 0: off; soft_cap 0:
    /// off), starting at batch `first_batch` of the page's noise; resolves to [`Draws`].
    #[allow(clippy::too_many_arguments)]
    pub fn sample(
        &self,
        temperature: f32,
        top_k: u32,
        top_p: f32,
        min_p: f32,
        soft_cap: f32,
        first_batch: u32,
        batches: u32,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let s = settings(temperature, top_k, top_p, min_p, soft_cap);
        promise(async move { inner.sample(s, first_batch, batches).await })
    }

    /// The same draws made on the CPU in wasm after reading the logits back, as web engines
    /// do today; resolves to [`Draws`].
    #[allow(clippy::too_many_arguments)]
    pub fn sample_on_cpu(
        &self,
        temperature: f32,
        top_k: u32,
        top_p: f32,
        min_p: f32,
        soft_cap: f32,
        batches: u32,
    ) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        let s = settings(temperature, top_k, top_p, min_p, soft_cap);
        promise(async move { inner.sample_on_cpu(s, batches).await })
    }

    /// Figure 1 of the paper from the forward kernel: for each temperature in `taus`, the mean
    /// of `samples` soft samples of a 5-class categorical (the expectation), then one sample;
    /// resolves to a Float32Array of 10 values per temperature.
    pub fn figure1(&self, taus: Vec<f32>, samples: u32) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        wasm_bindgen_futures::future_to_promise(async move {
            let class_logits = FIGURE1_PROBS.map(|p: f32| p.ln());
            let logits: Vec<f32> = (0..samples).flat_map(|_| class_logits).collect();
            let mut out = Vec::new();
            for (i, &tau) in taus.iter().enumerate() {
                let args = SampleArgs::new(samples, 5, tau, SEED).with_offset((i as u64) << 32);
                let y = inner
                    .ctx
                    .sample_async(&logits, Mode::Soft, &args)
                    .await
                    .map_err(|e| JsValue::from(js(e)))?;
                for k in 0..5 {
                    let mean = y.iter().skip(k).step_by(5).sum::<f32>() / samples as f32;
                    out.push(mean);
                }
                out.extend_from_slice(&y[..5]);
            }
            Ok(JsValue::from(js_sys::Float32Array::from(&out[..])))
        })
    }
}

/// The class probabilities of Figure 1's categorical distribution.
const FIGURE1_PROBS: [f32; 5] = [0.1, 0.35, 0.3, 0.15, 0.1];
