//! The self-update's settings, owned here: the `update_*` keys and `allow_downgrade` (their
//! names in [`KEYS`], defaults, validation and what they mean), read from the agent's config
//! file by [`read`]. `crate::config` only assembles the sections; this doc, the README and
//! docs/examples/agent.toml are tested to show every key of [`KEYS`].
//!
//! ```toml
//! # Signed self-update (`roomready-agent update`).
//! update_feed_url = "https://updates.example/roomready"  # optional; the feed's base URL, read
//!                                        # as {url}/{channel}/manifest.json; http:// only to a
//!                                        # loopback host
//! update_github_repo = "contoso/roomready"  # or: the releases of a GitHub repository (not both)
//! update_github_api_url = "https://github.contoso.com/api/v3"  # optional; GitHub Enterprise's
//!                                        # API, default https://api.github.com
//! update_github_token_file = "github-token"  # optional; its first line is a token, for a
//!                                        # private repository
//! update_keys = ["base64 of a 32-byte ed25519 key"]  # required with a feed; the publisher's
//!                                        # verifying keys (any one must have signed)
//! update_channel = "stable"              # optional; "stable" (default) or "beta"
//! allow_downgrade = false                # optional; true permits installing an older version
//! update_max_mib = 64                    # optional; 1..=4096, default 64: largest artifact
//! update_ca_file = "feed-ca.pem"         # optional; PEM trust anchors for the feed's HTTPS
//!                                        # (default Mozilla's roots)
//! update_health_secs = 120               # optional; 10..=3600, default 120: how long a new
//!                                        # version has to report healthy before it is kept
//! auto_update = false                    # optional; true: check and install once a day
//!                                        # (needs a feed and update_keys)
//! update_window = "01:00-05:00"          # optional; local-time window for auto_update
//!                                        # (default 01:00-05:00)
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::keyfile::{KeyFile, KeyFileError};
use crate::update::window::Window;
use roomready_connect::broker::Password;

/// The keys of this section, in the order the docs list them.
pub(crate) const KEYS: &[&str] = &[
    "update_feed_url",
    "update_github_repo",
    "update_github_api_url",
    "update_github_token_file",
    "update_keys",
    "update_channel",
    "allow_downgrade",
    "update_max_mib",
    "update_health_secs",
    "auto_update",
    "update_window",
    "update_ca_file",
];

/// How long a new version has to prove itself after an update's restart.
pub(crate) const DEFAULT_UPDATE_HEALTH: Duration = Duration::from_secs(120);

/// The default bound on a downloaded update artifact.
pub(crate) const DEFAULT_UPDATE_MAX_MIB: u64 = 64;

/// The `update_*` keys: where signed releases are published and which keys sign them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConfig {
    /// Where releases are published; `None`: no feed configured.
    pub feed: Option<UpdateFeed>,
    /// `update_keys`: raw ed25519 verifying keys; an artifact must be signed by one of them.
    pub keys: Vec<[u8; 32]>,
    pub channel: UpdateChannel,
    /// `allow_downgrade`: whether a version older than the running one may be installed.
    pub allow_downgrade: bool,
    /// `update_max_mib` in bytes (default 64 MiB): larger artifacts are refused.
    pub max_bytes: u64,
    /// `update_health_secs` (default 120): how long a new version has, after its restart, to
    /// connect and deliver a state before the previous version is restored.
    pub health_timeout: Duration,
    /// `auto_update` (default false): check (and install) by itself once a day, inside
    /// `update_window` (local time, default 01:00-05:00).
    pub auto: Option<Window>,
    /// `update_ca_file`: PEM trust anchors for an https feed (default: Mozilla's roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            feed: None,
            keys: Vec::new(),
            channel: UpdateChannel::Stable,
            allow_downgrade: false,
            max_bytes: DEFAULT_UPDATE_MAX_MIB * 1024 * 1024,
            health_timeout: DEFAULT_UPDATE_HEALTH,
            auto: None,
            ca_file: None,
        }
    }
}

/// Where signed releases are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateFeed {
    /// `update_feed_url` (without a trailing `/`): a static feed, `{url}/{channel}/manifest.json`.
    Manifest { url: String },
    /// `update_github_repo`: the releases of a GitHub or GitHub Enterprise repository.
    GitHub {
        /// `update_github_api_url` without a trailing `/` (default [`GITHUB_API_URL`]).
        api_url: String,
        owner: String,
        repo: String,
        /// `update_github_token_file`'s first line, for a private repository.
        token: Option<Password>,
    },
}

/// GitHub's public API.
pub(crate) const GITHUB_API_URL: &str = "https://api.github.com";

impl fmt::Display for UpdateFeed {
    /// The feed as an operator names it: its URL, or `github:OWNER/REPO` (with the API URL when
    /// it is not GitHub's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateFeed::Manifest { url } => f.write_str(url),
            UpdateFeed::GitHub {
                api_url,
                owner,
                repo,
                ..
            } if api_url == GITHUB_API_URL => write!(f, "github:{owner}/{repo}"),
            UpdateFeed::GitHub {
                api_url,
                owner,
                repo,
                ..
            } => write!(f, "github:{owner}/{repo} at {api_url}"),
        }
    }
}

/// `update_channel`: the feed's channel, the publisher's own type.
pub use roomready_feed::Channel as UpdateChannel;

/// Decodes one `update_keys` entry: standard base64 of a 32-byte ed25519 verifying key.
pub(crate) fn decode_update_key(text: &str) -> Result<[u8; 32], String> {
    roomready_feed::keys::decode_verifying_key(text).map_err(|e| e.to_string())
}

/// Reads the keys of [`KEYS`] from `file` (`config_dir`: where relative paths start).
pub(crate) fn read(
    file: &mut KeyFile<'_>,
    config_dir: Option<&Path>,
) -> Result<UpdateConfig, KeyFileError> {
    let feed = update_feed(file, config_dir)?;
    let mut keys = Vec::new();
    if let Some(items) = file.string_array("update_keys")? {
        for item in items {
            let key = decode_update_key(item.get_ref())
                .map_err(|reason| file.error("update_keys", item.span(), reason))?;
            keys.push(key);
        }
    }
    if let Some((_, key, span)) = &feed
        && keys.is_empty()
    {
        return Err(file.error(
            key,
            span.clone(),
            "update_keys is missing or empty: pin the publisher's verifying keys (base64); \
             updates are installed only when signed by one of them",
        ));
    }
    let channel = match file.string("update_channel")? {
        None => UpdateChannel::Stable,
        Some(c) => c
            .get_ref()
            .parse()
            .map_err(|reason| file.error("update_channel", c.span(), reason))?,
    };
    let allow_downgrade = file
        .boolean("allow_downgrade")?
        .is_some_and(Spanned::into_inner);
    let max_bytes = file
        .integer("update_max_mib", 1..=4096)?
        .map_or(DEFAULT_UPDATE_MAX_MIB, |m| m.into_inner())
        * 1024
        * 1024;
    let health_timeout = file
        .integer("update_health_secs", 10..=3600)?
        .map_or(DEFAULT_UPDATE_HEALTH, |s| {
            Duration::from_secs(s.into_inner())
        });
    let auto = file
        .boolean("auto_update")?
        .is_some_and(Spanned::into_inner);
    let window = match file.string("update_window")? {
        None => Window::default(),
        Some(w) => w
            .get_ref()
            .parse()
            .map_err(|reason: String| file.error("update_window", w.span(), reason))?,
    };
    if auto && feed.is_none() {
        return Err(file.missing(
            "update_feed_url",
            "auto_update needs a feed (update_feed_url or update_github_repo, and update_keys)",
        ));
    }
    let ca_file = file.string("update_ca_file")?.map(|p| {
        let path = PathBuf::from(p.into_inner());
        match config_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    });
    Ok(UpdateConfig {
        ca_file,
        feed: feed.map(|f| f.0),
        keys,
        channel,
        allow_downgrade,
        max_bytes,
        health_timeout,
        auto: auto.then_some(window),
    })
}

/// A feed with the key that named it and that key's span, for errors about it.
type NamedFeed = (UpdateFeed, &'static str, Range<usize>);

/// `update_feed_url`, or `update_github_repo` with its API URL and token.
fn update_feed(
    file: &mut KeyFile<'_>,
    config_dir: Option<&Path>,
) -> Result<Option<NamedFeed>, KeyFileError> {
    let url = file.string("update_feed_url")?;
    let repo = file.string("update_github_repo")?;
    let api_url = file.string("update_github_api_url")?;
    let token_file = file.string("update_github_token_file")?;
    if repo.is_none() {
        for (key, given) in [
            ("update_github_api_url", &api_url),
            ("update_github_token_file", &token_file),
        ] {
            if let Some(given) = given {
                return Err(file.error(key, given.span(), "needs update_github_repo"));
            }
        }
    }
    match (url, repo) {
        (Some(_), Some(repo)) => Err(file.error(
            "update_github_repo",
            repo.span(),
            "update_feed_url is set too: releases come from one feed, not both",
        )),
        (None, None) => Ok(None),
        (Some(url), None) => {
            let span = url.span();
            let url = feed_url(url.get_ref())
                .map_err(|reason| file.error("update_feed_url", span.clone(), reason))?;
            Ok(Some((
                UpdateFeed::Manifest { url },
                "update_feed_url",
                span,
            )))
        }
        (None, Some(repo)) => {
            let span = repo.span();
            let (owner, name) = github_repo(repo.get_ref())
                .map_err(|reason| file.error("update_github_repo", span.clone(), reason))?;
            let api_url = match api_url {
                None => GITHUB_API_URL.to_owned(),
                Some(url) => feed_url(url.get_ref())
                    .map_err(|reason| file.error("update_github_api_url", url.span(), reason))?,
            };
            let token = match token_file {
                None => None,
                Some(p) if p.get_ref().is_empty() => {
                    return Err(file.error("update_github_token_file", p.span(), "is empty"));
                }
                Some(p) => {
                    let token_span = p.span();
                    let path = PathBuf::from(p.into_inner());
                    let path = match config_dir {
                        Some(dir) if path.is_relative() => dir.join(path),
                        _ => path,
                    };
                    let text =
                        crate::files::read_text(&path, crate::files::SECRET).map_err(|e| {
                            file.error(
                                "update_github_token_file",
                                token_span.clone(),
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                    let first = text.lines().next().unwrap_or_default().trim();
                    if first.is_empty() {
                        return Err(file.error(
                            "update_github_token_file",
                            token_span,
                            format!("the first line of {} is empty", path.display()),
                        ));
                    }
                    Some(Password::new(first))
                }
            };
            Ok(Some((
                UpdateFeed::GitHub {
                    api_url,
                    owner,
                    repo: name,
                    token,
                },
                "update_github_repo",
                span,
            )))
        }
    }
}

/// Checks an `update_github_repo`: `OWNER/NAME`, as GitHub spells repository names.
pub(crate) fn github_repo(text: &str) -> Result<(String, String), String> {
    let expected = || format!("expected OWNER/NAME, found {text:?}");
    let (owner, name) = text.split_once('/').ok_or_else(expected)?;
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !valid(owner) || !valid(name) {
        return Err(expected());
    }
    Ok((owner.to_owned(), name.to_owned()))
}

/// The host of a URL's `authority` (`HOST[:PORT]`, or `[V6][:PORT]` without the brackets);
/// `None` for an unclosed `[`.
pub(crate) fn authority_host(authority: &str) -> Option<&str> {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(host, _)| host),
        None => Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h)),
    }
}

/// Checks an `update_feed_url`: `https://HOST[:PORT][/PATH]`, or `http://` to a loopback host
/// (tests, a local mirror); returned without a trailing `/`.
pub fn feed_url(url: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected https://HOST[:PORT][/PATH] (http:// only to a loopback host)";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(EXPECTED.to_owned());
    };
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(format!("unsupported scheme {scheme:?}; {EXPECTED}")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if rest[authority.len()..].contains(['?', '#']) {
        return Err(format!("a query or fragment is not allowed; {EXPECTED}"));
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let Some(host) = authority_host(authority) else {
        return Err("unclosed '[' in IPv6 address".to_owned());
    };
    if host.is_empty() {
        return Err(format!("host is empty; {EXPECTED}"));
    }
    if !tls && !crate::loopback::is_loopback_host(host) {
        return Err(format!(
            "plain http:// to {host:?}, which is not a loopback address, could be tampered with \
             or replayed in transit; use https://"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}
