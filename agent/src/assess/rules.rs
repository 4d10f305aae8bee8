//! The rule table. Each rule is a plain function over [`Facts`]; thresholds are named constants
//! on the protocol's version types so the numbers appear once.

use roomready_protocol::{AppVersion, DeviceKind, Finding, OsBuild, Severity, Verdict, codes};

use super::{Outcome, Rule};
use crate::facts::{Fact, Facts};

/// Teams Rooms release notes: 4.0.64.0 (2018-12-14) is the first version with TLS 1.2.
pub const REF_ROOMS_RELEASE_NOTE: &str =
    "https://learn.microsoft.com/microsoftteams/room-systems/srs2-release-note";
/// Surface Hub update history: KB4499162 (15063.1835) and KB4503289 (15063.1897).
pub const REF_SURFACE_HUB_UPDATES: &str =
    "https://learn.microsoft.com/surface-hub/surface-hub-update-history";
/// Preparing for TLS 1.2 in Office 365 and Office 365 GCC.
pub const REF_TLS12_M365: &str =
    "https://learn.microsoft.com/microsoft-365/compliance/prepare-tls-1.2-in-office-365";

/// Every rule, in the order their findings are listed.
pub static RULES: &[Rule] = &[
    Rule {
        name: "teams_rooms_app_tls12",
        applies_to: &[DeviceKind::TeamsRoomsWindows],
        check: teams_rooms_app_tls12,
    },
    Rule {
        name: "surface_hub_build_tls12",
        applies_to: &[DeviceKind::SurfaceHub],
        check: surface_hub_build_tls12,
    },
];

/// Teams Rooms app (Windows) must be 4.0.64.0 or later to use TLS 1.2.
fn teams_rooms_app_tls12(facts: &Facts) -> Outcome {
    let text = match &facts.app_version {
        Fact::Known { value, .. } => value,
        missing => {
            return unknown(
                codes::APP_VERSION_MISSING,
                "Teams Rooms app version could not be read; TLS 1.2 readiness is unknown",
                describe_missing("app version", missing),
                "Make sure the Microsoft.SkypeRoomSystem package is installed and its version \
                 readable (Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem).",
                REF_ROOMS_RELEASE_NOTE,
            );
        }
    };
    let source = facts.app_version.source();
    match text.trim().parse::<AppVersion>() {
        Err(e) => unknown(
            codes::APP_VERSION_UNPARSABLE,
            "Teams Rooms app version is not a version number; TLS 1.2 readiness is unknown",
            format!("app version {} ({source})", e),
            "Check the reported app version; it must be an AppX version like 4.0.64.0.",
            REF_ROOMS_RELEASE_NOTE,
        ),
        Ok(version) if version < AppVersion::TLS12_MINIMUM => Outcome::Flag(
            Verdict::NotReady,
            Finding {
                code: codes::TLS12_APP_TOO_OLD.into(),
                severity: Severity::Critical,
                title: format!(
                    "Teams Rooms app {version} is older than {} and cannot use TLS 1.2",
                    AppVersion::TLS12_MINIMUM
                ),
                evidence: format!("app version {version} ({source})"),
                remediation: format!(
                    "Update the Microsoft Teams Rooms app to {} or later (the current release is \
                     recommended; Microsoft supports only the latest two major versions). With \
                     on-premises Skype for Business, the server also needs Skype for Business \
                     Server 2015 CU9 or 2019 CU1.",
                    AppVersion::TLS12_MINIMUM
                ),
                reference: REF_ROOMS_RELEASE_NOTE.into(),
            },
        ),
        Ok(_) => Outcome::Pass,
    }
}

/// Surface Hub needs build 15063.1835 for TLS 1.2 with Skype for Business, and 15063.1897 for
/// TLS 1.2 during device-account setup.
fn surface_hub_build_tls12(facts: &Facts) -> Outcome {
    let text = match &facts.os_build {
        Fact::Known { value, .. } => value,
        missing => {
            return unknown(
                codes::OS_BUILD_MISSING,
                "Surface Hub OS build could not be read; TLS 1.2 readiness is unknown",
                describe_missing("OS build", missing),
                "Make sure the OS build (CurrentBuild and UBR) is readable.",
                REF_SURFACE_HUB_UPDATES,
            );
        }
    };
    let source = facts.os_build.source();
    match text.trim().parse::<OsBuild>() {
        Err(e) => unknown(
            codes::OS_BUILD_UNPARSABLE,
            "Surface Hub OS build is not a build number; TLS 1.2 readiness is unknown",
            format!("OS build {e} ({source})"),
            "Check the reported OS build; it must look like 15063.1835.",
            REF_SURFACE_HUB_UPDATES,
        ),
        Ok(build) if build < OsBuild::SURFACE_HUB_TLS12 => Outcome::Flag(
            Verdict::NotReady,
            Finding {
                code: codes::TLS12_SURFACE_HUB_BUILD_TOO_OLD.into(),
                severity: Severity::Critical,
                title: format!(
                    "Surface Hub build {build} predates TLS 1.2 support (needs {})",
                    OsBuild::SURFACE_HUB_TLS12
                ),
                evidence: format!("OS build {build} ({source})"),
                remediation: "Install the May 2019 update KB4499162 (build 15063.1835) or later; \
                              KB4503289 (15063.1897) also covers device-account setup."
                    .into(),
                reference: REF_SURFACE_HUB_UPDATES.into(),
            },
        ),
        Ok(build) if build < OsBuild::SURFACE_HUB_TLS12_SETUP => Outcome::Flag(
            Verdict::AtRisk,
            Finding {
                code: codes::TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD.into(),
                severity: Severity::Warning,
                title: format!(
                    "Surface Hub build {build} may need TLS 1.0/1.1 during device-account setup"
                ),
                evidence: format!("OS build {build} ({source})"),
                remediation: format!(
                    "Install KB4503289 (build {}) or later: it adds TLS 1.2 towards identity \
                     providers and Exchange during device-account setup.",
                    OsBuild::SURFACE_HUB_TLS12_SETUP
                ),
                reference: REF_SURFACE_HUB_UPDATES.into(),
            },
        ),
        Ok(_) => Outcome::Pass,
    }
}

fn unknown(
    code: &str,
    title: &str,
    evidence: String,
    remediation: &str,
    reference: &str,
) -> Outcome {
    Outcome::Flag(
        Verdict::Unknown,
        Finding {
            code: code.into(),
            severity: Severity::Warning,
            title: title.into(),
            evidence,
            remediation: remediation.into(),
            reference: reference.into(),
        },
    )
}

fn describe_missing<T>(what: &str, fact: &Fact<T>) -> String {
    match fact {
        Fact::Unreadable { source, reason } => format!("{what} unreadable ({source}): {reason}"),
        other => format!("{what} absent ({})", other.source()),
    }
}
