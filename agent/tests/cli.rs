//! The `roomready-agent` binary as an operator uses it: `check` exit codes and output, config
//! errors. (`run` against a broker, observed by a dashboard, is a cross-crate test:
//! tests/tests/integration/agent_run.rs.)
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use roomready_protocol::{Message, State, Verdict, codes};

const AGENT: &str = env!("CARGO_BIN_EXE_roomready-agent");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

fn agent(args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .output()
        .expect("run roomready-agent")
}

fn check_facts(facts: &str, json: bool) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "facts.toml", facts);
    let path = path.to_str().expect("utf-8 path");
    if json {
        agent(&["check", "--facts", path, "--json"])
    } else {
        agent(&["check", "--facts", path])
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_exit_code_is_the_verdict() {
    // `[registry]` (empty: every value at its OS default) gives the registry rules a source.
    let cases = [
        (
            "kind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\n[registry]\n",
            0,
            Verdict::Ready,
        ),
        (
            "kind = \"surface_hub\"\nos_build = \"15063.1835\"\n[registry]\n",
            1,
            Verdict::AtRisk,
        ),
        (
            "kind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n[registry]\n",
            2,
            Verdict::NotReady,
        ),
        (
            "kind = \"teams_rooms_windows\"\n[registry]\n",
            3,
            Verdict::Unknown,
        ),
        (
            "kind = \"teams_rooms_windows\"\napp_version = \"4.0.x.0\"\n[registry]\n",
            3,
            Verdict::Unknown,
        ),
        // No registry source: the registry rules cannot be decided.
        (
            "kind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\n",
            3,
            Verdict::Unknown,
        ),
        // SCHANNEL TLS 1.2 client switched off.
        (
            "kind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\n[registry]\n\"HKLM\\\\SYSTEM\\\\CurrentControlSet\\\\Control\\\\SecurityProviders\\\\SCHANNEL\\\\Protocols\\\\TLS 1.2\\\\Client\\\\Enabled\" = 0\n",
            2,
            Verdict::NotReady,
        ),
    ];
    for (facts, code, verdict) in cases {
        let out = check_facts(facts, true);
        assert_eq!(out.status.code(), Some(code), "{facts}: {}", stderr(&out));
        let state = State::decode(&out.stdout).expect("--json prints a State");
        assert_eq!(state.verdict, verdict, "{facts}");
        assert_eq!(state.device.as_str(), "local");
    }
}

#[test]
fn check_summary_explains_the_finding() {
    let out = check_facts(
        "device_id = \"mtr-7\"\nkind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n",
        false,
    );
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "no colour into a pipe: {text}");
    assert!(
        text.starts_with("roomready check: mtr-7  NOT READY\n"),
        "{text}"
    );
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in {text}"))
            .to_owned()
    };
    assert!(line("kind").contains("teams_rooms_windows"), "{text}");
    let app = line("app version");
    assert!(
        app.contains("4.0.51.0") && app.contains("key app_version"),
        "{text}"
    );
    assert!(line("tls registry").contains("(unreadable)"), "{text}");
    assert!(
        line("no registry source").contains("--registry-dump"),
        "{text}"
    );
    assert!(
        line("critical").contains(codes::TLS12_APP_TOO_OLD),
        "{text}"
    );
    assert!(
        line("evidence").contains("app version 4.0.51.0 (facts file "),
        "{text}"
    );
    assert!(line("see").contains("srs2-release-note"), "{text}");

    // Colour on request, and NO_COLOR does not override an explicit choice.
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = write(
        dir.path(),
        "f.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n",
    );
    let facts = facts.to_str().expect("utf-8");
    let coloured = Command::new(AGENT)
        .args(["check", "--facts", facts, "--color", "always"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert!(
        stdout(&coloured).contains("\x1b[1;31mNOT READY\x1b[0m"),
        "{}",
        stdout(&coloured)
    );
    let bad = agent(&["check", "--facts", facts, "--color", "sometimes"]);
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn check_input_errors_have_their_own_exit_codes() {
    let out = check_facts(
        "kind = \"teams_rooms_windows\"\napp_version = 4064\n",
        false,
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(
            "facts.toml:2:15: key \"app_version\": expected a string, found an integer 4064"
        ),
        "{message}"
    );

    let out = agent(&["check", "--facts", "/nonexistent/facts.toml"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(stderr(&out).contains("/nonexistent/facts.toml: cannot read facts file"));

    let out = agent(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "missing --facts is a usage error"
    );
    let out = agent(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(64));
    let out = agent(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(&roomready_agent::exit::help()),
        "exit codes are in --help"
    );
}

#[test]
fn run_with_a_bad_config_exits_78_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "agent.toml",
        "broker_url = \"mqtt://127.0.0.1:1883\"\ndevice_id = \"room 1\"\nfacts_file = \"f.toml\"\n",
    );
    let out = agent(&["run", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(78));
    let message = stderr(&out);
    assert!(
        message.contains("agent.toml:2:13: key \"device_id\""),
        "{message}"
    );
    assert!(
        message.contains("character ' ' at byte 4 is not allowed"),
        "{message}"
    );
}

#[test]
fn check_reads_a_registry_dump() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reg");
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = write(
        dir.path(),
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.105.0\"\nos_build = \"19045.4894\"\n",
    );
    let run = |dump: &Path| {
        agent(&[
            "check",
            "--json",
            "--facts",
            facts.to_str().expect("utf-8"),
            "--registry-dump",
            dump.to_str().expect("utf-8"),
        ])
    };
    let out = run(&fixtures.join("schannel-tls12-client-disabled.txt"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let state = State::decode(&out.stdout).expect("state");
    assert!(
        state
            .findings
            .iter()
            .any(|f| f.code == codes::SCHANNEL_TLS12_CLIENT_DISABLED),
        "{:?}",
        state.findings
    );

    let out = run(&fixtures.join("truncated.txt"));
    assert_eq!(out.status.code(), Some(65), "{}", stdout(&out));
    assert!(stderr(&out).contains("line 29"), "{}", stderr(&out));

    let out = run(Path::new("/nonexistent/dump.txt"));
    assert_eq!(out.status.code(), Some(66));
}

#[test]
fn check_takes_os_and_kind_from_a_dump_under_the_facts_file() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reg");
    let dump = fixtures.join("teams-rooms-host.txt");
    let dump = dump.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    // The facts file states only the app version (a dump cannot hold it) and overrides one
    // registry value: the dump's SCHANNEL TLS 1.2 client Enabled = 0 becomes 1.
    let facts = write(
        dir.path(),
        "facts.toml",
        "app_version = \"4.0.105.0\"\n[registry]\n\
         'HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client\\Enabled' = 1\n",
    );
    let out = agent(&[
        "check",
        "--json",
        "--registry-dump",
        dump,
        "--facts",
        facts.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let state = State::decode(&out.stdout).expect("state");
    assert_eq!(
        state.facts.kind,
        roomready_protocol::DeviceKind::TeamsRoomsWindows
    );
    assert_eq!(state.facts.os_build.as_deref(), Some("19045.4902"));
    assert_eq!(state.facts.app_version.as_deref(), Some("4.0.105.0"));

    // The dump alone holds no app version, so it cannot tell a Teams Rooms device from any
    // Windows: the kind, and with it the verdict, is unknown, and the finding says what to add.
    let out = agent(&["check", "--json", "--registry-dump", dump]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let state = State::decode(&out.stdout).expect("state");
    let codes: Vec<&str> = state.findings.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&codes::DEVICE_KIND_UNKNOWN), "{codes:?}");
    let kind = state
        .findings
        .iter()
        .find(|f| f.code == codes::DEVICE_KIND_UNKNOWN)
        .expect("kind finding");
    assert!(
        kind.evidence
            .contains("state app_version in the facts file"),
        "{}",
        kind.evidence
    );
}

#[test]
fn check_without_any_facts_source_is_a_usage_error() {
    let out = agent(&["check"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--facts FILE and/or --registry-dump FILE"),
        "{}",
        stderr(&out)
    );
}

mod support;

#[test]
fn check_probes_endpoints() {
    if !support::need_openssl("check_probes_endpoints") {
        return;
    }
    let cert = support::TestCert::new();
    let legacy = support::OpensslServer::start(&cert, &["-tls1", "-cipher", "ALL:@SECLEVEL=0"]);
    let modern = support::OpensslServer::start(&cert, &["-tls1_2"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = write(
        dir.path(),
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.105.0\"\n[registry]\n",
    );
    let endpoint = |port: u16| format!("localhost:{port}");
    let run = |port: u16, json: bool| {
        let mut args = vec![
            "check".to_owned(),
            "--facts".to_owned(),
            facts.to_str().expect("utf-8").to_owned(),
            "--ca-file".to_owned(),
            cert.ca_pem.to_str().expect("utf-8").to_owned(),
            "--endpoint".to_owned(),
            endpoint(port),
        ];
        if json {
            args.push("--json".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        agent(&args)
    };

    // The test certificate is ECDSA, so the suite (C02C) is on neither Microsoft list (they
    // are RSA suites): TLS 1.2 works, at risk.
    let out = run(modern.port, true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let state = State::decode(&out.stdout).expect("state");
    assert_eq!(state.endpoints.len(), 1);
    assert_eq!(
        state.findings[0].code,
        codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS
    );
    assert!(
        state.endpoints[0]
            .certificate
            .as_ref()
            .is_some_and(|c| c.valid)
    );

    let out = run(legacy.port, true);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let state = State::decode(&out.stdout).expect("state");
    assert_eq!(state.findings[0].code, codes::ENDPOINT_NO_TLS12);

    let out = run(legacy.port, false);
    let text = stdout(&out);
    let header = text
        .lines()
        .find(|l| l.contains("TLS 1.0"))
        .expect("table header");
    let row = text
        .lines()
        .find(|l| l.contains(&format!("localhost:{}", legacy.port)))
        .unwrap_or_else(|| panic!("no endpoint row in {text}"));
    assert!(row.contains("custom"), "{row}");
    let column = header.find("TLS 1.0").expect("TLS 1.0 column");
    assert_eq!(
        row.get(column..column + 8),
        Some("accepted"),
        "{header}\n{row}"
    );

    let out = agent(&["check", "--facts", "x", "--endpoint", "host:0"]);
    assert_eq!(out.status.code(), Some(64));
    // A bare IPv6 address is ambiguous (is ::1:443 an address or an address and a port?).
    let out = agent(&["check", "--facts", "x", "--endpoint", "::1:443"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("[V6]:PORT"), "{}", stderr(&out));

    // --resolve: the name is probed at the given address (no DNS: .invalid never resolves),
    // SNI and the certificate's name check stay on the name.
    let name = format!("probe.invalid:{}", modern.port);
    let address = format!("{name}:127.0.0.1");
    let out = agent(&[
        "check",
        "--facts",
        facts.to_str().expect("utf-8"),
        "--ca-file",
        cert.ca_pem.to_str().expect("utf-8"),
        "--endpoint",
        &name,
        "--resolve",
        &address,
        "--json",
    ]);
    let state = State::decode(&out.stdout).expect("state");
    let report = &state.endpoints[0];
    assert_eq!(
        report.address,
        Some(format!("127.0.0.1:{}", modern.port)),
        "{report:?}"
    );
    assert!(
        report.accepted(roomready_protocol::TlsVersion::Tls12),
        "{report:?}"
    );
    let error = report.certificate.as_ref().and_then(|c| c.error.clone());
    assert_eq!(
        error.as_deref(),
        Some("name does not match: the certificate is for localhost, 127.0.0.1, not probe.invalid"),
        "{report:?}"
    );
    // An address for something that is not probed is a usage error, not silently nothing.
    let out = agent(&[
        "check",
        "--facts",
        facts.to_str().expect("utf-8"),
        "--endpoint",
        &name,
        "--resolve",
        "other.invalid:443:127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("which is not an endpoint to probe"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_command_refuses_a_config_whose_files_do_not_load() {
    // Each file the config names is loaded with the config: `run`, `self-test` and `update`
    // refuse alike, naming the key, before anything runs.
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "f.toml", "kind = \"teams_rooms_windows\"\n");
    write(dir.path(), "not-a-ca.pem", "not PEM at all\n");
    let base =
        "broker_url = \"mqtt://127.0.0.1:1883\"\ndevice_id = \"mtr-1\"\nfacts_file = \"f.toml\"\n";
    let key_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    for (key, extra) in [
        ("ca_file", "ca_file = \"missing-ca.pem\"\n".to_owned()),
        ("ca_file", "ca_file = \"not-a-ca.pem\"\n".to_owned()),
        (
            "update_ca_file",
            format!(
                "update_feed_url = \"https://updates.example\"\nupdate_keys = [\"{key_b64}\"]\n\
                 update_ca_file = \"missing-ca.pem\"\n"
            ),
        ),
    ] {
        let config = write(dir.path(), "agent.toml", &format!("{base}{extra}"));
        let config = config.to_str().expect("utf-8");
        for command in [
            vec!["run", "--config", config],
            vec!["self-test", "--config", config],
            vec!["update", "--config", config, "--check"],
        ] {
            let out = agent(&command);
            let message = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(78),
                "{command:?} {extra}: {message}"
            );
            assert!(
                message.contains(&format!("agent.toml: key \"{key}\": ")),
                "{command:?} {extra}: {message}"
            );
        }
    }
}

fn schannel_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schannel")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

#[test]
fn check_weighs_a_schannel_export_beside_the_prediction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = write(
        dir.path(),
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\n[registry]\n",
    );
    let facts = facts.to_str().expect("utf-8 path");
    let export = schannel_fixture("saved-utf16.xml");
    // A window wide enough for the fixture's events, whatever today is.
    let args = [
        "check",
        "--facts",
        facts,
        "--schannel-events",
        export.as_str(),
        "--schannel-window-days",
        "365",
    ];
    let out = agent(&[&args[..], &["--json"]].concat());
    let state = State::decode(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    if state.ts.to_string().as_str() > "2027-11-30" {
        // The fixture's events are from 2026-11-30: past a year they are outside any window.
        return;
    }
    assert_eq!(out.status.code(), Some(1), "at_risk: {}", stderr(&out));
    assert_eq!(state.verdict, Verdict::AtRisk);
    let observed = state.observed.expect("the evidence is in the state");
    assert_eq!(observed.predicted, Verdict::Ready);
    assert_eq!(observed.legacy_handshakes(), 3);
    assert!(
        state
            .findings
            .iter()
            .any(|f| f.code == codes::OBSERVED_LEGACY_TLS
                && f.evidence.contains("sfb-pool.contoso.local")),
        "{:?}",
        state.findings
    );
    // The tables say it too.
    let out = agent(&args);
    let text = stdout(&out);
    for part in [
        "OBSERVED HANDSHAKES",
        "TLS 1.0",
        "sfb-pool.contoso.local",
        "predicted ready",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
}

#[test]
fn check_refuses_an_export_that_is_not_one_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = write(dir.path(), "facts.toml", "kind = \"teams_rooms_windows\"\n");
    let bad = write(dir.path(), "events.xml", "\n\n  this is not XML\n");
    let out = agent(&[
        "check",
        "--facts",
        facts.to_str().expect("utf-8"),
        "--schannel-events",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("events.xml: not an event export"),
        "{message}"
    );
    assert!(message.contains("at byte 4"), "{message}");
    let out = agent(&[
        "check",
        "--facts",
        facts.to_str().expect("utf-8"),
        "--schannel-events",
        "/nonexistent/events.xml",
    ]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    let out = agent(&[
        "check",
        "--facts",
        facts.to_str().expect("utf-8"),
        "--schannel-window-days",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}
