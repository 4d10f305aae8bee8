//! Commands' settings, owned here: the largest command payload the agent takes (the key of
//! [`KEYS`], its default and bounds), read from the agent's config file by [`read`].
//!
//! ```toml
//! command_max_bytes = 65536              # optional; 1024..=16777216, default 65536
//! ```

use crate::keyfile::{KeyFile, KeyFileError};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["command_max_bytes"];

/// Reads `command_max_bytes` (default [`super::DEFAULT_MAX_BYTES`]).
pub(crate) fn read(file: &mut KeyFile<'_>) -> Result<usize, KeyFileError> {
    let max_bytes = file
        .integer("command_max_bytes", 1024..=16 * 1024 * 1024)?
        .map_or(super::DEFAULT_MAX_BYTES, |b| {
            usize::try_from(b.into_inner()).unwrap_or(usize::MAX)
        });
    Ok(max_bytes)
}
