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

/// `with_noise`, `with_counter` and `with_noise_range`, for the call structs with `seed`,
/// `offset`, `counter` and `noise_range`.
macro_rules! with_noise {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// The noise stream's seed and the flat noise index of row 0, column 0.
            pub fn with_noise(self, seed: u64, offset: u64) -> Self {
                Self {
                    seed,
                    offset,
                    ..self
                }
            }

            /// Seed and offset from a GPU-side counter (see [`crate::ForwardCall::counter`]).
            pub fn with_counter(self, counter: $crate::GpuSlice<'a>) -> Self {
                Self {
                    counter: Some(counter),
                    ..self
                }
            }

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

/// `with_strategy`, for the call structs with a `strategy: Option<Strategy>`.
macro_rules! with_strategy {
    ($call:ident) => {
        impl $call<'_> {
            /// A strategy of the caller's instead of the default choice.
            pub fn with_strategy(self, strategy: $crate::Strategy) -> Self {
                Self {
                    strategy: Some(strategy),
                    ..self
                }
            }
        }
    };
}

pub(crate) use {with_noise, with_strategy, with_tau};
