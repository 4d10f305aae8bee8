//! Probes: what each configured endpoint accepts on the wire.

pub mod hello;
pub mod modern;
