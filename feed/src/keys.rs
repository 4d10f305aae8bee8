//! Keys: the publisher's zipsign ed25519 key pair and the verifying key the agent pins.
//!
//! - `signing.key` ([`SIGNING_KEY_FILE`]) holds the 64 key-pair bytes (secret key then public
//!   key, `SigningKey::to_keypair_bytes`), exactly what `zipsign_api::sign::read_signing_keys`
//!   and the `zipsign gen-key` tool use.
//! - `verifying.key.b64` ([`VERIFYING_KEY_FILE`]) holds the 32-byte verifying key in standard
//!   base64 on one line: the form the agent pins in `update_keys` ([`decode_verifying_key`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zipsign_api::{PUBLIC_KEY_LENGTH, VerifyingKey};

use crate::FeedError;

/// File name of the signing key written by `keygen`.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the base64 verifying key written by `keygen`.
pub const VERIFYING_KEY_FILE: &str = "verifying.key.b64";

/// The verifying key as the agent's `update_keys` holds it: standard base64 of the 32 bytes.
pub fn verifying_key_b64(key: &VerifyingKey) -> String {
    BASE64.encode(key.as_bytes())
}

/// Decodes a base64 verifying key (surrounding whitespace ignored) into the raw 32 bytes that
/// `self_update`'s `verifying_keys` takes. (Whether the bytes are a point of the curve is left to
/// verification, where a key that is not one matches nothing.)
pub fn decode_verifying_key(text: &str) -> Result<[u8; PUBLIC_KEY_LENGTH], FeedError> {
    let bad = |reason: String| FeedError::BadVerifyingKey {
        text: text.to_owned(),
        reason,
    };
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| bad(format!("is not standard base64: {e}")))?;
    let raw: [u8; PUBLIC_KEY_LENGTH] = bytes.as_slice().try_into().map_err(|_| {
        bad(format!(
            "decodes to {} bytes; an ed25519 verifying key is {PUBLIC_KEY_LENGTH} bytes",
            bytes.len()
        ))
    })?;
    Ok(raw)
}

#[cfg(feature = "publish")]
pub use publisher::{KeyFiles, keygen, read_signing_key};

/// The publisher's half: making and reading the secret key.
#[cfg(feature = "publish")]
mod publisher {
    use std::fs;
    use std::io::{self, Write as _};
    use std::path::{Path, PathBuf};

    use zipsign_api::{KEYPAIR_LENGTH, SigningKey};

    use super::{SIGNING_KEY_FILE, VERIFYING_KEY_FILE, verifying_key_b64};
    use crate::FeedError;
    use crate::error::io_err;

    /// What [`keygen`] wrote.
    #[derive(Debug, Clone)]
    pub struct KeyFiles {
        /// `DIR/signing.key`: 64 bytes, mode 0600 on unix.
        pub signing_key: PathBuf,
        /// `DIR/verifying.key.b64`: one line of base64.
        pub verifying_key: PathBuf,
        /// The verifying key in standard base64, as written (without the newline).
        pub verifying_key_b64: String,
    }

    /// Generates a zipsign ed25519 key pair into `dir` (created if missing): `signing.key` (the
    /// 64 key-pair bytes, mode 0600 on unix) and `verifying.key.b64`. Refuses, writing nothing, when
    /// either file already exists.
    pub fn keygen(dir: &Path) -> Result<KeyFiles, FeedError> {
        let signing_path = dir.join(SIGNING_KEY_FILE);
        let verifying_path = dir.join(VERIFYING_KEY_FILE);
        for path in [&signing_path, &verifying_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(FeedError::KeyExists { path: path.clone() });
            }
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| FeedError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        let b64 = verifying_key_b64(&key.verifying_key());

        let mut keypair = key.to_keypair_bytes();
        let written = write_new(&signing_path, &keypair, true);
        keypair.fill(0);
        written?;
        if let Err(e) = write_new(&verifying_path, format!("{b64}\n").as_bytes(), false) {
            // Do not leave half a key pair behind.
            let _ = fs::remove_file(&signing_path);
            return Err(e);
        }
        Ok(KeyFiles {
            signing_key: signing_path,
            verifying_key: verifying_path,
            verifying_key_b64: b64,
        })
    }

    /// Creates `path` (failing if it exists) with `bytes`; `secret` files get mode 0600 on unix.
    fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), FeedError> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if secret { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = secret;
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                FeedError::KeyExists {
                    path: path.to_path_buf(),
                }
            } else {
                FeedError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_err(path))
    }

    /// Reads a signing key written by [`keygen`] (or `zipsign gen-key`): exactly 64 key-pair bytes
    /// whose public half matches the secret half.
    pub fn read_signing_key(path: &Path) -> Result<SigningKey, FeedError> {
        let bytes = fs::read(path).map_err(|source| FeedError::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
        let keypair: [u8; KEYPAIR_LENGTH] =
            bytes.as_slice().try_into().map_err(|_| FeedError::BadKey {
                path: path.to_path_buf(),
                reason: format!("{} bytes, expected {KEYPAIR_LENGTH}", bytes.len()),
            })?;
        SigningKey::from_keypair_bytes(&keypair).map_err(|e| FeedError::BadKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}
