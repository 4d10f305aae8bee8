//! The Windows TLS settings the rules read: SCHANNEL protocol switches, WinHTTP's default
//! secure protocols and the .NET Framework's TLS switches, each value a [`Fact`] with the
//! registry path it came from.
//!
//! *Absent* means the value is not in the registry, so the OS or framework default applies;
//! *unreadable* means reading it failed (wrong type, access denied, no registry source).

use roomready_protocol::TlsVersion;

use super::Fact;

/// The SCHANNEL key, written once for the constants below.
macro_rules! schannel_root {
    () => {
        r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL"
    };
}

/// The SCHANNEL key: `EventLogging` lives here, the protocol switches below.
pub(crate) const SCHANNEL: &str = schannel_root!();
/// `EventLogging` bits (KB260729): 0x1 errors (Windows' default), 0x2 warnings, 0x4
/// informational and success events (event 36880 needs it).
pub(crate) mod event_logging_bits {
    pub(crate) const SUCCESS: u32 = 0x4;
}

/// `HKLM\...\SCHANNEL\Protocols`; a version's switches are under `{this}\TLS 1.2\Client` etc.
pub(crate) const SCHANNEL_PROTOCOLS: &str = concat!(schannel_root!(), r"\Protocols");
/// WinHTTP's `DefaultSecureProtocols` lives under this key (KB3140245).
pub(crate) const WINHTTP: &str =
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";
/// The same for 32-bit programs on 64-bit Windows.
pub(crate) const WINHTTP_WOW64: &str =
    r"HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp";
/// .NET Framework settings root, 64-bit view.
pub(crate) const DOTNET: &str = r"HKLM\SOFTWARE\Microsoft\.NETFramework";
/// .NET Framework settings root, 32-bit view.
pub(crate) const DOTNET_WOW64: &str = r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework";
/// `Release` of the installed .NET Framework 4.x.
pub(crate) const DOTNET4_RELEASE_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full";

/// WinHTTP `DefaultSecureProtocols` bits (SSL 2 0x8, SSL 3 0x20; the rules read TLS 1.2's, the
/// fix writes TLS 1.0-1.2 where the value is absent).
pub(crate) mod winhttp_bits {
    pub(crate) const TLS10: u32 = 0x80;
    pub(crate) const TLS11: u32 = 0x200;
    pub(crate) const TLS12: u32 = 0x800;
}

/// The names of the values [`TlsSettings::read`] reads, each under its key.
pub(crate) mod names {
    /// SCHANNEL, per version and side.
    pub(crate) const ENABLED: &str = "Enabled";
    pub(crate) const DISABLED_BY_DEFAULT: &str = "DisabledByDefault";
    /// WinHTTP, per view.
    pub(crate) const DEFAULT_SECURE_PROTOCOLS: &str = "DefaultSecureProtocols";
    /// .NET Framework, per line and view.
    pub(crate) const SCH_USE_STRONG_CRYPTO: &str = "SchUseStrongCrypto";
    pub(crate) const SYSTEM_DEFAULT_TLS_VERSIONS: &str = "SystemDefaultTlsVersions";
    /// SCHANNEL's own key: which events it logs.
    pub(crate) const EVENT_LOGGING: &str = "EventLogging";
}

/// The SCHANNEL key of `version` on `side`: `{SCHANNEL_PROTOCOLS}\TLS 1.2\Client`.
pub(crate) fn schannel_key(version: TlsVersion, side: Side) -> String {
    format!("{SCHANNEL_PROTOCOLS}\\{}\\{}", version.name(), side.name())
}

/// The lowest .NET Framework 4.x `Release` value of 4.6.2 (394802 on Windows 10 1607; 394806 on
/// other systems): from 4.6.2 on, .NET uses the OS's TLS 1.2 without extra switches.
pub(crate) const DOTNET_462_RELEASE: u32 = 394_802;

/// Which side of SCHANNEL a switch controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "Client",
            Side::Server => "Server",
        }
    }
}

/// Which registry view a value was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// The native (64-bit) view.
    Native,
    /// `Wow6432Node`, what 32-bit programs see.
    Wow64,
}

impl View {
    pub const ALL: [View; 2] = [View::Native, View::Wow64];

    /// `native` or `wow64`.
    pub const fn name(self) -> &'static str {
        match self {
            View::Native => "native",
            View::Wow64 => "wow64",
        }
    }

    /// WinHTTP's key in this view.
    pub(crate) const fn winhttp_key(self) -> &'static str {
        match self {
            View::Native => WINHTTP,
            View::Wow64 => WINHTTP_WOW64,
        }
    }

    /// The .NET Framework settings root in this view.
    pub(crate) const fn dotnet_root(self) -> &'static str {
        match self {
            View::Native => DOTNET,
            View::Wow64 => DOTNET_WOW64,
        }
    }
}

/// A .NET Framework line whose TLS switches are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DotNet {
    /// `v4.0.30319` (.NET Framework 4.x).
    V4,
    /// `v2.0.50727` (.NET Framework 2.0–3.5).
    V2,
}

impl DotNet {
    pub const fn key(self) -> &'static str {
        match self {
            DotNet::V4 => "v4.0.30319",
            DotNet::V2 => "v2.0.50727",
        }
    }

    /// This line's key in `view`: `{root}\\v4.0.30319`.
    pub(crate) fn key_in(self, view: View) -> String {
        format!("{}\\{}", view.dotnet_root(), self.key())
    }
}

/// SCHANNEL `Enabled` / `DisabledByDefault` of one version and side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schannel {
    pub version: TlsVersion,
    pub side: Side,
    pub enabled: Fact<u32>,
    pub disabled_by_default: Fact<u32>,
}

/// WinHTTP `DefaultSecureProtocols` in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinHttp {
    pub view: View,
    pub default_secure_protocols: Fact<u32>,
}

/// .NET `SchUseStrongCrypto` / `SystemDefaultTlsVersions` of one framework line and view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotNetCrypto {
    pub framework: DotNet,
    pub view: View,
    pub sch_use_strong_crypto: Fact<u32>,
    pub system_default_tls_versions: Fact<u32>,
}

/// Every TLS-related registry value the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// All four versions × client and server.
    pub schannel: Vec<Schannel>,
    /// Native and Wow6432Node views.
    pub winhttp: Vec<WinHttp>,
    /// v4 and v2, native and Wow6432Node.
    pub dotnet: Vec<DotNetCrypto>,
    /// .NET Framework 4.x `Release`.
    pub dotnet4_release: Fact<u32>,
    /// SCHANNEL `EventLogging`: which Schannel events are logged.
    pub event_logging: Fact<u32>,
}

impl TlsSettings {
    /// The SCHANNEL switches of `version` on `side`.
    pub fn schannel(&self, version: TlsVersion, side: Side) -> Option<&Schannel> {
        self.schannel
            .iter()
            .find(|s| s.version == version && s.side == side)
    }
}

impl TlsSettings {
    /// Reads every value through `dword(key path, value name)`, in a fixed order: SCHANNEL
    /// (TLS 1.0..1.3 × Client, Server), WinHTTP (native, Wow64), .NET (v4, v2 × native,
    /// Wow64), the .NET 4.x release, then SCHANNEL's `EventLogging`.
    pub fn read(mut dword: impl FnMut(&str, &str) -> Fact<u32>) -> TlsSettings {
        let mut schannel = Vec::with_capacity(8);
        for version in TlsVersion::ALL {
            for side in [Side::Client, Side::Server] {
                let key = schannel_key(version, side);
                schannel.push(Schannel {
                    version,
                    side,
                    enabled: dword(&key, names::ENABLED),
                    disabled_by_default: dword(&key, names::DISABLED_BY_DEFAULT),
                });
            }
        }
        let winhttp = View::ALL
            .iter()
            .map(|&view| WinHttp {
                view,
                default_secure_protocols: dword(
                    view.winhttp_key(),
                    names::DEFAULT_SECURE_PROTOCOLS,
                ),
            })
            .collect();
        let mut dotnet = Vec::with_capacity(4);
        for framework in [DotNet::V4, DotNet::V2] {
            for view in View::ALL {
                let key = framework.key_in(view);
                dotnet.push(DotNetCrypto {
                    framework,
                    view,
                    sch_use_strong_crypto: dword(&key, names::SCH_USE_STRONG_CRYPTO),
                    system_default_tls_versions: dword(&key, names::SYSTEM_DEFAULT_TLS_VERSIONS),
                });
            }
        }
        TlsSettings {
            schannel,
            winhttp,
            dotnet,
            dotnet4_release: dword(DOTNET4_RELEASE_KEY, "Release"),
            event_logging: dword(SCHANNEL, names::EVENT_LOGGING),
        }
    }
}
