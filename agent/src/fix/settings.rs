//! The repair's setting, owned here: whether `roomready-agent fix --apply` / `--undo` and the
//! controller's `fix` command may write the registry (the key of [`KEYS`], default off), read
//! from the agent's config file by [`read`]. Planning (`fix --plan`, `fix` with mode `plan`)
//! changes nothing and needs no key.
//!
//! ```toml
//! allow_fix = false                      # optional; true lets fix write the TLS registry values
//!                                        # the findings call for (default false: plan only)
//! ```

use toml::Spanned;

use crate::keyfile::{KeyFile, KeyFileError};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["allow_fix"];

/// Reads `allow_fix` (default `false`).
pub(crate) fn read(file: &mut KeyFile<'_>) -> Result<bool, KeyFileError> {
    Ok(file.boolean("allow_fix")?.is_some_and(Spanned::into_inner))
}
