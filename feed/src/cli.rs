//! The publisher's commands, `keygen` and `release`: their arguments, what they print, and their
//! exit codes, defined once for `roomready-release` and for `roomready-sim`, which offers the same
//! two commands.

use std::io::Write;
use std::path::PathBuf;

use crate::FeedError;
use crate::keys::keygen;
use crate::naming::{Channel, MANIFEST_FILE};
use crate::publish::{ReleaseOptions, release};

/// Exit codes of the commands.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The command failed (a key, binary, version, target or feed problem, named on stderr).
    pub const FAILED: u8 = 1;
    /// The command line is wrong.
    pub const USAGE: u8 = 64;
}

/// Parses the command line of a binary offering these commands: a usage error is printed and
/// ends the process with [`exit::USAGE`], `--help` and `--version` with [`exit::OK`].
pub fn parse_args<C: clap::Parser>() -> Result<C, std::process::ExitCode> {
    C::try_parse().map_err(|e| {
        let code = if e.use_stderr() {
            exit::USAGE
        } else {
            exit::OK
        };
        let _ = e.print();
        std::process::ExitCode::from(code)
    })
}

/// `keygen`: generate a zipsign ed25519 key pair for signing agent releases.
///
/// Writes DIR/signing.key (64 key-pair bytes, mode 0600: keep it secret) and
/// DIR/verifying.key.b64 (the public key, base64, one line: put it in the agent's
/// `update_keys`). Refuses to overwrite either file.
#[derive(Debug, Clone, clap::Args)]
pub struct KeygenArgs {
    /// Directory for the two key files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `release`: package, sign and publish an agent binary into an update feed.
///
/// Writes FEED/CHANNEL/roomready-agent-VERSION-TARGET.tar.gz (.zip for *-windows-* targets),
/// signed with zipsign (the file name is the signature context), and adds or replaces that
/// version and asset in FEED/CHANNEL/manifest.json, keeping the other releases.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleaseArgs {
    /// The signing key from `keygen`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The agent binary to ship (named roomready-agent[.exe] inside the archive).
    #[arg(long, value_name = "PATH")]
    pub bin: PathBuf,
    /// Bare semver version of the binary, e.g. 0.2.0 or 0.3.0-beta.1 (no leading v).
    #[arg(long, value_name = "VERSION")]
    pub version: String,
    /// Target triple the binary is built for, e.g. x86_64-unknown-linux-gnu.
    #[arg(long, value_name = "TRIPLE")]
    pub target: String,
    /// Update channel.
    #[arg(long, value_parser = ["stable", "beta"])]
    pub channel: String,
    /// Feed directory (what the update server serves).
    #[arg(long, value_name = "FEED_DIR")]
    pub out: PathBuf,
}

/// Runs `keygen`, printing where the keys went and the agent's `update_keys` line to `out`.
pub fn run_keygen(args: &KeygenArgs, out: &mut impl Write) -> Result<(), FeedError> {
    let files = keygen(&args.out)?;
    let _ = writeln!(
        out,
        "signing key (secret):   {}",
        files.signing_key.display()
    );
    let _ = writeln!(
        out,
        "verifying key (public): {}",
        files.verifying_key.display()
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "agent configuration:");
    let _ = writeln!(out, "update_keys = [\"{}\"]", files.verifying_key_b64);
    Ok(())
}

/// Runs `release`, printing the artifact, its digest and the manifest to `out`.
pub fn run_release(args: &ReleaseArgs, out: &mut impl Write) -> Result<(), FeedError> {
    let channel: Channel = args
        .channel
        .parse()
        .map_err(|_| FeedError::BadChannel(args.channel.clone()))?;
    let (artifact, published) = release(&ReleaseOptions {
        key: args.key.clone(),
        bin: args.bin.clone(),
        version: args.version.clone(),
        target: args.target.clone(),
        channel,
        feed: args.out.clone(),
    })?;
    let _ = writeln!(out, "artifact: {}", published.artifact.display());
    let _ = writeln!(out, "sha256:   {}", artifact.sha256);
    let _ = writeln!(out, "manifest: {}", published.manifest.display());
    Ok(())
}

/// The manifests `feed` holds, one per channel that has one.
pub fn manifests(feed: &std::path::Path) -> Vec<(Channel, PathBuf)> {
    Channel::ALL
        .into_iter()
        .map(|c| (c, feed.join(c.as_str()).join(MANIFEST_FILE)))
        .filter(|(_, path)| path.is_file())
        .collect()
}
