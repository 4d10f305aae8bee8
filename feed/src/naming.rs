//! What things in a feed are called: channels, manifests, artifacts and the binary inside them,
//! and the versions and targets that go into those names.
//!
//! - A channel's releases are listed in `{feed}/{channel}/`[`MANIFEST_FILE`].
//! - An artifact is [`artifact_name`]: `roomready-agent-{version}-{target}.tar.gz`, `.zip` for
//!   `*-windows-*` targets; that name is also its signature's context.
//! - It holds exactly one file, [`binary_name`]: `roomready-agent`, `.exe` on Windows targets.

use std::fmt;
use std::str::FromStr;

use semver::Version;

use crate::FeedError;

/// File name of a channel's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The agent binary's name inside an artifact (plus `.exe` on Windows targets).
pub const AGENT_BIN: &str = "roomready-agent";

/// The target this agent was built for (e.g. `x86_64-unknown-linux-gnu`): the one it asks the
/// feed for, and the one a test publishes for.
pub fn this_target() -> &'static str {
    env!("ROOMREADY_FEED_TARGET")
}

/// Whether `target` is a Windows target (`*-windows-*`): those get a `.zip` and an `.exe`.
pub fn is_windows_target(target: &str) -> bool {
    target.split('-').any(|part| part == "windows")
}

/// The archive extension for `target`: `zip` on Windows targets, else `tar.gz`.
pub fn archive_ext(target: &str) -> &'static str {
    if is_windows_target(target) {
        "zip"
    } else {
        "tar.gz"
    }
}

/// The artifact's published file name, which is also its signature context.
pub fn artifact_name(version: &Version, target: &str) -> String {
    format!("{AGENT_BIN}-{version}-{target}.{}", archive_ext(target))
}

/// The binary's name inside the artifact.
pub fn binary_name(target: &str) -> String {
    if is_windows_target(target) {
        format!("{AGENT_BIN}.exe")
    } else {
        AGENT_BIN.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_target() {
        let v = Version::new(0, 2, 0);
        assert_eq!(
            artifact_name(&v, "x86_64-unknown-linux-gnu"),
            "roomready-agent-0.2.0-x86_64-unknown-linux-gnu.tar.gz"
        );
        assert_eq!(
            artifact_name(&v, "x86_64-pc-windows-gnu"),
            "roomready-agent-0.2.0-x86_64-pc-windows-gnu.zip"
        );
        assert_eq!(binary_name("x86_64-pc-windows-msvc"), "roomready-agent.exe");
        assert_eq!(binary_name("aarch64-apple-darwin"), "roomready-agent");
        // "windows" as a whole part of the triple, not inside another word.
        assert!(!is_windows_target("x86_64-unknown-notwindows-gnu"));
    }
}

/// An update channel: the feed's subdirectory (`stable`, `beta`), the agent's `update_channel`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Channel {
    #[default]
    Stable,
    Beta,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Stable, Channel::Beta];

    /// The channel's directory name in the feed.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stable" => Ok(Channel::Stable),
            "beta" => Ok(Channel::Beta),
            other => Err(format!("expected \"stable\" or \"beta\", found {other:?}")),
        }
    }
}

/// Parses a bare semver version (`0.2.0`, `1.0.0-beta.1`; not `v0.2.0`, not `0.2`).
pub fn parse_version(version: &str) -> Result<semver::Version, FeedError> {
    semver::Version::parse(version).map_err(|e| FeedError::BadVersion {
        version: version.to_string(),
        reason: e.to_string(),
    })
}

/// Checks that `target` looks like a target triple: ASCII letters, digits, `_`, `.` and `-`, at
/// least two `-`-separated parts, no empty part. It ends up in a file name, so nothing else.
pub fn check_target(target: &str) -> Result<(), FeedError> {
    let ok = target.split('-').count() >= 2
        && target.split('-').all(|part| !part.is_empty())
        && !target.starts_with('.')
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(FeedError::BadTarget(target.to_string()))
    }
}
