//! Speculative decoding's verification on the GPU held to the reference (`reference::
//! verify_drafts`): a batch of requests over a sampler test case, and the comparison, async so
//! that the browser suite runs it too.

use super::tokens::{Bias, Processing, TokenCase};
use super::{FILTER_GAP, GUMBEL_GAP, TestRng as Rng};
use gumbel_wgpu::reference::{
    DraftVerdict, TargetRow, acceptance_uniform, gumbel_at, sample_processed_token_row,
    verify_drafts,
};
use gumbel_wgpu::{Element, GpuContext, NoiseRange, RandomState, Verified, VerifyArgs};

/// A token drawn from `q` by inversion.
pub fn draw_from(rng: &mut Rng, q: &[f32]) -> u32 {
    let u = rng.uniform(0.0, 1.0);
    let mut acc = 0.0;
    for (t, &p) in q.iter().enumerate() {
        acc += f64::from(p);
        if u < acc {
            return t as u32;
        }
    }
    (q.len() - 1) as u32
}

/// A batch of requests: `drafts[r]` drafts for request r, its positions rows of a sampler test
/// case (tests/common: language-model-like logits, the sampler's settings mix, rows without a
/// token, banned entries, and where asked a bias, token lists with penalties and masks), drafts
/// drawn from q (a perturbed copy of the logits' softmax, so that both verdicts happen, with
/// zeros where p has none) or,
/// without q, near the argmax.
pub struct Batch {
    pub target: TokenCase<f32>,
    pub offsets: Vec<u32>,
    pub drafts: Vec<u32>,
    pub q: Option<Vec<Vec<f32>>>,
    pub states: Vec<RandomState>,
}

impl Batch {
    pub fn new(cols: u32, drafts_per_request: &[usize], with_q: bool, case: u64) -> Self {
        Self::processed(
            cols,
            drafts_per_request,
            with_q,
            case,
            Bias::None,
            Processing::None,
        )
    }

    pub fn processed(
        cols: u32,
        drafts_per_request: &[usize],
        with_q: bool,
        case: u64,
        bias: Bias,
        processing: Processing,
    ) -> Self {
        let mut rng = Rng::new(case);
        let mut offsets = vec![0u32];
        for &n in drafts_per_request {
            offsets.push(offsets.last().unwrap() + n as u32);
        }
        let positions = *offsets.last().unwrap() as usize + drafts_per_request.len();
        let target =
            TokenCase::<f32>::new(cols, positions, case, bias).with_processing(processing, case);
        let (mut drafts, mut q) = (Vec::new(), Vec::new());
        for (r, &n) in drafts_per_request.iter().enumerate() {
            let first = offsets[r] as usize + r;
            for i in 0..n {
                let row = &target.logits[(first + i) * cols as usize..][..cols as usize];
                // softmax((x + noise) / 0.9) in f64 over the finite logits, as f32.
                let y: Vec<f64> = row
                    .iter()
                    .map(|&v| match v.is_finite() {
                        true => (f64::from(v) + rng.uniform(-0.3, 0.3)) / 0.9,
                        false => f64::NEG_INFINITY,
                    })
                    .collect();
                let top = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if top == f64::NEG_INFINITY {
                    // A row without a finite logit: any distribution will do.
                    q.push(vec![1.0 / cols as f32; cols as usize]);
                    drafts.push(rng.next_u32() % cols);
                    continue;
                }
                // q is 0 at every fifth token (but its largest), where p is not.
                let w: Vec<f64> = y
                    .iter()
                    .enumerate()
                    .map(|(c, v)| match c % 5 == 3 && *v < top {
                        true => 0.0,
                        false => (v - top).exp(),
                    })
                    .collect();
                let total: f64 = w.iter().sum();
                let row_q: Vec<f32> = w.iter().map(|v| (v / total) as f32).collect();
                let d = if with_q {
                    draw_from(&mut rng, &row_q)
                } else if rng.next_u32().is_multiple_of(3) {
                    rng.next_u32() % cols
                } else {
                    // The argmax of the perturbed logits: often the target's.
                    (0..cols)
                        .max_by(|&a, &b| y[a as usize].total_cmp(&y[b as usize]))
                        .unwrap()
                };
                drafts.push(d);
                q.push(row_q);
            }
        }
        let states = (0..drafts_per_request.len() as u64)
            .map(|r| RandomState {
                seed: case * 7_919 + r,
                offset: r * 1_000_003 + (r % 4),
            })
            .collect();
        Self {
            target,
            offsets,
            drafts,
            q: with_q.then_some(q),
            states,
        }
    }

    pub fn cols(&self) -> u32 {
        self.target.cols
    }

    pub fn requests(&self) -> usize {
        self.states.len()
    }

    pub fn q_flat(&self) -> Option<Vec<f32>> {
        self.q.as_ref().map(|q| q.concat())
    }

    pub fn args<'a>(&'a self, q: Option<&'a [f32]>) -> VerifyArgs<'a> {
        let t = &self.target;
        VerifyArgs::new(
            t.cols,
            &t.settings,
            &self.offsets,
            &self.drafts,
            &self.states,
        )
        .with_draft_probs(q)
        .with_bias((t.bias != Bias::None).then_some(t.bias_values.as_slice()))
        .with_lists((!t.lists.is_empty()).then_some(t.lists.as_slice()))
        .with_masks((!t.masks.is_empty()).then_some(t.masks.as_slice()))
        .with_logprobs(true)
    }

    async fn verify_on_gpu<T: Element>(&self, ctx: &GpuContext, range: NoiseRange) -> Verified {
        let logits: Vec<T> = self.target.logits.iter().map(|&v| T::from_f32(v)).collect();
        let q = self.q_flat();
        let args = self.args(q.as_deref()).with_noise_range(range);
        ctx.verify_drafts_async(&logits, &args).await.unwrap()
    }

    /// Position p's logits as `T` holds them.
    pub fn row<T: Element>(&self, p: usize) -> Vec<f32> {
        let cols = self.cols() as usize;
        self.target.logits[p * cols..][..cols]
            .iter()
            .map(|&v| T::from_f32(v).to_f32())
            .collect()
    }

    /// Request r's first position and drafts.
    pub fn span(&self, r: usize) -> (usize, usize) {
        let n = (self.offsets[r + 1] - self.offsets[r]) as usize;
        (self.offsets[r] as usize + r, n)
    }

    pub fn reference<T: Element>(&self, r: usize, range: NoiseRange) -> DraftVerdict {
        let (first, n) = self.span(r);
        let x: Vec<Vec<f32>> = (first..=first + n).map(|p| self.row::<T>(p)).collect();
        let targets: Vec<TargetRow> = x
            .iter()
            .enumerate()
            .map(|(i, logits)| TargetRow {
                logits,
                processing: self.target.processing_of(first + i),
                settings: self.target.settings[first + i],
            })
            .collect();
        let span = self.offsets[r] as usize..self.offsets[r + 1] as usize;
        let q_rows: Option<Vec<&[f32]>> = self
            .q
            .as_ref()
            .map(|q| q[span.clone()].iter().map(Vec::as_slice).collect());
        verify_drafts(
            &targets,
            &self.drafts[span],
            q_rows.as_deref(),
            self.states[r],
            range,
        )
        .unwrap()
    }
}

/// Why the GPU may part from the reference at position `i` of request r: the kept set within
/// the filters' tolerances (tests/common); where the verdicts on the draft differ, the
/// acceptance uniform within rounding of p(d) / q(d); where the same verdict gave different
/// tokens, the position's own draw within Gumbel-max's tolerance, or the residual's two best
/// scores within what f32's p - q carries. None where nothing excuses it.
fn excuse<T: Element>(
    b: &Batch,
    r: usize,
    i: usize,
    range: NoiseRange,
    got: u32,
    verdicts_differ: bool,
) -> Option<String> {
    let (first, n) = b.span(r);
    let state = b.states[r];
    let cols = b.cols();
    let position = RandomState {
        seed: state.seed,
        offset: state.offset.wrapping_add(i as u64 * u64::from(cols)),
    };
    let draw = sample_processed_token_row(
        &b.row::<T>(first + i),
        &b.target.processing_of(first + i),
        &b.target.settings[first + i],
        position,
        range,
        FILTER_GAP,
    )
    .ok()?;
    if draw.kept_near.0 != draw.kept_near.1 {
        return Some(format!("kept set in doubt: {:?}", draw.kept_near));
    }
    let p = |t: u32| {
        draw.kept
            .iter()
            .position(|&c| c == t)
            .map_or(0.0, |j| draw.probs[j])
    };
    if i == n {
        return (draw.gumbel_gap < GUMBEL_GAP || draw.near_tokens.contains(&got))
            .then(|| format!("bonus draw near a tie ({})", draw.gumbel_gap));
    }
    let d = b.drafts[b.offsets[r] as usize + i];
    let q_row = b.q.as_ref().map(|q| &q[b.offsets[r] as usize + i]);
    let q = |t: u32| q_row.map_or(f64::from(u8::from(t == d)), |q| f64::from(q[t as usize]));
    let u = acceptance_uniform(state, cols, n, i, range);
    // p(d) in f32 carries exp's few ULP of (l - m) / tau - ln Z (|.| up to about 30) and u's
    // and the product's roundings: 1e-5 relative covers them.
    if verdicts_differ {
        return ((u * q(d) - p(d)).abs() <= 1e-5 * p(d).max(u * q(d))).then(|| {
            format!(
                "acceptance within rounding: u q = {}, p = {}",
                u * q(d),
                p(d)
            )
        });
    }
    // The residual's scores; each ln(p - q) carries f32's error of p (1e-5 relative) over p - q.
    let score = |t: u32| {
        let left = p(t) - q(t);
        let g = gumbel_at(range, position.seed, position.offset.wrapping_add(t.into()));
        (left > 0.0).then(|| (left.ln() + g, 1e-5 * (p(t) + q(t)) / left + GUMBEL_GAP))
    };
    let best = draw
        .kept
        .iter()
        .filter_map(|&t| score(t).map(|s| (s, t)))
        .max_by(|a, b| a.0.0.total_cmp(&b.0.0))?;
    let (mine, theirs) = (score(got)?, best.0);
    (theirs.0 - mine.0 <= mine.1 + theirs.1)
        .then(|| format!("residual near a tie: {} against {}", mine.0, theirs.0))
}

/// Holds every request of `b` verified on the GPU to the reference: the same count and tokens,
/// or a difference that `excuse` explains at its first position; log-probabilities within the
/// sampler's tolerances. Returns how many requests were excused.
pub async fn check_batch<T: Element>(ctx: &GpuContext, b: &Batch, range: NoiseRange) -> usize {
    let got = b.verify_on_gpu::<T>(ctx, range).await;
    let mut excused = 0;
    for r in 0..b.requests() {
        let want = b.reference::<T>(r, range);
        let tokens = &got.tokens[r];
        if *tokens != want.tokens || got.accepted[r] as usize != want.accepted {
            // The first position where the verdicts differ, or else where the tokens drawn do.
            let i = (got.accepted[r] as usize).min(want.accepted);
            let verdicts_differ = got.accepted[r] as usize != want.accepted;
            let why = excuse::<T>(b, r, i, range, tokens[i], verdicts_differ);
            assert!(
                why.is_some(),
                "K = {}, request {r}, position {i}: {tokens:?} ({} accepted) against {want:?}",
                b.cols(),
                got.accepted[r]
            );
            excused += 1;
            continue;
        }
        for (j, (&[_, lp], &want_lp)) in got.logprobs[r].iter().zip(&want.logprobs).enumerate() {
            if want_lp.is_nan() {
                assert!(lp.is_nan(), "request {r}, token {j}: {lp}");
                continue;
            }
            // The sampler's bound (tests/common/tokens.rs, check): the kept weight's f32 sums
            // over up to K / 64 + 16 terms a row, then ln and exp's ULP.
            let sums = (f64::from(b.cols()) / 64.0 + 24.0) * f64::from(f32::EPSILON);
            let tol = sums + 1e-5 * (1.0 + want_lp.abs());
            assert!(
                (f64::from(lp) - want_lp).abs() <= tol,
                "K = {}, request {r}, token {j}: log-probability {lp} against {want_lp}",
                b.cols()
            );
        }
    }
    assert!(
        excused * 20 <= b.requests(),
        "{excused} of {} requests near a threshold",
        b.requests()
    );
    // Both verdicts are among them (requests that take every draft: greedy_gpu_targets_...).
    let full = (0..b.requests())
        .filter(|&r| b.offsets[r + 1] - b.offsets[r] >= 2)
        .filter(|&r| got.accepted[r] == b.offsets[r + 1] - b.offsets[r])
        .count();
    let drafts: u32 = b.offsets[b.requests()];
    let taken: u32 = got.accepted.iter().sum();
    println!(
        "K = {}: {taken} of {drafts} drafts accepted, {full} of {} requests took all, {excused} excused",
        b.cols(),
        b.requests()
    );
    if drafts >= 50 {
        assert!(taken > 0 && taken < drafts);
    }
    excused
}
