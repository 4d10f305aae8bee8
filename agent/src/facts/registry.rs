//! Registry reads (being written).
