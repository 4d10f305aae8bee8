//! The registry values the fix may change, each named once ([`Target`]): where it lives (key,
//! value name and view, from the same builders [`TlsSettings::read`] reads them with), where
//! its fact sits in [`TlsSettings`], which finding it answers, and what it must become for that
//! finding to go ([`Target::repair`]).

use roomready_protocol::{TlsVersion, codes};

use crate::facts::Fact;
use crate::facts::tls::{DotNet, Side, TlsSettings, View, names, schannel_key, winhttp_bits};

/// One value the fix may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// SCHANNEL TLS 1.2 client `Enabled`: 0 turns TLS 1.2 off.
    SchannelEnabled,
    /// SCHANNEL TLS 1.2 client `DisabledByDefault`: non-zero keeps TLS 1.2 for applications
    /// that ask for it.
    SchannelDisabledByDefault,
    /// WinHTTP `DefaultSecureProtocols` in a view (KB3140245).
    WinHttp(View),
    /// .NET Framework `SchUseStrongCrypto` of a line in a view.
    StrongCrypto(DotNet, View),
    /// .NET Framework `SystemDefaultTlsVersions` of a line in a view.
    SystemDefaultTls(DotNet, View),
}

/// The finding codes the fix repairs, in the order of their rules.
pub(crate) const REPAIRED: [&str; 4] = [
    codes::SCHANNEL_TLS12_CLIENT_DISABLED,
    codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT,
    codes::WINHTTP_TLS12_NOT_DEFAULT,
    codes::DOTNET_TLS12_NOT_DEFAULT,
];

/// The .NET Framework lines whose switches the fix sets (Microsoft: both, in both views).
const DOTNET_LINES: [DotNet; 2] = [DotNet::V4, DotNet::V2];

impl Target {
    /// Every value the fix may change: what a backup may name.
    pub(crate) fn all() -> Vec<Target> {
        REPAIRED
            .iter()
            .flat_map(|code| Target::for_finding(code))
            .collect()
    }

    /// The values finding `code` is about (none for a code the fix does not repair).
    pub(crate) fn for_finding(code: &str) -> Vec<Target> {
        match code {
            codes::SCHANNEL_TLS12_CLIENT_DISABLED => vec![Target::SchannelEnabled],
            codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT => {
                vec![Target::SchannelDisabledByDefault]
            }
            codes::WINHTTP_TLS12_NOT_DEFAULT => View::ALL.map(Target::WinHttp).to_vec(),
            codes::DOTNET_TLS12_NOT_DEFAULT => DOTNET_LINES
                .iter()
                .flat_map(|&line| {
                    View::ALL.into_iter().flat_map(move |view| {
                        [
                            Target::StrongCrypto(line, view),
                            Target::SystemDefaultTls(line, view),
                        ]
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The key, as the rules read it: `HKLM\SYSTEM\...\TLS 1.2\Client`.
    pub(crate) fn key(self) -> String {
        match self {
            Target::SchannelEnabled | Target::SchannelDisabledByDefault => {
                schannel_key(TlsVersion::Tls12, Side::Client)
            }
            Target::WinHttp(view) => view.winhttp_key().to_owned(),
            Target::StrongCrypto(line, view) | Target::SystemDefaultTls(line, view) => {
                line.key_in(view)
            }
        }
    }

    /// The value's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::SchannelEnabled => names::ENABLED,
            Target::SchannelDisabledByDefault => names::DISABLED_BY_DEFAULT,
            Target::WinHttp(_) => names::DEFAULT_SECURE_PROTOCOLS,
            Target::StrongCrypto(..) => names::SCH_USE_STRONG_CRYPTO,
            Target::SystemDefaultTls(..) => names::SYSTEM_DEFAULT_TLS_VERSIONS,
        }
    }

    /// The registry view: SCHANNEL's key is not redirected, so it has only the native one.
    pub(crate) fn view(self) -> View {
        match self {
            Target::SchannelEnabled | Target::SchannelDisabledByDefault => View::Native,
            Target::WinHttp(view)
            | Target::StrongCrypto(_, view)
            | Target::SystemDefaultTls(_, view) => view,
        }
    }

    /// `HKLM\...\Key\Name`.
    pub(crate) fn path(self) -> String {
        format!("{}\\{}", self.key(), self.name())
    }

    /// The target a stored `key`, value `name` and `view` name (case-insensitively, as the
    /// registry compares), if the fix may change it.
    pub(crate) fn find(key: &str, name: &str, view: &str) -> Option<Target> {
        Target::all().into_iter().find(|t| {
            t.key().eq_ignore_ascii_case(key.trim())
                && t.name().eq_ignore_ascii_case(name.trim())
                && t.view().name() == view
        })
    }

    /// Its fact in `settings`.
    pub(crate) fn fact(self, settings: &TlsSettings) -> Option<&Fact<u32>> {
        match self {
            Target::SchannelEnabled => settings
                .schannel(TlsVersion::Tls12, Side::Client)
                .map(|s| &s.enabled),
            Target::SchannelDisabledByDefault => settings
                .schannel(TlsVersion::Tls12, Side::Client)
                .map(|s| &s.disabled_by_default),
            Target::WinHttp(view) => settings
                .winhttp
                .iter()
                .find(|w| w.view == view)
                .map(|w| &w.default_secure_protocols),
            Target::StrongCrypto(line, view) => settings
                .dotnet
                .iter()
                .find(|d| d.framework == line && d.view == view)
                .map(|d| &d.sch_use_strong_crypto),
            Target::SystemDefaultTls(line, view) => settings
                .dotnet
                .iter()
                .find(|d| d.framework == line && d.view == view)
                .map(|d| &d.system_default_tls_versions),
        }
    }

    /// Its fact in `settings`, to change.
    pub(crate) fn fact_mut(self, settings: &mut TlsSettings) -> Option<&mut Fact<u32>> {
        match self {
            Target::SchannelEnabled | Target::SchannelDisabledByDefault => {
                let entry = settings
                    .schannel
                    .iter_mut()
                    .find(|s| s.version == TlsVersion::Tls12 && s.side == Side::Client)?;
                Some(if self == Target::SchannelEnabled {
                    &mut entry.enabled
                } else {
                    &mut entry.disabled_by_default
                })
            }
            Target::WinHttp(view) => settings
                .winhttp
                .iter_mut()
                .find(|w| w.view == view)
                .map(|w| &mut w.default_secure_protocols),
            Target::StrongCrypto(line, view) | Target::SystemDefaultTls(line, view) => {
                let entry = settings
                    .dotnet
                    .iter_mut()
                    .find(|d| d.framework == line && d.view == view)?;
                Some(if matches!(self, Target::StrongCrypto(..)) {
                    &mut entry.sch_use_strong_crypto
                } else {
                    &mut entry.system_default_tls_versions
                })
            }
        }
    }

    /// What the value must become so that its finding goes, given what it is now (`old`:
    /// `None` when absent); `None` when it is right already. Microsoft's values:
    ///
    /// - SCHANNEL `Enabled` 0 → 1; `DisabledByDefault` set or absent (where the OS's default
    ///   is "off") → 0 (tls-registry-settings);
    /// - WinHTTP `DefaultSecureProtocols` without 0x800 → the same bits with 0x800 (TLS 1.2
    ///   added, nothing removed); absent → 0xA80, TLS 1.0 + 1.1 + 1.2 (KB3140245's value);
    /// - .NET `SchUseStrongCrypto`, `SystemDefaultTlsVersions` anything but 1 → 1.
    pub(crate) fn repair(self, old: Option<u32>) -> Option<u32> {
        let want = match (self, old) {
            (Target::SchannelEnabled, Some(0)) => 1,
            (Target::SchannelEnabled, _) => return None,
            (Target::SchannelDisabledByDefault, Some(0)) => return None,
            (Target::SchannelDisabledByDefault, _) => 0,
            (Target::WinHttp(_), Some(bits)) if bits & winhttp_bits::TLS12 != 0 => return None,
            (Target::WinHttp(_), Some(bits)) => bits | winhttp_bits::TLS12,
            (Target::WinHttp(_), None) => {
                winhttp_bits::TLS10 | winhttp_bits::TLS11 | winhttp_bits::TLS12
            }
            (Target::StrongCrypto(..) | Target::SystemDefaultTls(..), Some(1)) => return None,
            (Target::StrongCrypto(..) | Target::SystemDefaultTls(..), _) => 1,
        };
        Some(want)
    }

    /// What takes the new value into use: SCHANNEL reads its settings when Windows starts;
    /// WinHTTP and the .NET Framework when a program starts (on a Teams Rooms device: the
    /// device's restart).
    pub(crate) fn restart(self) -> &'static str {
        match self {
            Target::SchannelEnabled | Target::SchannelDisabledByDefault => {
                "restart Windows (SCHANNEL reads its settings at start)"
            }
            Target::WinHttp(_) | Target::StrongCrypto(..) | Target::SystemDefaultTls(..) => {
                "restart the programs that use WinHTTP and the .NET Framework (on a Teams Rooms \
                 device or Surface Hub: restart the device)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::tls::{SCHANNEL_PROTOCOLS, WINHTTP_WOW64};

    #[test]
    fn every_target_is_a_value_the_rules_read() {
        let mut read = Vec::new();
        let settings = TlsSettings::read(|key, name| {
            read.push(format!("{key}\\{name}"));
            Fact::Known {
                value: 0,
                source: crate::facts::Source::new(format!("{key}\\{name}")),
            }
        });
        let all = Target::all();
        assert_eq!(all.len(), 12, "{all:?}");
        for target in all {
            assert!(read.contains(&target.path()), "{target:?} is not read");
            let fact = target.fact(&settings).expect("its fact");
            assert_eq!(fact.source().to_string(), target.path(), "{target:?}");
            assert_eq!(
                Target::find(
                    &target.key().to_lowercase(),
                    target.name(),
                    target.view().name()
                ),
                Some(target)
            );
        }
        assert_eq!(
            Target::SchannelEnabled.path(),
            format!("{SCHANNEL_PROTOCOLS}\\TLS 1.2\\Client\\Enabled")
        );
        assert_eq!(
            Target::WinHttp(View::Wow64).path(),
            format!("{WINHTTP_WOW64}\\DefaultSecureProtocols")
        );
        assert_eq!(
            Target::find(&Target::SchannelEnabled.key(), "Enabled", "wow64"),
            None
        );
        assert_eq!(
            Target::find(r"HKLM\SOFTWARE\Other", "Enabled", "native"),
            None
        );
    }

    #[test]
    fn repairs_are_microsofts_values_and_only_where_wrong() {
        assert_eq!(Target::SchannelEnabled.repair(Some(0)), Some(1));
        assert_eq!(Target::SchannelEnabled.repair(Some(1)), None);
        assert_eq!(Target::SchannelEnabled.repair(None), None);
        assert_eq!(Target::SchannelDisabledByDefault.repair(Some(1)), Some(0));
        assert_eq!(Target::SchannelDisabledByDefault.repair(None), Some(0));
        assert_eq!(Target::SchannelDisabledByDefault.repair(Some(0)), None);
        let winhttp = Target::WinHttp(View::Native);
        assert_eq!(winhttp.repair(None), Some(0xA80));
        assert_eq!(
            winhttp.repair(Some(0xA0)),
            Some(0x8A0),
            "SSL3 + TLS 1.0 kept"
        );
        assert_eq!(winhttp.repair(Some(0x200)), Some(0xA00));
        assert_eq!(winhttp.repair(Some(0x800)), None);
        let crypto = Target::StrongCrypto(DotNet::V2, View::Wow64);
        assert_eq!(crypto.repair(None), Some(1));
        assert_eq!(crypto.repair(Some(0)), Some(1));
        assert_eq!(crypto.repair(Some(1)), None);
    }
}
