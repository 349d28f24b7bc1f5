//! Random-number state: where in a seed's stream each call's noise lies (docs/contract.md, section
//! 2), on the host or in a GPU-side counter.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::kernels::{GpuSlice, Kernels};
use crate::shaders::Shader;
use crate::shaders::same_layout;
use crate::types::Shape;
use crate::types::split64;

/// Hands out noise positions as `torch.Generator` does with Philox: a seed, and an offset
/// that each call advances by the noise it draws (`rows * K`), so that successive calls never
/// reuse noise and a rerun from the same state repeats them exactly.
///
/// ```
/// use gumbel_wgpu::{Generator, Shape};
/// let mut generator = Generator::new(7);
/// let (seed, first) = generator.take(&Shape::new(4, 10));
/// let (_, second) = generator.take(&Shape::new(2, 3));
/// assert_eq!((seed, first, second, generator.offset()), (7, 0, 40, 46));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Generator {
    seed: u64,
    offset: u64,
}

impl Generator {
    /// Offset 0 of `seed`'s stream.
    pub fn new(seed: u64) -> Self {
        Self::at(seed, 0)
    }

    /// Flat element `offset` of `seed`'s stream.
    pub fn at(seed: u64, offset: u64) -> Self {
        Self { seed, offset }
    }

    /// The seed of the stream.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The flat noise index the next call starts at.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The (seed, offset) of a call of `shape`, and advances past its noise.
    pub fn take(&mut self, shape: &Shape) -> (u64, u64) {
        self.take_elements(shape.noise_elements())
    }

    /// The (seed, offset) of a call that draws `elements` noise elements, and advances past
    /// them.
    pub fn take_elements(&mut self, elements: u64) -> (u64, u64) {
        let at = (self.seed, self.offset);
        self.offset = self.offset.wrapping_add(elements);
        at
    }

    /// The four u32 words of a GPU-side counter at this state (seed low, high, offset low,
    /// high), for a buffer that calls read their noise position from
    /// ([`crate::NoisePosition::counter`]).
    pub fn counter_words(&self) -> [u32; 4] {
        let (s, o) = (split64(self.seed), split64(self.offset));
        [s[0], s[1], o[0], o[1]]
    }

    /// The state a counter buffer holds, from its four words.
    pub fn from_counter_words(words: [u32; 4]) -> Self {
        let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        Self::at(join(words[0], words[1]), join(words[2], words[3]))
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AdvanceParams {
    elements: [u32; 2],
    _pad: [u32; 2],
}
same_layout!(AdvanceParams = AdvanceParams { elements, _pad });

impl Kernels {
    /// Records the advance of a GPU-side noise counter by `elements` (for a call of shape `s`,
    /// `s.noise_elements()`), after the calls that read it: the next submission of the same
    /// recorded calls then draws the next noise, with no host round trip.
    pub fn record_advance(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        counter: GpuSlice,
        elements: u64,
    ) -> Result<()> {
        let binding = self.counter_binding(Some(counter))?;
        let pipeline = self.pipeline(Shader::AdvanceCounter, None, &[])?;
        let params = AdvanceParams {
            elements: split64(elements),
            _pad: [0; 2],
        };
        self.dispatch(
            encoder,
            &pipeline,
            bytemuck::bytes_of(&params),
            &[binding],
            1,
        )
    }
}
