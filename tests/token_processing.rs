//! The token sampler's token lists (penalties, sparse bias) and masks: against the f64
//! reference on the same random words, by chi-square, batch invariance, and refusals.

mod common;

use common::tokens::{
    Bias, CHI_SQUARE_CRITICAL, Compared, Processing, TokenCase, check, chi_square_of, lm_logits,
    settings_mix,
};
use common::{TestRng as Rng, ctx, expect_invalid, one_at_a_time};
use gumbel_wgpu::reference::{RowProcessing, raw_top_logprobs, sample_processed_token_row};
use gumbel_wgpu::{
    Element, Error, GpuSlice, HostTokenNoise, NoiseRange, RandomState, SampleTokensCall, Shape,
    StorageType, Strategy, TokenArgs, TokenEntry, TokenLists, TokenMasks, TokenNoise,
    TokenSettings, Tokens, mask_words,
};
use half::{bf16, f16};

const NONE: u32 = u32::MAX;

/// Samples a case and holds it to the reference; `None` where a driver that counts loop
/// iterations (llvmpipe) refuses it by name: the search of a token list for each element of
/// each pass takes it past the budget for the longest rows.
fn compare<T: Element>(
    cols: u32,
    rows: usize,
    case: u64,
    bias: Bias,
    processing: Processing,
    strategy: Option<Strategy>,
) -> Option<Compared> {
    let case = TokenCase::<T>::new(cols, rows, case, bias).with_processing(processing, case + 7);
    sampled(&case, strategy).map(|got| check(&case, &got))
}

fn sampled<T: Element>(case: &TokenCase<T>, strategy: Option<Strategy>) -> Option<Tokens> {
    match ctx().sample_tokens(&case.logits, &case.args(strategy)) {
        Err(Error::OverLimits(message)) if message.contains("loop iterations") => {
            assert!(case.cols > 32_000, "K = {}: {message}", case.cols);
            eprintln!("K = {}: refused on this driver: {message}", case.cols);
            None
        }
        got => Some(got.unwrap()),
    }
}

fn matches_reference<T: Element>() {
    let (mut near, mut total) = (0, 0);
    for (i, (cols, rows)) in [(7, 28), (32_000, 28), (151_936, 14), (262_144, 14)]
        .into_iter()
        .enumerate()
    {
        for (bias, processing) in [
            (Bias::None, Processing::Shared),
            (Bias::Shared, Processing::PerRow),
        ] {
            if let Some(c) = compare::<T>(cols, rows, 200 + i as u64, bias, processing, None) {
                near += c.near;
                total += c.rows;
            }
        }
    }
    eprintln!(
        "{:?}: {near} of {total} rows too near a threshold",
        T::STORAGE
    );
    assert!(
        near * 10 <= total,
        "{near} of {total} rows near a threshold"
    );
}

#[test]
fn lists_and_masks_match_reference_f32() {
    let _turn = one_at_a_time();
    matches_reference::<f32>();
}

#[test]
fn lists_and_masks_match_reference_f16() {
    let _turn = one_at_a_time();
    matches_reference::<f16>();
}

#[test]
fn lists_and_masks_match_reference_bf16() {
    let _turn = one_at_a_time();
    matches_reference::<bf16>();
}

/// Every workgroup width, and rows split over workgroups, give the same tokens with lists and
/// masks.
#[test]
fn workgroup_widths_and_split_rows_agree_with_lists_and_masks() {
    let _turn = one_at_a_time();
    let whole = [64, 256, 1024].map(|size| Strategy::RowPerWorkgroup { size });
    let split = [(64, 7), (256, 3)].map(|(size, slices)| Strategy::SplitRow { size, slices });
    // Split first: workgroup memory is not cleared between workgroups on lavapipe, and a whole
    // row's listed bits left behind would hide a slice that failed to load its list.
    for strategy in split.into_iter().chain(whole) {
        let strategy = Some(strategy);
        let c = compare::<f32>(5000, 28, 9, Bias::PerRow, Processing::PerRow, strategy).unwrap();
        assert!(c.near * 10 <= c.rows);
    }
}

/// Chi-square of tokens drawn with penalties, a sparse bias, a mask and top-n-sigma, each row
/// with its own seed, against the reference's exact processed distribution; tokens the mask
/// or a ban leaves out are never drawn.
#[test]
fn processed_frequencies_match_by_chi_square() {
    let _turn = one_at_a_time();
    let logits = [0.3f32, -1.2, 2.0, 0.0, 0.9, -0.4, 1.5, -2.5, 1.9, 0.1];
    let list = [
        TokenEntry::new(0, 0).in_prompt(true),
        TokenEntry::new(2, 3),
        TokenEntry::new(3, 0).with_bias(1.0),
        TokenEntry::new(6, 1).with_bias(-0.5).in_prompt(true),
        TokenEntry::new(7, 0).with_bias(f32::NEG_INFINITY),
        TokenEntry::new(8, 2),
    ];
    // Tokens 4 and 9 masked out.
    let mask = [0b01_1110_1111u32];
    let base = TokenSettings::new(1.0)
        .with_list(0, list.len() as u32)
        .with_mask(0);
    for settings in [
        base.with_penalties(1.5, 0.3, 0.5),
        base.with_penalties(0.7, 0.0, 0.0),
        base.with_penalties(1.2, 0.4, 0.2).with_top_n_sigma(1.0),
        base.with_penalties(1.0, 0.1, 0.3)
            .with_top_k(4)
            .with_top_p(0.9),
    ] {
        let (chi2, dof) = chi_square(settings, &logits, &list, &mask);
        eprintln!("{settings:?}: chi-square {chi2:.2} ({dof} dof)");
        assert!(dof >= 1, "{settings:?}");
        assert!(
            chi2 < CHI_SQUARE_CRITICAL[dof],
            "{settings:?}: chi-square {chi2} at {dof} dof"
        );
    }
}

fn chi_square(
    settings: TokenSettings,
    logits: &[f32],
    list: &[TokenEntry],
    mask: &[u32],
) -> (f64, usize) {
    let rows = 100_000usize;
    let cols = logits.len() as u32;
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits.iter().copied()).collect();
    let all = vec![settings; rows];
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 0x0dd5_0000 + r,
            offset: r % 5,
        })
        .collect();
    let args = TokenArgs::new(cols, &all, &states)
        .with_lists(list)
        .with_masks(mask);
    let got = ctx().sample_tokens(&batch, &args).unwrap();
    let processing = RowProcessing {
        list,
        mask: Some(mask),
        ..RowProcessing::default()
    };
    let want = sample_processed_token_row(
        logits,
        &processing,
        &settings,
        states[0],
        NoiseRange::Standard,
        0.0,
    )
    .unwrap();
    chi_square_of(&got.tokens, &want, &format!("{settings:?}"))
}

/// The same requests, each with its own list and mask (or all sharing one), in shuffled
/// batches with others around them, draw bit-identical tokens and log-probabilities.
#[test]
fn batches_are_invariant_with_lists_and_masks() {
    let _turn = one_at_a_time();
    for shared in [false, true] {
        let cols = 3000u32;
        let requests = 21usize;
        let case = TokenCase::<f32>::new(cols, requests, 31, Bias::None).with_processing(
            if shared {
                Processing::Shared
            } else {
                Processing::PerRow
            },
            32,
        );
        let words = mask_words(cols) as usize;
        let run = |order: &[usize]| {
            let mut lists = Vec::new();
            let mut masks = Vec::new();
            let mut settings = Vec::new();
            let mut batch = Vec::new();
            for &r in order {
                let p = case.processing_of(r);
                let mut s = case.settings[r];
                if !p.list.is_empty() {
                    s = s.with_list(lists.len() as u32, p.list.len() as u32);
                    lists.extend_from_slice(p.list);
                }
                if let Some(mask) = p.mask {
                    s = s.with_mask((masks.len() / words) as u32);
                    masks.extend_from_slice(mask);
                }
                settings.push(s);
                batch.extend_from_slice(&case.logits[r * cols as usize..][..cols as usize]);
            }
            let index: Vec<u32> = order.iter().map(|&r| r as u32).collect();
            let args = TokenArgs::new(cols, &settings, &case.states)
                .with_noise(HostTokenNoise::Indexed {
                    states: &case.states,
                    index: &index,
                })
                .with_lists((!lists.is_empty()).then_some(lists.as_slice()))
                .with_masks((!masks.is_empty()).then_some(masks.as_slice()))
                .with_logprobs(true);
            let got = ctx().sample_tokens(&batch, &args).unwrap();
            order
                .iter()
                .zip(got.tokens.iter().zip(&got.logprobs))
                .map(|(&r, (&t, p))| (r, (t, p[0].to_bits(), p[1].to_bits())))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let mut rng = Rng::new(78);
        let first = run(&(0..12).collect::<Vec<_>>());
        let mut order: Vec<usize> = (0..requests).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.next_u32() as usize % (i + 1));
        }
        let second = run(&order);
        let third = run(&order[..15]);
        for r in 0..12 {
            assert_eq!(first[&r], second[&r], "request {r}, shared {shared}");
            if let Some(t) = third.get(&r) {
                assert_eq!(first[&r], *t, "request {r}, shared {shared}");
            }
        }
    }
}

/// A zeroed repetition penalty is none, and a call without masks reads no row's mask: the words
/// that were reserved keep a row's draw as it was.
#[test]
fn zeroed_new_settings_change_nothing() {
    let _turn = one_at_a_time();
    let cols = 500u32;
    let mut rng = Rng::new(3);
    let batch: Vec<f32> = (0..8).flat_map(|_| lm_logits(&mut rng, cols)).collect();
    let settings = settings_mix(cols, 8);
    let states: Vec<RandomState> = (0..8)
        .map(|r| RandomState {
            seed: 40 + r,
            offset: r,
        })
        .collect();
    let zeroed: Vec<TokenSettings> = settings
        .iter()
        .map(|s| {
            let mut s = *s;
            s.repetition_penalty = 0.0;
            s.mask = 0;
            s
        })
        .collect();
    let run = |settings: &[TokenSettings]| {
        let (ctx, rows) = (ctx(), settings.len() as u32);
        let input = ctx.upload(&batch).unwrap();
        let settings = ctx.upload(settings).unwrap();
        let states = ctx.upload(&states).unwrap();
        let tokens = ctx.storage_buffer(4 * u64::from(rows)).unwrap();
        let call = SampleTokensCall::new(
            StorageType::F32,
            Shape::new(rows, cols),
            GpuSlice::from(&input),
            GpuSlice::from(&settings),
            TokenNoise::per_row(GpuSlice::from(&states)),
            GpuSlice::from(&tokens),
        );
        ctx.submit_and_wait("tokens", |e| ctx.kernels().record_sample_tokens(e, &call))
            .unwrap();
        ctx.read_back::<u32>(&tokens, rows as usize).unwrap()
    };
    let want = run(&settings);
    assert!(want.iter().filter(|&&t| t != NONE).count() >= 6);
    assert_eq!(run(&zeroed), want);
}

#[test]
fn bad_lists_and_masks_are_refused_by_name() {
    let _turn = one_at_a_time();
    let cols = 10u32;
    let logits = vec![0.0f32; 20];
    let states = [RandomState { seed: 1, offset: 0 }; 2];
    let good = [
        TokenEntry::new(1, 2),
        TokenEntry::new(4, 0),
        TokenEntry::new(9, 1),
    ];
    let mask = [0x3ffu32, 0x0f0];
    let call = |second: TokenSettings, list: &[TokenEntry], masks: Option<&[u32]>| {
        let all = [TokenSettings::new(1.0).with_list(0, 1), second];
        let args = TokenArgs::new(cols, &all, &states)
            .with_lists(list)
            .with_masks(masks);
        ctx().sample_tokens(&logits, &args)
    };
    let listed = TokenSettings::new(1.0).with_list(0, 3);
    // The list itself.
    for (list, needle) in [
        ([good[0], good[2], good[1]], "lists[2].token = 4 follows 9"),
        ([good[0], good[0], good[1]], "lists[1].token = 1 follows 1"),
        (
            [good[0], good[1], TokenEntry::new(10, 0)],
            "lists[2].token = 10",
        ),
        (
            [good[0], good[1].with_bias(f32::NAN), good[2]],
            "lists[1].bias",
        ),
        (
            [good[0], good[1], good[2].with_bias(f32::INFINITY)],
            "lists[2].bias",
        ),
        (
            [
                good[0],
                TokenEntry {
                    in_prompt: 2,
                    ..good[1]
                },
                good[2],
            ],
            "lists[1].in_prompt",
        ),
    ] {
        expect_invalid(call(listed, &list, None), needle);
    }
    // The windows and the masks.
    expect_invalid(
        call(TokenSettings::new(1.0).with_list(1, 3), &good, None),
        "settings[1]: list_start = 1 and list_len = 3",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_mask(2), &good, Some(&mask)),
        "settings[1].mask = 2: 2 masks",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_mask(0), &good, None),
        "settings[1].mask = 0: no masks",
    );
    expect_invalid(
        call(TokenSettings::new(1.0), &good, Some(&mask[..1][..0])),
        "0 mask words",
    );
    expect_invalid(
        call(
            TokenSettings::new(1.0).with_list(0, TokenSettings::LIST_LEN_MAX + 1),
            &good,
            None,
        ),
        "settings[1].list_len",
    );
    // The top entries.
    let all = [TokenSettings::new(1.0); 2];
    let args = TokenArgs::new(cols, &all, &states).with_top_logprobs(21, true);
    expect_invalid(ctx().sample_tokens(&logits, &args), "top_logprobs = 21");
    // The penalties.
    for (settings, needle) in [
        (
            listed.with_penalties(f32::NAN, 0.0, 0.0),
            "settings[1].repetition_penalty",
        ),
        (
            listed.with_penalties(-1.0, 0.0, 0.0),
            "settings[1].repetition_penalty",
        ),
        (
            listed.with_penalties(1.0, f32::NAN, 0.0),
            "settings[1].frequency_penalty",
        ),
        (
            listed.with_penalties(1.0, 0.0, f32::INFINITY),
            "settings[1].presence_penalty",
        ),
    ] {
        expect_invalid(call(settings, &good, None), needle);
    }
}

/// Lists, windows, masks and penalties the host would refuse, in buffers of the caller's, give
/// that row no token and leave the other rows alone; so does a list longer than the call's
/// `longest`. The buffers hold more than the call says (valid lists and a mask that allows every
/// token), so that a window or a mask index past the call's counts reads good data if the
/// kernel lets it through.
#[test]
fn kernel_gives_rows_with_bad_lists_no_token() {
    let _turn = one_at_a_time();
    let ctx = ctx();
    let cols = 40u32;
    // 0..3 in order; 3..5 out of order; 5..7 repeated; 7..8 past K; 8..9 a NaN bias; 9..10
    // no penalty applies (count 0, not in the prompt); 10..13 past the call's 10 entries.
    let lists = [
        TokenEntry::new(2, 1),
        TokenEntry::new(5, 0).with_bias(1.0),
        TokenEntry::new(30, 2),
        TokenEntry::new(9, 0),
        TokenEntry::new(8, 0),
        TokenEntry::new(7, 0),
        TokenEntry::new(7, 1),
        TokenEntry::new(40, 0),
        TokenEntry::new(3, 0).with_bias(f32::NAN),
        TokenEntry::new(11, 0),
        TokenEntry::new(12, 0),
        TokenEntry::new(13, 1),
        TokenEntry::new(14, 1),
    ];
    let count = 10u32;
    // Three masks allowing every token, of which the call names two.
    let masks = vec![u32::MAX; 3 * mask_words(cols) as usize];
    let good = TokenSettings::new(1.0).with_penalties(1.2, 0.5, 0.1);
    let quiet = TokenSettings::new(1.0).with_list(9, 1);
    let bad = [
        good.with_list(3, 2),
        good.with_list(5, 2),
        good.with_list(7, 1),
        good.with_list(8, 1),
        good.with_list(9, 3),
        good.with_list(u32::MAX, 2),
        good.with_mask(2),
        quiet.with_penalties(f32::NAN, 0.0, 0.0),
        quiet.with_penalties(-1.0, 0.0, 0.0),
        quiet.with_penalties(1.0, f32::INFINITY, 0.0),
        quiet.with_penalties(1.0, 0.0, f32::NAN),
        good.with_list(0, TokenSettings::LIST_LEN_MAX + 1),
    ];
    let mut settings = vec![good.with_list(0, 3).with_mask(1), good.with_mask(0), quiet];
    let fine = settings.len();
    settings.extend(bad);
    let rows = settings.len() as u32;
    let logits: Vec<f32> = (0..rows * cols).map(|i| (i % 7) as f32 * 0.3).collect();
    let input = ctx.upload(&logits).unwrap();
    let settings_buffer = ctx.upload(&settings).unwrap();
    let list_buffer = ctx.upload(&lists).unwrap();
    let mask_buffer = ctx.upload(&masks).unwrap();
    let tokens = ctx.storage_buffer(4 * u64::from(rows)).unwrap();
    let split = Strategy::SplitRow {
        size: 64,
        slices: 3,
    };
    // Lists no longer than 2 a row: the first row's list of 3 is bad too.
    for (strategy, longest) in [(None, count), (Some(split), count), (None, 2)] {
        let mut call = SampleTokensCall::new(
            StorageType::F32,
            Shape::new(rows, cols),
            GpuSlice::from(&input),
            GpuSlice::from(&settings_buffer),
            TokenNoise::call(3, 0),
            GpuSlice::from(&tokens),
        )
        .with_lists(TokenLists::new(GpuSlice::from(&list_buffer), count).with_longest(longest))
        .with_masks(TokenMasks {
            words: GpuSlice::from(&mask_buffer),
            count: 2,
        });
        call.strategy = strategy;
        ctx.submit_and_wait("tokens", |encoder| {
            ctx.kernels().record_sample_tokens(encoder, &call)
        })
        .unwrap();
        let got: Vec<u32> = ctx.read_back(&tokens, rows as usize).unwrap();
        let too_long = usize::from(longest < 3);
        assert_eq!(
            &got[..too_long],
            &vec![NONE; too_long][..],
            "{longest}: {got:?}"
        );
        assert!(
            got[too_long..fine].iter().all(|&t| t < cols),
            "{strategy:?}: {got:?}"
        );
        assert_eq!(&got[fine..], &vec![NONE; bad.len()][..], "{strategy:?}");
    }
}

/// A device with WebGPU's default limits (8 storage buffers a stage) refuses calls with lists
/// or masks by the limit's name, and still runs the calls without them.
#[test]
fn default_limits_refuse_lists_and_masks_by_name() {
    let _turn = one_at_a_time();
    let ctx = common::default_limits_context();
    let cols = 100u32;
    let logits = vec![0.5f32; 2 * cols as usize];
    let states = [RandomState { seed: 1, offset: 0 }; 2];
    let settings = [TokenSettings::new(1.0).with_list(0, 1); 2];
    let list = [TokenEntry::new(3, 1)];
    let args = TokenArgs::new(cols, &settings, &states).with_lists(&list[..]);
    match ctx.sample_tokens(&logits, &args) {
        Err(gumbel_wgpu::Error::OverLimits(message)) => {
            assert!(
                message.contains("max_storage_buffers_per_shader_stage"),
                "{message}"
            )
        }
        other => panic!("expected OverLimits, got {other:?}"),
    }
    let plain = [TokenSettings::new(1.0); 2];
    let got = ctx
        .sample_tokens(&logits, &TokenArgs::new(cols, &plain, &states))
        .unwrap();
    assert!(got.tokens.iter().all(|&t| t < cols));
}

/// The top log-probabilities, raw and processed, against the reference: with and without
/// lists and masks, at every storage type and at the longest vocabularies.
fn top_logprobs_match<T: Element>() {
    for (i, (cols, rows)) in [(7, 28), (32_000, 28), (262_144, 14)]
        .into_iter()
        .enumerate()
    {
        for (n, processing) in [(20, Processing::None), (5, Processing::PerRow)] {
            let case = TokenCase::<T>::new(cols, rows, 300 + i as u64, Bias::Shared)
                .with_processing(processing, 301)
                .with_top(n);
            let Some(got) = sampled(&case, None) else {
                continue;
            };
            assert_eq!(got.top.len(), rows);
            let c = check(&case, &got);
            assert!(c.near * 10 <= c.rows, "{} of {} rows near", c.near, c.rows);
        }
    }
}

#[test]
fn top_logprobs_match_reference_f32() {
    let _turn = one_at_a_time();
    top_logprobs_match::<f32>();
}

#[test]
fn top_logprobs_match_reference_bf16() {
    let _turn = one_at_a_time();
    top_logprobs_match::<bf16>();
}

/// A row whose 20 largest logits all fall to one invocation (blocks 1,024 apart, for any
/// workgroup width up to 1,024) still has all 20 top entries: each invocation keeps as many as
/// are asked for.
#[test]
fn top_logprobs_of_a_row_whose_best_share_one_invocation() {
    let _turn = one_at_a_time();
    let cols = 5 * 4096u32;
    let mut rng = Rng::new(12);
    let mut logits = lm_logits(&mut rng, cols);
    for (i, c) in (0..5)
        .flat_map(|k| (0..4).map(move |lane| 4096 * k + lane))
        .enumerate()
    {
        logits[c] = 20.0 + i as f32 * 0.25;
    }
    let settings = [
        TokenSettings::new(1.0),
        TokenSettings::new(1.0).with_top_k(30),
        TokenSettings::new(1.0).with_top_k(300).with_top_p(0.99),
    ];
    let batch: Vec<f32> = settings
        .iter()
        .flat_map(|_| logits.iter().copied())
        .collect();
    let states = [RandomState { seed: 5, offset: 0 }; 3];
    let args = TokenArgs::new(cols, &settings, &states).with_top_logprobs(20, true);
    let got = ctx().sample_tokens(&batch, &args).unwrap();
    let want: Vec<u32> = raw_top_logprobs(&logits, 20).iter().map(|e| e.0).collect();
    for (r, s) in settings.iter().enumerate() {
        let raw: Vec<u32> = got.top[r].iter().map(|e| e.token).collect();
        assert_eq!(raw, want, "row {r}");
        let draw = sample_processed_token_row(
            &logits,
            &RowProcessing::default(),
            s,
            states[r],
            NoiseRange::Standard,
            0.0,
        )
        .unwrap();
        let processed: Vec<u32> = got.top_processed[r].iter().map(|e| e.token).collect();
        let kept: Vec<u32> = draw.processed_top(20).iter().map(|e| e.0).collect();
        assert_eq!(processed, kept, "row {r}");
    }
}
