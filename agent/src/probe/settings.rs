//! Probing's settings, owned here: which endpoints each check probes and how (the keys of
//! [`KEYS`], their defaults and validation), read from the agent's config file by [`read`].
//!
//! ```toml
//! endpoints = ["microsoft365", "onprem_sfb=pool.contoso.com@6.0.9319.548"]
//!                                        # optional; probed each check. [ROLE=]HOST[:PORT][@VERSION],
//!                                        # "microsoft365" = its three hosts (the default); [] = none
//! resolve = ["pool.contoso.com:5061:10.0.0.5"]
//!                                        # optional; HOST:PORT:ADDRESS, probe that endpoint at
//!                                        # ADDRESS (SNI and certificate name stay HOST)
//! ca_file = "ca.pem"                     # optional; trust anchors for endpoint certificates
//! probe_timeout_secs = 5                 # optional; 1..=120, default 5
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_connect::broker::beside;

use crate::keyfile::{KeyFile, KeyFileError};
use crate::probe::{Endpoint, ResolveOverrides};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["endpoints", "resolve", "ca_file", "probe_timeout_secs"];

/// Default bound on each probe connection.
pub(crate) const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The probing section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeConfig {
    /// `endpoints` (default: Microsoft 365's).
    pub endpoints: Vec<Endpoint>,
    /// `resolve`: addresses to probe instead of DNS.
    pub resolve: ResolveOverrides,
    /// `ca_file`: trust anchors for endpoint certificates (default Mozilla's roots).
    pub ca_file: Option<PathBuf>,
    /// `probe_timeout_secs`.
    pub timeout: Duration,
}

/// Reads the keys of [`KEYS`] from `file`, the config at `path` (relative paths start beside it).
pub(crate) fn read(file: &mut KeyFile<'_>, path: &Path) -> Result<ProbeConfig, KeyFileError> {
    // Without the key the Microsoft 365 endpoints are probed; `[]` probes none.
    let endpoints = match file.string_array("endpoints")? {
        None => crate::probe::endpoint::microsoft365_endpoints(),
        Some(items) => {
            let mut endpoints = Vec::new();
            for item in items {
                match crate::probe::parse_entry(item.get_ref()) {
                    Ok(parsed) => endpoints.extend(parsed),
                    Err(reason) => return Err(file.error("endpoints", item.span(), reason)),
                }
            }
            crate::probe::dedup(endpoints)
        }
    };
    let mut resolve = crate::probe::ResolveOverrides::new();
    for item in file.string_array("resolve")?.unwrap_or_default() {
        crate::probe::endpoint::add_resolve(&mut resolve, item.get_ref(), &endpoints)
            .map_err(|reason| file.error("resolve", item.span(), reason))?;
    }
    let ca_file = file
        .string("ca_file")?
        .map(|p| beside(path, p.into_inner()));
    let probe_timeout = file
        .integer("probe_timeout_secs", 1..=120)?
        .map_or(DEFAULT_PROBE_TIMEOUT, |s| {
            Duration::from_secs(s.into_inner())
        });
    Ok(ProbeConfig {
        endpoints,
        resolve,
        ca_file,
        timeout: probe_timeout,
    })
}
