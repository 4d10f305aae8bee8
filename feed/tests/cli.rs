//! `roomready-release` as an operator runs it: `keygen` writes a key pair once and prints the
//! agent's `update_keys` line; `release` publishes a signed artifact into a feed and names what
//! is wrong (version, key, binary, target) with exit code 1; a wrong command line is 64.

use std::path::Path;
use std::process::{Command, Output};

const RELEASE: &str = env!("CARGO_BIN_EXE_roomready-release");

fn run(args: &[&str]) -> Output {
    Command::new(RELEASE)
        .args(args)
        .output()
        .expect("run roomready-release")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn release(dir: &Path, version: &str, key: &str, bin: &str, target: &str) -> Output {
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    run(&[
        "release",
        "--key",
        &path(key),
        "--bin",
        &path(bin),
        "--version",
        version,
        "--target",
        target,
        "--channel",
        "stable",
        "--out",
        &path("feed"),
    ])
}

#[test]
fn keygen_then_release_publishes_a_signed_artifact_and_its_manifest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let keys = keys.to_str().expect("utf-8");

    let out = run(&["keygen", "--out", keys]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let b64 = std::fs::read_to_string(dir.path().join("keys/verifying.key.b64")).expect("key");
    assert!(
        text(&out.stdout).contains(&format!("update_keys = [\"{}\"]", b64.trim())),
        "{}",
        text(&out.stdout)
    );
    roomready_feed::keys::decode_verifying_key(&b64).expect("the agent can pin it");
    let again = run(&["keygen", "--out", keys]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("refusing to overwrite"),
        "{}",
        text(&again.stderr)
    );

    std::fs::write(dir.path().join("agent"), b"agent 0.2.0").expect("binary");
    for target in ["x86_64-unknown-linux-gnu", "x86_64-pc-windows-gnu"] {
        let out = release(dir.path(), "0.2.0", "keys/signing.key", "agent", target);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let version = semver::Version::parse("0.2.0").expect("version");
        let name = roomready_feed::artifact_name(&version, target);
        assert!(text(&out.stdout).contains(&name), "{}", text(&out.stdout));
        assert!(dir.path().join("feed/stable").join(&name).is_file());
    }
    let manifest =
        roomready_feed::manifest::Manifest::load(&dir.path().join("feed/stable/manifest.json"))
            .expect("a manifest");
    assert_eq!(manifest.releases.len(), 1);
    assert_eq!(manifest.releases[0].assets.len(), 2, "{manifest:?}");
}

#[test]
fn what_is_wrong_is_named_with_exit_code_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    assert_eq!(
        run(&["keygen", "--out", keys.to_str().expect("utf-8")])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(dir.path().join("agent"), b"agent").expect("binary");
    let linux = "x86_64-unknown-linux-gnu";
    for (version, key, bin, target, message) in [
        (
            "v0.2.0",
            "keys/signing.key",
            "agent",
            linux,
            "not a bare semver",
        ),
        (
            "0.2.0",
            "keys/none.key",
            "agent",
            linux,
            "cannot read the signing key",
        ),
        (
            "0.2.0",
            "keys/verifying.key.b64",
            "agent",
            linux,
            "not a zipsign signing key",
        ),
        (
            "0.2.0",
            "keys/signing.key",
            "missing",
            linux,
            "cannot read the binary",
        ),
        (
            "0.2.0",
            "keys/signing.key",
            "agent",
            "linux",
            "not a target triple",
        ),
        (
            "0.2.0",
            "keys/signing.key",
            "agent",
            "../x-y",
            "not a target triple",
        ),
    ] {
        let out = release(dir.path(), version, key, bin, target);
        assert_eq!(out.status.code(), Some(1), "{version} {key} {bin} {target}");
        assert!(
            text(&out.stderr).starts_with("roomready-release: ")
                && text(&out.stderr).contains(message),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!dir.path().join("feed").exists(), "nothing was published");
}

#[test]
fn usage_errors_exit_64_and_help_lists_the_exit_codes() {
    assert_eq!(run(&[]).status.code(), Some(64));
    assert_eq!(run(&["sign"]).status.code(), Some(64));
    assert_eq!(run(&["release", "--key", "k"]).status.code(), Some(64));
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    assert!(
        help.contains("keygen") && help.contains("release"),
        "{help}"
    );
    assert!(help.contains("Exit codes: 0 done, 1"), "{help}");
}
