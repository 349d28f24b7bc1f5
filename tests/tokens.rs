//! The token sampler against the f64 reference on the same random words, its distributions,
//! its batch invariance, and its refusals.

mod common;

use common::tokens::{
    Bias, CHI_SQUARE_CRITICAL, Compared, TokenCase, check, chi_square_of, lm_logits, settings_mix,
};
use common::{TestRng as Rng, assert_token_near, ctx, expect_invalid, one_at_a_time};
use gumbel_wgpu::reference::sample_token_row;
use gumbel_wgpu::{
    BlockOrder, Element, GpuContext, HostTokenNoise, RandomState, StorageType, Strategy, TokenArgs,
    TokenSettings,
};
use half::{bf16, f16};

const NONE: u32 = u32::MAX;

/// Samples a [`TokenCase`] on the test device and holds it to the reference.
fn compare<T: Element>(
    cols: u32,
    rows: usize,
    case: u64,
    bias: Bias,
    strategy: Option<Strategy>,
) -> Compared {
    let case = TokenCase::<T>::new(cols, rows, case, bias);
    let got = ctx()
        .sample_tokens(&case.logits, &case.args(strategy))
        .unwrap();
    check(&case, &got)
}

fn matches_reference<T: Element>() {
    let mut near = 0;
    let mut total = 0;
    let mut worst = (0f64, 0f64);
    for (i, (cols, rows)) in [(1, 14), (7, 28), (32_000, 28), (151_936, 14), (262_144, 14)]
        .into_iter()
        .enumerate()
    {
        for bias in [Bias::None, Bias::Shared, Bias::PerRow] {
            let c = compare::<T>(cols, rows, 100 + i as u64, bias, None);
            near += c.near;
            total += c.rows;
            worst = (worst.0.max(c.worst.0), worst.1.max(c.worst.1));
        }
    }
    eprintln!(
        "{:?}: {near} of {total} rows too near a threshold to compare; log-probabilities at \
         worst {:.0}% (raw) and {:.0}% (sampled) of their bounds",
        T::STORAGE,
        100.0 * worst.0,
        100.0 * worst.1
    );
    assert!(
        near * 10 <= total,
        "{near} of {total} rows near a threshold"
    );
}

#[test]
fn matches_reference_f32() {
    let _turn = one_at_a_time();
    matches_reference::<f32>();
}

#[test]
fn matches_reference_f16() {
    let _turn = one_at_a_time();
    matches_reference::<f16>();
}

#[test]
fn matches_reference_bf16() {
    let _turn = one_at_a_time();
    matches_reference::<bf16>();
}

/// Every workgroup width gives the same tokens: top-p's sums are exact integers.
#[test]
fn workgroup_widths_agree() {
    let _turn = one_at_a_time();
    for size in [64, 256, 1024] {
        let strategy = Some(Strategy::RowPerWorkgroup { size });
        let c = compare::<f32>(5000, 28, 7, Bias::PerRow, strategy);
        assert!(c.near * 10 <= c.rows);
    }
}

/// Rows spread over several workgroups against the reference, for every row of the mix: the
/// paths split rows take (greedy, plain, min-p, top-k with top-p and min-p) and the rows left
/// to a workgroup a row (top-p without top-k, top-k past 256, top-n-sigma). With one slice, with
/// slices that split a row unevenly, and with more slices than a row has blocks (K = 7: empty
/// slices).
#[test]
fn split_rows_match_reference() {
    let _turn = one_at_a_time();
    let cases = [
        (7, 15, 64, 4),
        (5000, 30, 64, 1),
        (5000, 30, 256, 3),
        (70_000, 15, 128, 64),
        (70_000, 15, 256, 5),
    ];
    for (i, (cols, rows, size, slices)) in cases.into_iter().enumerate() {
        let strategy = Some(Strategy::SplitRow { size, slices });
        for bias in [Bias::None, Bias::PerRow] {
            let c = compare::<f32>(cols, rows, 300 + i as u64, bias, strategy);
            assert!(
                c.near * 10 <= c.rows,
                "{cols} x {slices} slices: {} near",
                c.near
            );
        }
    }
    let c = compare::<bf16>(
        70_000,
        15,
        310,
        Bias::Shared,
        Some(Strategy::SplitRow {
            size: 128,
            slices: 9,
        }),
    );
    assert!(c.near * 10 <= c.rows);
}

/// Top-p over rows that a dense bias lifts, with no ban: the nucleus is cut at a share of the
/// weight of the biased l. (A total over the logits alone would be smaller, and its cut keep too
/// few tokens; a mask would hide that, its banned tokens adding weight back.)
#[test]
fn top_p_weighs_the_biased_logits() {
    let _turn = one_at_a_time();
    let (cols, rows) = (32_000, 32);
    let mut case = TokenCase::<f32>::new(cols, rows, 450, Bias::Shared);
    case.bias_values = (0..cols)
        .map(|c| if c % 16 == 0 { 2.5 } else { 0.0 })
        .collect();
    for s in &mut case.settings {
        *s = TokenSettings::new(0.8).with_top_p(0.9);
    }
    let got = ctx().sample_tokens(&case.logits, &case.args(None)).unwrap();
    let c = check(&case, &got);
    assert!(c.near * 10 <= c.rows, "{} of {} near", c.near, c.rows);
}

/// The block order that the test device does not take by default (on a CPU driver, GPUs'
/// interleaved walk) against the reference: rows whole at several widths, and split.
#[test]
fn the_other_block_order_matches_reference() {
    let _turn = one_at_a_time();
    let other = match ctx().kernels().block_order() {
        BlockOrder::Contiguous => BlockOrder::Interleaved,
        BlockOrder::Interleaved => BlockOrder::Contiguous,
    };
    let other_ctx = GpuContext::new().unwrap().with_block_order(other);
    let cases = [
        (5000, 28, Strategy::RowPerWorkgroup { size: 64 }),
        (32_000, 14, Strategy::RowPerWorkgroup { size: 256 }),
        (
            70_000,
            15,
            Strategy::SplitRow {
                size: 128,
                slices: 5,
            },
        ),
    ];
    for (i, (cols, rows, strategy)) in cases.into_iter().enumerate() {
        let case = TokenCase::<f32>::new(cols, rows, 400 + i as u64, Bias::PerRow);
        let got = other_ctx
            .sample_tokens(&case.logits, &case.args(Some(strategy)))
            .unwrap();
        let c = check(&case, &got);
        assert!(
            c.near * 10 <= c.rows,
            "{other:?} at {cols}: {} near",
            c.near
        );
    }
}

/// Chi-square of sampled tokens, each row with its own seed, against the reference's exact
/// filtered probabilities.
fn chi_square(settings: TokenSettings, logits: &[f32]) -> (f64, usize) {
    let rows = 100_000usize;
    let cols = logits.len() as u32;
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits.iter().copied()).collect();
    let all = vec![settings; rows];
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 0x5eed_0000 + r,
            offset: r % 3,
        })
        .collect();
    let got = ctx()
        .sample_tokens(&batch, &TokenArgs::new(cols, &all, &states))
        .unwrap();
    let want = sample_token_row(logits, None, &settings, states[0]).unwrap();
    chi_square_of(&got.tokens, &want, &format!("{settings:?}"))
}

#[test]
fn filtered_frequencies_match_by_chi_square() {
    let _turn = one_at_a_time();
    let logits = [0.3f32, -1.2, 2.0, 0.0, 0.9, -0.4, 1.5, -2.5, 1.9, 0.1];
    for (settings, kept) in [
        (TokenSettings::new(1.0).with_top_k(4), 4),
        (TokenSettings::new(0.8).with_top_p(0.7), 0),
        (TokenSettings::new(1.2).with_min_p(0.2), 0),
        (
            TokenSettings::new(1.0)
                .with_top_k(6)
                .with_top_p(0.9)
                .with_min_p(0.05),
            0,
        ),
        (TokenSettings::new(1.0), 10),
        // sigma = 1.3396 (population): l >= 2.0 - sigma keeps 2.0, 1.9, 1.5 and 0.9.
        (TokenSettings::new(0.9).with_top_n_sigma(1.0), 4),
        (
            TokenSettings::new(1.0)
                .with_top_n_sigma(1.5)
                .with_top_p(0.95),
            0,
        ),
    ] {
        let (chi2, dof) = chi_square(settings, &logits);
        eprintln!("{settings:?}: chi-square {chi2:.2} ({dof} dof)");
        assert!(
            dof >= 1 && (kept == 0 || dof + 1 == kept),
            "{settings:?}: {dof} dof"
        );
        assert!(
            chi2 < CHI_SQUARE_CRITICAL[dof],
            "{settings:?}: chi-square {chi2} at {dof} dof"
        );
    }
}

#[test]
fn greedy_rows_take_the_argmax_and_bad_temperatures_none() {
    let _turn = one_at_a_time();
    let logits = [0.5f32, 3.0, -1.0, 3.0, 2.9, f32::NEG_INFINITY];
    let settings = [
        TokenSettings::greedy(),
        TokenSettings::new(-0.0),
        TokenSettings::new(9e-6).with_top_k(2),
        TokenSettings::greedy().with_soft_cap(2.0),
    ];
    let rows = settings.len();
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits).collect();
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState { seed: r, offset: 0 })
        .collect();
    let mut args = TokenArgs::new(6, &settings, &states);
    args.logprobs = true;
    let got = ctx().sample_tokens(&batch, &args).unwrap();
    // The lower of the two equal maxima, whatever the noise.
    assert_eq!(got.tokens, vec![1; rows]);
    assert!(got.logprobs.iter().all(|p| p[1] == 0.0));
    // A greedy row with a bias that bans its argmax takes the next.
    let bias = [0.0, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0, 0.0];
    args.bias = Some(&bias);
    assert_eq!(
        ctx().sample_tokens(&batch, &args).unwrap().tokens,
        vec![4; rows]
    );
}

/// The same requests in shuffled batches of other sizes, with other requests around them,
/// draw bit-identical tokens and log-probabilities: a row's noise is its own state's.
#[test]
fn batches_are_invariant_to_order_and_company() {
    let _turn = one_at_a_time();
    batch_invariance(3000, None);
}

/// Rows spread over workgroups (as GPUs take rows from SPLIT_FROM tokens by default: the choice
/// depends on K, not the batch): the same bits in any batch, a batch of one row included.
#[test]
fn split_rows_are_invariant_to_order_and_company() {
    let _turn = one_at_a_time();
    let strategy = Strategy::SplitRow {
        size: 128,
        slices: 6,
    };
    batch_invariance(gumbel_wgpu::SPLIT_FROM + 4464, Some(strategy));
}

/// Twelve requests alone, shuffled among nine others, and in the first 17 of those: the same
/// token and log-probability bits.
fn batch_invariance(cols: u32, strategy: Option<Strategy>) {
    let requests = 12usize;
    let mut rng = Rng::new(77);
    let logits: Vec<Vec<f32>> = (0..requests + 9)
        .map(|_| lm_logits(&mut rng, cols))
        .collect();
    let settings = settings_mix(cols, requests + 9);
    let states: Vec<RandomState> = (0..(requests + 9) as u64)
        .map(|r| RandomState {
            seed: 0xabc + r * 13,
            offset: r << 40 | 5,
        })
        .collect();
    let run = |order: &[usize]| {
        let batch: Vec<f32> = order
            .iter()
            .flat_map(|&r| logits[r].iter().copied())
            .collect();
        let row_settings: Vec<TokenSettings> = order.iter().map(|&r| settings[r]).collect();
        let index: Vec<u32> = order.iter().map(|&r| r as u32).collect();
        let args = TokenArgs::new(cols, &row_settings, &states)
            .with_noise(HostTokenNoise::Indexed {
                states: &states,
                index: &index,
            })
            .with_logprobs(true)
            .with_strategy(strategy);
        let got = ctx().sample_tokens(&batch, &args).unwrap();
        order
            .iter()
            .zip(got.tokens.iter().zip(&got.logprobs))
            .map(|(&r, (&t, p))| (r, (t, p[0].to_bits(), p[1].to_bits())))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let first = run(&(0..requests).collect::<Vec<_>>());
    for r in [0, 5] {
        assert_eq!(first[&r], run(&[r])[&r], "request {r} alone");
    }
    let mut order: Vec<usize> = (0..requests + 9).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.next_u32() as usize % (i + 1));
    }
    let second = run(&order);
    let third = run(&order[..17]);
    for r in 0..requests {
        assert_eq!(first[&r], second[&r], "request {r}");
        if let Some(t) = third.get(&r) {
            assert_eq!(first[&r], *t, "request {r}");
        }
        assert_ne!(first[&r].0, NONE);
    }
}

/// One stream for the call gives row r the state (seed, offset + rK).
#[test]
fn call_noise_is_per_row_state_at_row_offsets() {
    let _turn = one_at_a_time();
    let cols = 700u32;
    let rows = 14usize;
    let mut rng = Rng::new(5);
    let batch: Vec<f32> = (0..rows).flat_map(|_| lm_logits(&mut rng, cols)).collect();
    let settings = settings_mix(cols, rows);
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 99,
            offset: 1_000_003 + r * u64::from(cols),
        })
        .collect();
    let by_state = ctx()
        .sample_tokens(&batch, &TokenArgs::new(cols, &settings, &states))
        .unwrap();
    let args = TokenArgs::new(cols, &settings, &states).with_noise(HostTokenNoise::Call {
        seed: 99,
        offset: 1_000_003,
    });
    assert_eq!(ctx().sample_tokens(&batch, &args).unwrap(), by_state);
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let _turn = one_at_a_time();
    let logits = vec![0.0f32; 20];
    let states = [RandomState { seed: 1, offset: 0 }; 2];
    let call = |settings: TokenSettings| {
        let all = [TokenSettings::new(1.0), settings];
        ctx().sample_tokens(&logits, &TokenArgs::new(10, &all, &states))
    };
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_k(0)),
        "settings[1].top_k",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_k(11)),
        "settings[1].top_k",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_p(0.0)),
        "settings[1].top_p",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_p(1.01)),
        "settings[1].top_p",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_p(f32::NAN)),
        "settings[1].top_p",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_min_p(-0.5)),
        "settings[1].min_p",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_min_p(1.5)),
        "settings[1].min_p",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_soft_cap(f32::NAN)),
        "settings[1].soft_cap",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_n_sigma(-1.0)),
        "settings[1].top_n_sigma",
    );
    expect_invalid(
        call(TokenSettings::new(1.0).with_top_n_sigma(f32::INFINITY)),
        "settings[1].top_n_sigma",
    );
    expect_invalid(call(TokenSettings::new(-1.0)), "settings[1].temperature");
    expect_invalid(
        call(TokenSettings::new(f32::INFINITY)),
        "settings[1].temperature",
    );
    let two = [TokenSettings::new(1.0); 2];
    expect_invalid(
        ctx().sample_tokens(&logits[..19], &TokenArgs::new(10, &two, &states)),
        "19 logits",
    );
    expect_invalid(
        ctx().sample_tokens(&logits, &TokenArgs::new(10, &two, &states[..1])),
        "1 random states",
    );
    let bias = [0.0f32; 7];
    let args = TokenArgs::new(10, &two, &states).with_bias(&bias[..]);
    expect_invalid(ctx().sample_tokens(&logits, &args), "7 bias values");
    let index = [0u32, 2];
    let args = TokenArgs::new(10, &two, &states).with_noise(HostTokenNoise::Indexed {
        states: &states,
        index: &index,
    });
    expect_invalid(ctx().sample_tokens(&logits, &args), "state index[1] = 2");
    let args = TokenArgs::new(10, &two, &states).with_noise(HostTokenNoise::Indexed {
        states: &states,
        index: &index[..1],
    });
    expect_invalid(ctx().sample_tokens(&logits, &args), "1 state index entries");
    for strategy in [
        Strategy::SplitRow {
            size: 64,
            slices: 0,
        },
        Strategy::SplitRow {
            size: 64,
            slices: 65,
        },
        Strategy::SplitRow {
            size: 32,
            slices: 2,
        },
        Strategy::RowPerThread,
    ] {
        let args = TokenArgs::new(10, &two, &states).with_strategy(Some(strategy));
        expect_invalid(
            ctx().sample_tokens(&logits, &args),
            "SplitRow { size, slices: 1 to size }",
        );
    }
}

/// Settings the host would refuse, written to a buffer of the caller's, give that row no token
/// (the GPU cannot return an error) and leave the other rows alone.
#[test]
fn kernel_gives_rows_with_bad_settings_no_token() {
    let _turn = one_at_a_time();
    use gumbel_wgpu::{GpuSlice, SampleTokensCall, Shape, TokenNoise};
    let ctx = ctx();
    let cols = 10u32;
    let bad = [
        TokenSettings::new(1.0).with_top_k(0),
        TokenSettings::new(1.0).with_top_k(11),
        TokenSettings::new(1.0).with_top_p(0.0),
        TokenSettings::new(1.0).with_top_p(f32::NAN),
        TokenSettings::new(1.0).with_min_p(1.5),
        TokenSettings::new(1.0).with_soft_cap(-1.0),
        TokenSettings::new(1.0).with_soft_cap(f32::INFINITY),
        TokenSettings::new(1.0).with_top_n_sigma(-0.5),
        TokenSettings::new(1.0).with_top_n_sigma(f32::NAN),
        TokenSettings::new(-2.0),
        TokenSettings::new(f32::NAN),
    ];
    let mut settings = vec![TokenSettings::new(1.0).with_top_p(0.9)];
    settings.extend(bad);
    let rows = settings.len() as u32;
    let logits: Vec<f32> = (0..rows * cols).map(|i| (i % 7) as f32 * 0.3).collect();
    let input = ctx.upload(&logits).unwrap();
    let settings_buffer = ctx.upload(&settings).unwrap();
    let tokens = ctx.storage_buffer(4 * u64::from(rows)).unwrap();
    let call = SampleTokensCall::new(
        StorageType::F32,
        Shape::new(rows, cols),
        GpuSlice::from(&input),
        GpuSlice::from(&settings_buffer),
        TokenNoise::call(3, 0),
        GpuSlice::from(&tokens),
    );
    ctx.submit_and_wait("tokens", |encoder| {
        ctx.kernels().record_sample_tokens(encoder, &call)
    })
    .unwrap();
    let got: Vec<u32> = ctx.read_back(&tokens, rows as usize).unwrap();
    assert!(got[0] < cols);
    assert_eq!(&got[1..], &vec![NONE; bad.len()][..]);
}

/// Settings and states are arrays of their structs, read from the caller's offset: a multiple
/// of their size (64 and 16 bytes) that the device's storage alignment need not divide (on the
/// test device, and on one with WebGPU's default alignment of 256 bytes). An offset that is not
/// such a multiple is refused by name. The entries before the offsets would give every row no
/// token (NaN temperature) and other noise (another seed).
#[test]
fn settings_and_states_are_read_at_their_offsets() {
    let _turn = one_at_a_time();
    read_at_offsets(ctx());
    read_at_offsets(&common::default_limits_context());
}

fn read_at_offsets(ctx: &gumbel_wgpu::GpuContext) {
    use gumbel_wgpu::{GpuSlice, SampleTokensCall, Shape, TokenNoise};
    let (rows, cols) = (6usize, 300u32);
    let mut rng = Rng::new(11);
    let logits: Vec<f32> = (0..rows).flat_map(|_| lm_logits(&mut rng, cols)).collect();
    let settings = settings_mix(cols, rows);
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 40 + r,
            offset: 1000 * r,
        })
        .collect();
    let expected = ctx
        .sample_tokens(&logits, &TokenArgs::new(cols, &settings, &states))
        .unwrap()
        .tokens;
    let mut padded_settings = vec![TokenSettings::new(f32::NAN); 5];
    padded_settings.extend(&settings);
    let mut padded_states = vec![RandomState { seed: 1, offset: 0 }; 3];
    padded_states.extend(&states);
    let input = ctx.upload(&logits).unwrap();
    let settings_buffer = ctx.upload(&padded_settings).unwrap();
    let states_buffer = ctx.upload(&padded_states).unwrap();
    let tokens = ctx.storage_buffer(4 * rows as u64).unwrap();
    let call = |settings_at: u64, states_at: u64| {
        SampleTokensCall::new(
            StorageType::F32,
            Shape::new(rows as u32, cols),
            GpuSlice::from(&input),
            GpuSlice::new(&settings_buffer, settings_at),
            TokenNoise::per_row(GpuSlice::new(&states_buffer, states_at)),
            GpuSlice::from(&tokens),
        )
    };
    ctx.submit_and_wait("tokens", |encoder| {
        ctx.kernels()
            .record_sample_tokens(encoder, &call(5 * 64, 3 * 16))
    })
    .unwrap();
    assert_eq!(ctx.read_back::<u32>(&tokens, rows).unwrap(), expected);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    expect_invalid(
        ctx.kernels()
            .record_sample_tokens(&mut encoder, &call(5 * 64 + 20, 3 * 16)),
        "settings offset 340",
    );
    expect_invalid(
        ctx.kernels()
            .record_sample_tokens(&mut encoder, &call(5 * 64, 3 * 16 + 4)),
        "states offset 52",
    );
}

/// Rows without top-k or top-p are sampled in their first pass, min-p against each invocation's
/// largest l so far. Here most of a row sits just below min-p's final threshold (9.0 against
/// 10 + ln 0.5), a few entries just above it (9.5) and the largest comes last: an invocation's
/// best candidates all fall below the threshold once the largest is known, after it turned the
/// valid ones away, and the row must be drawn again in a second pass. Without log-probabilities
/// (which keep min-p rows in two passes).
#[test]
fn min_p_in_the_first_pass_matches_reference() {
    let _turn = one_at_a_time();
    let cols = 16_384u32;
    let rows = 24usize;
    let row_logits = |r: usize| -> Vec<f32> {
        (0..cols as usize)
            .map(|c| match (c * 100 / cols as usize, r % 3) {
                (_, 2) => ((c * 7 + r) % 23) as f32 * 0.1,
                (99, _) if c == cols as usize - 1 - r => 10.0,
                (80..=84, _) => 9.5,
                _ => 9.0,
            })
            .collect()
    };
    let batch: Vec<f32> = (0..rows).flat_map(row_logits).collect();
    let settings: Vec<TokenSettings> = (0..rows)
        .map(|r| match r % 4 {
            0 => TokenSettings::new(1.0).with_min_p(0.5),
            1 => TokenSettings::new(0.8).with_min_p(0.3),
            2 => TokenSettings::new(1.0),
            _ => TokenSettings::new(2.0).with_min_p(0.9),
        })
        .collect();
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 404 + r,
            offset: r * 3,
        })
        .collect();
    let got = ctx()
        .sample_tokens(&batch, &TokenArgs::new(cols, &settings, &states))
        .unwrap();
    for r in 0..rows {
        let range = gumbel_wgpu::NoiseRange::Standard;
        assert_token_near(
            &row_logits(r),
            &settings[r],
            states[r],
            range,
            got.tokens[r],
            r,
        );
    }
}

/// Top-k takes the winners of the invocations' lists (their best few each) unless one of them
/// runs out while it may hold more: here every large logit lies in blocks that the first
/// invocation walks, whatever the workgroup width (under the interleaved walk blocks 0, W, 2W,
/// ...; under the contiguous one the row's first blocks), and the row falls back to the radix
/// select.
#[test]
fn lists_that_run_out_fall_back_to_the_radix_select() {
    let _turn = one_at_a_time();
    let cols = 65_536u32;
    let rows = 8usize;
    let settings: Vec<TokenSettings> = (0..rows)
        .map(|r| match r % 4 {
            0 => TokenSettings::new(1.0).with_top_k(50),
            1 => TokenSettings::new(0.3).with_top_k(40).with_top_p(0.8),
            2 => TokenSettings::new(2.0).with_top_k(33).with_min_p(0.2),
            _ => TokenSettings::new(1.0).with_top_k(64),
        })
        .collect();
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 9000 + r,
            offset: r,
        })
        .collect();
    for order in [BlockOrder::Interleaved, BlockOrder::Contiguous] {
        let large = |c: usize| match order {
            BlockOrder::Interleaved => (c / 4).is_multiple_of(1024),
            BlockOrder::Contiguous => c < 64,
        };
        let row_logits = |r: usize| -> Vec<f32> {
            (0..cols as usize)
                .map(|c| {
                    let spread = ((c * 37 + r * 11) % 101) as f32 * 0.01;
                    if large(c) { 6.0 + spread } else { spread }
                })
                .collect()
        };
        let batch: Vec<f32> = (0..rows).flat_map(row_logits).collect();
        let order_ctx = GpuContext::new().unwrap().with_block_order(order);
        // The sampled log-probability tells a wrong kept set even where the token happens to
        // be right: its total weight differs. Spread over slices, the slices' lists run out as
        // the row's do, and the row is taken whole.
        for strategy in [
            Strategy::RowPerWorkgroup { size: 128 },
            Strategy::SplitRow {
                size: 128,
                slices: 4,
            },
        ] {
            compare_rows(
                &order_ctx,
                &batch,
                &settings,
                &states,
                strategy,
                &row_logits,
            );
        }
    }
}

/// Samples `batch` on `on` and holds each row's token, and where it is the reference's its
/// sampled log-probability, to the reference.
fn compare_rows(
    on: &GpuContext,
    batch: &[f32],
    settings: &[TokenSettings],
    states: &[RandomState],
    strategy: Strategy,
    row_logits: &dyn Fn(usize) -> Vec<f32>,
) {
    let cols = (batch.len() / settings.len()) as u32;
    let args = TokenArgs::new(cols, settings, states)
        .with_logprobs(true)
        .with_strategy(Some(strategy));
    let got = on.sample_tokens(batch, &args).unwrap();
    for r in 0..settings.len() {
        let row = &row_logits(r);
        let range = gumbel_wgpu::NoiseRange::Standard;
        let want = assert_token_near(row, &settings[r], states[r], range, got.tokens[r], r);
        if got.tokens[r] == want.token {
            let sampled = f64::from(got.logprobs[r][1]);
            assert!(
                (sampled - want.sampled_logprob).abs() < 1e-3,
                "{strategy:?}, row {r}: sampled log-probability {sampled} against {}",
                want.sampled_logprob
            );
        }
    }
}

/// A list that holds a row's whole kept set: nine large logits in the blocks that the first
/// invocation walks (under either block order), rising with the column so that each enters at
/// the front and pushes the others down, in equal pairs so that the lower column must stay
/// ahead: top-k 8 keeps the first eight and drops column 1 (equal to column 0, behind it). A
/// high temperature makes every kept token about as likely, so over 64 rows a lost or
/// misordered entry changes some row's token or sampled log-probability.
#[test]
fn a_list_that_holds_the_kept_set_keeps_its_order() {
    let _turn = one_at_a_time();
    let cols = 32_000u32;
    let rows = 64usize;
    let size = 64usize;
    let settings = vec![TokenSettings::new(50.0).with_top_k(8); rows];
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 7100 + r,
            offset: 3 * r,
        })
        .collect();
    for order in [BlockOrder::Interleaved, BlockOrder::Contiguous] {
        // The i-th large logit's column: in block i * size (interleaved) or among the row's
        // first (contiguous), both the first invocation's.
        let column = |i: usize| match order {
            BlockOrder::Interleaved => 4 * size * i,
            BlockOrder::Contiguous => i,
        };
        let row_logits = |r: usize| -> Vec<f32> {
            let mut row: Vec<f32> = (0..cols as usize)
                .map(|c| ((c * 37 + r * 11) % 101) as f32 * 0.01)
                .collect();
            for i in 0..9 {
                row[column(i)] = 6.0 + 0.25 * (i / 2) as f32;
            }
            row
        };
        let batch: Vec<f32> = (0..rows).flat_map(row_logits).collect();
        let order_ctx = GpuContext::new().unwrap().with_block_order(order);
        let strategy = Strategy::RowPerWorkgroup { size: size as u32 };
        compare_rows(
            &order_ctx,
            &batch,
            &settings,
            &states,
            strategy,
            &row_logits,
        );
    }
}

/// Top-p after a top-k past the lists' 256 entries is a share of the top-k entries' weight, not
/// the row's: ten logits of 10 and 1,990 of 4, top-k 300, top-p 0.7 keep eight of the ten (a
/// share of the whole row's weight would reach some 190 entries into the 4s).
#[test]
fn top_p_after_a_long_top_k_is_a_share_of_its_entries() {
    let _turn = one_at_a_time();
    let cols = 2000u32;
    let logits: Vec<f32> = (0..cols)
        .map(|c| if c % 200 == 7 { 10.0 } else { 4.0 })
        .collect();
    let settings = TokenSettings::new(1.0).with_top_k(300).with_top_p(0.7);
    let want =
        sample_token_row(&logits, None, &settings, RandomState { seed: 0, offset: 0 }).unwrap();
    assert_eq!(want.kept.len(), 8);
    let rows = 2000usize;
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits.iter().copied()).collect();
    let all = vec![settings; rows];
    let states: Vec<RandomState> = (0..rows as u64)
        .map(|r| RandomState {
            seed: 0x7099 + r,
            offset: 0,
        })
        .collect();
    let got = ctx()
        .sample_tokens(&batch, &TokenArgs::new(cols, &all, &states))
        .unwrap();
    for (r, t) in got.tokens.iter().enumerate() {
        assert!(want.kept.contains(t), "row {r}: token {t} is not kept");
    }
}
