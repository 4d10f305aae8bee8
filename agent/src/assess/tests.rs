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

const ANDROID_APP: &str = "1449/1.0.96.2024091202";

fn codes_of(a: &Assessment) -> Vec<&str> {
    a.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn android_versions_are_recognised_not_compared() {
    let a = assess(&android(Some(ANDROID_APP), Some("Android 12")));
    assert_eq!(a.verdict, Verdict::Ready);
    assert_eq!(
        codes_of(&a),
        [
            codes::ANDROID_APP_VERSION_NOT_COMPARED,
            codes::ANDROID_OS_SUPPORT_DATES
        ],
        "{:?}",
        a.findings
    );
    let note = &a.findings[0];
    assert_eq!(note.severity, Severity::Info);
    assert!(note.title.contains("4.0.64.0"), "{}", note.title);
    assert!(note.title.contains("TLS 1.2 or later"), "{}", note.title);
    assert!(note.evidence.contains(ANDROID_APP), "{}", note.evidence);
    assert!(note.remediation.contains("latest"), "{}", note.remediation);
    assert_eq!(
        note.reference,
        "https://learn.microsoft.com/microsoftteams/rooms/security-android"
    );
    // Low-looking Android numbers are not "older than 4.0.64.0"; the forms the docs show all
    // pass, surrounding spaces of the facts file's value included.
    for app in [
        "1/0.0.1",
        "1449/1.0.94.2020062501",
        "1449/1.0.97.2023062301",
        "1449/1.0.96.2025325609",
        " 1449/1.0.96.2024091202\t",
    ] {
        let a = assess(&android(Some(app), Some("Android 9")));
        assert_eq!(a.verdict, Verdict::Ready, "{app:?}: {:?}", a.findings);
    }
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
    // A label copied with the version: the error says which character and why.
    let labelled = assess(&android(
        Some("Teams version 1449/1.0.96.2021051904"),
        Some("Android 12"),
    ));
    assert_eq!(labelled.verdict, Verdict::Unknown);
    assert!(
        labelled.findings[0]
            .evidence
            .contains("character 1 ('T') is not an ASCII digit"),
        "{:?}",
        labelled.findings[0]
    );
    let missing = verdict_and_codes(&android(None, Some("Android 12")));
    assert_eq!(
        missing,
        (
            Verdict::Unknown,
            vec![
                codes::APP_VERSION_MISSING.to_string(),
                codes::ANDROID_OS_SUPPORT_DATES.to_string()
            ]
        )
    );
    // Without the Android version the OS rule cannot be decided.
    let no_os = verdict_and_codes(&android(Some(ANDROID_APP), None));
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
        Some(ANDROID_APP),
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

/// Each Android version against Microsoft's table (android-version-support) and its list of
/// clients unable to use TLS 1.2, at the boundaries.
#[test]
fn android_os_against_microsofts_table() {
    use codes::{
        ANDROID_APP_VERSION_NOT_COMPARED as APP, ANDROID_OS_NOT_SUPPORTED as OLD,
        ANDROID_OS_SUPPORT_DATES as DATES, ANDROID_OS_SUPPORT_NOT_DOCUMENTED as NEWER,
        CLIENT_OS_WITHOUT_TLS12 as NO_TLS12, OS_NAME_UNPARSABLE as UNREADABLE,
    };
    let cases = [
        ("Android 2.3.7", Verdict::NotReady, vec![APP, NO_TLS12]),
        ("Android 4.3", Verdict::NotReady, vec![APP, NO_TLS12]),
        ("Android 4.3.9", Verdict::NotReady, vec![APP, NO_TLS12]),
        ("Android 4.4", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 4.4.0", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 7", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 8.1", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 8.1.0", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 8.99", Verdict::AtRisk, vec![APP, OLD]),
        ("Android 9", Verdict::Ready, vec![APP, DATES]),
        ("Android 9.0", Verdict::Ready, vec![APP, DATES]),
        ("android 10", Verdict::Ready, vec![APP, DATES]),
        ("ANDROID 11", Verdict::Ready, vec![APP, DATES]),
        ("Android 12 (API 31)", Verdict::Ready, vec![APP, DATES]),
        ("Android12", Verdict::Ready, vec![APP, DATES]),
        ("  Android 13  ", Verdict::Ready, vec![APP, DATES]),
        ("Android 14", Verdict::Ready, vec![APP, DATES]),
        ("Android 15", Verdict::Ready, vec![APP, NEWER]),
        ("Android 16.0", Verdict::Ready, vec![APP, NEWER]),
        ("Android", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Android ", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Android 12L", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("AndroidX 12", Verdict::Unknown, vec![APP, UNREADABLE]),
        // Read loosely by the list of clients (1.2.3.4 is below 4.3), refused by the table.
        (
            "Android 1.2.3.4",
            Verdict::NotReady,
            vec![APP, NO_TLS12, UNREADABLE],
        ),
        ("Android 12.", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Android 99999", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Android -12", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Android １２", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Andröid 12", Verdict::Unknown, vec![APP, UNREADABLE]),
        ("Linux 5.10", Verdict::Unknown, vec![APP, UNREADABLE]),
        (
            "Windows 10 IoT Enterprise",
            Verdict::Unknown,
            vec![APP, UNREADABLE],
        ),
    ];
    for (os, verdict, expected) in cases {
        let a = assess(&android(Some(ANDROID_APP), Some(os)));
        assert_eq!(
            (a.verdict, codes_of(&a)),
            (verdict, expected),
            "{os:?}: {:?}",
            a.findings
        );
    }
    let dates = |os: &str| {
        let a = assess(&android(Some(ANDROID_APP), Some(os)));
        a.findings[1].title.clone()
    };
    assert!(
        dates("Android 9").contains("ends 2023-08-05"),
        "{}",
        dates("Android 9")
    );
    assert!(
        dates("Android 9").contains("support 2025-08-05"),
        "{}",
        dates("Android 9")
    );
    assert!(
        dates("Android 10").contains("ends 2025-09-03"),
        "{}",
        dates("Android 10")
    );
    assert!(
        dates("Android 14").contains("support 2030-10-04"),
        "{}",
        dates("Android 14")
    );
    assert!(
        dates("Android 8.1").contains("(Android 9 to 14)"),
        "{}",
        dates("Android 8.1")
    );
    assert!(
        dates("Android 15").contains("say nothing"),
        "{}",
        dates("Android 15")
    );
    let windows = assess(&android(
        Some(ANDROID_APP),
        Some("Windows 10 IoT Enterprise"),
    ));
    assert!(
        windows.findings[1]
            .remediation
            .contains("check the device kind"),
        "{:?}",
        windows.findings[1]
    );
    assert!(
        windows.findings[1]
            .evidence
            .contains("\"Windows 10 IoT Enterprise\" is not an Android version"),
        "{:?}",
        windows.findings[1]
    );
    // A huge OS name is refused by its length, and the evidence stays short.
    let huge = format!("Android {}", "1".repeat(1 << 20));
    let a = assess(&android(Some(ANDROID_APP), Some(&huge)));
    assert_eq!(a.verdict, Verdict::Unknown);
    assert!(a.findings[1].evidence.contains("longer than 128 bytes"));
    assert!(
        a.findings[1].evidence.len() < 300,
        "{}",
        a.findings[1].evidence
    );
}

#[test]
fn microsofts_android_table_is_in_order() {
    use super::rules::android::ANDROID_SUPPORT;
    let majors: Vec<u32> = ANDROID_SUPPORT.iter().map(|r| r.major).collect();
    assert_eq!(majors, [9, 10, 11, 12, 13, 14]);
    for row in ANDROID_SUPPORT {
        for date in [row.certification_end, row.best_effort_end] {
            let parts: Vec<&str> = date.split('-').collect();
            assert!(
                parts.len() == 3
                    && [4, 2, 2] == [parts[0].len(), parts[1].len(), parts[2].len()]
                    && date.bytes().all(|b| b.is_ascii_digit() || b == b'-'),
                "{date} is not YYYY-MM-DD"
            );
        }
        assert!(
            row.certification_end < row.best_effort_end,
            "Android {}: certification ends before best-effort support",
            row.major
        );
    }
}

#[test]
fn android_release_parses_strictly() {
    use super::rules::android::{AndroidRelease, AndroidReleaseErrorReason as Reason};
    let ok = |s: &str| AndroidRelease::parse(s).map(|r| (r.major(), r.to_string()));
    assert_eq!(ok("Android 8.1.0"), Ok((8, "Android 8.1.0".into())));
    assert_eq!(ok("android 12 (API 31)"), Ok((12, "Android 12".into())));
    assert_eq!(ok("Android\t0014"), Ok((14, "Android 14".into())));
    let reason = |s: &str| AndroidRelease::parse(s).map_err(|e| e.reason);
    assert_eq!(reason("Windows 11"), Err(Reason::NotAndroid));
    assert_eq!(reason("Andr"), Err(Reason::NotAndroid));
    // A multi-byte character where "Android" would end is not a panic.
    assert_eq!(reason("Androi版 12"), Err(Reason::NotAndroid));
    assert_eq!(reason("Android"), Err(Reason::NoVersion));
    assert_eq!(reason("Android Q"), Err(Reason::NoVersion));
    assert_eq!(reason("Android 1.2.3.4"), Err(Reason::FieldCount(4)));
    assert_eq!(reason("Android 8..1"), Err(Reason::BadField(2)));
    assert_eq!(reason("Android 12345"), Err(Reason::BadField(1)));
    assert_eq!(reason(&"A".repeat(129)), Err(Reason::TooLong));
    let err = AndroidRelease::parse("Android 8.x").expect_err("x");
    assert_eq!(
        err.to_string(),
        "\"Android 8.x\" is not an Android version (Android MAJOR[.MINOR[.PATCH]], e.g. Android 12): field 2 of the version is not a number of 1 to 4 ASCII digits"
    );
}

/// Every combination of present, absent, unreadable and garbled facts of a Teams Rooms on
/// Android device: its verdict never comes from NO_APPLICABLE_RULE (nor an unknown kind), it is
/// `ready` only when both its app version and a supported Android version were read, and every
/// finding is complete and cites a source.
#[test]
fn an_android_device_always_gets_a_real_verdict() {
    let text = |value: &str| Fact::Known {
        value: value.to_owned(),
        source: src(),
    };
    let huge = "1449/1.0.96.2024091202 ".repeat(50_000);
    let apps: Vec<(Fact<String>, bool)> = vec![
        (Fact::Absent { source: src() }, false),
        (
            Fact::Unreadable {
                source: src(),
                reason: "access denied".into(),
            },
            false,
        ),
        (text(ANDROID_APP), true),
        (text("1449/1.0.96"), true),
        (text("4.0.64.0"), false),
        (text(""), false),
        (text("1449/1.0.96.2024091202/"), false),
        (text("１４４９/1.0.96.2024091202"), false),
        (text("\u{0}"), false),
        (text(&huge), false),
    ];
    let oses: Vec<(Fact<String>, bool)> = vec![
        (Fact::Absent { source: src() }, false),
        (
            Fact::Unreadable {
                source: src(),
                reason: "not reported".into(),
            },
            false,
        ),
        (text("Android 12"), true),
        (text("Android 15"), true),
        (text("Android 8.1"), false),
        (text("Android 4.3"), false),
        (text("Windows 10 IoT Enterprise"), false),
        (text("Android"), false),
        (text(""), false),
        (text(&"é".repeat(100_000)), false),
    ];
    let builds = [
        Fact::Absent { source: src() },
        text("19045.4894"),
        text("not a build"),
    ];
    let registries = [
        Fact::Known {
            value: default_tls(),
            source: src(),
        },
        Fact::Unreadable {
            source: src(),
            reason: "no registry".into(),
        },
    ];
    let endpoint_sets = [
        vec![],
        vec![roomready_protocol::EndpointReport::new(
            "teams.microsoft.com".into(),
            443,
            roomready_protocol::EndpointRole::Microsoft365,
            None,
        )],
    ];
    let mut combinations = 0;
    for (i, (app, app_ok)) in apps.iter().enumerate() {
        for (j, (os, os_ok)) in oses.iter().enumerate() {
            for (k, build) in builds.iter().enumerate() {
                for tls in &registries {
                    for endpoints in &endpoint_sets {
                        let f = Facts {
                            device_id: None,
                            kind: Fact::Known {
                                value: DeviceKind::TeamsRoomsAndroid,
                                source: src(),
                            },
                            app_version: app.clone(),
                            os_build: build.clone(),
                            os_name: os.clone(),
                            tls: tls.clone(),
                            observed: Fact::Absent { source: src() },
                        };
                        let a = assess_device(&f, endpoints);
                        let codes = codes_of(&a);
                        let case = format!(
                            "app #{i}, os #{j}, build #{k}, registry {}, {} endpoints",
                            tls.known().is_some(),
                            endpoints.len()
                        );
                        assert!(
                            !codes.contains(&codes::NO_APPLICABLE_RULE)
                                && !codes.contains(&codes::DEVICE_KIND_UNKNOWN),
                            "{case}: {codes:?}"
                        );
                        // The registry is Windows': never asked of an Android device.
                        assert!(!codes.contains(&codes::REGISTRY_UNAVAILABLE), "{case}");
                        let device_ready = *app_ok && *os_ok;
                        if endpoints.is_empty() {
                            assert_eq!(
                                a.verdict == Verdict::Ready,
                                device_ready,
                                "{case}: {:?}",
                                a.findings
                            );
                        } else {
                            // An endpoint nothing answered is unknown, whatever the device.
                            assert_ne!(a.verdict, Verdict::Ready, "{case}");
                        }
                        if !device_ready {
                            assert_ne!(a.verdict, Verdict::Ready, "{case}");
                        }
                        for finding in &a.findings {
                            assert!(codes::ALL.contains(&finding.code.as_str()), "{finding:?}");
                            assert!(
                                !finding.title.is_empty()
                                    && !finding.evidence.is_empty()
                                    && !finding.remediation.is_empty(),
                                "{finding:?}"
                            );
                            assert!(finding.reference.starts_with("https://"), "{finding:?}");
                            assert!(
                                finding.evidence.len() < 1_000,
                                "{case}: evidence of {} bytes",
                                finding.evidence.len()
                            );
                        }
                        combinations += 1;
                    }
                }
            }
        }
    }
    assert_eq!(combinations, 10 * 10 * 3 * 2 * 2);
}

/// A facts file for a Teams Rooms on Android device, as an admin writes it from the Teams
/// admin center, gets a real verdict.
#[test]
fn an_android_facts_file_gets_a_real_verdict() {
    use crate::facts::FactsFile;
    let path = std::path::Path::new("android.toml");
    let parse = |text: &str| FactsFile::parse(path, text).expect("a valid facts file");
    let ready = parse(
        "kind = \"teams_rooms_android\"\napp_version = \"1449/1.0.96.2024091202\"\nos_name = \"Android 12\"\n",
    );
    let a = assess(&ready);
    assert_eq!(a.verdict, Verdict::Ready, "{:?}", a.findings);
    assert!(
        a.findings[0]
            .evidence
            .contains("(facts file android.toml, key app_version)"),
        "{:?}",
        a.findings[0]
    );
    let old = parse(
        "kind = \"teams_rooms_android\"\napp_version = \"1449/1.0.94.2020102101\"\nos_name = \"Android 8.1\"\n",
    );
    assert_eq!(assess(&old).verdict, Verdict::AtRisk);
    let without_os =
        parse("kind = \"teams_rooms_android\"\napp_version = \"1449/1.0.96.2024091202\"\n");
    assert_eq!(
        verdict_and_codes(&without_os),
        (
            Verdict::Unknown,
            vec![
                codes::ANDROID_APP_VERSION_NOT_COMPARED.to_string(),
                codes::OS_NAME_MISSING.to_string()
            ]
        )
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
    // Android names on an Android device, the others on a Windows one (an Android device with
    // another OS's name is unknown, see android_os_against_microsofts_table).
    let with_os = |name: &str| {
        if name.to_ascii_lowercase().starts_with("android") {
            verdict_and_codes(&android(Some(ANDROID_APP), Some(name)))
        } else {
            let mut f = facts(DeviceKind::TeamsRoomsWindows, Some("4.0.64.0"), None);
            f.os_name = Fact::Known {
                value: name.into(),
                source: src(),
            };
            verdict_and_codes(&f)
        }
    };
    let unable = |name: &str| {
        let mut codes = vec![codes::CLIENT_OS_WITHOUT_TLS12.to_string()];
        if name.to_ascii_lowercase().starts_with("android") {
            codes.insert(0, codes::ANDROID_APP_VERSION_NOT_COMPARED.to_string());
        }
        (Verdict::NotReady, codes)
    };
    for name in [
        "Android 4.3",
        "Android 4.3.1",
        "android 2.3.7",
        "Windows Phone 8",
        "Windows Phone 8.0",
        "OS X 10.8.4",
        "OS X 10.7",
    ] {
        assert_eq!(with_os(name), unable(name), "{name}");
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
