//! Alerts' settings, owned here: the keys of [`KEYS`], read from the controller's config file by
//! [`read`]. Without `alert_webhook_url` nothing is sent (and nothing recorded).
//!
//! ```toml
//! alert_webhook_url = "https://contoso.webhook.office.com/..."  # optional; https://, or http://
//!                                        # to loopback; never logged (it holds a secret)
//! alert_webhook_format = "teams"         # optional; "json" (default) or "teams" (a Teams
//!                                        # incoming webhook's message card)
//! alert_rules = ["verdict_worse", "offline", "seq_gap", "cert_expiring", "rollout_halted"]
//!                                        # optional; default all
//! alert_offline_minutes = 30             # optional; 1..=10080, offline this long alerts
//! alert_cert_days = 30                   # optional; 1..=365, an endpoint certificate this close
//!                                        # to expiry alerts
//! alert_quiet_minutes = 60               # optional; 0..=10080, per rule and device
//! alert_group_secs = 30                  # optional; 1..=3600, alerts raised within this go out
//!                                        # in one message
//! alert_suppress = ["site:oslo-hq", "device:mtr-0001"]  # optional; maintenance: recorded as
//!                                        # suppressed, not sent
//! ```

use std::time::Duration;

use roomready_connect::keyfile::{KeyFile, KeyFileError};
use roomready_protocol::{DeviceId, Site};

use super::Rule;

/// The keys of this section.
pub const KEYS: [&str; 8] = [
    "alert_webhook_url",
    "alert_webhook_format",
    "alert_rules",
    "alert_offline_minutes",
    "alert_cert_days",
    "alert_quiet_minutes",
    "alert_group_secs",
    "alert_suppress",
];

pub const DEFAULT_OFFLINE: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_CERT_DAYS: u64 = 30;
pub const DEFAULT_QUIET: Duration = Duration::from_secs(60 * 60);
pub const DEFAULT_GROUP: Duration = Duration::from_secs(30);

/// The body the webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"alerts": [...]}`, one object per alert.
    Json,
    /// A Microsoft Teams incoming webhook's message card.
    Teams,
}

/// Devices that raise no alert (maintenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppress {
    Site(Site),
    Device(DeviceId),
}

/// Alerting as configured; `None` from [`read`] when no webhook is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub webhook: String,
    pub format: Format,
    pub rules: Vec<Rule>,
    pub offline_after: Duration,
    pub cert_days: u64,
    pub quiet: Duration,
    pub group: Duration,
    pub suppress: Vec<Suppress>,
}

impl AlertSettings {
    /// Settings sending to `webhook` with every default.
    pub fn new(webhook: impl Into<String>) -> AlertSettings {
        AlertSettings {
            webhook: webhook.into(),
            format: Format::Json,
            rules: Rule::ALL.to_vec(),
            offline_after: DEFAULT_OFFLINE,
            cert_days: DEFAULT_CERT_DAYS,
            quiet: DEFAULT_QUIET,
            group: DEFAULT_GROUP,
            suppress: Vec::new(),
        }
    }

    /// The webhook's scheme, host and port, for logs and pages (its path holds the secret).
    pub fn webhook_host(&self) -> String {
        let (scheme, rest) = self
            .webhook
            .split_once("://")
            .unwrap_or(("", &self.webhook));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        format!("{scheme}://{host}")
    }

    /// Whether `device` at `site` raises no alert.
    pub fn suppressed(&self, device: &DeviceId, site: Option<&str>) -> bool {
        self.suppress.iter().any(|s| match s {
            Suppress::Device(d) => d == device,
            Suppress::Site(s) => Some(s.as_str()) == site,
        })
    }
}

/// Reads the `alert_*` keys; `None` when `alert_webhook_url` is absent (the other keys are still
/// checked, so a typo is an error either way).
pub fn read(file: &mut KeyFile<'_>) -> Result<Option<AlertSettings>, KeyFileError> {
    let webhook = match file.string("alert_webhook_url")? {
        None => None,
        Some(url) => {
            check_url(url.get_ref()).map_err(|r| file.error("alert_webhook_url", url.span(), r))?;
            Some(url.into_inner())
        }
    };
    let format = match file.string("alert_webhook_format")? {
        None => Format::Json,
        Some(f) => match f.get_ref().as_str() {
            "json" => Format::Json,
            "teams" => Format::Teams,
            other => {
                let reason = format!("expected \"json\" or \"teams\", found {other:?}");
                return Err(file.error("alert_webhook_format", f.span(), reason));
            }
        },
    };
    let rules = match file.string_array("alert_rules")? {
        None => Rule::ALL.to_vec(),
        Some(names) => {
            let mut rules = Vec::new();
            for name in names {
                let rule = Rule::parse(name.get_ref()).ok_or_else(|| {
                    let known: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
                    let reason = format!(
                        "{:?} is not a rule (known: {})",
                        name.get_ref(),
                        known.join(", ")
                    );
                    file.error("alert_rules", name.span(), reason)
                })?;
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
            rules
        }
    };
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let offline_after = file
        .integer("alert_offline_minutes", 1..=10_080)?
        .map_or(DEFAULT_OFFLINE, |m| minutes(m.into_inner()));
    let cert_days = file
        .integer("alert_cert_days", 1..=365)?
        .map_or(DEFAULT_CERT_DAYS, |d| d.into_inner());
    let quiet = file
        .integer("alert_quiet_minutes", 0..=10_080)?
        .map_or(DEFAULT_QUIET, |m| minutes(m.into_inner()));
    let group = file
        .integer("alert_group_secs", 1..=3600)?
        .map_or(DEFAULT_GROUP, |s| Duration::from_secs(s.into_inner()));
    let mut suppress = Vec::new();
    for entry in file.string_array("alert_suppress")?.unwrap_or_default() {
        let parsed = match entry.get_ref().split_once(':') {
            Some(("site", site)) => Site::new(site)
                .map(Suppress::Site)
                .map_err(|e| e.to_string()),
            Some(("device", device)) => DeviceId::new(device)
                .map(Suppress::Device)
                .map_err(|e| e.to_string()),
            _ => Err(format!(
                "{:?}: expected \"site:NAME\" or \"device:ID\"",
                entry.get_ref()
            )),
        };
        suppress.push(parsed.map_err(|r| file.error("alert_suppress", entry.span(), r))?);
    }
    Ok(webhook.map(|webhook| AlertSettings {
        webhook,
        format,
        rules,
        offline_after,
        cert_days,
        quiet,
        group,
        suppress,
    }))
}

/// A webhook URL: `https://HOST...`, or `http://` to a loopback host (alerts carry the fleet's
/// state and the URL a secret: never in clear text over a network).
fn check_url(url: &str) -> Result<(), String> {
    const MAX: usize = 2048;
    if url.len() > MAX {
        return Err(format!("longer than {MAX} bytes"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected https://HOST/PATH".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if roomready_connect::loopback::is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "http:// only to this machine (loopback), not {host:?}: use https://"
        )),
        other => Err(format!("unsupported scheme {other:?}: expected https://")),
    }
}
