//! The noise kernels: raw Philox words or Gumbel noise into a buffer, and the word-to-Gumbel
//! map applied to caller-supplied words.

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::kernels::{BufferUse, GpuSlice, Kernels};
use crate::row::{NoisePosition, counter_use, with_noise};
use crate::shaders::same_layout;
use crate::shaders::{Shader, gumbel_of_words as map, noise as kernel, noise_count as counter};
use crate::types::NoiseRange;

/// What the noise kernel writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseOutput {
    /// The 32-bit Philox words (u32).
    Words,
    /// Gumbel(0, 1) noise (f32).
    Gumbel,
}

/// Elements `offset .. offset + count` of the stream at `noise` into `out` (4 bytes each).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct NoiseCall<'a> {
    /// The stream and the flat index of the first element (`noise.offset`), or a GPU-side
    /// counter holding them. For Gumbel noise, `noise.range` is one word an element or two
    /// (words `2n` and `2n + 1` for element `n`); words are the stream's words either way.
    pub noise: NoisePosition<'a>,
    /// How many elements.
    pub count: u64,
    /// Words or Gumbel noise.
    pub output: NoiseOutput,
    /// Where they go, 4 bytes each.
    pub out: GpuSlice<'a>,
}

impl<'a> NoiseCall<'a> {
    /// `count` elements of `seed`'s stream from `offset` into `out`, one word an element.
    pub fn new(seed: u64, offset: u64, count: u64, output: NoiseOutput, out: GpuSlice<'a>) -> Self {
        Self {
            noise: NoisePosition::new(seed, offset),
            count,
            output,
            out,
        }
    }
}

with_noise!(NoiseCall);

/// The word-to-Gumbel map on words of the caller's: `out[i] = gumbel(words[i])` for `count`
/// elements (4 bytes each), or with [`NoiseRange::Wide`] `gumbel(words[2i], words[2i + 1])`
/// (low word first) from `2 * count` words.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct GumbelOfWordsCall<'a> {
    /// The 32-bit words.
    pub words: GpuSlice<'a>,
    /// Where the Gumbel noise goes (f32).
    pub out: GpuSlice<'a>,
    /// How many elements.
    pub count: u64,
    /// One word an element, or two.
    pub range: NoiseRange,
}

impl<'a> GumbelOfWordsCall<'a> {
    /// `count` elements of Gumbel noise from `words` into `out`, one word an element.
    pub fn new(words: GpuSlice<'a>, out: GpuSlice<'a>, count: u64) -> Self {
        Self {
            words,
            out,
            count,
            range: NoiseRange::Standard,
        }
    }

    /// One word an element, or two.
    pub fn with_range(self, range: NoiseRange) -> Self {
        Self { range, ..self }
    }
}

/// Counts the elements `offset .. offset + count` of the stream at `noise` whose Gumbel noise
/// exceeds `threshold`, and adds the count to the u32 at `out`, without storing the noise: tail
/// checks over more draws than a buffer holds. One call counts at most 2^32 - 4 elements (so
/// that the count fits its u32).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct NoiseCountCall<'a> {
    /// The stream and the flat index of the first element, or a GPU-side counter holding them;
    /// one word an element, or two.
    pub noise: NoisePosition<'a>,
    /// How many elements.
    pub count: u64,
    /// Elements whose noise is above this count.
    pub threshold: f32,
    /// One u32, added to.
    pub out: GpuSlice<'a>,
}

impl<'a> NoiseCountCall<'a> {
    /// Counts `count` elements of `seed`'s stream from `offset` with noise above `threshold`,
    /// one word an element, into the u32 at `out`.
    pub fn new(seed: u64, offset: u64, count: u64, threshold: f32, out: GpuSlice<'a>) -> Self {
        Self {
            noise: NoisePosition::new(seed, offset),
            count,
            threshold,
            out,
        }
    }
}

with_noise!(NoiseCountCall);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CountParams {
    seed: [u32; 2],
    offset: [u32; 2],
    count: u32,
    threshold: f32,
    out_base: u32,
    counter_used: u32,
}
same_layout!(
    CountParams = CountParams {
        seed,
        offset,
        count,
        threshold,
        out_base,
        counter_used,
    }
);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NoiseParams {
    seed: [u32; 2],
    offset: [u32; 2],
    count: u32,
    out_base: u32,
    counter_used: u32,
    _pad: u32,
}
same_layout!(
    NoiseParams = NoiseParams {
        seed,
        offset,
        count,
        out_base,
        counter_used,
        _pad
    }
);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MapParams {
    count: u32,
    words_base: u32,
    out_base: u32,
    _pad: u32,
}
same_layout!(
    MapParams = MapParams {
        count,
        words_base,
        out_base,
        _pad
    }
);

/// What every noise count takes, whatever its length: a threshold that is a number.
pub(crate) fn check_count_args(threshold: f32) -> Result<()> {
    if threshold.is_nan() {
        return Err(invalid("noise count: the threshold is NaN"));
    }
    Ok(())
}

impl Kernels {
    /// Checks a noise call's output (`elems` u32 or f32) against its counter, and gives the
    /// counter's binding (a placeholder without one).
    fn noise_output_binding<'a>(
        &'a self,
        what: &'static str,
        out: GpuSlice<'a>,
        elems: u64,
        noise: NoisePosition<'a>,
    ) -> Result<wgpu::BindingResource<'a>> {
        self.check_slice(what, out, elems, 4)?;
        let uses: Vec<BufferUse> = std::iter::once(BufferUse::write(what, out, elems, 4))
            .chain(counter_use(noise.counter))
            .collect();
        self.check_aliasing(&uses)?;
        self.counter_binding(noise.counter)
    }

    /// Records the noise kernel into `encoder`, split into as many dispatches as the device's
    /// limits need; each continues the stream where the last one stopped.
    pub fn record_noise(&self, encoder: &mut wgpu::CommandEncoder, call: &NoiseCall) -> Result<()> {
        if call.count == 0 {
            return Ok(());
        }
        let counter =
            self.noise_output_binding("noise output", call.out, call.count, call.noise)?;
        let output = match call.output {
            NoiseOutput::Words => kernel::OUTPUT_WORDS,
            NoiseOutput::Gumbel => kernel::OUTPUT_GUMBEL,
        };
        let pipeline = self.noise_pipeline(
            Shader::Noise,
            None,
            &[("OUTPUT", f64::from(output))],
            call.noise.range,
        )?;
        // Leave room for the lead of a chunk that starts inside a noise block.
        let per_dispatch = (self.max_groups() * u64::from(kernel::WORKGROUP_SIZE) * 4 - 4)
            .min(self.max_binding() / 4 - 64);
        let mut done = 0;
        while done < call.count {
            let count = per_dispatch.min(call.count - done);
            let out = self.window(call.out, done, count, 4)?;
            let (seed, offset) = call.noise.words_at(done);
            let params = NoiseParams {
                seed,
                offset,
                count: count as u32,
                out_base: out.base,
                counter_used: call.noise.counter_used(),
                _pad: 0,
            };
            // The lead (up to three elements) is known only when a counter is read.
            let blocks = (count + 3).div_ceil(4);
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[out.binding(), counter.clone()],
                blocks.div_ceil(kernel::WORKGROUP_SIZE.into()) as u32,
            )?;
            done += count;
        }
        Ok(())
    }

    /// Records a count of the noise above a threshold into `encoder` ([`NoiseCountCall`]).
    pub fn record_noise_count(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &NoiseCountCall,
    ) -> Result<()> {
        check_count_args(call.threshold)?;
        if call.count > u64::from(u32::MAX - 3) {
            return Err(invalid(format!(
                "noise count: {} elements, at most 2^32 - 4 a call (the count is a u32)",
                call.count
            )));
        }
        let counter = self.noise_output_binding("noise count output", call.out, 1, call.noise)?;
        let pipeline = self.noise_pipeline(Shader::NoiseCount, None, &[], call.noise.range)?;
        let per_invocation = u64::from(counter::WORKGROUP_SIZE * counter::BLOCKS_PER_INVOCATION);
        // Elements a dispatch counts, with room for a lead of up to three.
        let per_dispatch = (self.max_groups() * per_invocation * 4 - 4).min(1 << 31);
        let out = self.window(call.out, 0, 1, 4)?;
        let mut done = 0;
        while done < call.count {
            let n = per_dispatch.min(call.count - done);
            let (seed, offset) = call.noise.words_at(done);
            let params = CountParams {
                seed,
                offset,
                count: n as u32,
                threshold: call.threshold,
                out_base: out.base,
                counter_used: call.noise.counter_used(),
            };
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[out.binding(), counter.clone()],
                (n + 3).div_ceil(4).div_ceil(per_invocation) as u32,
            )?;
            done += n;
        }
        Ok(())
    }

    /// Records the word-to-Gumbel map into `encoder`.
    pub fn record_gumbel_of_words(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &GumbelOfWordsCall,
    ) -> Result<()> {
        let GumbelOfWordsCall {
            words,
            out,
            count,
            range,
        } = *call;
        if count == 0 {
            return Ok(());
        }
        let per_output = match range {
            NoiseRange::Standard => 1,
            NoiseRange::Wide => 2,
        };
        let word_count = count.saturating_mul(per_output);
        self.check_slice("words", words, word_count, 4)?;
        self.check_slice("gumbel output", out, count, 4)?;
        self.check_aliasing(&[
            BufferUse::read("words", words, word_count, 4),
            BufferUse::write("gumbel output", out, count, 4),
        ])?;
        let pipeline = self.noise_pipeline(Shader::GumbelOfWords, None, &[], range)?;
        let per_dispatch = (self.max_groups() * u64::from(map::WORKGROUP_SIZE))
            .min(self.max_binding() / 4 / per_output - 64);
        let mut done = 0;
        while done < count {
            let n = per_dispatch.min(count - done);
            let words = self.window(words, done * per_output, n * per_output, 4)?;
            let out = self.window(out, done, n, 4)?;
            let params = MapParams {
                count: n as u32,
                words_base: words.base,
                out_base: out.base,
                _pad: 0,
            };
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[words.binding(), out.binding()],
                n.div_ceil(map::WORKGROUP_SIZE.into()) as u32,
            )?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(feature = "burn")]
pub(crate) mod burn;
mod host;
