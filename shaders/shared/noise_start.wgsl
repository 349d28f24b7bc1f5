// Where a call's noise stream starts: the seed and offset of its parameters, or, when it has a
// GPU-side noise counter, the seed held in the counter (seed lo, hi, offset lo, hi) and the
// counter's offset plus the parameters' one, read when the kernel runs. A command sequence
// recorded once then draws fresh noise each time the counter advances on the GPU. The
// importing kernel binds `counter`.
#import u64

struct NoiseStart {
    seed: vec2<u32>,
    offset: vec2<u32>,
}

fn noise_start(seed: vec2<u32>, offset: vec2<u32>, counter_used: u32) -> NoiseStart {
    if counter_used == 0u {
        return NoiseStart(seed, offset);
    }
    return NoiseStart(vec2<u32>(counter[0], counter[1]),
                      add64(vec2<u32>(counter[2], counter[3]), offset));
}
