//! Tests of the registry sources against the dumps in `agent/tests/fixtures/reg`.

use std::path::PathBuf;
use std::time::Instant;

use super::*;
use crate::facts::tls::*;
use roomready_protocol::TlsVersion;

const FIXTURES: [&str; 6] = [
    "schannel-tls12-client-disabled.txt",
    "winhttp-0xa80.txt",
    "dotnet.txt",
    "edge-cases.txt",
    "truncated.txt",
    "powershell-utf16le.txt",
];

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reg")
        .join(name)
}

fn fixture(name: &str) -> RegDump {
    match RegDump::load(&fixture_path(name)) {
        Ok(dump) => dump,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// A fact in one word: `0x1`, `absent` or `unreadable: reason`.
fn brief(fact: &Fact<u32>) -> String {
    match fact {
        Fact::Known { value, .. } => format!("{value:#x}"),
        Fact::Absent { .. } => "absent".to_owned(),
        Fact::Unreadable { reason, .. } => format!("unreadable: {reason}"),
    }
}

/// `enabled/disabled_by_default` of one SCHANNEL version and side.
fn schannel(settings: &TlsSettings, version: TlsVersion, side: Side) -> (String, String) {
    let s = settings
        .schannel(version, side)
        .unwrap_or_else(|| panic!("no {version} {side:?}"));
    (brief(&s.enabled), brief(&s.disabled_by_default))
}

fn pair(enabled: &str, disabled_by_default: &str) -> (String, String) {
    (enabled.to_owned(), disabled_by_default.to_owned())
}

fn winhttp(settings: &TlsSettings, view: View) -> String {
    let w = settings.winhttp.iter().find(|w| w.view == view);
    brief(&w.expect("winhttp view").default_secure_protocols)
}

fn dotnet(settings: &TlsSettings, framework: DotNet, view: View) -> (String, String) {
    let d = settings
        .dotnet
        .iter()
        .find(|d| d.framework == framework && d.view == view)
        .expect("dotnet entry");
    (
        brief(&d.sch_use_strong_crypto),
        brief(&d.system_default_tls_versions),
    )
}

fn not_dumped(key: &str) -> String {
    format!("unreadable: not in the dump: neither {key} nor a key above it was dumped")
}

#[test]
fn schannel_dump_reads_every_version_and_side() {
    let dump = fixture("schannel-tls12-client-disabled.txt");
    let settings = read_tls_settings(&dump);
    assert_eq!(settings.schannel.len(), 8);
    assert_eq!(
        schannel(&settings, TlsVersion::Tls12, Side::Client),
        pair("0x0", "0x1")
    );
    assert_eq!(
        schannel(&settings, TlsVersion::Tls10, Side::Server),
        pair("0x0", "0x1")
    );
    for (version, side) in [
        (TlsVersion::Tls10, Side::Client),
        (TlsVersion::Tls11, Side::Client),
        (TlsVersion::Tls11, Side::Server),
        (TlsVersion::Tls12, Side::Server),
        (TlsVersion::Tls13, Side::Client),
        (TlsVersion::Tls13, Side::Server),
    ] {
        assert_eq!(
            schannel(&settings, version, side),
            pair("absent", "absent"),
            "{version} {side:?}"
        );
    }
    // The exact fact, with its source.
    let file = fixture_path("schannel-tls12-client-disabled.txt");
    let client = settings
        .schannel(TlsVersion::Tls12, Side::Client)
        .expect("TLS 1.2 client");
    assert_eq!(
        client.enabled,
        Fact::Known {
            value: 0,
            source: Source::new(format!(
                r"registry dump {}: HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client\Enabled",
                file.display()
            )),
        }
    );
    // WinHTTP and .NET keys were not dumped: the dump cannot say they are absent.
    assert_eq!(winhttp(&settings, View::Native), not_dumped(WINHTTP));
    assert_eq!(winhttp(&settings, View::Wow64), not_dumped(WINHTTP_WOW64));
    let v4 = format!(r"{DOTNET}\v4.0.30319");
    assert_eq!(
        dotnet(&settings, DotNet::V4, View::Native),
        pair(&not_dumped(&v4), &not_dumped(&v4))
    );
    assert_eq!(
        brief(&settings.dotnet4_release),
        not_dumped(DOTNET4_RELEASE_KEY)
    );
}

#[test]
fn winhttp_dump_reads_both_views() {
    let settings = read_tls_settings(&fixture("winhttp-0xa80.txt"));
    assert_eq!(winhttp(&settings, View::Native), "0xa80");
    assert_eq!(winhttp(&settings, View::Wow64), "0x800");
    assert_eq!(
        schannel(&settings, TlsVersion::Tls12, Side::Client).0,
        not_dumped(&format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.2\Client"))
    );
}

#[test]
fn dotnet_dump_reads_native_switches_release_and_absent_lines() {
    let settings = read_tls_settings(&fixture("dotnet.txt"));
    assert_eq!(
        dotnet(&settings, DotNet::V4, View::Native),
        pair("0x1", "0x1")
    );
    // Both roots were dumped with /s: what is missing under them is absent.
    for (framework, view) in [
        (DotNet::V4, View::Wow64),
        (DotNet::V2, View::Native),
        (DotNet::V2, View::Wow64),
    ] {
        assert_eq!(
            dotnet(&settings, framework, view),
            pair("absent", "absent"),
            "{framework:?} {view:?}"
        );
    }
    assert_eq!(settings.dotnet4_release.known(), Some(&461_814));
    assert_eq!(settings.dotnet.len(), 4);
}

#[test]
fn edge_cases_dump() {
    let dump = fixture("edge-cases.txt");
    let settings = read_tls_settings(&dump);
    // Decimal and upper-case 0X data; a key line spelled HKLM in lower case.
    assert_eq!(
        schannel(&settings, TlsVersion::Tls13, Side::Client),
        pair("0x1", "0x0")
    );
    // A key without values.
    assert!(dump.has_key(&format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.3\Server")));
    assert_eq!(
        schannel(&settings, TlsVersion::Tls13, Side::Server),
        pair("absent", "absent")
    );
    // REG_SZ and REG_QWORD where a DWORD is expected.
    let server = format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.1\Server");
    let client = format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.1\Client");
    assert_eq!(
        schannel(&settings, TlsVersion::Tls11, Side::Server),
        pair(
            &format!(r"unreadable: {server}\Enabled is REG_SZ, expected REG_DWORD"),
            "0x1"
        )
    );
    assert_eq!(
        schannel(&settings, TlsVersion::Tls11, Side::Client),
        pair(
            &format!(r"unreadable: {client}\Enabled is REG_QWORD, expected REG_DWORD"),
            "absent"
        )
    );
    assert_eq!(
        schannel(&settings, TlsVersion::Tls12, Side::Client),
        pair("absent", "absent")
    );
    assert_eq!(winhttp(&settings, View::Native), "0xa80");
    assert_eq!(winhttp(&settings, View::Wow64), not_dumped(WINHTTP_WOW64));

    // Other types keep their raw data; names with spaces; empty data; (Default).
    let notes = dump.value(&server, "notes").expect("REG_MULTI_SZ");
    assert_eq!(
        (notes.kind.as_str(), notes.data.as_str()),
        ("REG_MULTI_SZ", r"disabled by GPO\0see ticket 4711")
    );
    let policy = dump
        .value(&server, "Policy Source")
        .expect("name with a space");
    assert_eq!(policy.data, r"%SystemRoot%\policy.xml");
    assert_eq!(
        dump.value(&server, "Comment").map(|v| v.data.as_str()),
        Some("")
    );
    let default = dump.value(SCHANNEL_PROTOCOLS, "").expect("(Default)");
    assert_eq!(
        (default.name.as_str(), default.kind.as_str(), default.line),
        ("(Default)", "REG_SZ", 3)
    );
    assert_eq!(dump.value(SCHANNEL_PROTOCOLS, "(default)"), Some(default));
    assert_eq!(
        brief(&dump.dword(SCHANNEL_PROTOCOLS, "")),
        format!(r"unreadable: {SCHANNEL_PROTOCOLS}\(Default) is REG_SZ, expected REG_DWORD")
    );
}

#[test]
fn utf16le_dump_with_bom_is_decoded() {
    let settings = read_tls_settings(&fixture("powershell-utf16le.txt"));
    assert_eq!(
        schannel(&settings, TlsVersion::Tls12, Side::Server),
        pair("0xffffffff", "0x0")
    );
    // Only TLS 1.2\Server was dumped: its sibling is not known to be absent.
    let client = not_dumped(&format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.2\Client"));
    assert_eq!(
        schannel(&settings, TlsVersion::Tls12, Side::Client),
        pair(&client, &client)
    );
    assert_eq!(winhttp(&settings, View::Native), "0xa80");
    assert_eq!(winhttp(&settings, View::Wow64), "0x800");
}

#[test]
fn utf16le_without_bom_and_utf8_bom_are_decoded() {
    let text = "HKEY_LOCAL_MACHINE\\X\r\n    A    REG_DWORD    0x2\r\n";
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let dump = RegDump::from_bytes("no-bom", &utf16).expect("UTF-16LE without BOM");
    assert_eq!(dump.dword(r"HKLM\X", "A").known(), Some(&2));
    let mut utf8 = vec![0xef, 0xbb, 0xbf];
    utf8.extend_from_slice(text.as_bytes());
    let dump = RegDump::from_bytes("bom", &utf8).expect("UTF-8 with BOM");
    assert_eq!(dump.dword(r"HKLM\X", "A").known(), Some(&2));
}

#[test]
fn truncated_dump_names_the_cut_line() {
    let file = fixture_path("truncated.txt");
    let err = RegDump::load(&file).expect_err("cut mid value line");
    let RegDumpError::Syntax { line, reason, .. } = &err else {
        panic!("expected a syntax error, got {err}");
    };
    assert_eq!(*line, 29);
    assert!(reason.contains("no line break"), "{reason}");
    assert!(err.to_string().contains("truncated.txt, line 29"), "{err}");
    // A cut that still looks like a value (0xa80 cut to 0xa8) is refused too.
    let cut = "HKLM\\SOFTWARE\\X\r\n    DefaultSecureProtocols    REG_DWORD    0xa8";
    assert!(RegDump::parse("cut", cut).is_err());
    // A final `End of search` line or blanks without a line break are fine.
    let ok = "HKLM\\X\n    A    REG_DWORD    0x1\nEnd of search: 1 match(es) found.";
    assert!(RegDump::parse("ok", ok).is_ok());
    assert!(RegDump::parse("ok", "HKLM\\X\n    A    REG_DWORD    0x1\n   ").is_ok());
}

#[test]
fn errors_name_the_line_and_what_was_expected() {
    let cases = [
        ("    A    REG_DWORD    0x1\n", 1, "before any key line"),
        (
            "HKLM\\X\n    A    REG_DWORD    12ab\n",
            2,
            "neither 0x-hex nor decimal",
        ),
        (
            "HKLM\\X\n    A    REG_DWORD    0x\n",
            2,
            "neither 0x-hex nor decimal",
        ),
        (
            "HKLM\\X\n    A    REG_DWORD    -1\n",
            2,
            "neither 0x-hex nor decimal",
        ),
        (
            "HKLM\\X\n    A    REG_DWORD\n",
            2,
            "neither 0x-hex nor decimal",
        ),
        (
            "HKLM\\X\n    A    REG_DWORD    0x100000000\n",
            2,
            "exceeds 0xffffffff",
        ),
        (
            "HKLM\\X\n    A    REG_DWORD    4294967296\n",
            2,
            "exceeds 0xffffffff",
        ),
        (
            "HKLM\\X\n\n    just some text\n",
            3,
            "expected a value line",
        ),
        ("HKLM\\X\nSomething else\n", 2, "expected a key line"),
        ("HKEY_NOWHERE\\X\n", 1, "expected a key line"),
    ];
    for (text, expected_line, expected) in cases {
        match RegDump::parse("dump.txt", text) {
            Err(RegDumpError::Syntax { file, line, reason }) => {
                assert_eq!(file, "dump.txt");
                assert_eq!(line, expected_line, "{text:?}: {reason}");
                assert!(reason.contains(expected), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let missing = RegDump::load(&fixture_path("no-such-dump.txt")).expect_err("missing file");
    assert!(matches!(missing, RegDumpError::Read { .. }), "{missing}");
    assert!(missing.to_string().contains("no-such-dump.txt"));
}

#[test]
fn dwords_accept_hex_and_decimal_up_to_u32_max() {
    let text = "HKEY_LOCAL_MACHINE\\K\n    Hex    REG_DWORD    0x00000a80\n    Dec    REG_DWORD    2688\n    Max    REG_DWORD    4294967295\n    Zero    REG_DWORD    0\n";
    let dump = RegDump::parse("d", text).expect("valid");
    for (name, value) in [
        ("Hex", 0xa80),
        ("Dec", 2688),
        ("Max", u32::MAX),
        ("Zero", 0),
    ] {
        assert_eq!(dump.dword(r"HKLM\K", name).known(), Some(&value), "{name}");
    }
}

#[test]
fn paths_and_names_are_case_insensitive_in_both_hive_spellings() {
    let dump = fixture("winhttp-0xa80.txt");
    for path in [
        WINHTTP,
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp",
        r"hklm\software\microsoft\windows\currentversion\internet settings\winhttp\",
        r"hkey_local_machine\SOFTWARE\MICROSOFT\Windows\CurrentVersion\Internet Settings\WINHTTP",
    ] {
        assert_eq!(
            dump.dword(path, "defaultsecureprotocols").known(),
            Some(&0xa80),
            "{path}"
        );
    }
    // The source shows the short hive name and the path as asked.
    let fact = dump.dword(r"HKEY_LOCAL_MACHINE\SOFTWARE\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp", "DefaultSecureProtocols");
    assert!(
        fact.source().to_string().ends_with(
            r": HKLM\SOFTWARE\Wow6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\WinHttp\DefaultSecureProtocols"
        ),
        "{}",
        fact.source()
    );
    assert!(matches!(
        dump.dword(r"SOFTWARE\Microsoft", "X"),
        Fact::Unreadable { .. }
    ));
}

#[test]
fn concatenated_outputs_merge_repeated_keys() {
    let text = "\r\nHKEY_LOCAL_MACHINE\\K\r\n    A    REG_DWORD    0x1\r\n\r\nHKEY_LOCAL_MACHINE\\K\r\n    B    REG_DWORD    0x2\r\n    a    REG_DWORD    0x3\r\n";
    let dump = RegDump::parse("d", text).expect("valid");
    assert_eq!(dump.dword(r"HKLM\K", "A").known(), Some(&3));
    assert_eq!(dump.dword(r"HKLM\K", "B").known(), Some(&2));
    assert_eq!(
        dump.dword(r"HKLM\K\Sub", "A"),
        Fact::Absent {
            source: Source::new(r"registry dump d: HKLM\K\Sub\A")
        }
    );
}

#[test]
fn map_registry_reads_entries() {
    let registry = MapRegistry::from_entries([
        (
            format!(r"{SCHANNEL_PROTOCOLS}\TLS 1.0\Client"),
            "Enabled",
            0,
        ),
        (WINHTTP.to_owned(), "DefaultSecureProtocols", 0x800),
        (
            r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full".to_owned(),
            "Release",
            528_040,
        ),
    ]);
    let settings = read_tls_settings(&registry);
    assert_eq!(
        schannel(&settings, TlsVersion::Tls10, Side::Client),
        pair("0x0", "absent")
    );
    assert_eq!(winhttp(&settings, View::Native), "0x800");
    assert_eq!(winhttp(&settings, View::Wow64), "absent");
    assert_eq!(settings.dotnet4_release.known(), Some(&528_040));
    assert_eq!(
        settings.winhttp[0].default_secure_protocols.source(),
        &Source::new(format!(
            r"simulated registry {WINHTTP}\DefaultSecureProtocols"
        ))
    );
    let empty = read_tls_settings(&MapRegistry::new().with(r"BOGUS\X", "A", 1));
    assert!(empty.schannel.iter().all(|s| s.enabled.known().is_none()));
}

/// Xorshift64: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

#[test]
fn cut_and_corrupted_dumps_never_panic() {
    let started = Instant::now();
    const NOISE: &[u8] = b"\r\n\t \\0xX9fREG_DWORD HKLM\xff\xfe\x00\xef\xbb\xbf\xc3";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0usize;
    for name in FIXTURES {
        let bytes = std::fs::read(fixture_path(name)).expect("fixture");
        // Every truncation, at every byte.
        for cut in 0..=bytes.len() {
            let _ = RegDump::from_bytes(name, &bytes[..cut]);
            runs += 1;
        }
        // Random mutations: flipped bytes, noise, deletions, duplicated spans.
        for _ in 0..300 {
            let mut mutated = bytes.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(mutated.len());
                match rng.below(4) {
                    0 if !mutated.is_empty() => mutated[at] ^= 1 << rng.below(8),
                    1 => mutated.insert(at.min(mutated.len()), NOISE[rng.below(NOISE.len())]),
                    2 if !mutated.is_empty() => {
                        let end = (at + rng.below(16)).min(mutated.len());
                        mutated.drain(at..end);
                    }
                    _ if !mutated.is_empty() => {
                        let end = (at + rng.below(32)).min(mutated.len());
                        let span = mutated[at..end].to_vec();
                        mutated.splice(at..at, span);
                    }
                    _ => {}
                }
            }
            if let Ok(dump) = RegDump::from_bytes(name, &mutated) {
                let _ = read_tls_settings(&dump);
            }
            runs += 1;
        }
    }
    assert!(runs > 5000);
    assert!(
        started.elapsed().as_secs_f64() < 5.0,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn strings_are_read_with_the_same_contract_as_dwords() {
    let dump = RegDump::parse(
        "d.txt",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\n    \
         CurrentBuild    REG_SZ    19045\n    PathName    REG_EXPAND_SZ    %SystemRoot%\n    \
         UBR    REG_DWORD    0x1326\n    ProductName    REG_SZ    \n",
    )
    .expect("valid dump");
    let key = CURRENT_VERSION;
    assert_eq!(
        dump.string(key, "currentbuild").known().map(String::as_str),
        Some("19045")
    );
    assert_eq!(
        dump.string(key, "PathName").known().map(String::as_str),
        Some("%SystemRoot%")
    );
    assert_eq!(
        dump.string(key, "ProductName").known().map(String::as_str),
        Some("")
    );
    let wrong = dump.string(key, "UBR");
    assert!(
        matches!(&wrong, Fact::Unreadable { reason, .. } if reason.ends_with("is REG_DWORD, expected REG_SZ")),
        "{wrong:?}"
    );
    assert!(matches!(dump.string(key, "EditionID"), Fact::Absent { .. }));
    assert!(matches!(
        dump.string(r"HKLM\SYSTEM\Setup", "x"),
        Fact::Unreadable { .. }
    ));
    assert!(matches!(
        dump.string(r"NOPE\x", "x"),
        Fact::Unreadable { .. }
    ));
    // A map holds only DWORDs; layered over the dump it leaves strings to the dump.
    let map = MapRegistry::new().with(key, "UBR", 7);
    assert!(matches!(
        map.string(key, "CurrentBuild"),
        Fact::Absent { .. }
    ));
    let layered = LayeredRegistry {
        top: map,
        base: dump,
    };
    assert_eq!(layered.dword(key, "UBR").known(), Some(&7));
    assert_eq!(
        layered
            .string(key, "CurrentBuild")
            .known()
            .map(String::as_str),
        Some("19045")
    );
}
