//! Probes: what each configured endpoint accepts on the wire.

pub mod cert;
pub mod hello;
pub mod modern;
