//! Schannel events from a saved export, on any OS (`check --schannel-events FILE`).
//!
//! # Accepted forms
//!
//! - What `wevtutil qe System /q:"*[System[Provider[@Name='Schannel']]]" /f:xml` writes: one
//!   `<Event xmlns=…>…</Event>` after another, no root element; with `/rd:true` (newest first)
//!   or without (oldest first): order does not matter.
//! - The same wrapped in `<Events>…</Events>`, with or without an `<?xml …?>` declaration:
//!   Event Viewer's "Save All Events As… → XML", and how a user turns a saved `.evtx` into XML
//!   (`wevtutil qe FILE.evtx /lf:true /f:xml`, PowerShell's
//!   `Get-WinEvent -Path FILE.evtx | ForEach-Object { $_.ToXml() }`).
//! - UTF-8 with or without BOM, UTF-16LE or UTF-16BE with BOM, UTF-16LE without BOM when the
//!   second byte is NUL (PowerShell 5.1's `>` writes UTF-16LE with BOM). Invalid sequences
//!   become U+FFFD.
//! - Events of other providers (a whole System log exported) are skipped and counted.
//!
//! # Bad input
//!
//! - A file larger than [`MAX_EXPORT_BYTES`] is refused before it is read whole (export fewer
//!   events: `/c:N /rd:true`).
//! - A file that holds no `<Event>` at all but something other than white space, an XML
//!   declaration, comments or an empty `<Events>` wrapper is not an export: an error naming the
//!   byte offset of what was found.
//! - An event that is not well-formed, or lacks its id or time, is skipped and counted; the
//!   first such problem is kept with its byte offset in the file, and reported.
//! - A file cut short inside an event (a copy interrupted) keeps every whole event before the
//!   cut; the cut is reported with its offset.

use std::path::{Path, PathBuf};

use super::xml::{self, RawEvent};
use crate::files::SCHANNEL_EXPORT;

/// The largest export read (`roomready_connect::files::SCHANNEL_EXPORT`).
pub const MAX_EXPORT_BYTES: u64 = SCHANNEL_EXPORT.bytes;

/// Why an export could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("Schannel events {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Schannel events {}: {bytes} bytes; at most {max} are read (export fewer events, e.g. \
         wevtutil qe System /q:\"*[System[Provider[@Name='Schannel']]]\" /f:xml /rd:true /c:20000)",
        path.display(),
        max = MAX_EXPORT_BYTES
    )]
    TooBig { path: PathBuf, bytes: u64 },
    #[error(
        "Schannel events {}: not an event export: {found} at byte {offset} (expected the XML of \
         wevtutil qe … /f:xml: <Event> elements)",
        path.display()
    )]
    NotAnExport {
        path: PathBuf,
        offset: u64,
        found: String,
    },
}

/// The events of an export and what went wrong on the way.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub events: Vec<RawEvent>,
    /// Events skipped because they were not well-formed.
    pub malformed: u64,
    /// The first problem: a malformed event or the cut, with its byte offset in the file.
    pub problem: Option<String>,
}

impl Parsed {
    fn note(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }
}

/// Reads and parses the export at `path`.
pub(crate) fn load(path: &Path) -> Result<Parsed, ExportError> {
    let read_error = |source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Too big says how to export less; the read itself refuses what is not a regular file
    // (a FIFO would block) and holds the bound even if the file grows meanwhile.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
        && meta.len() > MAX_EXPORT_BYTES
    {
        return Err(ExportError::TooBig {
            path: path.to_path_buf(),
            bytes: meta.len(),
        });
    }
    let data = crate::files::read(path, SCHANNEL_EXPORT).map_err(read_error)?;
    parse(&data).map_err(|(offset, found)| ExportError::NotAnExport {
        path: path.to_path_buf(),
        offset,
        found,
    })
}

/// The text encoding of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// UTF-8; `bom` bytes of byte-order mark before the text (0 or 3).
    Utf8 { bom: u64 },
    /// UTF-16; `bom` bytes of byte-order mark (0 or 2).
    Utf16 { bom: u64 },
}

/// Bytes → text and its encoding (see the module documentation).
fn decode(bytes: &[u8]) -> (String, Encoding) {
    let utf16 = |rest: &[u8], big_endian: bool| -> String {
        char::decode_utf16(rest.chunks_exact(2).map(|pair| {
            if big_endian {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_le_bytes([pair[0], pair[1]])
            }
        }))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
    };
    match bytes {
        [0xff, 0xfe, rest @ ..] => (utf16(rest, false), Encoding::Utf16 { bom: 2 }),
        [0xfe, 0xff, rest @ ..] => (utf16(rest, true), Encoding::Utf16 { bom: 2 }),
        [0xef, 0xbb, 0xbf, rest @ ..] => (
            String::from_utf8_lossy(rest).into_owned(),
            Encoding::Utf8 { bom: 3 },
        ),
        [first, 0, ..] if *first != 0 => (utf16(bytes, false), Encoding::Utf16 { bom: 0 }),
        _ => (
            String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Utf8 { bom: 0 },
        ),
    }
}

/// The byte offset in the file of byte `offset` of the decoded `text` (exact for valid input;
/// for UTF-8 with invalid sequences an estimate, as U+FFFD is 3 bytes).
fn file_offset(text: &str, offset: usize, encoding: Encoding) -> u64 {
    let offset = offset.min(text.len());
    match encoding {
        Encoding::Utf8 { bom } => bom + offset as u64,
        Encoding::Utf16 { bom } => {
            let prefix = text.get(..offset).unwrap_or(text);
            bom + 2 * prefix.encode_utf16().count() as u64
        }
    }
}

/// Whether `text[at..]` starts an `<Event>` element (not `<Events>` or `<EventData>`).
fn event_starts_at(text: &str, at: usize) -> bool {
    text[at..].strip_prefix("<Event").is_some_and(|after| {
        after
            .chars()
            .next()
            .is_some_and(|c| c == '>' || c == '/' || c.is_whitespace())
    })
}

/// Finds the `</Event>` that closes the event starting at `start`; the offset past it.
fn event_end(text: &str, start: usize) -> Option<usize> {
    let mut from = start;
    loop {
        let i = text[from..].find("</Event")? + from;
        let after = &text[i + "</Event".len()..];
        let trimmed = after.trim_start();
        if trimmed.starts_with('>') {
            return Some(text.len() - trimmed.len() + 1);
        }
        from = i + 1;
    }
}

/// Parses an export's bytes; `Err((offset, what was found))` when it is not an export at all.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, (u64, String)> {
    let (text, encoding) = decode(bytes);
    let at_file = |offset: usize| file_offset(&text, offset, encoding);
    let mut parsed = Parsed::default();
    let mut pos = 0;
    let mut stray: Option<usize> = None;
    while let Some(i) = text[pos..].find('<') {
        let start = pos + i;
        if stray.is_none() && !text[pos..start].trim().is_empty() {
            stray = Some(pos + (text[pos..start].len() - text[pos..start].trim_start().len()));
        }
        if event_starts_at(&text, start) {
            let Some(end) = event_end(&text, start) else {
                parsed.note(format!(
                    "the export is cut short: the event at byte {} is never closed",
                    at_file(start)
                ));
                return Ok(parsed);
            };
            match xml::read_event(&text[start..end], start) {
                Ok(event) => parsed.events.push(event),
                Err(e) => {
                    parsed.malformed += 1;
                    // Only the first is kept: its offsets are worked out once (in UTF-16 that
                    // walks the text before it).
                    if parsed.problem.is_none() {
                        parsed.note(format!(
                            "event at byte {}: {} (byte {})",
                            at_file(start),
                            e.reason,
                            at_file(e.offset)
                        ));
                    }
                }
            }
            pos = end;
            continue;
        }
        // Between events: the declaration, comments, the <Events> wrapper; anything else is
        // noted (and, when no event follows at all, makes the file "not an export").
        let rest = &text[start..];
        let skip_to = if rest.starts_with("<?") {
            rest.find("?>").map(|e| e + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|e| e + 3)
        } else if rest.starts_with("<Events") || rest.starts_with("</Events") {
            rest.find('>').map(|e| e + 1)
        } else {
            None
        };
        match skip_to {
            Some(len) => pos = start + len,
            None => {
                stray.get_or_insert(start);
                pos = start + 1;
            }
        }
    }
    if stray.is_none() && !text[pos..].trim().is_empty() {
        stray = Some(pos + (text[pos..].len() - text[pos..].trim_start().len()));
    }
    if let Some(at) = stray {
        let found: String = text[at..].chars().take(40).collect();
        let found = format!("{found:?}");
        if parsed.events.is_empty() && parsed.malformed == 0 {
            return Err((at_file(at), found));
        }
        parsed.note(format!(
            "unexpected {found} at byte {} between events",
            at_file(at)
        ));
    }
    Ok(parsed)
}
