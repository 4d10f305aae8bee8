//! Probes: what each configured endpoint accepts on the wire.

pub mod hello;
