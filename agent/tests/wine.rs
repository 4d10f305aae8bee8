//! The Windows build on a Windows API layer: the agent cross-built for x86_64-pc-windows-gnu
//! (mingw-w64) runs under wine in a fresh `WINEPREFIX` (roomready-testkit's wine harness), reads
//! the registry values this test writes with `wine reg add` through the native registry API
//! (`cfg(windows)` facts), and its `check --json` findings reflect exactly what was written; and
//! `fix` writes through the same API: `--apply` sets the values its plan names (both views,
//! creating keys), `wine reg query` reads them back, `--undo` restores them, deleting the ones
//! that were absent.
//!
//! (The agent as a Windows service under wine, reporting to a broker, is a cross-crate test:
//! tests/tests/integration/wine_service.rs.) Needs wine (Debian: wine64), the mingw-w64 C compiler and the
//! Rust target; skips with a reason when one is missing, unless `ROOMREADY_REQUIRE_PEERS=1`.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::path::Path;

use roomready_testkit::wine::{WindowsBuild, Wine};

const SCHANNEL_CLIENT: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";
const WINHTTP: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";
const NDP4: &str = r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full";
const DOTNET4: &str = r"HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319";
const DOTNET4_WOW64: &str = r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319";

/// The agent cross-built and in a fresh prefix with a Teams Rooms facts file, or `None`
/// (skipped, with the reason printed).
fn windows_agent(test: &str) -> Option<Wine> {
    let wine = Wine::ready(
        test,
        &WindowsBuild {
            package: "roomready-agent",
            bin: "roomready-agent",
            target_dir: &Path::new(env!("CARGO_TARGET_TMPDIR")).join("wine-target"),
            manifest_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
        },
    )?;
    std::fs::write(
        wine.path("facts.toml"),
        "kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\n",
    )
    .expect("facts file");
    Some(wine)
}

/// `check --json --facts facts.toml`: the exit code and the finding codes with evidence.
fn check(wine: &Wine) -> (i32, serde_json::Value) {
    let out = wine.run(&[
        "roomready-agent.exe",
        "check",
        "--json",
        "--facts",
        "facts.toml",
    ]);
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON state ({e}; wine exited {}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), state)
}

fn codes(state: &serde_json::Value) -> BTreeSet<String> {
    state["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("code").to_owned())
        .collect()
}

fn evidence<'a>(state: &'a serde_json::Value, code: &str) -> &'a str {
    state["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == code)
        .and_then(|f| f["evidence"].as_str())
        .unwrap_or_else(|| panic!("no {code} in {state}"))
}

const REGISTRY_CODES: [&str; 3] = [
    "SCHANNEL_TLS12_CLIENT_DISABLED",
    "WINHTTP_TLS12_NOT_DEFAULT",
    "DOTNET_TLS12_NOT_DEFAULT",
];

fn registry_codes(state: &serde_json::Value) -> BTreeSet<String> {
    codes(state)
        .into_iter()
        .filter(|c| REGISTRY_CODES.contains(&c.as_str()))
        .collect()
}

#[test]
fn the_windows_agent_reads_what_wine_reg_wrote() {
    const TEST: &str = "the_windows_agent_reads_what_wine_reg_wrote";
    let Some(wine) = windows_agent(TEST) else {
        return;
    };

    // A fresh prefix: nothing written, so no registry finding.
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    assert_eq!(state["facts"]["kind"], "teams_rooms_windows");
    assert_ne!(state["verdict"], "not_ready", "{state}");

    // SCHANNEL: the TLS 1.2 client switched off.
    wine.reg_add(SCHANNEL_CLIENT, "Enabled", 0);
    let (code, state) = check(&wine);
    assert_eq!(
        registry_codes(&state),
        BTreeSet::from(["SCHANNEL_TLS12_CLIENT_DISABLED".to_owned()]),
        "{state}"
    );
    assert_eq!(state["verdict"], "not_ready");
    assert_eq!(code, 2, "not_ready's exit code");
    assert!(
        evidence(&state, "SCHANNEL_TLS12_CLIENT_DISABLED")
            .contains(r"TLS 1.2\Client\Enabled = 0x0"),
        "{state}"
    );
    wine.reg_add(SCHANNEL_CLIENT, "Enabled", 1);

    // WinHTTP: 0xA80 includes TLS 1.2 (0x800); 0xA0 does not.
    wine.reg_add(WINHTTP, "DefaultSecureProtocols", 0xA80);
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    wine.reg_add(WINHTTP, "DefaultSecureProtocols", 0xA0);
    let (_, state) = check(&wine);
    assert_eq!(
        registry_codes(&state),
        BTreeSet::from(["WINHTTP_TLS12_NOT_DEFAULT".to_owned()]),
        "{state}"
    );
    assert!(
        evidence(&state, "WINHTTP_TLS12_NOT_DEFAULT")
            .contains("DefaultSecureProtocols = 0xA0 (160)"),
        "{state}"
    );
    wine.reg_delete(WINHTTP, "DefaultSecureProtocols");

    // .NET Framework 4.5.1 (Release 378675) without the strong-crypto switches: at risk; with
    // SchUseStrongCrypto in both views: fine.
    wine.reg_add(NDP4, "Release", 378_675);
    let (_, state) = check(&wine);
    assert_eq!(
        registry_codes(&state),
        BTreeSet::from(["DOTNET_TLS12_NOT_DEFAULT".to_owned()]),
        "{state}"
    );
    assert_eq!(state["verdict"], "at_risk");
    wine.reg_add(DOTNET4, "SchUseStrongCrypto", 1);
    wine.reg_add(DOTNET4_WOW64, "SchUseStrongCrypto", 1);
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    // .NET 4.8 (Release 528040) needs no switch at all.
    wine.reg_delete(DOTNET4, "SchUseStrongCrypto");
    wine.reg_delete(DOTNET4_WOW64, "SchUseStrongCrypto");
    wine.reg_add(NDP4, "Release", 528_040);
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
}

/// The native Schannel path under wine: the agent queries the System log through the Event Log
/// API (wevtapi.dll) on every check. Wine's event log is not Windows': wine 8's `EvtQuery` is a
/// stub that returns no handle and sets no error code, and wine's schannel.dll (GnuTLS) logs no
/// events. So what this proves is limited to: the Windows build links and calls the API, a
/// refusal reaches the state as `SCHANNEL_EVENTS_UNREADABLE` naming the call, nothing crashes
/// or hangs, the verdict is untouched, and the registry's `EventLogging` (written with `wine
/// reg`) decides the logging finding. Reading real events (`EvtNext`, `EvtRender`, the XML of a
/// rendered event) is not exercised here; the same XML reader is tested on exports (the
/// fixtures under tests/fixtures/schannel/). A wine whose wevtapi answers would make the state
/// carry an empty summary from the System log, which the test also accepts.
#[test]
fn the_windows_agent_queries_the_system_log_through_the_event_log_api() {
    const TEST: &str = "the_windows_agent_queries_the_system_log_through_the_event_log_api";
    let Some(wine) = windows_agent(TEST) else {
        return;
    };
    let (code, state) = check(&wine);
    eprintln!("state under wine: {state}");
    assert_eq!(
        code, 0,
        "ready: the evidence never makes a device worse by itself: {state}"
    );
    let found = codes(&state);
    // Either wine's wevtapi answers the query (with no Schannel event: the state carries an
    // empty summary from the System log) or refuses it (the state says the events are
    // unreadable, naming the API call and its error).
    match state.get("observed") {
        Some(observed) => {
            assert_eq!(observed["source"], "system_log", "{state}");
            assert_eq!(observed["events"], 0, "{state}");
            assert!(!found.contains("SCHANNEL_EVENTS_UNREADABLE"), "{state}");
        }
        None => {
            let why = evidence(&state, "SCHANNEL_EVENTS_UNREADABLE");
            assert!(
                why.contains("could not query the System log (EvtQuery"),
                "{why}"
            );
        }
    }
    // EventLogging absent (Windows' default, errors only): the logging finding says so.
    assert!(found.contains("SCHANNEL_EVENT_LOGGING_OFF"), "{state}");
    assert!(
        evidence(&state, "SCHANNEL_EVENT_LOGGING_OFF").contains("EventLogging absent"),
        "{state}"
    );
    // With successes logged, no logging finding (and still no handshake to count).
    wine.reg_add(
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL",
        "EventLogging",
        7,
    );
    let (_, state) = check(&wine);
    assert!(
        !codes(&state).contains("SCHANNEL_EVENT_LOGGING_OFF"),
        "{state}"
    );
    assert!(!codes(&state).contains("OBSERVED_LEGACY_TLS"), "{state}");
}

const WINHTTP_WOW64: &str =
    r"HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";
const DOTNET2: &str = r"HKLM\SOFTWARE\Microsoft\.NETFramework\v2.0.50727";
const DOTNET2_WOW64: &str = r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v2.0.50727";

/// `wine reg query KEY /v NAME`: the REG_DWORD, or `None` when the value (or its key) is not
/// there.
fn reg_query(wine: &Wine, key: &str, name: &str) -> Option<u32> {
    let out = wine.run(&["reg", "query", key, "/v", name]);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(name) && l.contains("REG_DWORD"))
        .unwrap_or_else(|| panic!("reg query {key} /v {name}: {text}"));
    let hex = line.rsplit(char::is_whitespace).next().expect("data");
    Some(u32::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex DWORD"))
}

/// An agent config in the prefix: the facts file, the journal beside it, `allow_fix`.
fn fix_config(wine: &Wine, name: &str, allowed: bool) {
    std::fs::write(
        wine.path(name),
        format!(
            "broker_url = \"mqtt://127.0.0.1:1883\"\ndevice_id = \"mtr-wine\"\n\
             facts_file = \"facts.toml\"\njournal_dir = \"journal\"\nallow_fix = {allowed}\n"
        ),
    )
    .expect("config");
}

/// `roomready-agent.exe fix ARGS`: exit code, stdout, stderr.
fn fix(wine: &Wine, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["roomready-agent.exe", "fix"];
    all.extend_from_slice(args);
    let out = wine.run(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fix_writes_reads_back_and_undoes_the_registry_under_wine() {
    const TEST: &str = "fix_writes_reads_back_and_undoes_the_registry_under_wine";
    let Some(wine) = windows_agent(TEST) else {
        return;
    };
    fix_config(&wine, "agent.toml", true);
    fix_config(&wine, "denied.toml", false);
    // TLS 1.2 off for clients, WinHTTP's native view without it (its Wow6432Node view absent),
    // and .NET Framework 4.5.1 without the strong-crypto switches.
    wine.reg_add(SCHANNEL_CLIENT, "Enabled", 0);
    wine.reg_add(WINHTTP, "DefaultSecureProtocols", 0xA0);
    wine.reg_add(NDP4, "Release", 378_675);
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state).len(), 3, "{state}");
    let before = |wine: &Wine| {
        assert_eq!(reg_query(wine, SCHANNEL_CLIENT, "Enabled"), Some(0));
        assert_eq!(
            reg_query(wine, WINHTTP, "DefaultSecureProtocols"),
            Some(0xA0)
        );
        assert_eq!(
            reg_query(wine, WINHTTP_WOW64, "DefaultSecureProtocols"),
            None
        );
        for key in [DOTNET4, DOTNET4_WOW64, DOTNET2, DOTNET2_WOW64] {
            assert_eq!(reg_query(wine, key, "SchUseStrongCrypto"), None, "{key}");
            assert_eq!(
                reg_query(wine, key, "SystemDefaultTlsVersions"),
                None,
                "{key}"
            );
        }
    };
    before(&wine);

    // The plan: exactly these values, read-only, with or without allow_fix.
    let (code, out, err) = fix(&wine, &["--config", "denied.toml", "--plan", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let digest = plan["digest"].as_str().expect("digest").to_owned();
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1 + 2 + 8, "{plan}");
    let wow64 = changes
        .iter()
        .find(|c| c["value"] == "DefaultSecureProtocols" && c["view"] == "wow64")
        .expect("the Wow6432Node view");
    assert_eq!(wow64["old"], serde_json::Value::Null);
    assert_eq!(wow64["new"], 0xA80);
    before(&wine);

    // Not allowed: refused, nothing written.
    let (code, _, err) = fix(&wine, &["--config", "denied.toml", "--apply"]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("allow_fix = true") && err.contains("denied.toml"),
        "{err}"
    );
    before(&wine);

    // Apply exactly that plan: written, read back by reg, and by the next check.
    let (code, out, err) = fix(
        &wine,
        &["--config", "agent.toml", "--apply", "--digest", &digest],
    );
    assert_eq!(code, 79, "restart needed: {out}\n{err}");
    assert!(out.contains("restart needed"), "{out}");
    assert!(wine.path("journal").join("fix-backup.json").is_file());
    assert_eq!(reg_query(&wine, SCHANNEL_CLIENT, "Enabled"), Some(1));
    assert_eq!(
        reg_query(&wine, WINHTTP, "DefaultSecureProtocols"),
        Some(0x8A0)
    );
    assert_eq!(
        reg_query(&wine, WINHTTP_WOW64, "DefaultSecureProtocols"),
        Some(0xA80)
    );
    for key in [DOTNET4, DOTNET4_WOW64, DOTNET2, DOTNET2_WOW64] {
        assert_eq!(
            reg_query(&wine, key, "SchUseStrongCrypto"),
            Some(1),
            "{key}"
        );
        assert_eq!(
            reg_query(&wine, key, "SystemDefaultTlsVersions"),
            Some(1),
            "{key}"
        );
    }
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    let (code, out, _) = fix(&wine, &["--config", "agent.toml", "--apply"]);
    assert_eq!(code, 0, "nothing left to change: {out}");

    // Undo: the old values back, the absent ones deleted, the backup gone.
    let (code, out, err) = fix(&wine, &["--config", "agent.toml", "--undo"]);
    assert_eq!(code, 79, "{out}\n{err}");
    before(&wine);
    assert!(!wine.path("journal").join("fix-backup.json").exists());
    let (_, state) = check(&wine);
    assert_eq!(registry_codes(&state).len(), 3, "{state}");
    let (code, _, err) = fix(&wine, &["--config", "agent.toml", "--undo"]);
    assert_eq!(code, 66, "nothing to undo: {err}");
}
