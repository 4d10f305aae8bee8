//! The rules of Teams Rooms on Android, from what Microsoft documents about it:
//!
//! - its app version has its own scheme, `1449/1.0.96.2024091202` ([`AndroidAppVersion`]; the
//!   release notes and the app and firmware table), and Microsoft documents no app version
//!   TLS 1.2 depends on: "Teams Android devices use TLS 1.2+" ([`REF_ANDROID_SECURITY`]);
//! - Microsoft supports Teams Rooms on Android on Android 9 to 14, each with a date its Teams
//!   certification ends and a date its best-effort support ends ([`REF_ANDROID_VERSIONS`],
//!   [`ANDROID_SUPPORT`]); an older Android is outside what Microsoft supports;
//! - Android 4.3 and earlier cannot use TLS 1.2 at all (Microsoft's list of clients, in the
//!   rule `client_os_tls12` beside this module, which also says when `os_name` is missing).
//!
//! Where the docs are silent the finding says so. The rules have no clock: they state the
//! support dates and never compare them with today.

use roomready_protocol::{AndroidAppVersion, AppVersion, Finding, Severity, Verdict, codes};

use super::{describe_missing, unknown};
use crate::assess::Outcome;
use crate::facts::{Fact, Facts};

/// Teams Android security: "Teams Android devices use TLS 1.2+".
pub(crate) const REF_ANDROID_SECURITY: &str =
    "https://learn.microsoft.com/microsoftteams/rooms/security-android";
/// Android versions supported on Teams devices: the table for Teams Rooms on Android, and
/// "Microsoft tests and supports the latest and latest-1 versions" of its apps.
pub(crate) const REF_ANDROID_VERSIONS: &str =
    "https://learn.microsoft.com/microsoftteams/devices/android-version-support";
/// Teams Rooms on Android release notes: every app version, `1449/1.0.96.2024091202`.
pub(crate) const REF_ANDROID_RELEASES: &str =
    "https://learn.microsoft.com/microsoftteams/rooms/rooms-release-note?tabs=Android";

/// One row of Microsoft's table of the Android versions supported on Teams Rooms on Android.
pub(crate) struct AndroidSupport {
    /// The Android major version.
    pub(crate) major: u32,
    /// The end of Microsoft Teams certification.
    pub(crate) certification_end: &'static str,
    /// The end of Microsoft's "best effort" support.
    pub(crate) best_effort_end: &'static str,
}

/// Microsoft's table (android-version-support, ms.date 2024-09-17), oldest first. An Android
/// older than the first row is outside what Microsoft supports; one newer than the last is
/// not in the table yet.
pub(crate) const ANDROID_SUPPORT: &[AndroidSupport] = &[
    AndroidSupport {
        major: 9,
        certification_end: "2023-08-05",
        best_effort_end: "2025-08-05",
    },
    AndroidSupport {
        major: 10,
        certification_end: "2025-09-03",
        best_effort_end: "2027-09-03",
    },
    AndroidSupport {
        major: 11,
        certification_end: "2025-09-03",
        best_effort_end: "2027-09-03",
    },
    AndroidSupport {
        major: 12,
        certification_end: "2027-08-15",
        best_effort_end: "2029-08-15",
    },
    AndroidSupport {
        major: 13,
        certification_end: "2027-08-15",
        best_effort_end: "2029-08-15",
    },
    AndroidSupport {
        major: 14,
        certification_end: "2028-10-04",
        best_effort_end: "2030-10-04",
    },
];

/// The Android version Microsoft's list of clients unable to use TLS 1.2 ends with (4.3): that
/// case is `client_os_tls12`'s, not repeated here.
const LAST_WITHOUT_TLS12: [u32; 2] = [4, 3];

/// Teams Rooms on Android: its app version must be read and be in its own scheme. Microsoft
/// documents no app version that TLS 1.2 depends on, so a recognised version is noted, never
/// compared (and never with the Windows app's 4.0.64.0).
pub(super) fn teams_rooms_android_app(facts: &Facts) -> Outcome {
    let text = match &facts.app_version {
        Fact::Known { value, .. } => value.trim(),
        missing => {
            return unknown(
                codes::APP_VERSION_MISSING,
                "Teams Rooms on Android app version could not be read",
                describe_missing("app version", missing),
                "Read the Teams app version from the device's page in the Teams admin center \
                 (Teams devices > Teams Rooms on Android) and state it in the facts file, e.g. \
                 app_version = \"1449/1.0.96.2024091202\".",
                REF_ANDROID_RELEASES,
            );
        }
    };
    let source = facts.app_version.source();
    match text.parse::<AndroidAppVersion>() {
        Ok(version) => Outcome::Note(Finding {
            code: codes::ANDROID_APP_VERSION_NOT_COMPARED.into(),
            severity: Severity::Info,
            title: format!(
                "Teams Rooms on Android app {version}: Microsoft documents no app version that \
                 TLS 1.2 depends on (Teams Android devices use TLS 1.2 or later); the Windows \
                 app's {} threshold does not apply",
                AppVersion::TLS12_MINIMUM
            ),
            evidence: format!("app version {version} ({source})"),
            remediation: "Nothing for TLS 1.2. Microsoft supports only the latest and the \
                          previous version of the app (the agent cannot tell which those are \
                          today): keep automatic updates on in the Teams admin center."
                .into(),
            reference: REF_ANDROID_SECURITY.into(),
        }),
        Err(e) => {
            let hint = if text.parse::<AppVersion>().is_ok() {
                " It is a Windows app version: check the device kind."
            } else {
                ""
            };
            unknown(
                codes::APP_VERSION_UNPARSABLE,
                "Teams Rooms on Android app version is not in the Android scheme; it is unknown \
                 which version runs",
                format!("{e} ({source})"),
                &format!(
                    "State the version as the Teams admin center and the release notes show it, \
                     e.g. 1449/1.0.96.2024091202.{hint}"
                ),
                REF_ANDROID_RELEASES,
            )
        }
    }
}

/// Teams Rooms on Android: the Android version (`os_name`) against Microsoft's table of the
/// versions it supports. Without `os_name` this rule is silent: `client_os_tls12` says that.
pub(super) fn teams_rooms_android_os(facts: &Facts) -> Outcome {
    let Some(name) = facts.os_name.known() else {
        return Outcome::NotApplicable;
    };
    let name = name.trim();
    let source = facts.os_name.source();
    let version = match AndroidRelease::parse(name) {
        Ok(version) => version,
        Err(e) => {
            let hint = if name.to_ascii_lowercase().starts_with("windows") {
                " It names Windows: check the device kind."
            } else {
                ""
            };
            return unknown(
                codes::OS_NAME_UNPARSABLE,
                "Teams Rooms on Android without a readable Android version; whether its OS can \
                 use TLS 1.2, and whether Microsoft supports it, is unknown",
                format!("OS name {e} ({source})"),
                &format!(
                    "State the Android version in the facts file, e.g. os_name = \"Android 12\".\
                     {hint}"
                ),
                REF_ANDROID_VERSIONS,
            );
        }
    };
    if version.at_most(&LAST_WITHOUT_TLS12) {
        // Not ready for TLS 1.2 at all: CLIENT_OS_WITHOUT_TLS12 says so.
        return Outcome::Pass;
    }
    let (Some(first), Some(last)) = (ANDROID_SUPPORT.first(), ANDROID_SUPPORT.last()) else {
        return Outcome::Pass;
    };
    let major = version.major();
    if major < first.major {
        return Outcome::Flag(
            Verdict::AtRisk,
            Finding {
                code: codes::ANDROID_OS_NOT_SUPPORTED.into(),
                severity: Severity::Warning,
                title: format!(
                    "{version} is older than every Android version Microsoft supports on Teams \
                     Rooms on Android (Android {} to {}); Microsoft's statement that Teams \
                     Android devices use TLS 1.2 or later covers certified firmware only",
                    first.major, last.major
                ),
                evidence: format!("OS {name} ({source})"),
                remediation: "Install a certified firmware on a supported Android version from \
                              the Teams admin center (Teams devices > Teams Rooms on Android > \
                              Update), or ask the manufacturer; replace the device if none \
                              exists."
                    .into(),
                reference: REF_ANDROID_VERSIONS.into(),
            },
        );
    }
    match ANDROID_SUPPORT.iter().find(|row| row.major == major) {
        Some(row) => Outcome::Note(Finding {
            code: codes::ANDROID_OS_SUPPORT_DATES.into(),
            severity: Severity::Info,
            title: format!(
                "{version} is supported on Teams Rooms on Android: Microsoft Teams certification \
                 ends {}, Microsoft's best-effort support {}",
                row.certification_end, row.best_effort_end
            ),
            evidence: format!("OS {name} ({source})"),
            remediation: format!(
                "Nothing for TLS 1.2 (Teams Android devices use TLS 1.2 or later). Compare the \
                 dates with today (the agent's rules have no clock): after {} move the device to \
                 a firmware on a newer Android.",
                row.best_effort_end
            ),
            reference: REF_ANDROID_VERSIONS.into(),
        }),
        None => Outcome::Note(Finding {
            code: codes::ANDROID_OS_SUPPORT_NOT_DOCUMENTED.into(),
            severity: Severity::Info,
            title: format!(
                "{version} is newer than every Android version in Microsoft's support table for \
                 Teams Rooms on Android (Android {} to {}): the docs say nothing about its \
                 support dates",
                first.major, last.major
            ),
            evidence: format!("OS {name} ({source})"),
            remediation: "Nothing for TLS 1.2: it is not on Microsoft's list of clients unable \
                          to use TLS 1.2, and Teams Android devices use TLS 1.2 or later. Check \
                          Microsoft's table for its dates."
                .into(),
            reference: REF_ANDROID_VERSIONS.into(),
        }),
    }
}

/// An Android release as `os_name` states it: `Android 12`, `Android 8.1.0`, `android 10`,
/// optionally followed by a description after a space (`Android 12 (API 31)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AndroidRelease {
    /// 1 to 3 fields, the major version first.
    fields: Vec<u32>,
}

/// The longest `os_name` read as an Android release.
const MAX_OS_NAME: usize = 128;
/// The most digits in one field of an Android version (`Android 14`, `8.1.0`).
const MAX_FIELD_DIGITS: usize = 4;

/// Why an `os_name` is not an Android release; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not an Android version (Android MAJOR[.MINOR[.PATCH]], e.g. Android 12): {reason}"
)]
pub(crate) struct AndroidReleaseError {
    /// The text, cut after 64 characters.
    pub(crate) input: String,
    pub(crate) reason: AndroidReleaseErrorReason,
}

/// What is wrong with an `os_name` read as an Android release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AndroidReleaseErrorReason {
    #[error("longer than {max} bytes", max = MAX_OS_NAME)]
    TooLong,
    #[error("it does not start with \"Android\"")]
    NotAndroid,
    #[error("no version after \"Android\"")]
    NoVersion,
    #[error("expected 1 to 3 dot-separated numbers, found {0}")]
    FieldCount(usize),
    #[error("field {0} of the version is not a number of 1 to {max} ASCII digits", max = MAX_FIELD_DIGITS)]
    BadField(usize),
}

impl AndroidRelease {
    pub(crate) fn parse(name: &str) -> Result<AndroidRelease, AndroidReleaseError> {
        use AndroidReleaseErrorReason as Reason;
        let fail = |reason| AndroidReleaseError {
            input: name.chars().take(64).collect(),
            reason,
        };
        if name.len() > MAX_OS_NAME {
            return Err(fail(Reason::TooLong));
        }
        const PREFIX: &str = "android";
        let rest = name
            .get(..PREFIX.len())
            .filter(|head| head.eq_ignore_ascii_case(PREFIX))
            .and_then(|_| name.get(PREFIX.len()..))
            .ok_or_else(|| fail(Reason::NotAndroid))?;
        let version = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| fail(Reason::NoVersion))?;
        // "AndroidX 12" or "Androids": what follows the name must be the version.
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(fail(Reason::NoVersion));
        }
        let parts: Vec<&str> = version.split('.').collect();
        if parts.len() > 3 {
            return Err(fail(Reason::FieldCount(parts.len())));
        }
        let fields = parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let digits = (1..=MAX_FIELD_DIGITS).contains(&part.len())
                    && part.bytes().all(|b| b.is_ascii_digit());
                digits
                    .then(|| part.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| fail(Reason::BadField(index + 1)))
            })
            .collect::<Result<Vec<u32>, _>>()?;
        Ok(AndroidRelease { fields })
    }

    pub(crate) fn major(&self) -> u32 {
        self.fields.first().copied().unwrap_or(0)
    }

    /// `self <= other`, compared on `other`'s fields only (`4.3.1` is an Android 4.3), missing
    /// fields counting as 0.
    fn at_most(&self, other: &[u32]) -> bool {
        let get = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
        (0..other.len())
            .map(|i| (get(&self.fields, i), get(other, i)))
            .find(|(a, b)| a != b)
            .is_none_or(|(a, b)| a < b)
    }
}

impl std::fmt::Display for AndroidRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Android ")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}
