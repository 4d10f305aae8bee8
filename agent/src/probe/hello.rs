//! Hand-built ClientHello probes for TLS 1.0/1.1/1.2 (being written).
