//! The row layer that every kernel family stands on:
//! - `strategy`: how a row is spread over invocations ([`Strategy`]), its launch geometry, and
//!   the measured default choice for a device;
//! - `header`: what every row kernel reads besides its buffers: the parameter header
//!   (`RowHeader`), the temperature ([`Tau`]) and the noise position;
//! - `plan`: a family's call as a `RowCall` (its buffers as `RowArg`s, the temperature, the
//!   noise, scratch memory), checked whole before anything is recorded, split into dispatches
//!   (`RowPlan`), each handed back to the family as a `RowPart` (header, windows, bindings);
//! - `builders`: the `with_` methods several call structs share.

mod builders;
mod header;
mod plan;
mod strategy;

use crate::shaders::{row_bindings as binding, row_cache_workgroup as cache};

pub(crate) use builders::{with_noise, with_noise_range, with_strategy, with_tau};
pub use header::{NoisePosition, Tau, Temperature};
pub(crate) use header::{RowHeader, counter_use};
pub(crate) use plan::{RowArg, RowCall, RowCost, RowPart};
pub use strategy::Strategy;
