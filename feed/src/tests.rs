//! Tests of the feed: keys, names, packing and signing, manifests and publishing.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read};

use zipsign_api::{SigningKey, VerifyingKey};

use crate::keys::{decode_verifying_key, keygen, read_signing_key};
use crate::manifest::{Manifest, ManifestAsset};
use crate::pack::{package_and_sign, package_bytes_and_sign, sha256_hex};
use crate::publish::{ReleaseOptions, release, rfc3339_utc};
use crate::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn verify(bytes: &[u8], vkey: &VerifyingKey, context: &str, zip: bool) -> bool {
    let keys = [*vkey];
    let mut input = Cursor::new(bytes);
    if zip {
        zipsign_api::verify::verify_zip(&mut input, &keys, Some(context.as_bytes())).is_ok()
    } else {
        zipsign_api::verify::verify_tar(&mut input, &keys, Some(context.as_bytes())).is_ok()
    }
}

const LINUX: &str = "x86_64-unknown-linux-gnu";
const WINDOWS: &str = "x86_64-pc-windows-msvc";

#[test]
fn names_follow_the_contract() {
    let v = parse_version("0.2.0").unwrap();
    assert_eq!(
        artifact_name(&v, LINUX),
        "roomready-agent-0.2.0-x86_64-unknown-linux-gnu.tar.gz"
    );
    assert_eq!(
        artifact_name(&v, WINDOWS),
        "roomready-agent-0.2.0-x86_64-pc-windows-msvc.zip"
    );
    assert_eq!(binary_name(WINDOWS), "roomready-agent.exe");
    assert_eq!(binary_name("aarch64-apple-darwin"), "roomready-agent");
    for bad in ["v0.2.0", "0.2", "", " 0.2.0", "0.2.0 ", "latest"] {
        assert!(
            matches!(parse_version(bad), Err(FeedError::BadVersion { .. })),
            "{bad:?}"
        );
    }
    parse_version("1.0.0-beta.1").unwrap();
    for bad in [
        "",
        "linux",
        "../x-y",
        "x86_64/linux-gnu",
        "a--b",
        "-a",
        ".a-b",
    ] {
        assert!(check_target(bad).is_err(), "{bad:?}");
    }
    check_target(LINUX).unwrap();
    check_target("thumbv7em-none-eabihf").unwrap();
}

#[test]
fn tar_gz_verifies_with_its_name_as_context_only() {
    let k = key(1);
    let v = parse_version("0.2.0").unwrap();
    let a = package_bytes_and_sign(&k, b"#!/bin/sh\necho agent\n", &v, LINUX).unwrap();
    assert!(verify(&a.bytes, &k.verifying_key(), &a.name, false));
    // Another key, another context, no context, a tampered byte: all refused.
    assert!(!verify(&a.bytes, &key(2).verifying_key(), &a.name, false));
    let other = "roomready-agent-0.2.1-x86_64-unknown-linux-gnu.tar.gz";
    assert!(!verify(&a.bytes, &k.verifying_key(), other, false));
    assert!(
        zipsign_api::verify::verify_tar(&mut Cursor::new(&a.bytes), &[k.verifying_key()], None)
            .is_err()
    );
    for at in [0, 20, a.bytes.len() / 2] {
        let mut tampered = a.bytes.clone();
        tampered[at] ^= 0x01;
        assert!(
            !verify(&tampered, &k.verifying_key(), &a.name, false),
            "tampered at {at}"
        );
    }
    assert_eq!(a.sha256, sha256_hex(&a.bytes));
    assert_eq!(a.sha256.len(), 64);
}

#[test]
fn tar_gz_holds_exactly_the_binary_mode_0755() {
    let v = parse_version("0.2.0").unwrap();
    let a = package_bytes_and_sign(&key(1), b"binary bytes", &v, LINUX).unwrap();
    // The signature is a trailing gzip member; a multi-member gzip reader reads through it.
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&a.bytes[..]));
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        entries.push((
            entry.path().unwrap().to_string_lossy().into_owned(),
            entry.header().mode().unwrap(),
            body,
        ));
    }
    assert_eq!(
        entries,
        vec![(
            "roomready-agent".to_string(),
            0o755,
            b"binary bytes".to_vec()
        )]
    );
}

#[test]
fn zip_verifies_with_its_name_as_context_and_holds_the_exe() {
    let k = key(3);
    let v = parse_version("1.2.3").unwrap();
    let a = package_bytes_and_sign(&k, b"MZ fake exe", &v, WINDOWS).unwrap();
    assert_eq!(a.name, "roomready-agent-1.2.3-x86_64-pc-windows-msvc.zip");
    assert!(verify(&a.bytes, &k.verifying_key(), &a.name, true));
    assert!(!verify(&a.bytes, &key(4).verifying_key(), &a.name, true));
    assert!(!verify(
        &a.bytes,
        &k.verifying_key(),
        "roomready-agent-1.2.3-x86_64-pc-windows-gnu.zip",
        true
    ));
    let mut tampered = a.bytes.clone();
    let last = tampered.len() - 30;
    tampered[last] ^= 0x01;
    assert!(!verify(&tampered, &k.verifying_key(), &a.name, true));

    let mut zip = zip::ZipArchive::new(Cursor::new(&a.bytes)).unwrap();
    assert_eq!(zip.len(), 1);
    let mut file = zip.by_index(0).unwrap();
    assert_eq!(file.name().unwrap(), "roomready-agent.exe");
    assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut body = Vec::new();
    file.read_to_end(&mut body).unwrap();
    assert_eq!(body, b"MZ fake exe");
}

#[test]
fn keygen_writes_a_key_pair_that_signs_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let files = keygen(&keys).unwrap();
    let signing = read_signing_key(&files.signing_key).unwrap();
    assert_eq!(fs::read(&files.signing_key).unwrap().len(), 64);
    let line = fs::read_to_string(&files.verifying_key).unwrap();
    assert_eq!(line, format!("{}\n", files.verifying_key_b64));
    assert_eq!(line.trim_end().lines().count(), 1);
    let raw = decode_verifying_key(&line).unwrap();
    assert_eq!(raw, signing.verifying_key().to_bytes());
    // zipsign's own reader takes the file as it is.
    let read = zipsign_api::sign::read_signing_keys([fs::File::open(&files.signing_key)]);
    assert_eq!(read.unwrap()[0].to_bytes(), signing.to_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&files.signing_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = fs::read(&files.signing_key).unwrap();
    assert!(matches!(keygen(&keys), Err(FeedError::KeyExists { .. })));
    assert_eq!(fs::read(&files.signing_key).unwrap(), before);
    // Only one of the two there: still refused, nothing written.
    fs::remove_file(&files.signing_key).unwrap();
    assert!(matches!(keygen(&keys), Err(FeedError::KeyExists { .. })));
    assert!(!files.signing_key.exists());
    // Two runs give two different keys.
    let other = keygen(&dir.path().join("other")).unwrap();
    assert_ne!(other.verifying_key_b64, files.verifying_key_b64);
}

#[test]
fn bad_keys_and_binaries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.key");
    assert!(matches!(
        read_signing_key(&missing),
        Err(FeedError::ReadKey { .. })
    ));
    let short = dir.path().join("short.key");
    fs::write(&short, [0u8; 32]).unwrap();
    let e = read_signing_key(&short).unwrap_err();
    assert!(e.to_string().contains("32 bytes, expected 64"), "{e}");
    // A key pair whose public half does not match its secret half.
    let mut pair = key(1).to_keypair_bytes();
    pair[40] ^= 1;
    let mismatched = dir.path().join("mismatched.key");
    fs::write(&mismatched, pair).unwrap();
    assert!(matches!(
        read_signing_key(&mismatched),
        Err(FeedError::BadKey { .. })
    ));
    let e = package_and_sign(&key(1), &dir.path().join("no-bin"), "0.2.0", LINUX).unwrap_err();
    assert!(matches!(e, FeedError::ReadBinary { .. }), "{e}");
    assert!(matches!(
        package_and_sign(&key(1), dir.path(), "0.2.0", LINUX),
        Err(FeedError::ReadBinary { .. })
    ));
    assert!(matches!(
        decode_verifying_key("not base64!"),
        Err(FeedError::BadVerifyingKey { .. })
    ));
    assert!("nightly".parse::<Channel>().is_err());
    assert_eq!("beta".parse::<Channel>().unwrap(), Channel::Beta);
}

#[test]
fn manifest_round_trips_merges_and_sorts_newest_first() {
    let text = r#"{
      "schema": 1,
      "publisher": "hand",
      "releases": [
        {"version": "0.1.0", "date": "2026-01-01T00:00:00Z", "notes_url": "https://n/0.1.0",
         "assets": [{"name": "a-0.1.0.tar.gz", "url": "a-0.1.0.tar.gz", "digest": "sha256:00", "size": 3}]},
        {"version": "nightly", "assets": []}
      ]
    }"#;
    let mut m: Manifest = serde_json::from_str(text).unwrap();
    let again: Manifest = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(again, m);
    assert_eq!(m.extra["publisher"], "hand");
    assert_eq!(m.releases[0].assets[0].extra["size"], 3);

    let asset = |name: &str, d: &str| ManifestAsset {
        name: name.into(),
        url: name.into(),
        digest: Some(format!("sha256:{d}")),
        extra: BTreeMap::new(),
    };
    let v = |s: &str| parse_version(s).unwrap();
    m.upsert(
        &v("0.10.0"),
        asset("x-0.10.0", "aa"),
        "2026-03-01T00:00:00Z",
    );
    m.upsert(
        &v("0.2.0"),
        asset("x-0.2.0-linux", "bb"),
        "2026-02-01T00:00:00Z",
    );
    m.upsert(
        &v("0.2.0"),
        asset("x-0.2.0-darwin", "cc"),
        "2026-02-02T00:00:00Z",
    );
    m.upsert(
        &v("0.2.0"),
        asset("x-0.2.0-linux", "dd"),
        "2026-02-03T00:00:00Z",
    );
    m.upsert(
        &v("0.10.0-beta.1"),
        asset("x-b", "ee"),
        "2026-02-04T00:00:00Z",
    );
    let versions: Vec<&str> = m.releases.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(
        versions,
        ["0.10.0", "0.10.0-beta.1", "0.2.0", "0.1.0", "nightly"]
    );
    let r020 = &m.releases[2];
    assert_eq!(r020.date.as_deref(), Some("2026-02-01T00:00:00Z"));
    let assets: Vec<(&str, &str)> = r020
        .assets
        .iter()
        .map(|a| (a.name.as_str(), a.digest.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        assets,
        [
            ("x-0.2.0-darwin", "sha256:cc"),
            ("x-0.2.0-linux", "sha256:dd")
        ]
    );
    // Untouched release keeps its fields.
    assert_eq!(m.releases[3].notes_url.as_deref(), Some("https://n/0.1.0"));
    let json = m.to_json();
    assert!(json.ends_with("}\n"));
    assert!(!json.contains("null"), "{json}");
}

#[test]
fn publish_writes_artifact_and_merges_the_channel_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    let keys = keygen(&dir.path().join("keys")).unwrap();
    let bin = dir.path().join("agent");
    fs::write(&bin, b"agent 0.2.0").unwrap();
    let options = |version: &str, target: &str, channel| ReleaseOptions {
        key: keys.signing_key.clone(),
        bin: bin.clone(),
        version: version.into(),
        target: target.into(),
        channel,
        feed: feed.clone(),
    };
    let (a, p) = release(&options("0.2.0", LINUX, Channel::Stable)).unwrap();
    assert_eq!(p.artifact, feed.join("stable").join(&a.name));
    assert_eq!(fs::read(&p.artifact).unwrap(), a.bytes);
    assert_eq!(sha256_hex(&fs::read(&p.artifact).unwrap()), a.sha256);
    release(&options("0.1.0", LINUX, Channel::Stable)).unwrap();
    release(&options("0.2.0", WINDOWS, Channel::Stable)).unwrap();
    release(&options("0.3.0-beta.1", LINUX, Channel::Beta)).unwrap();
    // Re-releasing replaces the asset (new signature, new digest), not duplicates it.
    let (again, _) = release(&options("0.2.0", LINUX, Channel::Stable)).unwrap();

    let stable = Manifest::load(&feed.join("stable/manifest.json")).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(feed.join("stable/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["releases"][0]["version"], "0.2.0");
    assert_eq!(
        json["releases"][0]["assets"][0]["name"],
        "roomready-agent-0.2.0-x86_64-pc-windows-msvc.zip"
    );
    assert_eq!(
        json["releases"][0]["assets"][1]["digest"],
        format!("sha256:{}", again.sha256)
    );
    assert_eq!(stable.releases.len(), 2);
    assert_eq!(stable.releases[1].version, "0.1.0");
    let beta = Manifest::load(&feed.join("beta/manifest.json")).unwrap();
    assert_eq!(beta.releases.len(), 1);
    assert!(
        feed.join("beta/roomready-agent-0.3.0-beta.1-x86_64-unknown-linux-gnu.tar.gz")
            .is_file()
    );
    // Nothing temporary left behind.
    for entry in fs::read_dir(feed.join("stable")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name}");
    }
    // Bad inputs fail before anything is written.
    let e = release(&options("v0.4.0", LINUX, Channel::Stable)).unwrap_err();
    assert!(matches!(e, FeedError::BadVersion { .. }), "{e}");
    let mut missing_key = options("0.4.0", LINUX, Channel::Stable);
    missing_key.key = dir.path().join("missing.key");
    assert!(matches!(
        release(&missing_key),
        Err(FeedError::ReadKey { .. })
    ));
    assert_eq!(
        Manifest::load(&feed.join("stable/manifest.json"))
            .unwrap()
            .releases
            .len(),
        2
    );
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339_utc(1_784_194_245), "2026-07-16T09:30:45Z");
}
