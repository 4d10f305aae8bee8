//! The update feed's contract, shared by the updater (this crate), the publisher
//! (`roomready-sim release`) and the tests: what an artifact and a manifest are called and what
//! an artifact holds. A change here changes both sides at once.
//!
//! - A channel's releases are listed in `{feed}/{channel}/`[`MANIFEST_FILE`].
//! - An artifact is [`artifact_name`]: `roomready-agent-{version}-{target}.tar.gz`, `.zip` for
//!   `*-windows-*` targets; that name is also its signature's context.
//! - It holds exactly one file, [`binary_name`]: `roomready-agent`, `.exe` on Windows targets.

use semver::Version;

/// File name of a channel's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The agent binary's name inside an artifact (plus `.exe` on Windows targets).
pub const AGENT_BIN: &str = "roomready-agent";

/// The target this agent was built for (e.g. `x86_64-unknown-linux-gnu`): the one it asks the
/// feed for, and the one a test publishes for.
pub fn this_target() -> &'static str {
    self_update::get_target()
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
