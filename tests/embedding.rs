//! The embedding API: many calls recorded into one encoder, a GPU-side noise counter, several
//! threads on one device, a long run of recorded calls that must not grow memory, and errors
//! from inside wgpu as values.

mod common;

use common::calls::{CALLS, Calls, random};
use common::{ctx, default_limits_context};
use gumbel_wgpu::{
    Error, ForwardCall, Generator, GpuContext, GpuSlice, HostSource, HostTokenNoise, Kernels, Mode,
    NoisePosition, RandomState, SampleArgs, Shape, Source, StorageType, Strategy, Tau, TokenArgs,
    TokenSettings, VjpCall,
};

/// Each call recorded into one shared encoder gets its own parameters: nothing is overwritten
/// between record and submit, so the results equal the same calls submitted one at a time.
#[test]
fn calls_recorded_into_one_encoder_keep_their_own_parameters() {
    let ctx = ctx();
    let together = Calls::new(ctx);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    for i in 0..CALLS {
        together.record(ctx.kernels(), &mut encoder, i);
    }
    ctx.queue.submit([encoder.finish()]);
    let alone = Calls::new(ctx);
    for i in 0..CALLS {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        alone.record(ctx.kernels(), &mut encoder, i);
        ctx.queue.submit([encoder.finish()]);
    }
    let (x, y) = (together.read(ctx), alone.read(ctx));
    for (i, (x, y)) in x.iter().zip(&y).enumerate() {
        assert!(
            x == y,
            "output {i} differs between one encoder and separate submissions"
        );
        assert!(!x.contains(&0x7fa5_a5a5), "output {i} was not written");
    }
}

/// A forward call and its recomputing VJP read their noise position from a GPU counter, which
/// an advance recorded after them moves on: three submissions of the same recorded calls draw
/// the noise that a host Generator hands out, step by step.
#[test]
fn gpu_counter_draws_fresh_noise_each_submission() {
    let ctx = ctx();
    let shape = Shape::new(20, 37);
    let n = shape.noise_elements() as usize;
    let logits = ctx.upload(&random(n, 5, -2.0, 2.0)).unwrap();
    let dy = ctx.upload(&random(n, 6, -1.0, 1.0)).unwrap();
    let mut host = Generator::at(0x1234_5678_9abc, (1 << 32) - 300);
    let counter = ctx.upload(&host.counter_words()).unwrap();
    let outputs = || {
        (
            ctx.storage_buffer(n as u64 * 4).unwrap(),
            ctx.storage_buffer(n as u64 * 4).unwrap(),
        )
    };
    for step in 0..3 {
        let (seed, offset) = host.take(&shape);
        let (by_counter, explicit) = (outputs(), outputs());
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let kernels = ctx.kernels();
        // With a counter, the call's own seed and offset are unused (0).
        let at = |counter: &Option<GpuSlice<'_>>| match counter {
            Some(_) => (0, 0),
            None => (seed, offset),
        };
        let forward = |out, counter| {
            ForwardCall::new(
                Mode::Soft,
                StorageType::F32,
                shape,
                GpuSlice::from(&logits),
                out,
            )
            .with_tau(Tau::Scalar(0.8))
            .with_noise(at(&counter).0, at(&counter).1)
            .with_counter(counter)
        };
        let vjp = |dl, counter| {
            VjpCall::new(
                Mode::Soft,
                StorageType::F32,
                shape,
                Source::recompute_with(
                    GpuSlice::from(&logits),
                    NoisePosition::new(at(&counter).0, at(&counter).1).with_counter(counter),
                ),
                GpuSlice::from(&dy),
                dl,
            )
            .with_tau(Tau::Scalar(0.8))
        };
        let c = Some(GpuSlice::from(&counter));
        kernels
            .record_forward(&mut encoder, &forward(GpuSlice::from(&by_counter.0), c))
            .unwrap();
        kernels
            .record_vjp(&mut encoder, &vjp(GpuSlice::from(&by_counter.1), c))
            .unwrap();
        kernels
            .record_advance(
                &mut encoder,
                GpuSlice::from(&counter),
                shape.noise_elements(),
            )
            .unwrap();
        kernels
            .record_forward(&mut encoder, &forward(GpuSlice::from(&explicit.0), None))
            .unwrap();
        kernels
            .record_vjp(&mut encoder, &vjp(GpuSlice::from(&explicit.1), None))
            .unwrap();
        ctx.queue.submit([encoder.finish()]);
        let read = |b: &wgpu::Buffer| ctx.read_back::<u32>(b, n).unwrap();
        assert!(
            read(&by_counter.0) == read(&explicit.0),
            "step {step}: forward"
        );
        assert!(read(&by_counter.1) == read(&explicit.1), "step {step}: VJP");
    }
    let words: Vec<u32> = ctx.read_back(&counter, 4).unwrap();
    let state = Generator::from_counter_words(words.try_into().unwrap());
    assert_eq!(state, host, "the GPU counter and the host generator agree");
}

/// The noise calls and the token sampler's call stream read a GPU counter too: one recorded
/// with a counter draws what it draws with the counter's seed and offset written in. The
/// counter's offset starts inside a noise block and the calls' own offsets (added to it) carry
/// it past 2^32.
#[test]
fn every_noise_call_reads_the_gpu_counter() {
    use common::tokens::settings_mix;
    use gumbel_wgpu::{NoiseCall, NoiseCountCall, NoiseOutput, SampleTokensCall, TokenNoise};
    let ctx = ctx();
    let (seed, offset) = (0x00de_cade, (1u64 << 32) - 302);
    let counter = ctx
        .upload(&Generator::at(seed, offset).counter_words())
        .unwrap();
    let shape = Shape::new(20, 37);
    let n = shape.noise_elements();
    let logits = ctx.upload(&random(n as usize, 7, -3.0, 3.0)).unwrap();
    let settings = ctx.upload(&settings_mix(shape.cols, 20)).unwrap();
    // (words, gumbel, count, tokens) for one way of giving the position.
    let run = |position: NoisePosition| {
        let words = ctx.storage_buffer(4 * 101).unwrap();
        let gumbel = ctx.storage_buffer(4 * 101).unwrap();
        let count = ctx.upload(&[0u32]).unwrap();
        let tokens = ctx.storage_buffer(4 * 20).unwrap();
        let at = |extra: u64| {
            let mut moved = position;
            moved.offset += extra;
            moved
        };
        let noise = |output, out| {
            let mut call = NoiseCall::new(0, 0, 101, output, out);
            call.noise = at(3);
            call
        };
        let mut count_call = NoiseCountCall::new(0, 0, 741, 0.5, GpuSlice::from(&count));
        count_call.noise = at(1);
        let token_call = SampleTokensCall::new(
            StorageType::F32,
            shape,
            GpuSlice::from(&logits),
            GpuSlice::from(&settings),
            TokenNoise::Call(position),
            GpuSlice::from(&tokens),
        );
        let kernels = ctx.kernels();
        ctx.submit_and_wait("noise", |encoder| {
            kernels.record_noise(encoder, &noise(NoiseOutput::Words, GpuSlice::from(&words)))?;
            kernels.record_noise(
                encoder,
                &noise(NoiseOutput::Gumbel, GpuSlice::from(&gumbel)),
            )?;
            kernels.record_noise_count(encoder, &count_call)?;
            kernels.record_sample_tokens(encoder, &token_call)
        })
        .unwrap();
        (
            ctx.read_back::<u32>(&words, 101).unwrap(),
            ctx.read_back::<u32>(&gumbel, 101).unwrap(),
            ctx.read_back::<u32>(&count, 1).unwrap(),
            ctx.read_back::<u32>(&tokens, 20).unwrap(),
        )
    };
    let by_counter = run(NoisePosition::new(0, 0).with_counter(GpuSlice::from(&counter)));
    let explicit = run(NoisePosition::new(seed, offset));
    assert_eq!(by_counter.0, explicit.0, "noise words");
    assert_eq!(by_counter.1, explicit.1, "Gumbel noise");
    assert_eq!(by_counter.2, explicit.2, "noise count");
    assert_eq!(by_counter.3, explicit.3, "tokens");
    let expected: Vec<u32> = (0..101)
        .map(|i| gumbel_wgpu::philox::noise_word(seed, offset + 3 + i))
        .collect();
    assert_eq!(explicit.0, expected, "the words themselves");
    assert!(explicit.3.iter().all(|&t| t < shape.cols));
}

#[test]
fn sampler_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GpuContext>();
    send_sync::<Kernels>();
    send_sync::<Generator>();
    send_sync::<ForwardCall<'static>>();
    send_sync::<VjpCall<'static>>();
    send_sync::<Error>();
}

/// One host-slice call of a mixed set: its result as bytes.
fn mixed_call(ctx: &GpuContext, i: u64) -> Vec<u8> {
    let (rows, cols) = [(16, 5), (3, 700), (64, 64), (1, 9000)][(i % 4) as usize];
    let logits = random((rows * cols) as usize, i, -4.0, 4.0);
    let args = SampleArgs::new(rows, cols, 0.3 + (i % 5) as f32, 1000 + i);
    match i % 3 {
        0 => bytemuck::cast_slice(&ctx.sample(&logits, Mode::Soft, &args).unwrap()).to_vec(),
        1 => bytemuck::cast_slice(&ctx.sample_indices(&logits, &args).unwrap()).to_vec(),
        _ => {
            let dy = random(logits.len(), i + 7, -1.0, 1.0);
            let g = ctx
                .vjp(HostSource::Recompute(&logits), &dy, Mode::LogSoft, &args)
                .unwrap();
            [
                bytemuck::cast_slice(&g.dl),
                bytemuck::cast_slice(&g.dtau_rows),
                bytemuck::bytes_of(&g.dtau_sum),
            ]
            .concat()
        }
    }
}

/// Four threads sample on one device at once; each result equals the same call made alone.
#[test]
fn four_threads_sample_at_once() {
    let ctx = ctx();
    let per_thread = 12u64;
    let threaded: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|j| mixed_call(ctx, t * 100 + j))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, results) in threaded.iter().enumerate() {
        for (j, got) in results.iter().enumerate() {
            let want = mixed_call(ctx, t as u64 * 100 + j as u64);
            assert!(
                *got == want,
                "thread {t} call {j} differs from the same call alone"
            );
        }
    }
}

/// Errors raised inside wgpu during a call (here a destroyed input buffer, and a destroyed
/// device) come back as error values, not panics.
#[test]
fn wgpu_errors_inside_a_call_are_values() {
    let ctx = GpuContext::new().unwrap();
    let logits = ctx.upload(&[0.5f32; 8]).unwrap();
    let out = ctx.storage_buffer(32).unwrap();
    logits.destroy();
    let result = ctx.submit_and_wait("forward", |encoder| {
        ctx.kernels().record_forward(
            encoder,
            &ForwardCall::new(
                Mode::Soft,
                StorageType::F32,
                Shape::new(2, 4),
                GpuSlice::from(&logits),
                GpuSlice::from(&out),
            )
            .with_tau(Tau::Scalar(1.0)),
        )
    });
    assert!(matches!(result, Err(Error::Wgpu { .. })), "{result:?}");
    ctx.device.destroy();
    let args = SampleArgs::new(2, 4, 1.0, 0);
    let result = ctx.sample(&[0.5f32; 8], Mode::Soft, &args);
    assert!(result.is_err(), "{result:?}");
}

/// On a caller's device with WebGPU's default limits, the default strategy and the widest
/// workgroup strategies those limits allow all run, and give the bits the same strategies give
/// on the crate's own device.
#[test]
fn a_device_with_default_limits_runs_the_default_choices() {
    let small = default_limits_context();
    assert_eq!(Strategy::widest_workgroup(&small.device.limits()), 256);
    // What a choice past those limits would meet: an error value, not a result.
    let wide =
        SampleArgs::new(2, 5000, 0.7, 99).with_strategy(Strategy::RowPerWorkgroup { size: 1024 });
    let refused = small.sample(&random(10_000, 1, -1.0, 1.0), Mode::Soft, &wide);
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );
    for (rows, cols) in [(40u32, 8u32), (9, 1000), (3, 70_000)] {
        let logits = random((rows * cols) as usize, u64::from(cols), -4.0, 4.0);
        let dy = random(logits.len(), 3, -1.0, 1.0);
        let strategies = [
            None,
            Some(Strategy::RowPerWorkgroup { size: 256 }),
            Some(Strategy::SplitRow {
                size: 256,
                slices: 3,
            }),
        ];
        for strategy in strategies {
            // The full device would choose a row per subgroup for some K, which the small one
            // cannot run: it is given the small device's choice.
            let run = |c: &GpuContext| {
                let args = SampleArgs::new(rows, cols, 0.7, 99)
                    .with_strategy(strategy.or(Some(Strategy::choose(cols, small.kernels()))));
                let y = c.sample(&logits, Mode::Soft, &args).unwrap();
                let g = c
                    .vjp(HostSource::Recompute(&logits), &dy, Mode::Soft, &args)
                    .unwrap();
                // Top-k has its own strategies: the default choice of each device.
                let top_args = SampleArgs::new(rows, cols, 0.7, 99);
                let top = c.top_k(&logits, 8.min(cols), &top_args).unwrap();
                // The token sampler binds eight storage buffers with every argument given,
                // the most this device allows.
                let settings: Vec<TokenSettings> = (0..rows)
                    .map(|r| {
                        TokenSettings::new(0.9)
                            .with_top_p(0.9)
                            .with_top_k((5 + r).min(cols))
                    })
                    .collect();
                let states: Vec<RandomState> = (0..u64::from(rows))
                    .map(|r| RandomState { seed: r, offset: 0 })
                    .collect();
                let index: Vec<u32> = (0..rows).rev().collect();
                let bias = vec![0.5f32; cols as usize];
                let token_args = TokenArgs::new(cols, &settings, &states)
                    .with_noise(HostTokenNoise::Indexed {
                        states: &states,
                        index: &index,
                    })
                    .with_bias(bias.as_slice())
                    .with_logprobs(true);
                let tokens = c.sample_tokens(&logits, &token_args).unwrap();
                let logprobs: Vec<f32> = tokens.logprobs.iter().flatten().copied().collect();
                [
                    bytemuck::cast_slice::<f32, u8>(&y),
                    bytemuck::cast_slice(&g.dl),
                    bytemuck::cast_slice(&g.dtau_rows),
                    bytemuck::bytes_of(&g.dtau_sum),
                    bytemuck::cast_slice(&top.indices),
                    bytemuck::cast_slice(&tokens.tokens),
                    bytemuck::cast_slice(&logprobs),
                ]
                .concat()
            };
            assert!(
                run(&small) == run(ctx()),
                "{rows}x{cols} {strategy:?}: results differ from the full-limits device"
            );
        }
    }
}

/// A row per subgroup on a device created without the `SUBGROUP` feature is an error value
/// that says what is missing, as is a lane count that is not a power of two.
#[test]
fn a_row_per_subgroup_needs_subgroups() {
    let plain = default_limits_context();
    let logits = random(300, 1, -1.0, 1.0);
    let args =
        |lanes| SampleArgs::new(3, 100, 0.7, 5).with_strategy(Strategy::RowPerSubgroup { lanes });
    common::expect_invalid(plain.sample(&logits, Mode::Soft, &args(8)), "SUBGROUP");
    common::expect_invalid(ctx().sample(&logits, Mode::Soft, &args(3)), "power of two");
}
