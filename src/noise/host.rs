//! The host-slice form of the noise calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::{Result, invalid};
use crate::host::byte_size;
use crate::kernels::GpuSlice;
use crate::types::NoiseRange;

impl GpuContext {
    /// The raw words of flat elements `offset .. offset + count` of `seed`'s stream.
    pub async fn noise_words_async(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<u32>> {
        self.noise(
            seed,
            offset,
            count,
            NoiseOutput::Words,
            NoiseRange::Standard,
        )
        .await
    }

    /// The Gumbel noise of flat elements `offset .. offset + count` of `seed`'s stream.
    pub async fn gumbel_noise_async(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        self.gumbel_noise_in_async(NoiseRange::Standard, seed, offset, count)
            .await
    }

    /// [`GpuContext::gumbel_noise`] with one word an element or two.
    pub async fn gumbel_noise_in_async(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        self.noise(seed, offset, count, NoiseOutput::Gumbel, range)
            .await
    }

    async fn noise<T: bytemuck::Pod>(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
        output: NoiseOutput,
        range: NoiseRange,
    ) -> Result<Vec<T>> {
        let out = self.storage_buffer(byte_size(self.kernels(), "noise output", count, 4)?)?;
        self.submit("noise", |encoder| {
            self.kernels().record_noise(
                encoder,
                &NoiseCall::new(seed, offset, count as u64, output, GpuSlice::from(&out))
                    .with_noise_range(range),
            )
        })
        .await?;
        self.read_back_async(&out, count).await
    }

    /// How many of elements `offset .. offset + count` of `seed`'s stream have Gumbel noise in
    /// `range` above `threshold`, made and counted on the device ([`NoiseCountCall`]).
    /// Submitted in parts of 2^28 elements.
    pub async fn count_noise_above_async(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: u64,
        threshold: f32,
    ) -> Result<u64> {
        const PART: u64 = 1 << 28;
        // The whole call is checked before any part runs, so that an error names the caller's
        // arguments and comes at once.
        check_count_args(threshold)?;
        let mut total = 0;
        let mut done = 0;
        while done < count {
            let n = PART.min(count - done);
            let out = self.upload(&[0u32])?;
            self.submit("noise count", |encoder| {
                self.kernels().record_noise_count(
                    encoder,
                    &NoiseCountCall::new(
                        seed,
                        offset.wrapping_add(done),
                        n,
                        threshold,
                        GpuSlice::from(&out),
                    )
                    .with_noise_range(range),
                )
            })
            .await?;
            total += u64::from(self.read_back_async::<u32>(&out, 1).await?[0]);
            done += n;
        }
        Ok(total)
    }

    /// The library's word-to-Gumbel map on the GPU, for words of the caller's choosing.
    pub async fn gumbel_of_words_async(&self, words: &[u32]) -> Result<Vec<f32>> {
        self.gumbel_of_words_in_async(NoiseRange::Standard, words)
            .await
    }

    /// [`GpuContext::gumbel_of_words`] with one word an element, or two (`words[2i]` the low
    /// half of element `i`; an even number of words).
    pub async fn gumbel_of_words_in_async(
        &self,
        range: NoiseRange,
        words: &[u32],
    ) -> Result<Vec<f32>> {
        let count = match range {
            NoiseRange::Standard => words.len(),
            NoiseRange::Wide if words.len().is_multiple_of(2) => words.len() / 2,
            NoiseRange::Wide => {
                return Err(invalid(format!(
                    "{} words given: a wide draw takes two",
                    words.len()
                )));
            }
        };
        let input = self.upload(words)?;
        let out = self.storage_buffer(byte_size(self.kernels(), "gumbel output", count, 4)?)?;
        self.submit("gumbel_of_words", |encoder| {
            self.kernels().record_gumbel_of_words(
                encoder,
                &GumbelOfWordsCall {
                    words: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    count: count as u64,
                    range,
                },
            )
        })
        .await?;
        self.read_back_async(&out, count).await
    }
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::noise_words_async`], waiting for it.
    pub fn noise_words(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<u32>> {
        pollster::block_on(self.noise_words_async(seed, offset, count))
    }

    /// [`GpuContext::gumbel_noise_async`], waiting for it.
    pub fn gumbel_noise(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_noise_async(seed, offset, count))
    }

    /// [`GpuContext::gumbel_noise_in_async`], waiting for it.
    pub fn gumbel_noise_in(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_noise_in_async(range, seed, offset, count))
    }

    /// [`GpuContext::count_noise_above_async`], waiting for it.
    pub fn count_noise_above(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: u64,
        threshold: f32,
    ) -> Result<u64> {
        pollster::block_on(self.count_noise_above_async(range, seed, offset, count, threshold))
    }

    /// [`GpuContext::gumbel_of_words_async`], waiting for it.
    pub fn gumbel_of_words(&self, words: &[u32]) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_of_words_async(words))
    }

    /// [`GpuContext::gumbel_of_words_in_async`], waiting for it.
    pub fn gumbel_of_words_in(&self, range: NoiseRange, words: &[u32]) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_of_words_in_async(range, words))
    }
}
