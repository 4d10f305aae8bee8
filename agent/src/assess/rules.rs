//! The rule table. Each rule is a plain function over [`Facts`]; thresholds are named constants
//! on the protocol's version types so the numbers appear once.

pub(crate) mod android;

use roomready_protocol::{
    AndroidAppVersion, AppVersion, DeviceKind, Finding, OsBuild, Severity, TlsVersion, Verdict,
    codes,
};

use super::{Outcome, Rule};
use crate::facts::tls::{
    DOTNET_462_RELEASE, DotNet, DotNetCrypto, Side, TlsSettings, winhttp_bits,
};
use crate::facts::{Fact, Facts};

/// Teams Rooms release notes: 4.0.64.0 (2018-12-14) is the first version with TLS 1.2.
pub(crate) const REF_ROOMS_RELEASE_NOTE: &str =
    "https://learn.microsoft.com/microsoftteams/room-systems/srs2-release-note";
/// Surface Hub update history: KB4499162 (15063.1835) and KB4503289 (15063.1897).
pub(crate) const REF_SURFACE_HUB_UPDATES: &str =
    "https://learn.microsoft.com/surface-hub/surface-hub-update-history";
/// Preparing for TLS 1.2 in Office 365 and Office 365 GCC.
pub(crate) const REF_TLS12_M365: &str =
    "https://learn.microsoft.com/microsoft-365/compliance/prepare-tls-1.2-in-office-365";

/// Every rule, in the order their findings are listed.
pub(crate) static RULES: &[Rule] = &[
    Rule {
        name: "teams_rooms_app_tls12",
        applies_to: &[DeviceKind::TeamsRoomsWindows],
        check: teams_rooms_app_tls12,
    },
    Rule {
        name: "teams_rooms_android_app",
        applies_to: &[DeviceKind::TeamsRoomsAndroid],
        check: android::teams_rooms_android_app,
    },
    Rule {
        name: "surface_hub_build_tls12",
        applies_to: &[DeviceKind::SurfaceHub],
        check: surface_hub_build_tls12,
    },
    Rule {
        name: "client_os_tls12",
        applies_to: ALL_KINDS,
        check: client_os_tls12,
    },
    Rule {
        name: "teams_rooms_android_os",
        applies_to: &[DeviceKind::TeamsRoomsAndroid],
        check: android::teams_rooms_android_os,
    },
    Rule {
        name: "schannel_tls12_client",
        applies_to: WINDOWS,
        check: schannel_tls12_client,
    },
    Rule {
        name: "winhttp_tls12",
        applies_to: WINDOWS,
        check: winhttp_tls12,
    },
    Rule {
        name: "dotnet_tls12",
        applies_to: WINDOWS,
        check: dotnet_tls12,
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
    if text.trim().parse::<AndroidAppVersion>().is_ok() {
        return unknown(
            codes::APP_VERSION_UNPARSABLE,
            "The app version is a Teams Rooms on Android version, not a Windows one; TLS 1.2 \
             readiness is unknown",
            format!(
                "app version {:?} on a teams_rooms_windows device ({source})",
                text.trim()
            ),
            "Check the device kind: a BUILD/VERSION app version belongs to Teams Rooms on \
             Android (teams_rooms_android).",
            REF_ROOMS_RELEASE_NOTE,
        );
    }
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

/// The registry rules apply to the Windows-based devices.
const WINDOWS: &[DeviceKind] = &[DeviceKind::TeamsRoomsWindows, DeviceKind::SurfaceHub];

/// Windows 8.1 / Server 2012 R2: from this build on TLS 1.2 is on by default in SCHANNEL.
const TLS12_DEFAULT_BUILD: u32 = 9600;

/// KB3140245: the WinHTTP default secure protocols.
pub(crate) const REF_WINHTTP: &str = "https://support.microsoft.com/help/3140245";
/// TLS best practices with the .NET Framework (SchUseStrongCrypto, SystemDefaultTlsVersions).
pub(crate) const REF_DOTNET: &str =
    "https://learn.microsoft.com/dotnet/framework/network-programming/tls";
/// TLS registry settings for SCHANNEL.
pub(crate) const REF_SCHANNEL: &str =
    "https://learn.microsoft.com/windows-server/security/tls/tls-registry-settings";

/// The registry settings, or the outcome that says why they cannot be judged.
fn registry(facts: &Facts) -> Result<&TlsSettings, Box<Outcome>> {
    match &facts.tls {
        Fact::Known { value, .. } => Ok(value),
        Fact::Absent { source } | Fact::Unreadable { source, .. } => {
            let reason = match &facts.tls {
                Fact::Unreadable { reason, .. } => reason.as_str(),
                _ => "no registry values",
            };
            Err(Box::new(unknown(
                codes::REGISTRY_UNAVAILABLE,
                "Windows TLS settings could not be read; their readiness is unknown",
                format!("registry ({source}): {reason}"),
                "Run the agent on the device, or give it a registry dump (reg query ... /s).",
                REF_SCHANNEL,
            )))
        }
    }
}

/// A registry value that exists but could not be read makes its rule unknown.
fn unreadable_value(fact: &Fact<u32>) -> Option<Outcome> {
    match fact {
        Fact::Unreadable { source, reason } => Some(unknown(
            codes::REGISTRY_VALUE_UNREADABLE,
            "A Windows TLS registry value could not be read; its rule is unknown",
            format!("{source}: {reason}"),
            "Check the value's type (REG_DWORD) and the agent's read access to HKLM.",
            REF_SCHANNEL,
        )),
        _ => None,
    }
}

fn value_evidence(fact: &Fact<u32>) -> String {
    match fact {
        Fact::Known { value, source } => format!("{source} = 0x{value:X} ({value})"),
        other => format!("{} absent", other.source()),
    }
}

/// SCHANNEL must let the client use TLS 1.2: `Enabled` not 0 and `DisabledByDefault` not set.
fn schannel_tls12_client(facts: &Facts) -> Outcome {
    let settings = match registry(facts) {
        Ok(s) => s,
        Err(outcome) => return *outcome,
    };
    let Some(client) = settings.schannel(TlsVersion::Tls12, Side::Client) else {
        return Outcome::Pass;
    };
    for fact in [&client.enabled, &client.disabled_by_default] {
        if let Some(outcome) = unreadable_value(fact) {
            return outcome;
        }
    }
    if client.enabled.known() == Some(&0) {
        return Outcome::Flag(
            Verdict::NotReady,
            Finding {
                code: codes::SCHANNEL_TLS12_CLIENT_DISABLED.into(),
                severity: Severity::Critical,
                title: "TLS 1.2 is disabled for clients in SCHANNEL".into(),
                evidence: value_evidence(&client.enabled),
                remediation: r"Set HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client Enabled = 1 (REG_DWORD), or delete the value to get the OS default, and restart the device.".into(),
                reference: REF_SCHANNEL.into(),
            },
        );
    }
    let by_default = client.disabled_by_default.known().copied();
    let old_windows = facts
        .os_build
        .known()
        .and_then(|b| b.trim().parse::<OsBuild>().ok())
        .filter(|b| b.build < TLS12_DEFAULT_BUILD);
    let off_by_default = match by_default {
        Some(v) => (v != 0).then(|| value_evidence(&client.disabled_by_default)),
        None => old_windows.map(|b| {
            format!(
                "{}; OS build {b} predates Windows 8.1, where TLS 1.2 is off by default",
                value_evidence(&client.disabled_by_default)
            )
        }),
    };
    match off_by_default {
        Some(evidence) => Outcome::Flag(
            Verdict::NotReady,
            Finding {
                code: codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT.into(),
                severity: Severity::Critical,
                title: "TLS 1.2 is disabled by default for clients in SCHANNEL".into(),
                evidence,
                remediation: r"Set HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client DisabledByDefault = 0 (REG_DWORD) and restart the device.".into(),
                reference: REF_SCHANNEL.into(),
            },
        ),
        None => Outcome::Pass,
    }
}

/// WinHTTP `DefaultSecureProtocols`, where set, must include TLS 1.2 (0x800), in both views.
fn winhttp_tls12(facts: &Facts) -> Outcome {
    let settings = match registry(facts) {
        Ok(s) => s,
        Err(outcome) => return *outcome,
    };
    for entry in &settings.winhttp {
        if let Some(outcome) = unreadable_value(&entry.default_secure_protocols) {
            return outcome;
        }
    }
    let missing: Vec<String> = settings
        .winhttp
        .iter()
        .filter(|e| {
            e.default_secure_protocols
                .known()
                .is_some_and(|v| v & winhttp_bits::TLS12 == 0)
        })
        .map(|e| value_evidence(&e.default_secure_protocols))
        .collect();
    if missing.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Flag(
        Verdict::NotReady,
        Finding {
            code: codes::WINHTTP_TLS12_NOT_DEFAULT.into(),
            severity: Severity::Critical,
            title: "WinHTTP's default secure protocols leave out TLS 1.2".into(),
            evidence: missing.join("; "),
            remediation: "Add 0x800 (TLS 1.2) to DefaultSecureProtocols in both the native and the Wow6432Node WinHttp keys (0xA80 = TLS 1.0+1.1+1.2, 0x800 = TLS 1.2 only), or delete the value on Windows 10 and later.".into(),
            reference: REF_WINHTTP.into(),
        },
    )
}

/// .NET Framework before 4.6.2 needs `SchUseStrongCrypto` or `SystemDefaultTlsVersions` = 1
/// (v4.0.30319, both views) to use TLS 1.2 by default.
fn dotnet_tls12(facts: &Facts) -> Outcome {
    let settings = match registry(facts) {
        Ok(s) => s,
        Err(outcome) => return *outcome,
    };
    if let Some(outcome) = unreadable_value(&settings.dotnet4_release) {
        return outcome;
    }
    let release = match settings.dotnet4_release.known() {
        // No .NET Framework 4.x: nothing of it to configure.
        None => return Outcome::Pass,
        Some(&r) if r >= DOTNET_462_RELEASE => return Outcome::Pass,
        Some(&r) => r,
    };
    let v4: Vec<_> = settings
        .dotnet
        .iter()
        .filter(|d| d.framework == DotNet::V4)
        .collect();
    for entry in &v4 {
        for fact in [
            &entry.sch_use_strong_crypto,
            &entry.system_default_tls_versions,
        ] {
            if let Some(outcome) = unreadable_value(fact) {
                return outcome;
            }
        }
    }
    let switched = |d: &&DotNetCrypto| {
        d.sch_use_strong_crypto.known() == Some(&1)
            || d.system_default_tls_versions.known() == Some(&1)
    };
    let lacking: Vec<String> = v4
        .iter()
        .filter(|d| !switched(d))
        .map(|d| {
            format!(
                "{}; {}",
                value_evidence(&d.sch_use_strong_crypto),
                value_evidence(&d.system_default_tls_versions)
            )
        })
        .collect();
    if v4.is_empty() || lacking.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Flag(
        Verdict::AtRisk,
        Finding {
            code: codes::DOTNET_TLS12_NOT_DEFAULT.into(),
            severity: Severity::Warning,
            title: ".NET Framework before 4.6.2 may still use TLS 1.0/1.1".into(),
            evidence: format!(
                ".NET Framework 4.x Release {release} (below {DOTNET_462_RELEASE}, 4.6.2); {}",
                lacking.join("; ")
            ),
            remediation: r"Install .NET Framework 4.6.2 or later, or set SchUseStrongCrypto = 1 and SystemDefaultTlsVersions = 1 (REG_DWORD) under HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319 and HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319.".into(),
            reference: REF_DOTNET.into(),
        },
    )
}

/// Every kind: the OS check needs only the OS name.
const ALL_KINDS: &[DeviceKind] = &[
    DeviceKind::TeamsRoomsWindows,
    DeviceKind::SurfaceHub,
    DeviceKind::TeamsRoomsAndroid,
    DeviceKind::Unknown,
];

/// The numeric version after `prefix` (case-insensitive) in `name`: `Android 4.3.1` → [4, 3, 1].
fn version_after(name: &str, prefix: &str) -> Option<Vec<u32>> {
    let head = name.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = name[prefix.len()..].trim();
    let digits = rest.split_whitespace().next()?;
    digits.split('.').map(|p| p.parse().ok()).collect()
}

/// `a <= b` for dotted versions, compared on `b`'s fields only (`4.3.1` is an Android 4.3),
/// missing fields counting as 0.
fn at_most(a: &[u32], b: &[u32]) -> bool {
    let a = &a[..a.len().min(b.len())];
    let n = b.len();
    let get = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| (get(a, i), get(b, i)))
        .find(|(x, y)| x != y)
        .is_none_or(|(x, y)| x < y)
}

/// Microsoft's list of clients unable to use TLS 1.2, for the device's own OS.
fn client_os_tls12(facts: &Facts) -> Outcome {
    let Some(name) = facts.os_name.known() else {
        // On Windows the registry and build rules cover the OS; on Android its version is
        // the only device-side fact that decides TLS 1.2.
        if facts.kind() == DeviceKind::TeamsRoomsAndroid {
            return unknown(
                codes::OS_NAME_MISSING,
                "Teams Rooms on Android without a known Android version; whether its OS can use \
                 TLS 1.2 is unknown",
                describe_missing("OS name", &facts.os_name),
                "State the OS in the facts file, e.g. os_name = \"Android 12\" (Android 4.3 and \
                 earlier cannot use TLS 1.2).",
                REF_TLS12_M365,
            );
        }
        return Outcome::NotApplicable;
    };
    let name = name.trim();
    let unable = version_after(name, "Android").is_some_and(|v| at_most(&v, &[4, 3]))
        || version_after(name, "Windows Phone").is_some_and(|v| at_most(&v, &[8, 0]))
        || version_after(name, "OS X").is_some_and(|v| at_most(&v, &[10, 8, 4]));
    if !unable {
        return Outcome::Pass;
    }
    Outcome::Flag(
        Verdict::NotReady,
        Finding {
            code: codes::CLIENT_OS_WITHOUT_TLS12.into(),
            severity: Severity::Critical,
            title: format!("{name} is on Microsoft's list of clients unable to use TLS 1.2"),
            evidence: format!("OS {name} ({})", facts.os_name.source()),
            remediation: "Replace or upgrade the device's operating system (Android 4.4 or later, \
                          Windows Phone 8.1, OS X 10.8.5 or later)."
                .into(),
            reference: REF_TLS12_M365.into(),
        },
    )
}
