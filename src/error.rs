//! The crate's error type: every failure is a value that says what was wrong and what was
//! expected.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter could be found, or none matched `GUMBEL_WGPU_ADAPTER`.
    #[error("{0}")]
    NoAdapter(String),
    /// The adapter refused to give a device.
    #[error("could not create a device on adapter {adapter}: {source}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        source: wgpu::RequestDeviceError,
    },
    /// A shape, size, alignment, temperature or usage that the call cannot take.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The shape is valid but larger than this device's limits allow.
    #[error("over the device's limits: {0}")]
    OverLimits(String),
    /// wgpu reported a validation or out-of-memory error inside a call of this crate.
    #[error("wgpu error in {context}: {message}")]
    Wgpu {
        /// The work that failed.
        context: String,
        /// wgpu's report.
        message: String,
    },
    /// Waiting for the device failed (for example, the device was lost).
    #[error("device poll failed: {0}")]
    Poll(#[from] wgpu::PollError),
    /// Mapping a buffer for reading failed.
    #[error("buffer mapping failed: {0}")]
    Map(String),
    /// burn's wgpu runtime would not start or take a device, or a tensor is not on a device
    /// this crate was given (the `burn` feature).
    #[cfg(feature = "burn")]
    #[error("{0}")]
    Burn(String),
    /// A row of a host-slice call had no sample: all its logits masked, a NaN or +inf logit,
    /// or a value that overflowed f32.
    #[error("row {row} has no sample: {reason}")]
    NoSample {
        /// The first row without a sample.
        row: usize,
        /// Why it has none.
        reason: NoSample,
    },
}

/// Why a row has no sample: the reason of [`Error::NoSample`], and what the CPU reference
/// reports for such a row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoSample {
    /// Every logit is masked.
    #[error("every logit is masked (-inf)")]
    AllMasked,
    /// This column holds NaN or +inf.
    #[error("logit {0} is NaN or +inf")]
    InvalidLogit(usize),
    /// The temperature is not finite and positive.
    #[error("tau is not finite and positive")]
    InvalidTau,
    /// A value overflowed f32 on the GPU (large logits over a small temperature, say); the
    /// reference, in f64, never reports it.
    #[error("a value overflows f32 (such as (l + g) / tau)")]
    Overflow,
    /// The token sampler's settings of the row are refused: the message names the field.
    #[error("{0}")]
    InvalidSettings(String),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}
