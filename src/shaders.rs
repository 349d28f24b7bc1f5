//! The shader table that build.rs writes: the `Shader` enum (one name per kernel file), every
//! composed variant with the bindings, workgroup size and override constants its entry point
//! uses, and a module per shader file with its literal constants.

include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
