//! The Windows build on a Windows API layer: the agent cross-built for x86_64-pc-windows-gnu
//! (mingw-w64) runs under wine in a fresh `WINEPREFIX`, reads the registry values this test
//! writes with `wine reg add` through the native registry API (`cfg(windows)` facts), and its
//! `check --json` findings reflect exactly what was written.
//!
//! A second test installs the agent as a Windows service under wine's service manager, starts
//! it (it connects to a broker and reports), stops it (it publishes `offline`, reason
//! `shutdown`), and finds its log file under ProgramData.
//!
//! Wine 8 lacks `bcryptprimitives.dll!ProcessPrng`, which Rust's std imports, so a ten-line
//! shim DLL (built here with mingw, forwarding to advapi32's `RtlGenRandom`) sits next to the
//! .exe. Needs wine (Debian: wine64), the mingw-w64 C compiler and the Rust target; skips with a
//! reason when one is missing, unless `ROOMREADY_REQUIRE_PEERS=1`.
#![cfg(unix)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{find_program, need_program, require_peers};

const TARGET: &str = "x86_64-pc-windows-gnu";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

const SCHANNEL_CLIENT: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";
const WINHTTP: &str = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";
const NDP4: &str = r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full";
const DOTNET4: &str = r"HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319";
const DOTNET4_WOW64: &str = r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319";

const EVENT_SOURCE: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\roomready-agent";

const SHIM: &str = r#"#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
"#;

/// wine's loader: `wine` on PATH, or Debian's wine64 package's `/usr/lib/wine/wine64`.
fn wine() -> Option<PathBuf> {
    find_program("wine")
        .or_else(|| find_program("wine64"))
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
}

fn skip(test: &str, why: &str) -> bool {
    assert!(
        !require_peers(),
        "{test}: {why} (ROOMREADY_REQUIRE_PEERS=1)"
    );
    eprintln!("skipping {test}: {why}");
    false
}

/// Cross-builds the agent into its own target directory (a nested cargo on the test's own
/// target directory would wait for the lock `cargo test` holds), once for both tests.
fn windows_agent(test: &str) -> Option<PathBuf> {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(exe) = built.as_ref() {
        return Some(exe.clone());
    }
    let exe = build_windows_agent(test)?;
    *built = Some(exe.clone());
    Some(exe)
}

fn build_windows_agent(test: &str) -> Option<PathBuf> {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wine-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "-p",
            "roomready-agent",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let missing_target = stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`");
        assert!(missing_target, "the Windows build failed:\n{stderr}");
        skip(
            test,
            &format!("the Rust target {TARGET} is not installed (rustup target add {TARGET})"),
        );
        return None;
    }
    Some(
        target_dir
            .join(TARGET)
            .join("debug")
            .join("roomready-agent.exe"),
    )
}

/// A fresh wine prefix with the agent and the shim DLL beside it.
struct Wine {
    loader: PathBuf,
    dir: tempfile::TempDir,
}

impl Wine {
    fn new(loader: PathBuf, exe: &Path) -> Wine {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(exe, dir.path().join("roomready-agent.exe")).expect("copy the agent");
        let shim = dir.path().join("shim.c");
        std::fs::write(&shim, SHIM).expect("shim source");
        let built = Command::new(MINGW_GCC)
            .args(["-shared", "-O2", "-o"])
            .arg(dir.path().join("bcryptprimitives.dll"))
            .arg(&shim)
            .arg("-ladvapi32")
            .output()
            .expect("run mingw gcc");
        assert!(
            built.status.success(),
            "shim DLL: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::write(
            dir.path().join("facts.toml"),
            "kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\n",
        )
        .expect("facts file");
        let wine = Wine { loader, dir };
        let booted = wine.run(&["wineboot", "-i"]);
        assert!(booted.status.success(), "wineboot: {booted:?}");
        // Let the boot's wineserver (and its service manager) end, so the next command starts
        // from the prefix as written: a service created while the boot's services.exe still
        // runs can be lost.
        let _ = wine.server(&["-w"]);
        wine
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.loader)
            .args(args)
            .current_dir(self.dir.path())
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .env("WINEDEBUG", "-all")
            // The shim instead of wine's own bcryptprimitives; no Mono or Gecko installers.
            .env("WINEDLLOVERRIDES", "bcryptprimitives=n,b;mscoree,mshtml=")
            .output()
            .expect("run wine")
    }

    fn reg_add(&self, key: &str, name: &str, value: u32) {
        let data = value.to_string();
        let out = self.run(&[
            "reg",
            "add",
            key,
            "/v",
            name,
            "/t",
            "REG_DWORD",
            "/d",
            &data,
            "/f",
        ]);
        assert!(out.status.success(), "reg add {key}\\{name}: {out:?}");
    }

    fn reg_delete(&self, key: &str, name: &str) {
        let out = self.run(&["reg", "delete", key, "/v", name, "/f"]);
        assert!(out.status.success(), "reg delete {key}\\{name}: {out:?}");
    }

    /// `check --json --facts facts.toml`: the exit code and the finding codes with evidence.
    fn check(&self) -> (i32, serde_json::Value) {
        let out = self.run(&[
            "roomready-agent.exe",
            "check",
            "--json",
            "--facts",
            "facts.toml",
        ]);
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not a JSON state ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), state)
    }
}

impl Wine {
    /// Runs this prefix's wineserver with `args` (`-w`: wait for it to end; `-k`: kill it).
    fn server(&self, args: &[&str]) -> std::io::Result<Output> {
        let beside = self
            .loader
            .with_file_name(if self.loader.ends_with("wine64") {
                "wineserver64"
            } else {
                "wineserver"
            });
        let server = if beside.is_file() {
            beside
        } else {
            PathBuf::from("wineserver")
        };
        Command::new(server)
            .args(args)
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .output()
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        // Stop this prefix's wineserver before its directory goes.
        let _ = self.server(&["-k"]);
    }
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

/// wine, the mingw compiler and the Windows build, or `None` (skipped, with the reason printed).
fn wine_and_agent(test: &str) -> Option<Wine> {
    if !need_program(test, MINGW_GCC) {
        return None;
    }
    let Some(loader) = wine() else {
        skip(test, "wine not found (Debian: apt-get install wine64)");
        return None;
    };
    let exe = windows_agent(test)?;
    Some(Wine::new(loader, &exe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_under_wine_and_stops_cleanly() {
    use roomready_protocol::{DeviceId, Presence, StatusReason};
    use roomready_simulator::broker::EmbeddedBroker;
    use roomready_tests::controller::Controller;
    const TEST: &str = "the_service_runs_under_wine_and_stops_cleanly";
    let wait = std::time::Duration::from_secs(60);
    let Some(wine) = tokio::task::block_in_place(|| wine_and_agent(TEST)) else {
        return;
    };
    let broker = EmbeddedBroker::start().await.expect("broker");
    std::fs::write(
        wine.path("agent.toml"),
        format!(
            "broker_url = \"mqtt://127.0.0.1:{}\"\ndevice_id = \"mtr-wine\"\nfacts_file = \"facts.toml\"\nendpoints = []\n",
            broker.url().port
        ),
    )
    .expect("config");
    let device = DeviceId::new("mtr-wine").expect("id");
    let mut controller = Controller::connect(&broker.url(), &device, "ctl-wine", false);
    let run = |args: &[&str]| tokio::task::block_in_place(|| wine.run(args));

    let installed = run(&[
        "roomready-agent.exe",
        "service",
        "install",
        "--config",
        "agent.toml",
    ]);
    assert!(installed.status.success(), "install: {installed:?}");
    // What the service manager recorded (wine's `sc` has no `qc`; the registry has it all).
    let query = run(&[
        "reg",
        "query",
        r"HKLM\System\CurrentControlSet\Services\roomready-agent",
    ]);
    let config = String::from_utf8_lossy(&query.stdout);
    assert!(
        config.contains("Start    REG_DWORD    0x2"),
        "automatic start: {config}"
    );
    assert!(
        config.contains(r"roomready-agent.exe service run --config Z:\"),
        "the command line, with the config made absolute: {config}"
    );
    assert!(
        config.contains("ObjectName    REG_SZ    LocalSystem"),
        "{config}"
    );
    // Its errors go to the Application event log too: the source is registered.
    let source = run(&["reg", "query", EVENT_SOURCE]);
    let source_text = String::from_utf8_lossy(&source.stdout);
    assert!(
        source_text.contains(r"EventCreate.exe") && source_text.contains("TypesSupported"),
        "the event source after install: {source:?}\ninstall: {installed:?}"
    );

    let started = run(&["roomready-agent.exe", "service", "start"]);
    assert!(started.status.success(), "start: {started:?}");
    let seen = controller
        .wait_until(wait, |seen| {
            !seen.states.is_empty() && seen.statuses.iter().any(|s| s.status == Presence::Online)
        })
        .await
        .unwrap_or_else(|seen| panic!("the service did not report: {seen:?}"));
    assert_eq!(
        seen.states[0].facts.app_version.as_deref(),
        Some("5.2.115.0")
    );

    let stopped = run(&["roomready-agent.exe", "service", "stop"]);
    assert!(stopped.status.success(), "stop: {stopped:?}");
    controller
        .wait_until(wait, |seen| {
            seen.statuses
                .iter()
                .any(|s| s.status == Presence::Offline && s.reason == Some(StatusReason::Shutdown))
        })
        .await
        .unwrap_or_else(|seen| panic!("no clean offline: {:?}", seen.statuses));

    // Its log, rotated daily, under %ProgramData%\roomready\logs (C:\users\Public in wine).
    let logs: Vec<PathBuf> = ["ProgramData", "users/Public"]
        .iter()
        .map(|base| {
            wine.path("prefix/drive_c")
                .join(base)
                .join("roomready/logs")
        })
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    let log: String = logs
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    assert!(log.contains("connected to the broker"), "{logs:?}: {log}");

    let removed = run(&["roomready-agent.exe", "service", "uninstall"]);
    assert!(removed.status.success(), "uninstall: {removed:?}");
    let gone = run(&["sc", "query", "roomready-agent"]);
    assert!(!gone.status.success(), "still there: {gone:?}");
    let source = run(&["reg", "query", EVENT_SOURCE]);
    assert!(
        !source.status.success(),
        "the event source is still registered: {source:?}"
    );
}

#[test]
fn the_windows_agent_reads_what_wine_reg_wrote() {
    const TEST: &str = "the_windows_agent_reads_what_wine_reg_wrote";
    let Some(wine) = wine_and_agent(TEST) else {
        return;
    };

    // A fresh prefix: nothing written, so no registry finding.
    let (_, state) = wine.check();
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    assert_eq!(state["facts"]["kind"], "teams_rooms_windows");
    assert_ne!(state["verdict"], "not_ready", "{state}");

    // SCHANNEL: the TLS 1.2 client switched off.
    wine.reg_add(SCHANNEL_CLIENT, "Enabled", 0);
    let (code, state) = wine.check();
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
    let (_, state) = wine.check();
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    wine.reg_add(WINHTTP, "DefaultSecureProtocols", 0xA0);
    let (_, state) = wine.check();
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
    let (_, state) = wine.check();
    assert_eq!(
        registry_codes(&state),
        BTreeSet::from(["DOTNET_TLS12_NOT_DEFAULT".to_owned()]),
        "{state}"
    );
    assert_eq!(state["verdict"], "at_risk");
    wine.reg_add(DOTNET4, "SchUseStrongCrypto", 1);
    wine.reg_add(DOTNET4_WOW64, "SchUseStrongCrypto", 1);
    let (_, state) = wine.check();
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
    // .NET 4.8 (Release 528040) needs no switch at all.
    wine.reg_delete(DOTNET4, "SchUseStrongCrypto");
    wine.reg_delete(DOTNET4_WOW64, "SchUseStrongCrypto");
    wine.reg_add(NDP4, "Release", 528_040);
    let (_, state) = wine.check();
    assert_eq!(registry_codes(&state), BTreeSet::new(), "{state}");
}
