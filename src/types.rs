//! Plain descriptions shared by the kernels, the host API and the CPU reference.

use crate::error::{Result, invalid};

/// What a forward pass writes (docs/contract.md, section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `y = softmax((l + g) / tau)`.
    Soft,
    /// `log y`, computed in log space.
    LogSoft,
    /// The one-hot of `argmax (l + g) / tau` (ties: lowest index): the straight-through forward
    /// value.
    Hard,
    /// `argmax (l + g)` per row as a `u32`: a categorical sample. `tau` does not scale it, but a
    /// temperature that is not finite and positive is no sample here too, as in every mode.
    Index,
}

impl Mode {
    /// Every mode, for tests and benchmarks that cover them all.
    pub const ALL: [Mode; 4] = [Mode::Soft, Mode::LogSoft, Mode::Hard, Mode::Index];

    /// The value of the kernels' `MODE` override.
    pub(crate) fn shader_value(self) -> f64 {
        use crate::shaders::sampler_row as kernel;
        f64::from(match self {
            Mode::Soft => kernel::MODE_SOFT,
            Mode::LogSoft => kernel::MODE_LOG_SOFT,
            Mode::Hard => kernel::MODE_HARD,
            Mode::Index => kernel::MODE_INDEX,
        })
    }
}

/// How many random words make one element's Gumbel noise (docs/contract.md, section 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NoiseRange {
    /// One 32-bit word: `u = (x + 0.5) 2^-32`, so `g` reaches 22.87 at most. The default.
    #[default]
    Standard,
    /// Two words, `2n` and `2n + 1` of the stream for element `n` (the first the low half):
    /// a 64-bit uniform `u = (x + 0.5) 2^-64`, so `g` reaches 45.05. About twice the noise
    /// arithmetic.
    Wide,
}

impl NoiseRange {
    /// Both ranges.
    pub const ALL: [NoiseRange; 2] = [NoiseRange::Standard, NoiseRange::Wide];

    /// The value of the kernels' `NOISE_RANGE` override.
    pub(crate) fn shader_value(self) -> f64 {
        use crate::shaders::gumbel;
        f64::from(match self {
            NoiseRange::Standard => gumbel::NOISE_RANGE_STANDARD,
            NoiseRange::Wide => gumbel::NOISE_RANGE_WIDE,
        })
    }
}

/// How logits and outputs are stored in memory. Arithmetic is f32 throughout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16: the top half of an f32.
    Bf16,
}

impl StorageType {
    /// Every storage type.
    pub const ALL: [StorageType; 3] = [StorageType::F32, StorageType::F16, StorageType::Bf16];

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            StorageType::F32 => 4,
            StorageType::F16 | StorageType::Bf16 => 2,
        }
    }

    /// The suffix of the composed shader variants (`forward_row_per_thread_f16`, ...).
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            StorageType::F32 => "f32",
            StorageType::F16 => "f16",
            StorageType::Bf16 => "bf16",
        }
    }
}

/// A host element type of logits and outputs: `f32`, `half::f16` or `half::bf16`.
pub trait Element: bytemuck::Pod + Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The storage type of this element type.
    const STORAGE: StorageType;
    /// The value as f32 (exact).
    fn to_f32(self) -> f32;
    /// Rounds to nearest, ties to even, as the kernels do.
    fn from_f32(value: f32) -> Self;
}

impl Element for f32 {
    const STORAGE: StorageType = StorageType::F32;
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(value: f32) -> Self {
        value
    }
}

impl Element for half::f16 {
    const STORAGE: StorageType = StorageType::F16;
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(value: f32) -> Self {
        half::f16::from_f32(value)
    }
}

impl Element for half::bf16 {
    const STORAGE: StorageType = StorageType::Bf16;
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    fn from_f32(value: f32) -> Self {
        half::bf16::from_f32(value)
    }
}

/// A batch of `rows` rows of `cols` logits each. Row `r` starts at element `r * in_pitch` of
/// the logits and `r * out_pitch` of the output; pitches larger than `cols` leave padding that
/// is neither read nor written.
///
/// With a `col_stride` s > 1, a row's categories are s elements apart, and rows come in groups
/// of s that interleave: row `r` starts at `(r / s) * pitch + r % s`. That is how a contiguous
/// tensor lies when its category axis is not the last one: for `[B, K, H, W]` sampled over axis
/// 1, s = `H * W`, the pitch is `K * H * W`, and the rows are (b, h, w) in that order. The
/// noise follows the rows as numbered, so the samples equal those of the same tensor with the
/// category axis moved last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Rows in the batch.
    pub rows: u32,
    /// Categories per row (K).
    pub cols: u32,
    /// Elements from one row of logits (or saved sample) to the next.
    pub in_pitch: u32,
    /// Elements from one row of outputs (and gradients) to the next; with `col_stride` > 1,
    /// from one group of rows to the next (as `in_pitch`).
    pub out_pitch: u32,
    /// Elements from one category of a row to the next, in the logits and the outputs alike
    /// (1: adjacent). Forward, derivative and top-k calls take any (top-k's outputs stay `k`
    /// per row, in row order); the token sampler and host slices take 1.
    pub col_stride: u32,
}

impl Shape {
    /// Dense rows: both pitches equal `cols`.
    pub fn new(rows: u32, cols: u32) -> Self {
        Self {
            rows,
            cols,
            in_pitch: cols,
            out_pitch: cols,
            col_stride: 1,
        }
    }

    /// Rows whose categories are `stride` elements apart, in groups of `stride` rows, groups
    /// `cols * stride` elements apart in the logits and the output: a contiguous tensor of
    /// `rows / stride` x `cols` x `stride` sampled over its middle axis.
    pub fn strided(rows: u32, cols: u32, stride: u32) -> Self {
        let pitch = cols.saturating_mul(stride);
        Self {
            rows,
            cols,
            in_pitch: pitch,
            out_pitch: pitch,
            col_stride: stride,
        }
    }

    /// The same shape with padded rows.
    pub fn with_pitches(self, in_pitch: u32, out_pitch: u32) -> Self {
        Self {
            in_pitch,
            out_pitch,
            ..self
        }
    }

    /// Checks `rows >= 1`, `cols >= 1`, `col_stride >= 1` and pitches that hold a row (or a
    /// group of rows: `cols * col_stride`).
    pub fn validate(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(invalid("rows = 0: a call needs at least one row"));
        }
        if self.cols == 0 {
            return Err(invalid("K = 0: a row needs at least one category"));
        }
        if self.col_stride == 0 {
            return Err(invalid(
                "col_stride = 0: a row's categories must be at least one element apart",
            ));
        }
        let group = u64::from(self.cols) * u64::from(self.col_stride);
        if u64::from(self.in_pitch) < group || u64::from(self.out_pitch) < group {
            return Err(invalid(format!(
                "row pitches ({} in, {} out) must be at least K * col_stride = {group}",
                self.in_pitch, self.out_pitch
            )));
        }
        Ok(())
    }

    /// Refuses a `col_stride` other than 1, for the calls (`what`) that read rows whose
    /// categories are adjacent.
    pub(crate) fn require_adjacent(&self, what: &str) -> Result<()> {
        if self.col_stride != 1 {
            return Err(invalid(format!(
                "{what}: col_stride = {}; this call takes rows whose categories are adjacent (1)",
                self.col_stride
            )));
        }
        Ok(())
    }

    /// Elements a buffer must hold for the rows at `pitch`, up to the last one's last element.
    pub fn span(&self, pitch: u32) -> u64 {
        strided_span(self.rows.into(), self.cols, pitch, self.col_stride)
    }

    /// How many noise elements the call consumes: the next call's offset is this much further.
    pub fn noise_elements(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.cols)
    }
}

/// Elements that `rows` rows of `cols` take at `pitch`, categories `stride` apart (see
/// [`Shape`]): up to the last row's last element.
pub(crate) fn strided_span(rows: u64, cols: u32, pitch: u32, stride: u32) -> u64 {
    let (last, stride) = (rows - 1, u64::from(stride));
    (last / stride) * u64::from(pitch) + last % stride + (u64::from(cols) - 1) * stride + 1
}

/// A 64-bit value as the kernels take it: (low word, high word).
pub(crate) fn split64(x: u64) -> [u32; 2] {
    [x as u32, (x >> 32) as u32]
}

/// Checks that a scalar temperature is finite and positive (and normal, so that no device
/// flushes it to zero).
pub fn check_tau(tau: f32) -> Result<()> {
    if tau.is_finite() && tau >= f32::MIN_POSITIVE {
        Ok(())
    } else {
        Err(invalid(format!(
            "tau = {tau}: the temperature must be finite and positive (at least {:e})",
            f32::MIN_POSITIVE
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span reaches the last row's last element: by enumeration of every element's index.
    #[test]
    fn strided_span_is_one_past_the_last_element() {
        for (rows, cols, stride) in [(22u64, 37u32, 6u32), (24, 5, 6), (5, 3, 8), (7, 4, 1)] {
            let pitch = cols * stride + 3;
            let last = (0..rows)
                .flat_map(|r| {
                    let start = (r / u64::from(stride)) * u64::from(pitch) + r % u64::from(stride);
                    (0..u64::from(cols)).map(move |k| start + k * u64::from(stride))
                })
                .max()
                .unwrap();
            assert_eq!(
                strided_span(rows, cols, pitch, stride),
                last + 1,
                "{rows} x {cols} / {stride}"
            );
        }
    }
}
