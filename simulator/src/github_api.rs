//! The part of GitHub's REST API that the agent's GitHub feed reads (`update_github_repo`),
//! answered from a feed directory that `roomready-sim release` wrote, so the GitHub backend is
//! tested against real signed releases without github.com:
//!
//! - `GET {base}/api/v3/repos/{owner}/{repo}/releases`: every release of the feed's `stable` and
//!   `beta` manifests as GitHub release objects (`tag_name` `v{version}`, `prerelease` for a
//!   semver pre-release, assets with `name`, `url`, `browser_download_url`, `size` and `digest`),
//!   newest first, on one page;
//! - `GET {base}/api/v3/repos/{owner}/{repo}/releases/assets/{channel}/{file}`: with `Accept:
//!   application/octet-stream` a `302` to the file (GitHub redirects to its storage host), else
//!   the asset's JSON.
//!
//! The API prefix is GitHub Enterprise's (`/api/v3`), so the agent is configured with
//! `update_github_api_url = "http://127.0.0.1:PORT/api/v3"`. Any owner and repository name
//! serve the same feed. Pure: the server does the I/O.

use std::path::Path;

use serde_json::{Value, json};

use roomready_feed::FeedError;
use roomready_feed::manifest::Manifest;

/// The API prefix, as on GitHub Enterprise Server.
pub const API_PREFIX: &str = "/api/v3";

/// What an API path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `/repos/{owner}/{repo}/releases`.
    Releases { owner: String, repo: String },
    /// `/repos/{owner}/{repo}/releases/assets/{channel}/{file}`: the feed file `/{channel}/{file}`.
    Asset {
        owner: String,
        repo: String,
        path: String,
    },
    /// Any other path under the prefix.
    Unknown,
}

/// The API request a server path names; `None` when it is not under [`API_PREFIX`].
pub fn route(path: &str) -> Option<ApiRequest> {
    let rest = path.strip_prefix(API_PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let plain = |s: &&str| *s != "." && *s != "..";
    Some(match segments.as_slice() {
        ["repos", owner, repo, "releases"] => ApiRequest::Releases {
            owner: (*owner).to_owned(),
            repo: (*repo).to_owned(),
        },
        ["repos", owner, repo, "releases", "assets", channel, file]
            if plain(channel) && plain(file) =>
        {
            ApiRequest::Asset {
                owner: (*owner).to_owned(),
                repo: (*repo).to_owned(),
                path: format!("/{channel}/{file}"),
            }
        }
        _ => ApiRequest::Unknown,
    })
}

/// The feed under `root` as GitHub's release list, its URLs under `base` (`http://HOST:PORT`).
pub fn releases(root: &Path, base: &str, owner: &str, repo: &str) -> Result<Value, FeedError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut listed: Vec<(Option<semver::Version>, Value)> = Vec::new();
    let mut id = 0u64;
    for channel in ["stable", "beta"] {
        let manifest = Manifest::load(&root.join(channel).join("manifest.json"))?;
        for release in manifest.releases {
            // A version in both channels is one GitHub release.
            if !seen.insert(release.version.clone()) {
                continue;
            }
            let version = semver::Version::parse(&release.version).ok();
            let assets: Vec<Value> = release
                .assets
                .iter()
                .map(|asset| {
                    id += 1;
                    let file = if asset.url.contains("://") || asset.url.starts_with('/') {
                        asset.name.clone()
                    } else {
                        asset.url.clone()
                    };
                    let size = std::fs::metadata(root.join(channel).join(&file))
                        .map(|m| m.len())
                        .unwrap_or(0);
                    json!({
                        "id": id,
                        "name": asset.name,
                        "url": format!(
                            "{base}{API_PREFIX}/repos/{owner}/{repo}/releases/assets/{channel}/{file}"
                        ),
                        "browser_download_url": format!("{base}/{channel}/{file}"),
                        "size": size,
                        "digest": asset.digest,
                        "content_type": "application/octet-stream",
                    })
                })
                .collect();
            let tag = format!("v{}", release.version);
            listed.push((
                version.clone(),
                json!({
                    "tag_name": tag,
                    "name": format!("roomready-agent {}", release.version),
                    "created_at": release.date.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
                    "published_at": release.date,
                    "prerelease": version.as_ref().is_some_and(|v| !v.pre.is_empty()),
                    "draft": false,
                    "body": "",
                    "html_url": format!("{base}/{owner}/{repo}/releases/tag/{tag}"),
                    "assets": assets,
                }),
            ));
        }
    }
    // Newest first, as GitHub lists them; releases that are not semver last.
    listed.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(a), Some(b)) => b.cmp(a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(Value::Array(listed.into_iter().map(|(_, r)| r).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_feed::manifest::ManifestAsset;

    #[test]
    fn routes() {
        assert_eq!(route("/stable/manifest.json"), None);
        assert_eq!(route("/api/v3x/repos"), None);
        assert_eq!(
            route("/api/v3/repos/contoso/roomready/releases"),
            Some(ApiRequest::Releases {
                owner: "contoso".into(),
                repo: "roomready".into()
            })
        );
        assert_eq!(
            route("/api/v3/repos/o/r/releases/assets/beta/a.tar.gz"),
            Some(ApiRequest::Asset {
                owner: "o".into(),
                repo: "r".into(),
                path: "/beta/a.tar.gz".into()
            })
        );
        assert_eq!(
            route("/api/v3/repos/o/r/releases/assets/../secret"),
            Some(ApiRequest::Unknown)
        );
        assert_eq!(
            route("/api/v3/repos/o/r/releases/latest"),
            Some(ApiRequest::Unknown)
        );
    }

    #[test]
    fn both_channels_as_one_list_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let asset = |name: &str| ManifestAsset {
            name: name.into(),
            url: name.into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            extra: Default::default(),
        };
        for (channel, versions) in [
            ("stable", &["1.0.0", "1.1.0"][..]),
            ("beta", &["1.1.0", "1.2.0-beta.1"][..]),
        ] {
            let mut manifest = Manifest::default();
            for v in versions {
                let version = semver::Version::parse(v).expect("semver");
                manifest.upsert(
                    &version,
                    asset(&format!("x-{v}.tar.gz")),
                    "2026-11-23T00:00:00Z",
                );
            }
            std::fs::create_dir_all(dir.path().join(channel)).expect("dir");
            std::fs::write(
                dir.path().join(channel).join("manifest.json"),
                manifest.to_json(),
            )
            .expect("write");
        }
        let list = releases(dir.path(), "http://127.0.0.1:1", "o", "r").expect("list");
        let tags: Vec<&str> = list
            .as_array()
            .expect("array")
            .iter()
            .map(|r| r["tag_name"].as_str().expect("tag"))
            .collect();
        assert_eq!(tags, ["v1.2.0-beta.1", "v1.1.0", "v1.0.0"]);
        assert_eq!(list[0]["prerelease"], true);
        assert_eq!(list[1]["prerelease"], false);
        assert_eq!(
            list[1]["assets"][0]["url"],
            "http://127.0.0.1:1/api/v3/repos/o/r/releases/assets/stable/x-1.1.0.tar.gz"
        );
        assert_eq!(
            list[0]["assets"][0]["browser_download_url"],
            "http://127.0.0.1:1/beta/x-1.2.0-beta.1.tar.gz"
        );
        assert!(
            list[0]["assets"][0]["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        );
    }
}
