//! The noise kernels: raw Philox words or Gumbel noise into a buffer, and the word-to-Gumbel
//! map applied to caller-supplied words.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::kernels::{BufferUse, GpuSlice, Kernels};
use crate::shaders::{Shader, gumbel_of_words as map, noise as kernel};
use crate::types::split64;

/// What the noise kernel writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseOutput {
    /// The 32-bit Philox words (u32).
    Words,
    /// Gumbel(0, 1) noise (f32).
    Gumbel,
}

/// Elements `offset .. offset + count` of `seed`'s stream into `out` (4 bytes each).
#[derive(Clone, Copy, Debug)]
pub struct NoiseCall<'a> {
    /// The stream's seed.
    pub seed: u64,
    /// The flat index of the first element.
    pub offset: u64,
    /// How many elements.
    pub count: u64,
    /// Words or Gumbel noise.
    pub output: NoiseOutput,
    /// Where they go, 4 bytes each.
    pub out: GpuSlice<'a>,
}

/// The word-to-Gumbel map on words of the caller's: `out[i] = gumbel(words[i])` for `count`
/// elements (4 bytes each).
#[derive(Clone, Copy, Debug)]
pub struct GumbelOfWordsCall<'a> {
    /// The 32-bit words.
    pub words: GpuSlice<'a>,
    /// Where the Gumbel noise goes (f32).
    pub out: GpuSlice<'a>,
    /// How many elements.
    pub count: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NoiseParams {
    seed: [u32; 2],
    offset: [u32; 2],
    count: u32,
    out_base: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MapParams {
    count: u32,
    words_base: u32,
    out_base: u32,
    _pad: u32,
}

impl Kernels {
    /// Records the noise kernel into `encoder`, split into as many dispatches as the device's
    /// limits need; each continues the stream where the last one stopped.
    pub fn record_noise(&self, encoder: &mut wgpu::CommandEncoder, call: &NoiseCall) -> Result<()> {
        if call.count == 0 {
            return Ok(());
        }
        self.check_slice("noise output", call.out, call.count, 4)?;
        let output = match call.output {
            NoiseOutput::Words => kernel::OUTPUT_WORDS,
            NoiseOutput::Gumbel => kernel::OUTPUT_GUMBEL,
        };
        let pipeline = self.pipeline(Shader::Noise, None, &[("OUTPUT", f64::from(output))])?;
        // Leave room for the lead of a chunk that starts inside a noise block.
        let per_dispatch = (self.max_groups() * u64::from(kernel::WORKGROUP_SIZE) * 4 - 4)
            .min(self.max_binding() / 4 - 64);
        let mut done = 0;
        while done < call.count {
            let count = per_dispatch.min(call.count - done);
            let out = self.window(call.out, done, count, 4)?;
            let offset = call.offset.wrapping_add(done);
            let params = NoiseParams {
                seed: split64(call.seed),
                offset: split64(offset),
                count: count as u32,
                out_base: out.base,
                _pad: [0; 2],
            };
            let blocks = (offset % 4 + count).div_ceil(4);
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[out.binding()],
                blocks.div_ceil(kernel::WORKGROUP_SIZE.into()) as u32,
            )?;
            done += count;
        }
        Ok(())
    }

    /// Records the word-to-Gumbel map into `encoder`.
    pub fn record_gumbel_of_words(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &GumbelOfWordsCall,
    ) -> Result<()> {
        let GumbelOfWordsCall { words, out, count } = *call;
        if count == 0 {
            return Ok(());
        }
        self.check_slice("words", words, count, 4)?;
        self.check_slice("gumbel output", out, count, 4)?;
        self.check_aliasing(&[
            BufferUse::read("words", words, count, 4),
            BufferUse::write("gumbel output", out, count, 4),
        ])?;
        let pipeline = self.pipeline(Shader::GumbelOfWords, None, &[])?;
        let per_dispatch =
            (self.max_groups() * u64::from(map::WORKGROUP_SIZE)).min(self.max_binding() / 4 - 64);
        let mut done = 0;
        while done < count {
            let n = per_dispatch.min(count - done);
            let words = self.window(words, done, n, 4)?;
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
