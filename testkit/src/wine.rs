//! Windows programs under wine, for the `cfg(windows)` code paths: cross-building a package for
//! x86_64-pc-windows-gnu (mingw-w64), a fresh `WINEPREFIX` with the .exe in it, and `wine reg`
//! to write the registry the program reads.
//!
//! Wine 8 lacks `bcryptprimitives.dll!ProcessPrng`, which Rust's std imports, so a ten-line
//! shim DLL (built here with mingw, forwarding to advapi32's `RtlGenRandom`) sits next to the
//! .exe. [`Wine::ready`] skips with a reason when wine, the mingw compiler or the Rust target is
//! missing, unless `ROOMREADY_REQUIRE_PEERS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};

use crate::peers::{find_program, missing_peer, need_program};

/// The Windows target the programs are cross-built for.
pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// The C compiler the target's build scripts (ring) and the shim need.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

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

/// What to cross-build, and where: a package's binary, built with `--target-dir target_dir`
/// (a nested cargo on the test's own target directory would wait for the lock `cargo test`
/// holds; pass `CARGO_TARGET_TMPDIR/...`) from `manifest_dir`.
#[derive(Debug, Clone)]
pub struct WindowsBuild<'a> {
    pub package: &'a str,
    pub bin: &'a str,
    pub target_dir: &'a Path,
    pub manifest_dir: &'a Path,
}

/// wine's loader: `wine` on PATH, or Debian's wine64 package's `/usr/lib/wine/wine64`.
pub fn loader() -> Option<PathBuf> {
    find_program("wine")
        .or_else(|| find_program("wine64"))
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.is_file()))
}

/// Cross-builds `build` once per process (later calls reuse the .exe); `None` when the Rust
/// target is not installed (skipped or failed as [`missing_peer`] decides).
pub fn cross_build(test: &str, build: &WindowsBuild<'_>) -> Option<PathBuf> {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let key = format!("{}/{}", build.package, build.bin);
    if let Some(exe) = built.get(&key) {
        return Some(exe.clone());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "-p",
            build.package,
            "--bin",
            build.bin,
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(build.target_dir)
        .current_dir(build.manifest_dir)
        .output()
        .expect("run cargo");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let missing_target = stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`");
        assert!(missing_target, "the Windows build failed:\n{stderr}");
        missing_peer(
            test,
            &format!("the Rust target {TARGET} is not installed (rustup target add {TARGET})"),
        );
        return None;
    }
    let exe = build
        .target_dir
        .join(TARGET)
        .join("debug")
        .join(format!("{}.exe", build.bin));
    built.insert(key, exe.clone());
    Some(exe)
}

/// A fresh wine prefix in a temporary directory, with a program and the shim DLL beside it;
/// its wineserver is stopped on drop.
pub struct Wine {
    loader: PathBuf,
    dir: tempfile::TempDir,
}

impl Wine {
    /// wine, the mingw compiler and `build` cross-built, in a fresh prefix; `None` (skipped
    /// with the reason printed, or failed under `ROOMREADY_REQUIRE_PEERS=1`) when one is missing.
    pub fn ready(test: &str, build: &WindowsBuild<'_>) -> Option<Wine> {
        if !need_program(test, MINGW_GCC) {
            return None;
        }
        let Some(loader) = loader() else {
            missing_peer(test, "wine not found (Debian: apt-get install wine64)");
            return None;
        };
        let exe = cross_build(test, build)?;
        Some(Wine::new(loader, &exe))
    }

    /// A prefix booted with `exe` copied into its directory under its own file name.
    pub fn new(loader: PathBuf, exe: &Path) -> Wine {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = exe.file_name().expect("the program has a file name");
        std::fs::copy(exe, dir.path().join(name)).expect("copy the program");
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
        let wine = Wine { loader, dir };
        let booted = wine.run(&["wineboot", "-i"]);
        assert!(booted.status.success(), "wineboot: {booted:?}");
        // Let the boot's wineserver (and its service manager) end, so the next command starts
        // from the prefix as written: a service created while the boot's services.exe still
        // runs can be lost.
        let _ = wine.server(&["-w"]);
        wine
    }

    /// `name` in the prefix's directory (the programs' working directory).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `wine ARGS` in the prefix's directory.
    pub fn run(&self, args: &[&str]) -> Output {
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

    /// `wine reg add KEY /v NAME /t REG_DWORD /d VALUE /f`.
    pub fn reg_add(&self, key: &str, name: &str, value: u32) {
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

    /// `wine reg delete KEY /v NAME /f`.
    pub fn reg_delete(&self, key: &str, name: &str) {
        let out = self.run(&["reg", "delete", key, "/v", name, "/f"]);
        assert!(out.status.success(), "reg delete {key}\\{name}: {out:?}");
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
