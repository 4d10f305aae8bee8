//! The app update's settings, owned here: the program the `update_app` command runs and its
//! time limit (the keys of [`KEYS`], their defaults and validation), read from the agent's
//! config file by [`read`].
//!
//! ```toml
//! app_update_command = ["powershell.exe", "-File", "C:\\roomready\\update-app.ps1"]
//!                                        # optional; run (no shell) on the update_app command
//! app_update_timeout_secs = 1800         # optional; 1..=86400, default 1800
//! ```

use std::time::Duration;

use crate::keyfile::{KeyFile, KeyFileError};

use super::CommandUpdater;

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["app_update_command", "app_update_timeout_secs"];

/// Reads the keys of [`KEYS`]: the updater, or `None` without `app_update_command`.
pub(crate) fn read(file: &mut KeyFile<'_>) -> Result<Option<CommandUpdater>, KeyFileError> {
    let app_update_argv = match file.string_array("app_update_command")? {
        None => None,
        Some(items) => {
            let argv: Vec<String> = items.iter().map(|i| i.get_ref().clone()).collect();
            if argv.first().is_none_or(|program| program.is_empty()) {
                let span = items.first().map(|i| i.span());
                let reason = "must name a program first: [\"PROGRAM\", \"ARG\", ...]";
                return Err(match span {
                    Some(span) => file.error("app_update_command", span, reason),
                    None => {
                        file.missing("app_update_command", "a program to run (the list is empty)")
                    }
                });
            }
            Some(argv)
        }
    };
    let app_update_timeout = file
        .integer("app_update_timeout_secs", 1..=86_400)?
        .map_or(super::DEFAULT_TIMEOUT, |s| {
            Duration::from_secs(s.into_inner())
        });
    let app_update = app_update_argv.map(|argv| CommandUpdater {
        argv,
        timeout: app_update_timeout,
    });
    Ok(app_update)
}
