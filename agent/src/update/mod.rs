//! Signed self-update from a release feed.
//!
//! Two feeds, one artifact format:
//! - a static feed, `{update_feed_url}/{channel}/manifest.json` (self_update's manifest schema
//!   1) with the artifacts beside it;
//! - the releases of a GitHub or GitHub Enterprise repository (`update_github_repo`, read with
//!   self_update's github backend at `update_github_api_url`), the artifacts attached as release
//!   assets. GitHub has no channels: `stable` takes releases whose version has no pre-release
//!   part (`1.4.0`), `beta` takes those too and pre-releases (`1.5.0-beta.1`).
//!
//! An artifact is `roomready-agent-{version}-{target}.tar.gz` (`.zip` on Windows) holding one
//! file, `roomready-agent` (`.exe`), signed with zipsign (ed25519ph, the artifact's file name as
//! context) and listed with `digest: "sha256:<hex>"` (GitHub publishes each asset's digest).
//!
//! [`check`] reads the feed and names the release to install; [`install`] downloads exactly that
//! release through self_update with every pinned key (any one must have signed), its digest, and
//! the size limit, extracts the binary, runs its `self-test --config CONFIG` (it must exit 0),
//! copies the running binary to `roomready-agent.prev` (`.prev.exe`) and only then swaps the
//! new one in. Nothing unsigned or unverified is ever executed: the self-test runs after the
//! signature and digest checks. Every refusal is its own [`UpdateError`] variant.

pub(crate) mod http;
pub(crate) mod settings;
mod signature;
pub mod trial;
pub(crate) mod window;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use semver::Version;

use roomready_feed as feed;

use crate::exit;
use settings::{UpdateChannel, UpdateConfig, UpdateFeed};

pub use http::Oversize;

/// The running agent's version.
pub const CURRENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The binary's name inside an artifact.
pub const BIN_NAME: &str = if cfg!(windows) {
    "roomready-agent.exe"
} else {
    "roomready-agent"
};

/// How long the new binary's self-test may take.
const SELF_TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything an update needs; [`UpdateSettings::from_config`] fills it from the config file.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// Where the releases are published.
    pub feed: UpdateFeed,
    pub channel: UpdateChannel,
    /// Pinned ed25519 verifying keys; never empty.
    pub keys: Vec<[u8; 32]>,
    pub allow_downgrade: bool,
    /// Largest artifact (and manifest) accepted, in bytes.
    pub max_bytes: u64,
    /// The version being replaced; [`CURRENT_VERSION`] normally. The daemon also reports it as
    /// its `agent_version` (see [`crate::daemon::Updater`]).
    pub current_version: Version,
    /// `Some`: exactly this version (`--version`) instead of the newest.
    pub requested: Option<Version>,
    /// The target triple in artifact names; self_update's build target normally.
    pub target: String,
    /// The binary that is replaced; the running executable normally.
    pub install_path: PathBuf,
    /// The config file the new binary's self-test loads.
    pub config_path: PathBuf,
    /// Bound on each HTTP request.
    pub timeout: Duration,
    /// `update_ca_file`'s trust anchors for an https feed; Mozilla's roots when `None`.
    pub roots: Option<http::Roots>,
}

impl UpdateSettings {
    /// Settings from the config's `update_*` keys, for the running executable.
    pub fn from_config(config: &UpdateConfig, config_path: &Path) -> Result<Self, UpdateError> {
        let feed = config.feed.clone().ok_or(UpdateError::NotConfigured)?;
        if config.keys.is_empty() {
            return Err(UpdateError::NotConfigured);
        }
        let roots =
            match &config.ca_file {
                Some(path) => Some(http::Roots::load(path).map_err(|reason| {
                    UpdateError::FeedUnreachable {
                        url: feed.to_string(),
                        reason: format!("update_ca_file: {reason}"),
                    }
                })?),
                None => None,
            };
        let install_path = std::env::current_exe().map_err(|e| UpdateError::Install {
            path: PathBuf::from(BIN_NAME),
            reason: format!("cannot locate the running executable: {e}"),
        })?;
        Ok(UpdateSettings {
            feed,
            channel: config.channel,
            keys: config.keys.clone(),
            allow_downgrade: config.allow_downgrade,
            max_bytes: config.max_bytes,
            current_version: current_version(),
            requested: None,
            target: feed::this_target().to_owned(),
            install_path,
            config_path: config_path.to_owned(),
            timeout: Duration::from_secs(300),
            roots,
        })
    }

    /// Where the releases are listed: `{feed}/{channel}/manifest.json`, or the repository's
    /// `/releases` on the GitHub API.
    pub(crate) fn listing_url(&self) -> String {
        match &self.feed {
            UpdateFeed::Manifest { url } => {
                format!("{url}/{}/{}", self.channel, feed::MANIFEST_FILE)
            }
            UpdateFeed::GitHub {
                api_url,
                owner,
                repo,
                ..
            } => format!("{api_url}/repos/{owner}/{repo}/releases"),
        }
    }

    /// The artifact file name of `version` for this target.
    pub fn asset_name(&self, version: &Version) -> String {
        feed::artifact_name(version, &self.target)
    }

    /// Where the replaced binary is kept: `NAME.prev`, or `NAME.prev.exe` for `NAME.exe`.
    pub(crate) fn prev_path(&self) -> PathBuf {
        prev_path(&self.install_path)
    }
}

/// [`CURRENT_VERSION`] parsed.
pub fn current_version() -> Version {
    Version::parse(CURRENT_VERSION).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// `NAME.prev` beside `path`, or `NAME.prev.exe` for `NAME.exe`.
pub(crate) fn prev_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| BIN_NAME.to_owned());
    let prev = match name.strip_suffix(".exe") {
        Some(stem) => format!("{stem}.prev.exe"),
        None => format!("{name}.prev"),
    };
    path.with_file_name(prev)
}

/// A release of the feed that this target can install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: Version,
    /// The artifact's file name.
    pub asset: String,
    pub url: String,
    /// `sha256:<hex>` from the manifest or the GitHub asset.
    pub digest: String,
    /// The `Authorization` header the download needs (a private GitHub repository).
    authorization: Option<AuthHeader>,
    /// The file names of the feed's other artifacts for this target, newest first: what a
    /// signature that fails for [`Release::asset`] may really have been made for.
    other_names: Vec<String>,
}

/// An `Authorization` header value and the one host it may be sent to (the API's); its `Debug`
/// hides the value.
#[derive(Clone, PartialEq, Eq)]
struct AuthHeader {
    value: String,
    host: String,
}

impl std::fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "*** for {}", self.host)
    }
}

/// The host of `url` (`https://HOST[:PORT]/...`), lower-cased, without brackets.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    settings::authority_host(authority)
        .unwrap_or(authority)
        .to_ascii_lowercase()
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: Version,
    /// The previous binary's copy.
    pub prev: PathBuf,
}

/// Why an update was refused or failed. Each refusal is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error(
        "updates are not configured: set update_feed_url (or update_github_repo) and update_keys in the config file"
    )]
    NotConfigured,
    #[error("update feed unreachable: {url}: {reason}")]
    FeedUnreachable { url: String, reason: String },
    #[error("update manifest {url} is invalid: {reason}")]
    ManifestInvalid { url: String, reason: String },
    #[error("version {version} is not in the {channel} channel for {target}")]
    NoSuchVersion {
        version: Version,
        channel: UpdateChannel,
        target: String,
    },
    #[error(
        "refusing to downgrade from {current} to {version}: set allow_downgrade = true to permit it"
    )]
    Downgrade { current: Version, version: Version },
    #[error("{url} is larger than update_max_mib allows ({seen} bytes > {limit} bytes)")]
    Oversize { url: String, limit: u64, seen: u64 },
    #[error("{asset} does not match the manifest's digest (expected {expected}, got {computed})")]
    DigestMismatch {
        asset: String,
        expected: String,
        computed: String,
    },
    #[error("{asset} is not signed: {reason}")]
    Unsigned { asset: String, reason: String },
    #[error(
        "{asset} is intact but signed by none of the {keys} pinned update_keys for that file name \
         (signed with another key, or for another file name the feed does not list)"
    )]
    WrongKey { asset: String, keys: usize },
    #[error(
        "{asset} is signed by a pinned key, but as {signed_as}: another release's artifact \
         published under this name"
    )]
    Misnamed { asset: String, signed_as: String },
    #[error("{asset} was altered after signing: its signature does not verify ({reason})")]
    Tampered { asset: String, reason: String },
    #[error("the new binary failed its self-test ({status}); nothing was replaced: {output}")]
    SelfTestFailed { status: String, output: String },
    #[error("installing to {path} failed: {reason}")]
    Install { path: PathBuf, reason: String },
}

impl UpdateError {
    /// The machine-readable reason in a `failed` command response.
    pub fn reason(&self) -> &'static str {
        match self {
            UpdateError::NotConfigured => "not_configured",
            UpdateError::FeedUnreachable { .. } => "feed_unreachable",
            UpdateError::ManifestInvalid { .. } => "manifest_invalid",
            UpdateError::NoSuchVersion { .. } => "no_such_version",
            UpdateError::Downgrade { .. } => "downgrade",
            UpdateError::Oversize { .. } => "too_large",
            UpdateError::DigestMismatch { .. } => "checksum_mismatch",
            UpdateError::Unsigned { .. } => "unsigned",
            UpdateError::WrongKey { .. } => "wrong_key",
            UpdateError::Misnamed { .. } => "misnamed",
            UpdateError::Tampered { .. } => "tampered",
            UpdateError::SelfTestFailed { .. } => "self_test_failed",
            UpdateError::Install { .. } => "install_failed",
        }
    }

    /// The exit code the CLI uses for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            UpdateError::NotConfigured => exit::CONFIG,
            UpdateError::FeedUnreachable { .. } => exit::UNAVAILABLE,
            UpdateError::ManifestInvalid { .. } | UpdateError::NoSuchVersion { .. } => {
                exit::DATA_ERROR
            }
            UpdateError::Downgrade { .. } => exit::DOWNGRADE,
            UpdateError::Oversize { .. }
            | UpdateError::DigestMismatch { .. }
            | UpdateError::Unsigned { .. }
            | UpdateError::WrongKey { .. }
            | UpdateError::Misnamed { .. }
            | UpdateError::Tampered { .. } => exit::REFUSED,
            UpdateError::SelfTestFailed { .. } => exit::SOFTWARE,
            UpdateError::Install { .. } => exit::CANT_CREATE,
        }
    }
}

/// The release to install: the newest release of the channel above the running version (or
/// exactly `settings.requested`); `None` when there is nothing newer (or the requested version is
/// the running one). Releases without an artifact for this target are passed over.
pub fn check(settings: &UpdateSettings) -> Result<Option<Release>, UpdateError> {
    let url = settings.listing_url();
    let client = http::LimitedClient::new(
        http::agent(settings.timeout, settings.roots.as_ref()),
        settings.max_bytes,
        None,
    );
    let oversize_of = |client: &http::LimitedClient| client.oversize();
    let client = Arc::new(client);
    let shared = Arc::clone(&client) as Arc<dyn self_update::http_client::HttpClient>;
    let mut authorization = None;
    let listed = match &settings.feed {
        UpdateFeed::Manifest { .. } => fetch_manifest(&*shared, &url, settings.timeout),
        UpdateFeed::GitHub {
            api_url,
            owner,
            repo,
            token,
        } => {
            let mut list = self_update::backends::github::ReleaseList::configure();
            list.api_base_url(api_url.clone())
                .repo_owner(owner.clone())
                .repo_name(repo.clone())
                .timeout(settings.timeout)
                .http_client(shared);
            if let Some(token) = token {
                list.auth_token(token.expose());
                authorization = Some(AuthHeader {
                    value: format!("token {}", token.expose()),
                    host: url_host(api_url),
                });
            }
            list.build()
                .and_then(|list| list.fetch())
                .map(self_update::update::Releases::into_vec)
        }
    };
    let releases = listed.map_err(|e| {
        if let Some(o) = oversize_of(&client) {
            return UpdateError::Oversize {
                url: o.url,
                limit: o.limit,
                seen: o.seen,
            };
        }
        match classify_fetch(&url, e) {
            Ok(other) => other,
            Err(self_update::Error::InvalidResponse { source, .. }) => {
                UpdateError::ManifestInvalid {
                    url: url.clone(),
                    reason: source.to_string(),
                }
            }
            Err(e) => UpdateError::ManifestInvalid {
                url: url.clone(),
                reason: e.to_string(),
            },
        }
    })?;
    // Every artifact name the feed lists for this target, newest release first.
    let suffix = format!(
        "-{}.{}",
        settings.target,
        feed::archive_ext(&settings.target)
    );
    let mut listed_names: Vec<(Option<Version>, String)> = releases
        .iter()
        .flat_map(|r| {
            let version = Version::parse(r.version()).ok();
            r.assets()
                .iter()
                .filter(|a| a.name().ends_with(&suffix))
                .map(move |a| (version.clone(), a.name().to_owned()))
        })
        .collect();
    listed_names.sort_by(|a, b| b.0.cmp(&a.0));
    let mut candidates = Vec::new();
    for release in releases {
        let version = match Version::parse(release.version()) {
            Ok(version) => version,
            // A manifest's versions were all checked in `fetch_manifest`. A GitHub repository
            // may tag other things (`nightly`, `docs-2024`): not releases of the agent.
            Err(e) => {
                tracing::warn!(
                    tag = release.version(),
                    "passing over a GitHub release whose tag is not a semantic version ({e})"
                );
                continue;
            }
        };
        if matches!(settings.feed, UpdateFeed::GitHub { .. })
            && settings.channel == UpdateChannel::Stable
            && !version.pre.is_empty()
        {
            continue;
        }
        let name = settings.asset_name(&version);
        let Some(asset) = release.assets().iter().find(|a| a.name() == name) else {
            continue;
        };
        let digest = match asset.digest() {
            Some(d) if valid_sha256(d) => d.to_owned(),
            Some(d) => {
                return Err(UpdateError::ManifestInvalid {
                    url,
                    reason: format!("{name}: digest {d:?} is not sha256:<64 hex digits>"),
                });
            }
            None => {
                return Err(UpdateError::ManifestInvalid {
                    url,
                    reason: format!("{name} has no digest"),
                });
            }
        };
        let other_names = listed_names
            .iter()
            .map(|(_, n)| n)
            .filter(|n| **n != name)
            .take(signature::MAX_OTHER_NAMES)
            .cloned()
            .collect();
        candidates.push(Release {
            version,
            asset: name,
            url: asset.download_url().to_owned(),
            digest,
            authorization: authorization.clone(),
            other_names,
        });
    }
    match &settings.requested {
        Some(wanted) => {
            let release = candidates
                .into_iter()
                .find(|r| &r.version == wanted)
                .ok_or_else(|| UpdateError::NoSuchVersion {
                    version: wanted.clone(),
                    channel: settings.channel,
                    target: settings.target.clone(),
                })?;
            Ok((release.version != settings.current_version).then_some(release))
        }
        None => Ok(candidates
            .into_iter()
            .filter(|r| r.version > settings.current_version)
            .max_by(|a, b| a.version.cmp(&b.version))),
    }
}

/// The most bytes a manifest may have (self_update's own cap for a release listing).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// The releases of the manifest at `url`, each stated version checked first: self_update passes
/// over a version that is not semver, which would turn a broken manifest into "up to date".
fn fetch_manifest(
    client: &dyn self_update::http_client::HttpClient,
    url: &str,
    timeout: Duration,
) -> self_update::errors::Result<Vec<self_update::update::Release>> {
    use self_update::http_client::header::{ACCEPT, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let mut body = Vec::new();
    client
        .get(url, &headers, Some(timeout))?
        .body()
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut body)?;
    if body.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(self_update::Error::invalid_response(format!(
            "it is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let body = String::from_utf8(body)
        .map_err(|e| self_update::Error::invalid_response(format!("it is not UTF-8 ({e})")))?;
    /// Just the versions, to check them before self_update sees the manifest.
    #[derive(serde::Deserialize)]
    struct Versions {
        #[serde(default)]
        releases: Vec<Stated>,
    }
    #[derive(serde::Deserialize)]
    struct Stated {
        version: String,
    }
    if let Ok(stated) = serde_json::from_str::<Versions>(&body) {
        for (index, release) in stated.releases.iter().enumerate() {
            if let Err(e) = Version::parse(&release.version) {
                return Err(self_update::Error::invalid_response(format!(
                    "releases[{index}]: version {:?} is not a semantic version ({e})",
                    release.version
                )));
            }
        }
    }
    self_update::backends::manifest::parse_manifest(&body, url)
}

fn valid_sha256(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A fetch error as an [`UpdateError`] when it is a transport or HTTP failure; `Err` with the
/// error otherwise.
fn classify_fetch(url: &str, e: self_update::Error) -> Result<UpdateError, self_update::Error> {
    use self_update::Error as E;
    match e {
        E::NotFound { .. }
        | E::Unauthorized { .. }
        | E::RateLimited { .. }
        | E::HttpStatus { .. }
        | E::Transport(_) => Ok(UpdateError::FeedUnreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        }),
        E::Io(ref io) if io.kind() != std::io::ErrorKind::Other => {
            Ok(UpdateError::FeedUnreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })
        }
        other => Err(other),
    }
}

/// Downloads, verifies and installs `release` (from [`check`]); `progress` gets (bytes so far,
/// total when announced).
pub fn install(
    settings: &UpdateSettings,
    release: &Release,
    progress: impl Fn(u64, Option<u64>) + Send + Sync + 'static,
) -> Result<Installed, UpdateError> {
    if release.version < settings.current_version && !settings.allow_downgrade {
        return Err(UpdateError::Downgrade {
            current: settings.current_version.clone(),
            version: release.version.clone(),
        });
    }
    let scratch = tempfile::tempdir().map_err(|e| UpdateError::Install {
        path: settings.install_path.clone(),
        reason: format!("cannot create a temporary directory: {e}"),
    })?;
    let artifact_copy = scratch.path().join(&release.asset);
    let client = Arc::new(http::LimitedClient::new(
        http::agent(settings.timeout, settings.roots.as_ref()),
        settings.max_bytes,
        Some((release.url.clone(), artifact_copy.clone())),
    ));
    // What the verify hook found, when it refuses.
    let hook_error: Arc<Mutex<Option<UpdateError>>> = Arc::new(Mutex::new(None));
    let hook = {
        let hook_error = Arc::clone(&hook_error);
        let config_path = settings.config_path.clone();
        let install_path = settings.install_path.clone();
        move |new_exe: &Path| {
            let outcome =
                self_test(new_exe, &config_path).and_then(|()| keep_previous(&install_path));
            outcome.map_err(|e| {
                let message = e.to_string();
                if let Ok(mut slot) = hook_error.lock() {
                    *slot = Some(e);
                }
                self_update::Error::verification_rejected(message)
            })
        }
    };
    let chosen = Chosen(
        self_update::update::Release::builder()
            .name(release.version.to_string())
            .version(release.version.to_string())
            .asset(
                self_update::update::ReleaseAsset::new(release.asset.clone(), release.url.clone())
                    .with_digest(release.digest.clone()),
            )
            .build()
            .map_err(|e| UpdateError::ManifestInvalid {
                url: settings.listing_url(),
                reason: e.to_string(),
            })?,
    );
    let asset = release.asset.clone();
    // Exactly the release `check` chose, whichever feed listed it: the feed is not read twice.
    let mut builder = self_update::backends::custom::Update::configure();
    builder
        .source(chosen)
        .bin_name("roomready-agent")
        .current_version(settings.current_version.to_string())
        .target(settings.target.clone())
        .release_tag(release.version.to_string())
        .asset_matcher(move |assets| assets.iter().find(|a| a.name() == asset).cloned())
        .bin_install_path(&settings.install_path)
        .bin_path_in_archive(feed::binary_name(&settings.target))
        .no_confirm(true)
        .show_output(false)
        .show_download_progress(false)
        .verifying_keys(settings.keys.clone())
        .verify_release_digest(true)
        .http_client(Arc::clone(&client) as Arc<dyn self_update::http_client::HttpClient>)
        .progress_callback(progress)
        .verify_binary(hook);
    if let Some(AuthHeader { value, host }) = &release.authorization {
        // Only to the API host: GitHub redirects the download to its storage host, which must
        // not see the token (the HTTP client drops it on a redirect).
        builder
            .request_header(
                self_update::http_client::header::AUTHORIZATION,
                value.as_str(),
            )
            .allow_auth_host(host.clone());
    }
    let result = builder.build().and_then(|u| u.update_extended());
    match result {
        Ok(status) if status.is_updated() => Ok(Installed {
            version: release.version.clone(),
            prev: settings.prev_path(),
        }),
        Ok(_) => Err(UpdateError::Install {
            path: settings.install_path.clone(),
            reason: format!("self_update did not install {}", release.version),
        }),
        Err(e) => {
            if let Some(o) = client.oversize() {
                return Err(UpdateError::Oversize {
                    url: o.url,
                    limit: o.limit,
                    seen: o.seen,
                });
            }
            if let Some(found) = hook_error.lock().ok().and_then(|mut slot| slot.take()) {
                return Err(found);
            }
            Err(classify_install(settings, release, &artifact_copy, e))
        }
    }
}

/// A self_update failure during [`install`] as the refusal it is.
fn classify_install(
    settings: &UpdateSettings,
    release: &Release,
    artifact_copy: &Path,
    e: self_update::Error,
) -> UpdateError {
    use self_update::Error as E;
    let asset = release.asset.clone();
    let e = match classify_fetch(&release.url, e) {
        Ok(refusal) => return refusal,
        Err(e) => e,
    };
    match e {
        E::ChecksumMismatch {
            expected, computed, ..
        } => UpdateError::DigestMismatch {
            asset,
            expected,
            computed,
        },
        E::Signature(inner) => {
            let reason = inner.to_string();
            if !reason.contains("no matching key/signature pair") {
                return UpdateError::Unsigned { asset, reason };
            }
            match signature::diagnose(artifact_copy, &settings.keys, &release.other_names) {
                signature::Mismatch::SignedAs(signed_as) => {
                    UpdateError::Misnamed { asset, signed_as }
                }
                signature::Mismatch::OtherKey => UpdateError::WrongKey {
                    asset,
                    keys: settings.keys.len(),
                },
                signature::Mismatch::Altered(damage) => UpdateError::Tampered {
                    asset,
                    reason: damage,
                },
            }
        }
        E::NoSignatures(_) | E::SignatureNonUTF8 => UpdateError::Unsigned {
            asset,
            reason: e.to_string(),
        },
        E::InvalidResponse { .. }
        | E::Json(_)
        | E::SemVer(_)
        | E::NoReleaseFound { .. }
        | E::MissingAssetField { .. }
        | E::InvalidAssetName { .. }
        | E::ChecksumSourceInvalid { .. } => UpdateError::ManifestInvalid {
            url: settings.listing_url(),
            reason: e.to_string(),
        },
        E::VerificationRejected { reason, .. } => UpdateError::SelfTestFailed {
            status: "rejected".into(),
            output: reason.unwrap_or_default(),
        },
        other => UpdateError::Install {
            path: settings.install_path.clone(),
            reason: other.to_string(),
        },
    }
}

/// The one release [`install`] installs, as a self_update source.
struct Chosen(self_update::update::Release);

impl self_update::update::ReleaseSource for Chosen {
    fn get_releases(&self) -> self_update::errors::Result<Vec<self_update::update::Release>> {
        Ok(vec![self.0.clone()])
    }
}

/// Runs `new_exe self-test --config CONFIG`; it must exit 0 within [`SELF_TEST_TIMEOUT`].
fn self_test(new_exe: &Path, config_path: &Path) -> Result<(), UpdateError> {
    let failed = |status: String, output: String| UpdateError::SelfTestFailed { status, output };
    let output_file = tempfile::tempfile()
        .map_err(|e| failed("not run".into(), format!("no temporary file: {e}")))?;
    let stderr = output_file
        .try_clone()
        .map_err(|e| failed("not run".into(), e.to_string()))?;
    let mut command = Command::new(new_exe);
    command
        .arg("self-test")
        .arg("--config")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            output_file
                .try_clone()
                .map_err(|e| failed("not run".into(), e.to_string()))?,
        ))
        .stderr(Stdio::from(stderr));
    // The new binary was just written. If another thread of this process forked while the
    // file was open for writing, the child holds it open until it execs, and exec fails with
    // "text file busy" (ETXTBSY) meanwhile: wait a moment and try again.
    let mut attempts = 0;
    let mut child = loop {
        match command.spawn() {
            Ok(child) => break child,
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(failed("not started".into(), e.to_string())),
        }
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > SELF_TEST_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(
                    format!("no exit within {}s", SELF_TEST_TIMEOUT.as_secs()),
                    String::new(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(failed("unknown".into(), e.to_string())),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut output = String::new();
    let mut file = output_file;
    let _ = std::io::Seek::rewind(&mut file);
    let _ = file.take(4096).read_to_string(&mut output);
    Err(failed(status.to_string(), output.trim().to_owned()))
}

/// Copies the binary at `install_path` to its [`prev_path`] (through a temporary name, so a
/// half-written copy never carries the final name).
fn keep_previous(install_path: &Path) -> Result<(), UpdateError> {
    let prev = prev_path(install_path);
    let partial = prev.with_extension("partial");
    let fail = |e: std::io::Error| UpdateError::Install {
        path: install_path.to_owned(),
        reason: format!("cannot keep the previous binary as {}: {e}", prev.display()),
    };
    std::fs::copy(install_path, &partial).map_err(fail)?;
    std::fs::rename(&partial, &prev).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant: a new variant that is not added here fails `every_reason_is_documented`
    /// through the exhaustive match below.
    fn one_of_each() -> Vec<UpdateError> {
        let s = String::new;
        let v = || Version::new(1, 0, 0);
        let all = vec![
            UpdateError::NotConfigured,
            UpdateError::FeedUnreachable {
                url: s(),
                reason: s(),
            },
            UpdateError::ManifestInvalid {
                url: s(),
                reason: s(),
            },
            UpdateError::NoSuchVersion {
                version: v(),
                channel: UpdateChannel::Stable,
                target: s(),
            },
            UpdateError::Downgrade {
                current: v(),
                version: v(),
            },
            UpdateError::Oversize {
                url: s(),
                limit: 0,
                seen: 0,
            },
            UpdateError::DigestMismatch {
                asset: s(),
                expected: s(),
                computed: s(),
            },
            UpdateError::Unsigned {
                asset: s(),
                reason: s(),
            },
            UpdateError::WrongKey {
                asset: s(),
                keys: 1,
            },
            UpdateError::Misnamed {
                asset: s(),
                signed_as: s(),
            },
            UpdateError::Tampered {
                asset: s(),
                reason: s(),
            },
            UpdateError::SelfTestFailed {
                status: s(),
                output: s(),
            },
            UpdateError::Install {
                path: PathBuf::new(),
                reason: s(),
            },
        ];
        for e in &all {
            // Exhaustive: a new variant must be listed above.
            match e {
                UpdateError::NotConfigured
                | UpdateError::FeedUnreachable { .. }
                | UpdateError::ManifestInvalid { .. }
                | UpdateError::NoSuchVersion { .. }
                | UpdateError::Downgrade { .. }
                | UpdateError::Oversize { .. }
                | UpdateError::DigestMismatch { .. }
                | UpdateError::Unsigned { .. }
                | UpdateError::WrongKey { .. }
                | UpdateError::Misnamed { .. }
                | UpdateError::Tampered { .. }
                | UpdateError::SelfTestFailed { .. }
                | UpdateError::Install { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_reason_is_documented() {
        let docs = include_str!("../../../docs/protocol.md");
        let row = docs
            .lines()
            .find(|line| line.starts_with("| `update` |"))
            .expect("docs/protocol.md has the update command's row");
        for e in one_of_each() {
            assert!(
                row.contains(&format!("`{}`", e.reason())),
                "docs/protocol.md's update row lacks `{}`",
                e.reason()
            );
        }
    }

    #[test]
    fn prev_paths() {
        assert_eq!(
            prev_path(Path::new("/opt/rr/roomready-agent")),
            Path::new("/opt/rr/roomready-agent.prev")
        );
        assert_eq!(
            prev_path(Path::new("C:/rr/roomready-agent.exe")),
            Path::new("C:/rr/roomready-agent.prev.exe")
        );
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://GitHub.Contoso.com/api/v3"),
            "github.contoso.com"
        );
        assert_eq!(url_host("http://127.0.0.1:8080/api/v3"), "127.0.0.1");
        assert_eq!(url_host("https://[::1]:443/api"), "::1");
        assert_eq!(url_host("https://api.github.com"), "api.github.com");
    }

    #[test]
    fn digests_must_be_sha256_hex() {
        assert!(valid_sha256(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_sha256(&format!("sha512:{}", "a".repeat(64))));
        assert!(!valid_sha256("sha256:abc"));
        assert!(!valid_sha256(&format!("sha256:{}", "g".repeat(64))));
    }

    #[test]
    fn settings_need_a_feed_and_keys() {
        let config = UpdateConfig::default();
        assert_eq!(
            UpdateSettings::from_config(&config, Path::new("a.toml")).expect_err("no feed"),
            UpdateError::NotConfigured
        );
    }
}
