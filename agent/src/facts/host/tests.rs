//! Tests of native facts: a registry dump for the registry, real child processes for the app
//! query, real files for the facts file lying over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roomready_protocol::{DeviceKind, TlsVersion};

use super::*;
use crate::facts::registry::{MapRegistry, RegDump};
use crate::facts::tls::Side;

const TLS12_CLIENT: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";

fn fixture(name: &str) -> RegDump {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reg")
        .join(name);
    RegDump::load(&path).expect("fixture parses")
}

fn dump(text: &str) -> RegDump {
    RegDump::parse("dump.txt", text).expect("test dump parses")
}

fn version_dump(values: &str) -> RegDump {
    dump(&format!(
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n{values}\n"
    ))
}

fn unavailable() -> AppSource {
    AppSource::Unavailable("not asked in this test".into())
}

fn host(registry: impl Registry + 'static, app: AppSource, file: Option<&Path>) -> HostFacts {
    HostFacts::new(
        Arc::new(registry),
        "registry dump dump.txt",
        app,
        file.map(FactsFile::new),
    )
}

/// A shell script as the app query. It runs as `/bin/sh FILE`, not exec'd itself: exec'ing a
/// file just written fails with ETXTBSY while a parallel test forks with the write still open.
#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> AppSource {
    use std::time::Duration;
    let path = dir.join(name);
    std::fs::write(&path, format!("{body}\n")).expect("write script");
    AppSource::Query(AppxQuery {
        program: PathBuf::from("/bin/sh"),
        args: vec![path.to_string_lossy().into_owned()],
        timeout: Duration::from_secs(10),
    })
}

#[test]
fn os_build_joins_current_build_and_ubr() {
    let registry = fixture("teams-rooms-host.txt");
    let build = os_build(&registry);
    assert_eq!(build.known().map(String::as_str), Some("19045.4902"));
    assert!(
        build
            .source()
            .to_string()
            .contains(r"CurrentVersion\CurrentBuild + UBR"),
        "{}",
        build.source()
    );
}

#[test]
fn os_build_without_ubr_or_with_the_wrong_type_is_unreadable() {
    let no_ubr = os_build(&version_dump("    CurrentBuild    REG_SZ    15063"));
    assert!(
        matches!(&no_ubr, Fact::Unreadable { reason, .. } if reason.contains("UBR is absent")),
        "{no_ubr:?}"
    );
    let dword = os_build(&version_dump("    CurrentBuild    REG_DWORD    0x3ad7"));
    assert!(
        matches!(&dword, Fact::Unreadable { reason, .. } if reason.contains("expected REG_SZ")),
        "{dword:?}"
    );
    let ubr_sz = os_build(&version_dump(
        "    CurrentBuild    REG_SZ    15063\n    UBR    REG_SZ    1835",
    ));
    assert!(
        matches!(&ubr_sz, Fact::Unreadable { reason, .. } if reason.contains("expected REG_DWORD")),
        "{ubr_sz:?}"
    );
    let absent = os_build(&version_dump(
        "    ProductName    REG_SZ    Windows 10 Team",
    ));
    assert!(matches!(absent, Fact::Absent { .. }), "{absent:?}");
    // Nothing about the key in the dump: not absent, unknown.
    let other = os_build(&dump("HKEY_LOCAL_MACHINE\\SYSTEM\n"));
    assert!(matches!(other, Fact::Unreadable { .. }), "{other:?}");
}

#[test]
fn the_kind_follows_from_edition_and_app() {
    let known = |v: &str| Fact::Known {
        value: v.to_owned(),
        source: Source::new("test"),
    };
    let absent = Fact::Absent {
        source: Source::new("test"),
    };
    let unreadable = Fact::Unreadable {
        source: Source::new("test"),
        reason: "access denied".to_owned(),
    };
    let kind = |edition: &Fact<String>, app: &Fact<String>| device_kind(edition, app);
    assert_eq!(
        kind(&known("PPIPro"), &absent).known(),
        Some(&DeviceKind::SurfaceHub)
    );
    assert_eq!(
        kind(&known("ppipro"), &unreadable).known(),
        Some(&DeviceKind::SurfaceHub)
    );
    assert_eq!(
        kind(&known("IoTEnterprise"), &known("4.0.64.0")).known(),
        Some(&DeviceKind::TeamsRoomsWindows)
    );
    assert_eq!(
        kind(&absent, &known("5.2.115.0")).known(),
        Some(&DeviceKind::TeamsRoomsWindows)
    );
    let neither = kind(&known("Professional"), &absent);
    assert!(
        matches!(&neither, Fact::Absent { source } if source.to_string().contains("Professional")),
        "{neither:?}"
    );
    let unknown_app = kind(&known("Professional"), &unreadable);
    assert!(
        matches!(&unknown_app, Fact::Unreadable { reason, .. } if reason.contains("access denied")),
        "{unknown_app:?}"
    );
    let unknown_edition = kind(&unreadable, &known("4.0.64.0"));
    assert!(
        matches!(unknown_edition, Fact::Unreadable { .. }),
        "{unknown_edition:?}"
    );
}

#[tokio::test]
async fn a_dump_gives_os_and_tls_facts() {
    let facts = host(fixture("teams-rooms-host.txt"), unavailable(), None)
        .collect()
        .await
        .expect("facts");
    assert_eq!(
        facts.os_build.known().map(String::as_str),
        Some("19045.4902")
    );
    assert_eq!(
        facts.os_name.known().map(String::as_str),
        Some("Windows 10 IoT Enterprise")
    );
    let tls = facts.tls.known().expect("tls settings from the dump");
    let client = tls
        .schannel(TlsVersion::Tls12, Side::Client)
        .expect("TLS 1.2 client");
    assert_eq!(client.enabled.known(), Some(&0));
    assert!(facts.device_id.is_none());
}

#[cfg(unix)]
#[tokio::test]
async fn the_app_query_makes_a_windows_host_a_teams_rooms_device() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = script(tmp.path(), "appx", "printf '4.0.105.0\\r\\n'");
    let facts = host(fixture("teams-rooms-host.txt"), app, None)
        .collect()
        .await
        .expect("facts");
    assert_eq!(
        facts.app_version.known().map(String::as_str),
        Some("4.0.105.0")
    );
    assert_eq!(facts.kind(), DeviceKind::TeamsRoomsWindows);
}

#[tokio::test]
async fn without_the_app_the_kind_stays_unknown_with_the_reason() {
    let registry = version_dump(
        "    CurrentBuild    REG_SZ    19045\n    UBR    REG_DWORD    0x1\n    EditionID    REG_SZ    Enterprise",
    );
    let facts = host(registry, unavailable(), None)
        .collect()
        .await
        .expect("facts");
    assert_eq!(facts.kind(), DeviceKind::Unknown);
    assert!(
        matches!(&facts.kind, Fact::Unreadable { reason, .. } if reason.contains("not asked in this test")),
        "{:?}",
        facts.kind
    );
    assert!(
        matches!(&facts.app_version, Fact::Unreadable { reason, .. } if reason == "not asked in this test"),
        "{:?}",
        facts.app_version
    );
}

#[tokio::test]
async fn a_surface_hub_edition_is_a_surface_hub() {
    let registry = version_dump(
        "    CurrentBuild    REG_SZ    15063\n    UBR    REG_DWORD    0x72b\n    EditionID    REG_SZ    PPIPro\n    ProductName    REG_SZ    Windows 10 Team",
    );
    let facts = host(registry, unavailable(), None)
        .collect()
        .await
        .expect("facts");
    assert_eq!(facts.kind(), DeviceKind::SurfaceHub);
    assert_eq!(
        facts.os_build.known().map(String::as_str),
        Some("15063.1835")
    );
}

#[tokio::test]
async fn the_facts_file_overrides_what_it_states_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("facts.toml");
    std::fs::write(
        &file,
        format!(
            "device_id = \"mtr-7\"\napp_version = \"4.0.64.0\"\n[registry]\n'{TLS12_CLIENT}\\Enabled' = 1\n"
        ),
    )
    .expect("write facts");
    let facts = host(fixture("teams-rooms-host.txt"), unavailable(), Some(&file))
        .collect()
        .await
        .expect("facts");
    assert_eq!(facts.device_id.as_ref().map(|d| d.as_str()), Some("mtr-7"));
    // Stated: from the file.
    assert_eq!(
        facts.app_version.known().map(String::as_str),
        Some("4.0.64.0")
    );
    assert!(
        facts
            .app_version
            .source()
            .to_string()
            .contains("facts.toml, key app_version"),
        "{}",
        facts.app_version.source()
    );
    // The kind follows from the overriding app version.
    assert_eq!(facts.kind(), DeviceKind::TeamsRoomsWindows);
    // Not stated: from the dump.
    assert_eq!(
        facts.os_build.known().map(String::as_str),
        Some("19045.4902")
    );
    let tls = facts.tls.known().expect("tls");
    let client = tls
        .schannel(TlsVersion::Tls12, Side::Client)
        .expect("TLS 1.2 client");
    let enabled = &client.enabled;
    assert_eq!(enabled.known(), Some(&1), "the file's value wins");
    assert!(
        enabled.source().to_string().contains("[registry]"),
        "{}",
        enabled.source()
    );
    let disabled_by_default = &client.disabled_by_default;
    assert_eq!(
        disabled_by_default.known(),
        Some(&0),
        "the dump's value stays"
    );
    assert!(
        disabled_by_default
            .source()
            .to_string()
            .contains("registry dump"),
        "{}",
        disabled_by_default.source()
    );
}

#[tokio::test]
async fn a_bad_facts_file_fails_the_whole_collection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("facts.toml");
    std::fs::write(&file, "kind = \"toaster\"\n").expect("write facts");
    let error = host(MapRegistry::new(), unavailable(), Some(&file))
        .collect()
        .await
        .expect_err("bad kind");
    let text = error.to_string();
    assert!(
        text.contains("facts.toml:1:8") && text.contains("toaster"),
        "{text}"
    );
    let missing = host(
        MapRegistry::new(),
        unavailable(),
        Some(&tmp.path().join("nope.toml")),
    )
    .collect()
    .await
    .expect_err("missing file");
    assert!(missing.to_string().contains("nope.toml"), "{missing}");
}

#[cfg(unix)]
mod query {
    //! The app query against real child processes.

    use std::time::Duration;

    use super::*;

    async fn read(app: AppSource) -> Fact<String> {
        app.read().await
    }

    #[tokio::test]
    async fn the_list_format_is_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = script(
            tmp.path(),
            "appx",
            "printf '\\r\\nName              : Microsoft.SkypeRoomSystem\\r\\nVersion           : 5.2.115.0\\r\\n\\r\\n'",
        );
        assert_eq!(
            read(app).await.known().map(String::as_str),
            Some("5.2.115.0")
        );
    }

    #[tokio::test]
    async fn empty_output_is_not_installed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fact = read(script(tmp.path(), "appx", "exit 0")).await;
        assert!(matches!(fact, Fact::Absent { .. }), "{fact:?}");
    }

    #[tokio::test]
    async fn a_failing_command_is_unreadable_with_its_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = script(
            tmp.path(),
            "appx",
            "echo 'Get-AppxPackage : Access is denied.' >&2; exit 1",
        );
        let fact = read(app).await;
        assert!(
            matches!(&fact, Fact::Unreadable { reason, .. } if reason.contains("Access is denied")),
            "{fact:?}"
        );
    }

    #[tokio::test]
    async fn a_hung_command_is_killed_at_the_timeout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let AppSource::Query(mut query) = script(tmp.path(), "appx", "exec sleep 60") else {
            unreachable!("script returns a query")
        };
        query.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let fact = query.read().await;
        assert!(
            matches!(&fact, Fact::Unreadable { reason, .. } if reason.contains("did not answer within 0.3 s")),
            "{fact:?}"
        );
        // Killed, not waited for: far less than the 60 s the command would take.
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_missing_program_is_unreadable() {
        let query = AppxQuery {
            program: PathBuf::from("/nonexistent/powershell.exe"),
            args: Vec::new(),
            timeout: Duration::from_secs(1),
        };
        let fact = query.read().await;
        assert!(
            matches!(&fact, Fact::Unreadable { reason, .. } if reason.contains("cannot start /nonexistent/powershell.exe")),
            "{fact:?}"
        );
    }
}
