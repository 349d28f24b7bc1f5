//! The `with_` methods that several call structs share, written once.

/// `with_tau`, for the call structs whose `tau` field is the call's temperature.
macro_rules! with_tau {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// The call's temperature (the forward call's, for a derivative).
            pub fn with_tau(self, tau: $crate::Tau<'a>) -> Self {
                Self { tau, ..self }
            }
        }
    };
}

/// `with_noise`, `with_counter` and `with_noise_range`, for the call structs whose `noise` field
/// is a [`NoisePosition`](crate::NoisePosition).
macro_rules! with_noise {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// The noise stream's seed and the flat noise index of row 0, column 0.
            pub fn with_noise(self, seed: u64, offset: u64) -> Self {
                let noise = $crate::NoisePosition {
                    seed,
                    offset,
                    ..self.noise
                };
                Self { noise, ..self }
            }

            /// Seed and offset from a GPU-side counter (see [`crate::NoisePosition::counter`];
            /// `None`: none).
            pub fn with_counter(self, counter: impl Into<Option<$crate::GpuSlice<'a>>>) -> Self {
                let noise = self.noise.with_counter(counter);
                Self { noise, ..self }
            }

            /// One word of noise an element, or two (docs/contract.md, section 2).
            pub fn with_noise_range(self, noise_range: $crate::NoiseRange) -> Self {
                let noise = self.noise.with_range(noise_range);
                Self { noise, ..self }
            }
        }
    };
}

/// `with_strategy`, for the call structs with a `strategy: Option<Strategy>`.
macro_rules! with_strategy {
    ($call:ident) => {
        impl $call<'_> {
            /// A strategy of the caller's instead of the default choice (`None`: the default).
            pub fn with_strategy(self, strategy: impl Into<Option<$crate::Strategy>>) -> Self {
                Self {
                    strategy: strategy.into(),
                    ..self
                }
            }
        }
    };
}

/// `with_noise_range`, for the structs with a `noise_range: NoiseRange` of their own (the
/// token sampler's call and the host-slice arguments).
macro_rules! with_noise_range {
    ($call:ident) => {
        impl $call<'_> {
            /// One word of noise an element, or two (docs/contract.md, section 2).
            pub fn with_noise_range(self, noise_range: $crate::NoiseRange) -> Self {
                Self {
                    noise_range,
                    ..self
                }
            }
        }
    };
}

pub(crate) use {with_noise, with_noise_range, with_strategy, with_tau};
