//! Registry reads: the [`Registry`] trait, one implementation per source — a saved
//! `reg query <KEY> /s` dump ([`RegDump`]), values fixed in memory ([`MapRegistry`]) and, on
//! Windows, the live registry (`NativeRegistry`) — and [`read_tls_settings`], which reads every
//! TLS switch the rules look at. Writes, for the opt-in repair only: [`write`].
//!
//! Key paths are case-insensitive and may be spelled with the short (`HKLM\...`) or the long
//! (`HKEY_LOCAL_MACHINE\...`) hive name; value names are case-insensitive too, as in Windows.
//!
//! # The dump format
//!
//! [`RegDump`] reads what `reg query "HKLM\..." /s > dump.txt` writes, several such outputs
//! possibly concatenated:
//!
//! ```text
//! HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client
//!     Enabled    REG_DWORD    0x0
//!     DisabledByDefault    REG_DWORD    0x1
//! ```
//!
//! - A key line starts in column 1 with a hive (`HKEY_LOCAL_MACHINE`, `HKLM`, … any case); an
//!   indented line is a value of the last key: its name, a `REG_*` type and the data, separated
//!   by whitespace (reg uses 4 spaces; names may hold single spaces; the data may be empty).
//!   `(Default)` is the key's default value, whose real name is empty.
//! - Blank lines, `End of search: …` and `ERROR: …` lines (reg's message for a key that does
//!   not exist) are skipped; any other line is an error naming its line number.
//! - CRLF or LF line endings; UTF-8 with or without BOM; UTF-16LE with BOM (what Windows
//!   PowerShell 5.1's `>` writes) or without BOM when the second byte is NUL. Bytes that are not
//!   valid in the encoding become U+FFFD.
//! - `REG_DWORD` data must be `0x` hex (as reg prints it) or decimal (hand-edited dumps), at
//!   most `0xffffffff`; anything else is an error naming the line. Other types are kept as raw
//!   text and only reported when a DWORD is asked for.
//! - A file cut short: a last line without a line break (reg always ends its output with one)
//!   is an error naming that line when it holds anything but blanks or an `End of search` line,
//!   because a cut value line may still look valid (`0xa80` cut to `0xa8`).
//! - A dump only knows the keys that were dumped: a value is *absent* when its key, or a key
//!   above it, is in the dump (`/s` lists every subkey and value below it) and the value is not;
//!   when nothing at or above the key was dumped the value is *unreadable* ("not in the dump"),
//!   since the registry may well hold it.

use std::collections::HashMap;
use std::path::Path;

use super::tls::TlsSettings;
use super::{Fact, Source};

#[cfg(test)]
mod tests;
pub mod write;

/// Reads registry values; one implementation per source.
pub trait Registry: Send + Sync {
    /// The REG_DWORD `name` under key `path` (e.g. `HKLM\SYSTEM\...\TLS 1.2\Client`):
    /// *known* (source `registry HKLM\...\Client\Enabled` or
    /// `registry dump FILE: HKLM\...\Enabled`), *absent* when the key or the value does not
    /// exist, *unreadable* with the reason when it exists with another type (e.g. REG_SZ) or
    /// cannot be read.
    fn dword(&self, path: &str, name: &str) -> Fact<u32>;

    /// The REG_SZ or REG_EXPAND_SZ `name` under key `path` (e.g. `CurrentBuild` under
    /// [`CURRENT_VERSION`]), with the same *known* / *absent* / *unreadable* contract as
    /// [`Registry::dword`]; an expandable string is returned unexpanded.
    fn string(&self, path: &str, name: &str) -> Fact<String>;
}

/// The key holding the Windows version: `CurrentBuild`, `UBR`, `ProductName`, `EditionID`.
pub const CURRENT_VERSION: &str = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion";

/// The string value types [`Registry::string`] reads.
const STRING_TYPES: [&str; 2] = ["REG_SZ", "REG_EXPAND_SZ"];

/// The registry hives, by their short and long names.
const HIVES: [(&str, &str); 5] = [
    ("HKLM", "HKEY_LOCAL_MACHINE"),
    ("HKCU", "HKEY_CURRENT_USER"),
    ("HKCR", "HKEY_CLASSES_ROOT"),
    ("HKU", "HKEY_USERS"),
    ("HKCC", "HKEY_CURRENT_CONFIG"),
];

/// A key path in canonical form: short hive name, components separated by one backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath {
    /// For messages and sources: `HKLM\SYSTEM\...`, components as spelled.
    display: String,
    /// For lookups: the display form lowercased.
    lookup: String,
}

impl KeyPath {
    /// Normalises `path`; `None` when it does not start with a known hive.
    fn parse(path: &str) -> Option<KeyPath> {
        let mut parts = path.trim().split('\\').filter(|p| !p.is_empty());
        let first = parts.next()?;
        let (short, _) = HIVES.iter().find(|(short, long)| {
            first.eq_ignore_ascii_case(short) || first.eq_ignore_ascii_case(long)
        })?;
        let mut display = (*short).to_owned();
        for part in parts {
            display.push('\\');
            display.push_str(part);
        }
        let lookup = display.to_lowercase();
        Some(KeyPath { display, lookup })
    }

    /// This key and every key above it, lowercased, longest first.
    fn ancestors(&self) -> impl Iterator<Item = &str> {
        let lookup = self.lookup.as_str();
        std::iter::once(lookup).chain(
            lookup
                .char_indices()
                .rev()
                .filter(|&(_, c)| c == '\\')
                .map(move |(i, _)| &lookup[..i]),
        )
    }
}

/// The real name of a value: reg shows the default value as `(Default)`.
fn value_name(name: &str) -> String {
    let name = name.trim();
    if name.eq_ignore_ascii_case("(Default)") {
        String::new()
    } else {
        name.to_lowercase()
    }
}

/// `HKLM\...\Key\Name`, or `HKLM\...\Key\(Default)` for the default value.
fn value_path(key: &str, name: &str) -> String {
    let name = if name.is_empty() { "(Default)" } else { name };
    format!(r"{key}\{name}")
}

fn unknown_hive<T>(source: Source, path: &str) -> Fact<T> {
    let hives: Vec<&str> = HIVES.iter().map(|(short, _)| *short).collect();
    Fact::Unreadable {
        source,
        reason: format!(
            "{path:?} does not start with a registry hive ({} or their long names)",
            hives.join(", ")
        ),
    }
}

/// A value as the dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DumpValue {
    /// The name as written (`(Default)` for the default value).
    pub name: String,
    /// The type as written, e.g. `REG_DWORD`.
    pub kind: String,
    /// The data as written, without the separating whitespace.
    pub data: String,
    /// The 1-based line of the value in the dump.
    pub line: usize,
    /// The data of a REG_DWORD, checked when the dump was parsed.
    dword: Option<u32>,
}

/// One key of a dump and its values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DumpKey {
    /// Lowercased real name → value; a later line for the same value replaces an earlier one.
    values: HashMap<String, DumpValue>,
}

/// Why a registry dump could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegDumpError {
    /// The file could not be read.
    #[error("cannot read registry dump {file}: {reason}")]
    Read { file: String, reason: String },
    /// A line is not what a `reg query` output holds.
    #[error("registry dump {file}, line {line}: {reason}")]
    Syntax {
        file: String,
        /// 1-based.
        line: usize,
        reason: String,
    },
}

/// A saved `reg query <KEY> /s` output (see the module documentation for what is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegDump {
    source: String,
    /// Lowercased canonical key path → key.
    keys: HashMap<String, DumpKey>,
}

impl RegDump {
    /// Reads and parses the dump at `path`.
    pub(crate) fn load(path: &Path) -> Result<RegDump, RegDumpError> {
        let file = path.display().to_string();
        let bytes = crate::files::read(path, crate::files::REGISTRY_DUMP).map_err(|e| {
            RegDumpError::Read {
                file: file.clone(),
                reason: e.to_string(),
            }
        })?;
        RegDump::from_bytes(&file, &bytes)
    }

    /// Decodes `bytes` (UTF-8 or UTF-16LE, see the module documentation) and parses them;
    /// `source` names the dump in errors and fact sources.
    pub(crate) fn from_bytes(source: &str, bytes: &[u8]) -> Result<RegDump, RegDumpError> {
        RegDump::parse(source, &decode(bytes))
    }

    /// Parses dump `text`; `source` names the dump (usually its file) in errors and fact
    /// sources.
    pub(crate) fn parse(source: &str, text: &str) -> Result<RegDump, RegDumpError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let error = |line: usize, reason: String| RegDumpError::Syntax {
            file: source.to_owned(),
            line,
            reason,
        };
        let mut keys: HashMap<String, DumpKey> = HashMap::new();
        let mut current: Option<String> = None;
        let mut lines = text.split('\n').enumerate().peekable();
        while let Some((index, raw)) = lines.next() {
            let number = index + 1;
            // The text after the last line break: empty for a complete file.
            let unterminated = lines.peek().is_none();
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("End of search") {
                continue;
            }
            if unterminated {
                return Err(error(
                    number,
                    format!(
                        "the last line {:?} has no line break: the dump looks cut short \
                         (reg ends its output with a line break)",
                        echo(trimmed)
                    ),
                ));
            }
            if !line.starts_with(char::is_whitespace) {
                if trimmed.starts_with("ERROR:") {
                    continue;
                }
                let Some(key) = KeyPath::parse(trimmed) else {
                    return Err(error(
                        number,
                        format!(
                            "expected a key line (HKEY_LOCAL_MACHINE\\...) or an indented \
                             value line, found {:?}",
                            echo(trimmed)
                        ),
                    ));
                };
                keys.entry(key.lookup.clone()).or_default();
                current = Some(key.lookup);
                continue;
            }
            let Some(key) = current.as_ref().and_then(|k| keys.get_mut(k)) else {
                return Err(error(
                    number,
                    format!(
                        "value line {:?} before any key line (HKEY_LOCAL_MACHINE\\...)",
                        echo(trimmed)
                    ),
                ));
            };
            let Some((name, kind, data)) = split_value_line(trimmed) else {
                return Err(error(
                    number,
                    format!(
                        "expected a value line `NAME    REG_TYPE    DATA`, found {:?}",
                        echo(trimmed)
                    ),
                ));
            };
            let dword = if kind == "REG_DWORD" {
                Some(parse_dword(data).map_err(|reason| {
                    error(
                        number,
                        format!("REG_DWORD {name}: data {:?} {reason}", echo(data)),
                    )
                })?)
            } else {
                None
            };
            key.values.insert(
                value_name(name),
                DumpValue {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    data: data.to_owned(),
                    line: number,
                    dword,
                },
            );
        }
        Ok(RegDump {
            source: source.to_owned(),
            keys,
        })
    }

    /// Whether key `path` is in the dump.
    #[cfg(test)]
    pub(crate) fn has_key(&self, path: &str) -> bool {
        KeyPath::parse(path).is_some_and(|key| self.keys.contains_key(&key.lookup))
    }

    /// Value `name` of key `path` as written in the dump (`""` or `(Default)` for the default
    /// value).
    #[cfg(test)]
    pub(crate) fn value(&self, path: &str, name: &str) -> Option<&DumpValue> {
        let key = KeyPath::parse(path)?;
        self.keys.get(&key.lookup)?.values.get(&value_name(name))
    }
}

impl RegDump {
    /// The value `name` of key `path` for a typed read: `Ok(Some)` when dumped, `Ok(None)`
    /// when its key or a key above it was dumped without it (absent), `Err` with the
    /// unreadable fact otherwise. The source names the dump and the value.
    fn lookup<T>(
        &self,
        path: &str,
        name: &str,
    ) -> Result<(Option<&DumpValue>, Source, String), Fact<T>> {
        let Some(key) = KeyPath::parse(path) else {
            let source = Source::new(format!(
                "registry dump {}: {}",
                self.source,
                value_path(path, name)
            ));
            return Err(unknown_hive(source, path));
        };
        let full = value_path(&key.display, name);
        let source = Source::new(format!("registry dump {}: {full}", self.source));
        if !key.ancestors().any(|k| self.keys.contains_key(k)) {
            return Err(Fact::Unreadable {
                source,
                reason: format!(
                    "not in the dump: neither {} nor a key above it was dumped",
                    key.display
                ),
            });
        }
        let value = self
            .keys
            .get(&key.lookup)
            .and_then(|k| k.values.get(&value_name(name)));
        Ok((value, source, full))
    }
}

impl Registry for RegDump {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        let (value, source, full) = match self.lookup(path, name) {
            Ok(found) => found,
            Err(fact) => return fact,
        };
        match value {
            None => Fact::Absent { source },
            Some(DumpValue {
                dword: Some(value), ..
            }) => Fact::Known {
                value: *value,
                source,
            },
            Some(other) => Fact::Unreadable {
                source,
                reason: format!("{full} is {}, expected REG_DWORD", other.kind),
            },
        }
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        let (value, source, full) = match self.lookup(path, name) {
            Ok(found) => found,
            Err(fact) => return fact,
        };
        match value {
            None => Fact::Absent { source },
            Some(value) if STRING_TYPES.contains(&value.kind.as_str()) => Fact::Known {
                value: value.data.clone(),
                source,
            },
            Some(other) => Fact::Unreadable {
                source,
                reason: format!("{full} is {}, expected REG_SZ", other.kind),
            },
        }
    }
}

/// Bytes → text: UTF-16LE when they start with its BOM (or, without BOM, when the second byte
/// is NUL, as in `H\0K\0`), else UTF-8 (a BOM is dropped by [`RegDump::parse`]).
fn decode(bytes: &[u8]) -> String {
    let utf16 = match bytes {
        [0xff, 0xfe, rest @ ..] => Some(rest),
        [first, 0, ..] if *first != 0 => Some(bytes),
        _ => None,
    };
    match utf16 {
        Some(rest) => char::decode_utf16(
            rest.chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Splits a trimmed value line into name, type and data: the type is the first
/// whitespace-delimited word starting with `REG_` after the first word.
fn split_value_line(line: &str) -> Option<(&str, &str, &str)> {
    let (start, _) = line.match_indices("REG_").find(|&(i, _)| {
        i > 0 && line[..i].ends_with(char::is_whitespace) && !line[..i].trim().is_empty()
    })?;
    let end = line[start..]
        .find(char::is_whitespace)
        .map_or(line.len(), |e| start + e);
    Some((line[..start].trim(), &line[start..end], line[end..].trim()))
}

/// REG_DWORD data: `0x` hex or decimal, at most `u32::MAX`.
fn parse_dword(data: &str) -> Result<u32, String> {
    let (digits, radix) = match data.strip_prefix("0x").or_else(|| data.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (data, 10),
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    if !valid {
        return Err("is neither 0x-hex nor decimal".to_owned());
    }
    u32::from_str_radix(digits, radix).map_err(|_| "exceeds 0xffffffff".to_owned())
}

/// At most 60 characters of `text`, for messages.
fn echo(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// DWORD values fixed in memory: simulated devices and tests. Sources read
/// `simulated registry HKLM\...\Name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapRegistry {
    /// (lowercased canonical key, lowercased value name) → value.
    values: HashMap<(String, String), u32>,
    /// What the values' sources say they came from; "simulated registry" when empty.
    label: String,
}

impl MapRegistry {
    /// An empty registry: every value is absent.
    pub fn new() -> Self {
        MapRegistry::default()
    }

    /// Names where the values come from (e.g. `facts file f.toml, [registry]`) in their sources.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Whether `path` names a key this registry can hold (it starts with a hive).
    pub fn accepts(path: &str) -> bool {
        KeyPath::parse(path).is_some()
    }

    fn label(&self) -> &str {
        if self.label.is_empty() {
            "simulated registry"
        } else {
            &self.label
        }
    }

    /// A registry holding `(key path, value name, DWORD)` entries; a later entry for the same
    /// value replaces an earlier one.
    pub fn from_entries<P, N>(entries: impl IntoIterator<Item = (P, N, u32)>) -> Self
    where
        P: AsRef<str>,
        N: AsRef<str>,
    {
        let mut registry = MapRegistry::new();
        for (path, name, value) in entries {
            registry.insert(path.as_ref(), name.as_ref(), value);
        }
        registry
    }

    /// Sets value `name` of key `path`. An entry whose path does not start with a hive is
    /// ignored: no path without one can be asked for (asking gives an *unreadable* fact).
    pub fn insert(&mut self, path: &str, name: &str, value: u32) {
        if let Some(key) = KeyPath::parse(path) {
            self.values.insert((key.lookup, value_name(name)), value);
        }
    }

    /// [`MapRegistry::insert`], chained.
    pub fn with(mut self, path: &str, name: &str, value: u32) -> Self {
        self.insert(path, name, value);
        self
    }
}

impl Registry for MapRegistry {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        let label = self.label();
        let Some(key) = KeyPath::parse(path) else {
            let source = Source::new(format!("{label} {}", value_path(path, name)));
            return unknown_hive(source, path);
        };
        let source = Source::new(format!("{label} {}", value_path(&key.display, name)));
        match self.values.get(&(key.lookup, value_name(name))) {
            Some(value) => Fact::Known {
                value: *value,
                source,
            },
            None => Fact::Absent { source },
        }
    }

    /// A map holds only DWORDs: every string is absent.
    fn string(&self, path: &str, name: &str) -> Fact<String> {
        let label = self.label();
        match KeyPath::parse(path) {
            Some(key) => Fact::Absent {
                source: Source::new(format!("{label} {}", value_path(&key.display, name))),
            },
            None => unknown_hive(
                Source::new(format!("{label} {}", value_path(path, name))),
                path,
            ),
        }
    }
}

/// Two registries, one over the other: a value the `top` one holds (known or unreadable) is
/// taken from it, an absent one from `base`. The facts file's `[registry]` table lies over the
/// native registry or a dump this way, value by value.
pub(crate) struct LayeredRegistry<T, B> {
    pub top: T,
    pub base: B,
}

impl<T: Registry, B: Registry> Registry for LayeredRegistry<T, B> {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        match self.top.dword(path, name) {
            Fact::Absent { .. } => self.base.dword(path, name),
            stated => stated,
        }
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        match self.top.string(path, name) {
            Fact::Absent { .. } => self.base.string(path, name),
            stated => stated,
        }
    }
}

impl<R: Registry + ?Sized> Registry for std::sync::Arc<R> {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        (**self).dword(path, name)
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        (**self).string(path, name)
    }
}

/// The live registry, read through the 64-bit view (`Wow6432Node` paths are read literally,
/// which is where 32-bit programs' values are).
#[cfg(windows)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NativeRegistry;

#[cfg(windows)]
impl NativeRegistry {
    /// Reads the raw value `name` of key `path`: `Ok(Some)` with its source and full path,
    /// `Ok(None)` with the source when the key or the value does not exist, `Err` with the
    /// unreadable fact otherwise.
    fn raw<T>(
        &self,
        path: &str,
        name: &str,
    ) -> Result<(Option<winreg::RegValue<'static>>, Source, String), Fact<T>> {
        use std::io::ErrorKind;

        use winreg::RegKey;
        use winreg::enums::{KEY_READ, KEY_WOW64_64KEY};

        let Some(key) = KeyPath::parse(path) else {
            let source = Source::new(format!("registry {}", value_path(path, name)));
            return Err(unknown_hive(source, path));
        };
        let full = value_path(&key.display, name);
        let source = Source::new(format!("registry {full}"));
        let (hkey, subkey) = native_hive(&key);
        let opened =
            RegKey::predef(hkey).open_subkey_with_flags(subkey, KEY_READ | KEY_WOW64_64KEY);
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, source, full)),
            Err(e) => {
                return Err(Fact::Unreadable {
                    source,
                    reason: format!("cannot open {}: {e}", key.display),
                });
            }
        };
        match opened.get_raw_value(name) {
            Ok(value) => Ok((Some(value), source, full)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok((None, source, full)),
            Err(e) => Err(Fact::Unreadable {
                source,
                reason: format!("cannot read {full}: {e}"),
            }),
        }
    }
}

/// The predefined key of `key`'s hive and the path below it, for the native registry's reads
/// and writes.
#[cfg(windows)]
fn native_hive(key: &KeyPath) -> (winreg::HKEY, &str) {
    use winreg::enums::{
        HKEY_CLASSES_ROOT, HKEY_CURRENT_CONFIG, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, HKEY_USERS,
    };

    let (hive, subkey) = key
        .display
        .split_once('\\')
        .unwrap_or((key.display.as_str(), ""));
    let hkey = match hive {
        "HKCU" => HKEY_CURRENT_USER,
        "HKCR" => HKEY_CLASSES_ROOT,
        "HKU" => HKEY_USERS,
        "HKCC" => HKEY_CURRENT_CONFIG,
        _ => HKEY_LOCAL_MACHINE,
    };
    (hkey, subkey)
}

#[cfg(windows)]
impl Registry for NativeRegistry {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        use winreg::enums::REG_DWORD;

        let (value, source, full) = match self.raw(path, name) {
            Ok(found) => found,
            Err(fact) => return fact,
        };
        match value {
            None => Fact::Absent { source },
            Some(value) if value.vtype == REG_DWORD => match <[u8; 4]>::try_from(&*value.bytes) {
                Ok(bytes) => Fact::Known {
                    value: u32::from_le_bytes(bytes),
                    source,
                },
                Err(_) => Fact::Unreadable {
                    source,
                    reason: format!(
                        "{full} is a REG_DWORD of {} bytes, expected 4",
                        value.bytes.len()
                    ),
                },
            },
            Some(value) => Fact::Unreadable {
                source,
                reason: format!("{full} is {:?}, expected REG_DWORD", value.vtype),
            },
        }
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        use winreg::enums::{REG_EXPAND_SZ, REG_SZ};

        let (value, source, full) = match self.raw(path, name) {
            Ok(found) => found,
            Err(fact) => return fact,
        };
        match value {
            None => Fact::Absent { source },
            Some(value) if value.vtype == REG_SZ || value.vtype == REG_EXPAND_SZ => {
                // UTF-16LE, usually NUL-terminated.
                let units: Vec<u16> = value
                    .bytes
                    .chunks_exact(2)
                    .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                    .collect();
                let text = String::from_utf16_lossy(&units);
                Fact::Known {
                    value: text.trim_end_matches('\0').to_owned(),
                    source,
                }
            }
            Some(value) => Fact::Unreadable {
                source,
                reason: format!("{full} is {:?}, expected REG_SZ", value.vtype),
            },
        }
    }
}

/// Reads every TLS-related value the rules look at from `registry`.
pub fn read_tls_settings(registry: &dyn Registry) -> TlsSettings {
    TlsSettings::read(|key, name| registry.dword(key, name))
}
