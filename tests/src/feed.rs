//! A signed update feed for simulated devices that really update themselves: a fresh key pair
//! and one release for this host, its "binary" a script that passes the installer's self-test.

use std::path::{Path, PathBuf};

use roomready_feed::Channel;
use roomready_feed::keys::{decode_verifying_key, keygen};
use roomready_feed::publish::{ReleaseOptions, release};

/// The release "binary" of `version`: a script that passes the installer's self-test.
pub fn release_script(version: &str) -> String {
    format!("#!/bin/sh\n# roomready-agent {version}\nexit 0\n")
}

/// Creates, under `dir`, a key pair and a stable-channel feed offering `version` for this host;
/// the feed's directory (for an update server) and the verifying key devices pin.
pub fn signed_feed(dir: &Path, version: &str) -> (PathBuf, [u8; 32]) {
    let keys = keygen(&dir.join("keys")).expect("keygen");
    let feed = dir.join("feed");
    std::fs::create_dir_all(&feed).expect("feed dir");
    let bin = dir.join("new-agent");
    std::fs::write(&bin, release_script(version)).expect("release binary");
    release(&ReleaseOptions {
        key: keys.signing_key.clone(),
        bin,
        version: version.into(),
        target: roomready_feed::this_target().into(),
        channel: Channel::Stable,
        feed: feed.clone(),
    })
    .expect("release");
    let key = decode_verifying_key(&keys.verifying_key_b64).expect("verifying key");
    (feed, key)
}
