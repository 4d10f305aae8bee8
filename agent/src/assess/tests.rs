//! Boundary tests of every rule and of how outcomes combine.

use roomready_protocol::{DeviceKind, Severity, Verdict, codes};

use super::*;
use crate::facts::tls::{DotNet, Schannel, Side, TlsSettings};
use crate::facts::{Fact, Facts, Source};
use roomready_protocol::TlsVersion;

/// Registry settings with every value absent (OS defaults), for rules that need some.
fn default_tls() -> TlsSettings {
    TlsSettings::read(|_, _| Fact::Absent { source: src() })
}

fn known(value: u32) -> Fact<u32> {
    Fact::Known {
        value,
        source: Source::new("reg"),
    }
}

fn src() -> Source {
    Source::new("test")
}

fn facts(kind: DeviceKind, app: Option<&str>, build: Option<&str>) -> Facts {
    let fact = |v: Option<&str>| match v {
        Some(v) => Fact::Known {
            value: v.to_owned(),
            source: src(),
        },
        None => Fact::Absent { source: src() },
    };
    Facts {
        device_id: None,
        kind: Fact::Known {
            value: kind,
            source: src(),
        },
        app_version: fact(app),
        os_build: fact(build),
        os_name: Fact::Absent { source: src() },
        tls: Fact::Known {
            value: default_tls(),
            source: src(),
        },
        observed: Fact::Absent { source: src() },
    }
}

fn verdict_and_codes(f: &Facts) -> (Verdict, Vec<String>) {
    let a = assess(f);
    (a.verdict, a.findings.into_iter().map(|f| f.code).collect())
}

#[test]
fn teams_rooms_app_version_boundaries() {
    let cases = [
        (
            "4.0.63.65535",
            Verdict::NotReady,
            vec![codes::TLS12_APP_TOO_OLD],
        ),
        (
            "4.0.51.0",
            Verdict::NotReady,
            vec![codes::TLS12_APP_TOO_OLD],
        ),
        (
            "3.65535.65535.65535",
            Verdict::NotReady,
            vec![codes::TLS12_APP_TOO_OLD],
        ),
        ("0.0.0.0", Verdict::NotReady, vec![codes::TLS12_APP_TOO_OLD]),
        ("4.0.64.0", Verdict::Ready, vec![]),
        ("4.0.64.1", Verdict::Ready, vec![]),
        ("4.0.105.0", Verdict::Ready, vec![]),
        ("5.2.115.0", Verdict::Ready, vec![]),
        (" 4.0.64.0\n", Verdict::Ready, vec![]),
        (
            "4.0.x.0",
            Verdict::Unknown,
            vec![codes::APP_VERSION_UNPARSABLE],
        ),
        ("", Verdict::Unknown, vec![codes::APP_VERSION_UNPARSABLE]),
        (
            "1449/1.0.96.2024091202",
            Verdict::Unknown,
            vec![codes::APP_VERSION_UNPARSABLE],
        ),
    ];
    for (version, verdict, expected) in cases {
        let f = facts(
            DeviceKind::TeamsRoomsWindows,
            Some(version),
            Some("19045.1"),
        );
        assert_eq!(
            verdict_and_codes(&f),
            (verdict, expected.iter().map(|s| s.to_string()).collect()),
            "{version:?}"
        );
    }
}

#[test]
fn too_old_finding_carries_evidence_remediation_and_reference() {
    let f = facts(DeviceKind::TeamsRoomsWindows, Some("4.0.51.0"), None);
    let a = assess(&f);
    let finding = &a.findings[0];
    assert_eq!(finding.severity, Severity::Critical);
    assert_eq!(finding.evidence, "app version 4.0.51.0 (test)");
    assert!(finding.title.contains("4.0.51.0") && finding.title.contains("4.0.64.0"));
    assert!(finding.remediation.contains("4.0.64.0 or later"));
    assert!(finding.remediation.contains("2015 CU9 or 2019 CU1"));
    assert!(finding.reference.ends_with("srs2-release-note"));
}

#[test]
fn missing_or_unreadable_app_version_is_unknown_never_a_guess() {
    let absent = facts(DeviceKind::TeamsRoomsWindows, None, None);
    assert_eq!(
        verdict_and_codes(&absent),
        (
            Verdict::Unknown,
            vec![codes::APP_VERSION_MISSING.to_string()]
        )
    );
    let mut unreadable = absent.clone();
    unreadable.app_version = Fact::Unreadable {
        source: Source::new("Get-AppxPackage"),
        reason: "timed out after 30 s".into(),
    };
    let a = assess(&unreadable);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert_eq!(
        a.findings[0].evidence,
        "app version unreadable (Get-AppxPackage): timed out after 30 s"
    );
}

#[test]
fn surface_hub_build_boundaries() {
    let cases = [
        (
            "15063.1834",
            Verdict::NotReady,
            codes::TLS12_SURFACE_HUB_BUILD_TOO_OLD,
        ),
        (
            "15062.99999",
            Verdict::NotReady,
            codes::TLS12_SURFACE_HUB_BUILD_TOO_OLD,
        ),
        (
            "15063.1835",
            Verdict::AtRisk,
            codes::TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD,
        ),
        (
            "15063.1896",
            Verdict::AtRisk,
            codes::TLS12_SURFACE_HUB_SETUP_BUILD_TOO_OLD,
        ),
        ("15063.x", Verdict::Unknown, codes::OS_BUILD_UNPARSABLE),
    ];
    for (build, verdict, code) in cases {
        let f = facts(DeviceKind::SurfaceHub, None, Some(build));
        assert_eq!(
            verdict_and_codes(&f),
            (verdict, vec![code.to_string()]),
            "{build}"
        );
    }
    for build in ["15063.1897", "15063.2000", "19045.4894", "10.0.15063.1897"] {
        let f = facts(DeviceKind::SurfaceHub, Some("4.0.1.0"), Some(build));
        assert_eq!(verdict_and_codes(&f), (Verdict::Ready, vec![]), "{build}");
    }
    let absent = facts(DeviceKind::SurfaceHub, None, None);
    assert_eq!(
        verdict_and_codes(&absent),
        (Verdict::Unknown, vec![codes::OS_BUILD_MISSING.to_string()])
    );
}

#[test]
fn the_app_rule_does_not_judge_other_kinds() {
    // An old Teams Rooms-style version on a Surface Hub or Android device is not compared.
    let hub = facts(DeviceKind::SurfaceHub, Some("1.0.0.0"), Some("19045.1"));
    assert_eq!(verdict_and_codes(&hub), (Verdict::Ready, vec![]));
    let mut android = facts(DeviceKind::TeamsRoomsAndroid, Some("1.0.0.0"), None);
    android.os_name = Fact::Known {
        value: "Android 12".into(),
        source: src(),
    };
    let (_, codes) = verdict_and_codes(&android);
    assert!(
        !codes.contains(&codes::TLS12_APP_TOO_OLD.to_string()),
        "{codes:?}"
    );
}

fn android(app: Option<&str>, os: Option<&str>) -> Facts {
    let mut f = facts(DeviceKind::TeamsRoomsAndroid, app, None);
    if let Some(os) = os {
        f.os_name = Fact::Known {
            value: os.into(),
            source: src(),
        };
    }
    f
}

#[test]
fn android_versions_are_recognised_not_compared() {
    let a = assess(&android(Some("1449/1.0.96.2024091202"), Some("Android 12")));
    assert_eq!(a.verdict, Verdict::Ready);
    assert_eq!(a.findings.len(), 1, "{:?}", a.findings);
    let note = &a.findings[0];
    assert_eq!(note.code, codes::ANDROID_APP_VERSION_NOT_COMPARED);
    assert_eq!(note.severity, Severity::Info);
    assert!(note.title.contains("4.0.64.0"), "{}", note.title);
    assert!(
        note.evidence.contains("1449/1.0.96.2024091202"),
        "{}",
        note.evidence
    );
    // Low-looking Android numbers are not "older than 4.0.64.0".
    let low = assess(&android(Some("1/0.0.1"), Some("Android 9")));
    assert_eq!(low.verdict, Verdict::Ready);
}

#[test]
fn android_needs_its_version_and_its_os() {
    // A Windows quad on an Android device: not compared either, and the kind is suspect.
    let quad = assess(&android(Some("4.0.51.0"), Some("Android 12")));
    assert_eq!(quad.verdict, Verdict::Unknown);
    assert_eq!(quad.findings[0].code, codes::APP_VERSION_UNPARSABLE);
    assert!(
        quad.findings[0]
            .remediation
            .contains("check the device kind"),
        "{:?}",
        quad.findings[0]
    );
    let missing = verdict_and_codes(&android(None, Some("Android 12")));
    assert_eq!(
        missing,
        (
            Verdict::Unknown,
            vec![codes::APP_VERSION_MISSING.to_string()]
        )
    );
    // Without the Android version the OS rule cannot be decided.
    let no_os = verdict_and_codes(&android(Some("1449/1.0.96.2024091202"), None));
    assert_eq!(
        no_os,
        (
            Verdict::Unknown,
            vec![
                codes::ANDROID_APP_VERSION_NOT_COMPARED.to_string(),
                codes::OS_NAME_MISSING.to_string()
            ]
        )
    );
    // The Android scheme on a Windows device is flagged as a kind mix-up, not misread.
    let mixed = assess(&facts(
        DeviceKind::TeamsRoomsWindows,
        Some("1449/1.0.96.2024091202"),
        None,
    ));
    assert_eq!(mixed.verdict, Verdict::Unknown);
    assert_eq!(mixed.findings[0].code, codes::APP_VERSION_UNPARSABLE);
    assert!(
        mixed.findings[0].title.contains("Android"),
        "{:?}",
        mixed.findings[0]
    );
}

#[test]
fn unknown_kind_is_unknown() {
    let mut f = facts(DeviceKind::Unknown, Some("4.0.64.0"), None);
    assert_eq!(
        verdict_and_codes(&f),
        (
            Verdict::Unknown,
            vec![codes::DEVICE_KIND_UNKNOWN.to_string()]
        )
    );
    f.kind = Fact::Absent { source: src() };
    let a = assess(&f);
    assert_eq!(a.verdict, Verdict::Unknown);
    assert_eq!(a.findings[0].evidence, "device kind not set (test)");
}

#[test]
fn outcomes_combine_by_rank() {
    fn at_risk(_: &Facts) -> Outcome {
        Outcome::Flag(Verdict::AtRisk, finding("R"))
    }
    fn unknown(_: &Facts) -> Outcome {
        Outcome::Flag(Verdict::Unknown, finding("U"))
    }
    fn not_ready(_: &Facts) -> Outcome {
        Outcome::Flag(Verdict::NotReady, finding("N"))
    }
    fn pass(_: &Facts) -> Outcome {
        Outcome::Pass
    }
    fn skip(_: &Facts) -> Outcome {
        Outcome::NotApplicable
    }
    fn finding(code: &str) -> Finding {
        Finding {
            code: code.into(),
            severity: Severity::Info,
            title: String::new(),
            evidence: String::new(),
            remediation: String::new(),
            reference: String::new(),
        }
    }
    const ALL: &[DeviceKind] = &[DeviceKind::TeamsRoomsWindows];
    let rule = |check: fn(&Facts) -> Outcome| Rule {
        name: "t",
        applies_to: ALL,
        check,
    };
    let f = facts(DeviceKind::TeamsRoomsWindows, None, None);
    let run = |rules: &[Rule]| {
        let a = assess_with(rules, &f, &[]);
        (
            a.verdict,
            a.findings.into_iter().map(|f| f.code).collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(&[rule(pass)]), (Verdict::Ready, vec![]));
    assert_eq!(run(&[rule(at_risk), rule(pass)]).0, Verdict::AtRisk);
    assert_eq!(run(&[rule(at_risk), rule(unknown)]).0, Verdict::Unknown);
    assert_eq!(
        run(&[rule(unknown), rule(not_ready), rule(at_risk)]),
        (Verdict::NotReady, vec!["U".into(), "N".into(), "R".into()])
    );
    assert_eq!(
        run(&[rule(skip)]),
        (
            Verdict::Unknown,
            vec![codes::NO_APPLICABLE_RULE.to_string()]
        )
    );
}

#[test]
fn facts_unavailable_is_unknown_with_the_reason() {
    let a = facts_unavailable("facts.toml:3:1: key \"x\": unknown key");
    assert_eq!(a.verdict, Verdict::Unknown);
    assert_eq!(a.findings[0].code, codes::FACTS_UNAVAILABLE);
    assert!(a.findings[0].evidence.contains("facts.toml:3:1"));
}

/// A change to the registry settings of a test device.
type Edit = Box<dyn Fn(&mut TlsSettings)>;

fn with_tls(edit: impl FnOnce(&mut TlsSettings)) -> Facts {
    let mut f = facts(
        DeviceKind::TeamsRoomsWindows,
        Some("4.0.105.0"),
        Some("19045.1"),
    );
    if let Fact::Known { value, .. } = &mut f.tls {
        edit(value);
    }
    f
}

fn tls12_client(t: &mut TlsSettings) -> &mut Schannel {
    t.schannel
        .iter_mut()
        .find(|s| s.version == TlsVersion::Tls12 && s.side == Side::Client)
        .expect("every version and side is present")
}

#[test]
fn schannel_tls12_client_boundaries() {
    let not_ready = |code: &str| (Verdict::NotReady, vec![code.to_string()]);
    let cases: Vec<(Edit, (Verdict, Vec<String>))> = vec![
        (Box::new(|_| {}), (Verdict::Ready, vec![])),
        (
            Box::new(|t| tls12_client(t).enabled = known(0)),
            not_ready(codes::SCHANNEL_TLS12_CLIENT_DISABLED),
        ),
        (
            Box::new(|t| tls12_client(t).enabled = known(1)),
            (Verdict::Ready, vec![]),
        ),
        (
            Box::new(|t| tls12_client(t).enabled = known(0xFFFF_FFFF)),
            (Verdict::Ready, vec![]),
        ),
        (
            Box::new(|t| tls12_client(t).disabled_by_default = known(1)),
            not_ready(codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT),
        ),
        (
            Box::new(|t| tls12_client(t).disabled_by_default = known(0)),
            (Verdict::Ready, vec![]),
        ),
        (
            Box::new(|t| {
                tls12_client(t).enabled = Fact::Unreadable {
                    source: Source::new("reg"),
                    reason: "REG_SZ, expected REG_DWORD".into(),
                }
            }),
            (
                Verdict::Unknown,
                vec![codes::REGISTRY_VALUE_UNREADABLE.to_string()],
            ),
        ),
        // The server side and other versions do not decide client readiness.
        (
            Box::new(|t| {
                t.schannel
                    .iter_mut()
                    .filter(|s| s.version != TlsVersion::Tls12 || s.side == Side::Server)
                    .for_each(|s| s.enabled = known(0))
            }),
            (Verdict::Ready, vec![]),
        ),
    ];
    for (i, (edit, expected)) in cases.into_iter().enumerate() {
        assert_eq!(verdict_and_codes(&with_tls(edit)), expected, "case {i}");
    }
}

#[test]
fn absent_schannel_keys_mean_the_os_default() {
    // Windows 10: TLS 1.2 on by default. Windows 7 (7601): off by default.
    let modern = facts(
        DeviceKind::TeamsRoomsWindows,
        Some("4.0.105.0"),
        Some("19045.1"),
    );
    assert_eq!(verdict_and_codes(&modern), (Verdict::Ready, vec![]));
    let win7 = facts(
        DeviceKind::TeamsRoomsWindows,
        Some("4.0.105.0"),
        Some("7601.24544"),
    );
    assert_eq!(
        verdict_and_codes(&win7),
        (
            Verdict::NotReady,
            vec![codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT.to_string()]
        )
    );
    let win81 = facts(
        DeviceKind::TeamsRoomsWindows,
        Some("4.0.105.0"),
        Some("9600.0"),
    );
    assert_eq!(verdict_and_codes(&win81), (Verdict::Ready, vec![]));
}

#[test]
fn winhttp_default_secure_protocols_boundaries() {
    for (value, ok) in [
        (0xA00, true),
        (0x280, false),
        (0x800, true),
        (0x080, false),
        (0xA80, true),
        (0x0, false),
        (0xFFFF_FFFF, true),
    ] {
        let f = with_tls(|t| t.winhttp[1].default_secure_protocols = known(value));
        let expected = if ok {
            (Verdict::Ready, vec![])
        } else {
            (
                Verdict::NotReady,
                vec![codes::WINHTTP_TLS12_NOT_DEFAULT.to_string()],
            )
        };
        assert_eq!(verdict_and_codes(&f), expected, "0x{value:X}");
    }
    let f = with_tls(|t| t.winhttp[0].default_secure_protocols = known(0x280));
    let a = assess(&f);
    assert_eq!(a.findings[0].evidence, "reg = 0x280 (640)");
}

#[test]
fn dotnet_before_462_needs_a_switch() {
    let old = |t: &mut TlsSettings| t.dotnet4_release = known(394_801);
    let cases: Vec<(Edit, Verdict)> = vec![
        (Box::new(old), Verdict::AtRisk),
        (
            Box::new(|t| t.dotnet4_release = known(394_802)),
            Verdict::Ready,
        ),
        (
            Box::new(|t| t.dotnet4_release = known(528_040)),
            Verdict::Ready,
        ),
        (
            Box::new(move |t| {
                old(t);
                for d in t.dotnet.iter_mut().filter(|d| d.framework == DotNet::V4) {
                    d.sch_use_strong_crypto = known(1);
                }
            }),
            Verdict::Ready,
        ),
        (
            Box::new(move |t| {
                old(t);
                for d in t.dotnet.iter_mut().filter(|d| d.framework == DotNet::V4) {
                    d.system_default_tls_versions = known(1);
                }
            }),
            Verdict::Ready,
        ),
        // Only the 64-bit view switched: 32-bit .NET programs still default to old TLS.
        (
            Box::new(move |t| {
                old(t);
                t.dotnet[0].sch_use_strong_crypto = known(1);
            }),
            Verdict::AtRisk,
        ),
    ];
    for (i, (edit, verdict)) in cases.into_iter().enumerate() {
        assert_eq!(assess(&with_tls(edit)).verdict, verdict, "case {i}");
    }
}

#[test]
fn no_registry_source_is_unknown_said_once() {
    let mut f = facts(DeviceKind::SurfaceHub, None, Some("19045.1"));
    f.tls = Fact::Unreadable {
        source: src(),
        reason: "no registry source".into(),
    };
    assert_eq!(
        verdict_and_codes(&f),
        (
            Verdict::Unknown,
            vec![codes::REGISTRY_UNAVAILABLE.to_string()]
        )
    );
    // Android devices have no Windows registry: the rules do not apply.
    let mut android = facts(DeviceKind::TeamsRoomsAndroid, None, None);
    android.tls = f.tls.clone();
    assert!(
        !verdict_and_codes(&android)
            .1
            .contains(&codes::REGISTRY_UNAVAILABLE.to_string())
    );
}

#[test]
fn clients_known_unable_to_use_tls12() {
    let with_os =
        |name: &str| verdict_and_codes(&android(Some("1449/1.0.96.2024091202"), Some(name)));
    let unable = (
        Verdict::NotReady,
        vec![
            codes::ANDROID_APP_VERSION_NOT_COMPARED.to_string(),
            codes::CLIENT_OS_WITHOUT_TLS12.to_string(),
        ],
    );
    for name in [
        "Android 4.3",
        "Android 4.3.1",
        "android 2.3.7",
        "Windows Phone 8",
        "Windows Phone 8.0",
        "OS X 10.8.4",
        "OS X 10.7",
    ] {
        assert_eq!(with_os(name), unable, "{name}");
    }
    for name in [
        "Android 4.4",
        "Android 12",
        "Windows Phone 8.1",
        "OS X 10.8.5",
        "OS X 10.9",
        "Windows 10 IoT Enterprise",
    ] {
        assert!(
            !with_os(name)
                .1
                .contains(&codes::CLIENT_OS_WITHOUT_TLS12.to_string()),
            "{name}"
        );
    }
}
