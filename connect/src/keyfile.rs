//! Reading the agent's flat TOML files (the config and the facts file) with errors that say
//! exactly where the problem is: file, line, column and key.
//!
//! The files are parsed into a spanned document first and each key is then taken with the type
//! it must have, so a type mismatch reads `agent.toml:4:24: key "report_interval_secs": expected
//! an integer, found a string` instead of a generic deserializer message. Keys nobody asked for
//! are reported by [`KeyFile::finish`], so a misspelt key is an error, not a silently ignored one.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// An error in a key file, located as precisely as the problem allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct KeyFileError {
    pub file: PathBuf,
    /// 1-based line and column of the offending text, when known.
    pub position: Option<(usize, usize)>,
    /// The key concerned, when the problem belongs to one key.
    pub key: Option<String>,
    pub reason: String,
    /// Set when the file could not be read at all (as opposed to read and found invalid).
    pub io: Option<std::io::ErrorKind>,
}

impl KeyFileError {
    /// The file at `path` could not be read; `what` names it (`config file`, `facts file`).
    pub fn unreadable(path: &Path, what: &str, error: &std::io::Error) -> Self {
        KeyFileError {
            file: path.to_owned(),
            position: None,
            key: None,
            reason: format!("cannot read {what}: {error}"),
            io: Some(error.kind()),
        }
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "key \"{key}\": ")?;
        }
        f.write_str(&self.reason)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A parsed flat TOML file whose keys are taken one by one.
pub struct KeyFile<'i> {
    path: PathBuf,
    text: &'i str,
    table: DeTable<'i>,
    taken: Vec<String>,
}

impl<'i> KeyFile<'i> {
    /// Parses `text`, read from `path`. A TOML syntax error is reported with its position.
    pub fn parse(path: &Path, text: &'i str) -> Result<Self, KeyFileError> {
        match DeTable::parse(text) {
            Ok(table) => Ok(KeyFile {
                path: path.to_owned(),
                text,
                table: table.into_inner(),
                taken: Vec::new(),
            }),
            Err(err) => Err(KeyFileError {
                file: path.to_owned(),
                position: err.span().map(|span| line_column(text, span.start)),
                key: None,
                reason: format!("invalid TOML: {}", err.message().trim_end()),
                io: None,
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about `key`, located at `span`.
    pub fn error(&self, key: &str, span: Range<usize>, reason: impl Into<String>) -> KeyFileError {
        KeyFileError {
            file: self.path.clone(),
            position: Some(line_column(self.text, span.start)),
            key: Some(key.to_owned()),
            reason: reason.into(),
            io: None,
        }
    }

    /// An error about a required `key` that is missing.
    pub fn missing(&self, key: &str, what: &str) -> KeyFileError {
        KeyFileError {
            file: self.path.clone(),
            position: None,
            key: Some(key.to_owned()),
            reason: format!("missing; required: {what}"),
            io: None,
        }
    }

    fn take(&mut self, key: &str) -> Option<&Spanned<DeValue<'i>>> {
        self.taken.push(key.to_owned());
        self.table.get(key)
    }

    /// A string value, or `None` when the key is absent.
    pub fn string(&mut self, key: &str) -> Result<Option<Spanned<String>>, KeyFileError> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let span = value.span();
        match value.get_ref() {
            DeValue::String(s) => Ok(Some(Spanned::new(span, s.to_string()))),
            other => {
                let found = describe(other);
                Err(self.error(key, span, format!("expected a string, found {found}")))
            }
        }
    }

    /// A boolean value (`true` / `false`), or `None` when the key is absent.
    pub fn boolean(&mut self, key: &str) -> Result<Option<Spanned<bool>>, KeyFileError> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let span = value.span();
        match value.get_ref() {
            DeValue::Boolean(b) => Ok(Some(Spanned::new(span, *b))),
            other => {
                let found = describe(other);
                Err(self.error(key, span, format!("expected true or false, found {found}")))
            }
        }
    }

    /// An integer value in `range`, or `None` when the key is absent.
    pub fn integer(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<Spanned<u64>>, KeyFileError> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let span = value.span();
        match value.get_ref() {
            DeValue::Integer(int) => {
                match u64::from_str_radix(&int.as_str().replace('_', ""), int.radix()) {
                    Ok(n) if range.contains(&n) => Ok(Some(Spanned::new(span, n))),
                    _ => {
                        let reason = format!(
                            "must be an integer in {}..={}, found an integer {int}",
                            range.start(),
                            range.end(),
                        );
                        Err(self.error(key, span, reason))
                    }
                }
            }
            other => {
                let found = describe(other);
                Err(self.error(key, span, format!("expected an integer, found {found}")))
            }
        }
    }

    /// An array of strings, each with its span, or `None` when the key is absent.
    pub fn string_array(
        &mut self,
        key: &str,
    ) -> Result<Option<Vec<Spanned<String>>>, KeyFileError> {
        self.taken.push(key.to_owned());
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let DeValue::Array(items) = value.get_ref() else {
            let found = describe(value.get_ref());
            return Err(self.error(
                key,
                value.span(),
                format!("expected an array of strings, found {found}"),
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => {
                    let found = describe(other);
                    return Err(self.error(
                        key,
                        item.span(),
                        format!("expected a string, found {found}"),
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    /// A table of integer values in `0..=u32::MAX` (e.g. `[registry]`), or `None` when absent.
    pub fn dword_table(&mut self, key: &str) -> Result<Option<Vec<(String, u32)>>, KeyFileError> {
        self.taken.push(key.to_owned());
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let DeValue::Table(table) = value.get_ref() else {
            let found = describe(value.get_ref());
            return Err(self.error(
                key,
                value.span(),
                format!("expected a table, found {found}"),
            ));
        };
        let mut entries = Vec::with_capacity(table.len());
        for (name, item) in table.iter() {
            let full = format!("{key}.{}", name.get_ref());
            let parsed = match item.get_ref() {
                DeValue::Integer(int) => {
                    u32::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok()
                }
                _ => None,
            };
            match parsed {
                Some(v) => entries.push((name.get_ref().to_string(), v)),
                None => {
                    let reason = format!(
                        "expected a REG_DWORD value (an integer in 0..=0xFFFFFFFF), found {}",
                        describe(item.get_ref())
                    );
                    return Err(self.error(&full, item.span(), reason));
                }
            }
        }
        Ok(Some(entries))
    }

    /// Fails on the first key that no call asked for (a typo, or a key of a newer version).
    pub fn finish(self, known: &str) -> Result<(), KeyFileError> {
        for (key, value) in self.table.iter() {
            if !self.taken.iter().any(|k| k == key.get_ref().as_ref()) {
                return Err(self.error(
                    key.get_ref(),
                    key.span().start..value.span().end,
                    format!("unknown key; known keys: {known}"),
                ));
            }
        }
        Ok(())
    }
}

/// "a string \"abc\"", "an integer 5", … for error messages.
fn describe(value: &DeValue<'_>) -> Cow<'static, str> {
    match value {
        DeValue::String(s) => {
            let shown: String = s.chars().take(64).collect();
            format!("a string {shown:?}").into()
        }
        DeValue::Integer(i) => format!("an integer {i}").into(),
        DeValue::Float(f) => format!("a float {}", f.as_str()).into(),
        DeValue::Boolean(b) => format!("a boolean {b}").into(),
        DeValue::Datetime(d) => format!("a datetime {d}").into(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> KeyFile<'_> {
        KeyFile::parse(Path::new("x.toml"), text).expect("valid TOML")
    }

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("é\nxé=", 4), (2, 2));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn typed_reads_name_the_key_and_place() {
        let mut file = parse("name = \"a\"\ncount = \"x\"\nbig = 99\nneg = -1\n");
        assert_eq!(
            file.string("name").expect("ok").map(Spanned::into_inner),
            Some("a".into())
        );
        assert_eq!(file.string("absent").expect("ok"), None);
        let err = file.integer("count", 1..=10).expect_err("string");
        assert_eq!(
            err.to_string(),
            "x.toml:2:9: key \"count\": expected an integer, found a string \"x\""
        );
        let err = file.integer("big", 1..=10).expect_err("range");
        assert_eq!(
            err.to_string(),
            "x.toml:3:7: key \"big\": must be an integer in 1..=10, found an integer 99"
        );
        assert!(file.integer("neg", 1..=10).is_err());
        let err = file.boolean("name").expect_err("not a boolean");
        assert_eq!(
            err.to_string(),
            "x.toml:1:8: key \"name\": expected true or false, found a string \"a\""
        );
        let err = file.string("big").expect_err("not a string");
        assert!(
            err.to_string()
                .contains("expected a string, found an integer 99")
        );
    }

    #[test]
    fn integers_in_other_radixes_and_with_underscores() {
        let mut file = parse("a = 0x10\nb = 1_000\n");
        assert_eq!(
            file.integer("a", 0..=100)
                .expect("ok")
                .map(Spanned::into_inner),
            Some(16)
        );
        assert_eq!(
            file.integer("b", 0..=10_000)
                .expect("ok")
                .map(Spanned::into_inner),
            Some(1000)
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let mut file = parse("known = 1\nknwon = 2\n");
        file.integer("known", 0..=9).expect("ok");
        let err = file.finish("known").expect_err("typo");
        assert_eq!(
            err.to_string(),
            "x.toml:2:1: key \"knwon\": unknown key; known keys: known"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = KeyFile::parse(Path::new("x.toml"), "a = 1\nb = \n")
            .err()
            .expect("bad TOML");
        assert_eq!(err.position.map(|p| p.0), Some(2), "{err}");
        assert!(err.to_string().starts_with("x.toml:2:"), "{err}");
    }
}
