//! The Windows build on a Windows API layer: the agent cross-built for x86_64-pc-windows-gnu
//! (mingw-w64) runs under wine in a fresh `WINEPREFIX`, reads the registry values this test
//! writes with `wine reg add` through the native registry API (`cfg(windows)` facts), and its
//! `check --json` findings reflect exactly what was written.
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
/// target directory would wait for the lock `cargo test` holds).
fn windows_agent(test: &str) -> Option<PathBuf> {
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
        wine
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

impl Drop for Wine {
    fn drop(&mut self) {
        // Stop this prefix's wineserver before its directory goes.
        let server = self
            .loader
            .with_file_name(if self.loader.ends_with("wine64") {
                "wineserver64"
            } else {
                "wineserver"
            });
        let server = if server.is_file() {
            server
        } else {
            PathBuf::from("wineserver")
        };
        let _ = Command::new(server)
            .arg("-k")
            .env("WINEPREFIX", self.dir.path().join("prefix"))
            .output();
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

#[test]
fn the_windows_agent_reads_what_wine_reg_wrote() {
    const TEST: &str = "the_windows_agent_reads_what_wine_reg_wrote";
    if !need_program(TEST, MINGW_GCC) {
        return;
    }
    let Some(loader) = wine() else {
        skip(TEST, "wine not found (Debian: apt-get install wine64)");
        return;
    };
    let Some(exe) = windows_agent(TEST) else {
        return;
    };
    let wine = Wine::new(loader, &exe);

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
