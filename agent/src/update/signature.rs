//! Why an artifact's signature matched none of the pinned keys, told apart for the refusal:
//! signed by a pinned key but for another file name (a release published under another
//! version's name), altered after signing, or signed with another key.
//!
//! zipsign binds the artifact's file name into the signature as its context, so a genuine
//! artifact of 1.0.0 republished as 9.9.9 does not verify as 9.9.9. Trying the other file names
//! the feed lists finds the name it was really signed for.

use std::io::{BufReader, Seek as _};
use std::path::Path;

use zipsign_api::VerifyingKey;

/// At most this many other file names are tried (each try re-hashes the artifact).
pub(super) const MAX_OTHER_NAMES: usize = 32;

/// What a signature that matched no pinned key for its own name means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mismatch {
    /// A pinned key signed it, for the file name given.
    SignedAs(String),
    /// The archive is damaged: it was altered after signing.
    Altered(String),
    /// Intact, and signed for none of the names tried by any pinned key.
    OtherKey,
}

/// Diagnoses the artifact at `path` (named by its extension: `.zip` or `.tar.gz`) whose
/// signature did not verify, trying `other_names` (at most [`MAX_OTHER_NAMES`]) as contexts.
pub(super) fn diagnose(path: &Path, keys: &[[u8; 32]], other_names: &[String]) -> Mismatch {
    let keys: Vec<VerifyingKey> = keys
        .iter()
        .filter_map(|k| VerifyingKey::from_bytes(k).ok())
        .collect();
    let zip = path.extension().is_some_and(|e| e == "zip");
    if !keys.is_empty() {
        for name in other_names.iter().take(MAX_OTHER_NAMES) {
            if verifies(path, zip, &keys, name) {
                return Mismatch::SignedAs(name.clone());
            }
        }
    }
    match intact(path, zip) {
        Ok(()) => Mismatch::OtherKey,
        Err(damage) => Mismatch::Altered(damage),
    }
}

/// Whether any of `keys` signed the artifact at `path` for the file name `name`.
fn verifies(path: &Path, zip: bool, keys: &[VerifyingKey], name: &str) -> bool {
    let Ok(file) = crate::files::open_regular(path, std::fs::OpenOptions::new().read(true)) else {
        return false;
    };
    let mut input = BufReader::new(file);
    if input.rewind().is_err() {
        return false;
    }
    let context = Some(name.as_bytes());
    if zip {
        verify_zip(&mut input, keys, context)
    } else {
        zipsign_api::verify::verify_tar(&mut input, keys, context).is_ok()
    }
}

#[cfg(windows)]
fn verify_zip(
    input: &mut BufReader<std::fs::File>,
    keys: &[VerifyingKey],
    context: Option<&[u8]>,
) -> bool {
    zipsign_api::verify::verify_zip(input, keys, context).is_ok()
}

/// Zip artifacts are Windows artifacts: elsewhere the zip verifier is not built.
#[cfg(not(windows))]
fn verify_zip(
    _input: &mut BufReader<std::fs::File>,
    _keys: &[VerifyingKey],
    _context: Option<&[u8]>,
) -> bool {
    false
}

/// Whether the artifact decompresses cleanly (gzip CRCs hold): an intact archive whose
/// signature fails was signed by another key; a damaged one was altered after signing.
fn intact(path: &Path, zip: bool) -> Result<(), String> {
    if zip {
        // No cheap integrity check without the zip crate: call it altered, the safer reading.
        return Err("the signature does not verify against any pinned key".into());
    }
    let file = crate::files::open_regular(path, std::fs::OpenOptions::new().read(true))
        .map_err(|e| format!("cannot reread it: {e}"))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    std::io::copy(&mut decoder, &mut std::io::sink())
        .map(|_| ())
        .map_err(|e| format!("the gzip stream is damaged: {e}"))
}
