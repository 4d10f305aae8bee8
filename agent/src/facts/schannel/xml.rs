//! A small XML reader for Windows event documents: enough of XML 1.0 to read what `wevtutil qe
//! … /f:xml`, PowerShell's `Get-WinEvent … | % ToXml()`, Event Viewer's "Save as XML" and the
//! Event Log API's `EvtRender` write — elements, attributes in either quote, character and the
//! five predefined entity references, comments, CDATA, processing instructions — and nothing
//! that could make it slow or large: a DTD is refused (no entity expansion), elements nest at
//! most [`MAX_DEPTH`] deep, an event holds at most [`MAX_FIELDS`] fields of at most
//! [`MAX_FIELD_CHARS`] characters, and every error names its byte offset in the text.
//!
//! [`read_event`] reads one `<Event>` element into a [`RawEvent`]: the provider, the event id,
//! the time it was created and its data fields (`<EventData><Data Name='X'>…</Data>`, or the
//! leaves of `<UserData>`), each under its name, or positionally when unnamed.

use std::borrow::Cow;

/// The deepest nesting of elements read.
pub(crate) const MAX_DEPTH: usize = 32;
/// The most data fields kept per event; more are an error.
pub(crate) const MAX_FIELDS: usize = 64;
/// Each field's text is cut to this many characters.
pub(crate) const MAX_FIELD_CHARS: usize = 1024;

/// One event as written, before anything is interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RawEvent {
    /// `<Provider Name='…'>`.
    pub provider: Option<String>,
    /// The text of `<EventID>`.
    pub id: Option<String>,
    /// `<TimeCreated SystemTime='…'>`.
    pub time: Option<String>,
    /// Data fields in document order: the `Name` attribute (empty when unnamed) and the text.
    pub fields: Vec<(String, String)>,
}

impl RawEvent {
    /// The field named `name` (case-insensitive), else the `position`th field when no field is
    /// named (events logged without a manifest carry their data in order).
    pub(crate) fn field(&self, name: &str, position: usize) -> Option<&str> {
        if let Some((_, value)) = self
            .fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Some(value);
        }
        if self.fields.iter().all(|(n, _)| n.is_empty()) {
            return self.fields.get(position).map(|(_, v)| v.as_str());
        }
        None
    }
}

/// What is wrong in the XML, and where (a byte offset in the text read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError {
    pub offset: usize,
    pub reason: String,
}

impl XmlError {
    fn at(offset: usize, reason: impl Into<String>) -> XmlError {
        XmlError {
            offset,
            reason: reason.into(),
        }
    }
}

/// One piece of markup.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    /// `<name attr='v'>`, or `<name/>` when `empty`.
    Open {
        name: &'a str,
        attrs: Vec<(&'a str, Cow<'a, str>)>,
        empty: bool,
    },
    /// `</name>`.
    Close(&'a str),
    /// Character data, references resolved.
    Text(Cow<'a, str>),
}

/// The tokens of `text`, each with its offset.
struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips past `end`, or fails naming what was left open at `start`.
    fn skip_past(&mut self, end: &str, start: usize, what: &str) -> Result<usize, XmlError> {
        match self.rest().find(end) {
            Some(i) => {
                let inner_end = self.pos + i;
                self.pos = inner_end + end.len();
                Ok(inner_end)
            }
            None => Err(XmlError::at(start, format!("{what} is never closed"))),
        }
    }

    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, XmlError> {
        loop {
            let start = self.pos;
            let rest = self.rest();
            if rest.is_empty() {
                return Ok(None);
            }
            if !rest.starts_with('<') {
                let end = rest.find('<').unwrap_or(rest.len());
                self.pos += end;
                let text = unescape(&rest[..end], start)?;
                return Ok(Some((start, Token::Text(text))));
            }
            if rest.starts_with("<!--") {
                self.pos += 4;
                self.skip_past("-->", start, "a comment")?;
                continue;
            }
            if rest.starts_with("<![CDATA[") {
                self.pos += 9;
                let inner_start = self.pos;
                let inner_end = self.skip_past("]]>", start, "a CDATA section")?;
                let text = &self.text[inner_start..inner_end];
                return Ok(Some((start, Token::Text(Cow::Borrowed(text)))));
            }
            if rest.starts_with("<?") {
                self.pos += 2;
                self.skip_past("?>", start, "a processing instruction")?;
                continue;
            }
            if rest.starts_with("<!") {
                return Err(XmlError::at(
                    start,
                    "a document type declaration (<!DOCTYPE …>) is not accepted",
                ));
            }
            if let Some(close) = rest.strip_prefix("</") {
                let name_len = name_length(close);
                if name_len == 0 {
                    return Err(XmlError::at(start, "a closing tag without a name"));
                }
                let after = close[name_len..].trim_start();
                if !after.starts_with('>') {
                    return Err(XmlError::at(start, "a closing tag is not closed with '>'"));
                }
                let consumed = rest.len() - after.len() + 1;
                self.pos += consumed;
                return Ok(Some((start, Token::Close(&close[..name_len]))));
            }
            return self.open_tag(start).map(Some);
        }
    }

    fn open_tag(&mut self, start: usize) -> Result<(usize, Token<'a>), XmlError> {
        let body = &self.rest()[1..];
        let name_len = name_length(body);
        if name_len == 0 {
            return Err(XmlError::at(start, "'<' does not start a tag"));
        }
        let name = &body[..name_len];
        let mut at = self.pos + 1 + name_len;
        let mut attrs = Vec::new();
        loop {
            let rest = &self.text[at..];
            let trimmed = rest.trim_start();
            at += rest.len() - trimmed.len();
            let end = match trimmed.strip_prefix("/>") {
                Some(after) => Some((after, true)),
                None => trimmed.strip_prefix('>').map(|after| (after, false)),
            };
            if let Some((after, empty)) = end {
                self.pos = self.text.len() - after.len();
                return Ok((start, Token::Open { name, attrs, empty }));
            }
            if trimmed.is_empty() {
                return Err(XmlError::at(start, format!("tag <{name}> is never closed")));
            }
            let attr_len = name_length(trimmed);
            if attr_len == 0 {
                return Err(XmlError::at(
                    at,
                    format!("unexpected {:?} in tag <{name}>", first_char(trimmed)),
                ));
            }
            let attr = &trimmed[..attr_len];
            let after_name = trimmed[attr_len..].trim_start();
            let Some(after_eq) = after_name.strip_prefix('=') else {
                return Err(XmlError::at(
                    at,
                    format!("attribute {attr} of <{name}> has no value"),
                ));
            };
            let value_part = after_eq.trim_start();
            let quote = match value_part.chars().next() {
                Some(q @ ('\'' | '"')) => q,
                _ => {
                    return Err(XmlError::at(
                        at,
                        format!("the value of attribute {attr} of <{name}> is not quoted"),
                    ));
                }
            };
            let value_start = self.text.len() - value_part.len() + 1;
            let Some(len) = value_part[1..].find(quote) else {
                return Err(XmlError::at(
                    at,
                    format!("the value of attribute {attr} of <{name}> is never closed"),
                ));
            };
            let raw = &self.text[value_start..value_start + len];
            if raw.contains('<') {
                return Err(XmlError::at(
                    value_start,
                    format!("'<' in the value of attribute {attr} of <{name}>"),
                ));
            }
            if attrs.len() == MAX_FIELDS {
                return Err(XmlError::at(
                    at,
                    format!("tag <{name}> has more than {MAX_FIELDS} attributes"),
                ));
            }
            attrs.push((attr, unescape(raw, value_start)?));
            at = value_start + len + 1;
        }
    }
}

fn first_char(text: &str) -> char {
    text.chars().next().unwrap_or(' ')
}

/// The length of the XML name at the start of `text` (letters, digits, `_ - . :`, anything
/// beyond ASCII).
fn name_length(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_alphabetic() || c == '_' || c == ':' || !c.is_ascii() => {}
        _ => return 0,
    }
    chars
        .find(|&(_, c)| {
            !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') || !c.is_ascii())
                || c.is_whitespace()
        })
        .map_or(text.len(), |(i, _)| i)
}

/// The name without its namespace prefix (`e:Event` → `Event`).
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// Resolves `&lt; &gt; &amp; &quot; &apos;` and `&#N;` / `&#xN;` in `raw` (at `offset`).
fn unescape(raw: &str, offset: usize) -> Result<Cow<'_, str>, XmlError> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let at = offset + (raw.len() - rest.len()) + i;
        let after = &rest[i + 1..];
        let Some(end) = after.find(';').filter(|&e| e <= 10) else {
            return Err(XmlError::at(at, "'&' does not start a reference"));
        };
        let name = &after[..end];
        let ch = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    return Err(XmlError::at(at, format!("unknown entity &{name};")));
                };
                match code.and_then(char::from_u32) {
                    Some(c) => c,
                    None => {
                        return Err(XmlError::at(
                            at,
                            format!("&{name}; is not a character reference"),
                        ));
                    }
                }
            }
        };
        out.push(ch);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Where the reader is inside the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place<'a> {
    Other,
    EventId,
    /// Inside `<EventData><Data>`, collecting field `usize`.
    Data(usize),
    /// Inside an element below the provider's own element under `<UserData>`: its text, if it
    /// has any, becomes a field under the element's name.
    User(&'a str),
}

/// Reads the one `<Event>` element that `text` holds (from its `<Event` to past its
/// `</Event>`); offsets in errors are `base` plus the offset in `text`.
pub(crate) fn read_event(text: &str, base: usize) -> Result<RawEvent, XmlError> {
    let mut tokens = Tokens::new(text);
    let mut stack: Vec<(&str, Place)> = Vec::new();
    let mut event = RawEvent::default();
    let shift = |e: XmlError| XmlError::at(base + e.offset, e.reason);
    let mut closed = false;
    while let Some((at, token)) = tokens.next_token().map_err(shift)? {
        if closed {
            match token {
                Token::Text(t) if t.trim().is_empty() => continue,
                _ => return Err(XmlError::at(base + at, "markup after </Event>")),
            }
        }
        match token {
            Token::Open { name, attrs, empty } => {
                let name = local(name);
                let parent = stack.last().map(|(n, _)| *n);
                let in_user_data = stack.iter().any(|(n, _)| *n == "UserData");
                if stack.is_empty() && name != "Event" {
                    return Err(XmlError::at(
                        base + at,
                        format!("expected <Event>, found <{name}>"),
                    ));
                }
                let attr = |wanted: &str| {
                    attrs
                        .iter()
                        .find(|(n, _)| local(n) == wanted)
                        .map(|(_, v)| v.to_string())
                };
                let mut place = Place::Other;
                match (parent, name) {
                    (Some("System"), "Provider") => event.provider = attr("Name"),
                    (Some("System"), "TimeCreated") => event.time = attr("SystemTime"),
                    (Some("System"), "EventID") => place = Place::EventId,
                    (Some("EventData"), "Data") => {
                        place = Place::Data(push_field(&mut event, attr("Name"), base + at)?)
                    }
                    _ if in_user_data && parent != Some("UserData") => place = Place::User(name),
                    _ => {}
                }
                if !empty {
                    if stack.len() == MAX_DEPTH {
                        return Err(XmlError::at(
                            base + at,
                            format!("elements nest more than {MAX_DEPTH} deep"),
                        ));
                    }
                    stack.push((name, place));
                }
            }
            Token::Close(name) => {
                let name = local(name);
                match stack.pop() {
                    Some((open, _)) if open == name => {}
                    Some((open, _)) => {
                        return Err(XmlError::at(
                            base + at,
                            format!("</{name}> closes <{open}>"),
                        ));
                    }
                    None => {
                        return Err(XmlError::at(base + at, format!("</{name}> closes nothing")));
                    }
                }
                if stack.is_empty() {
                    closed = true;
                }
            }
            Token::Text(t) => {
                let Some((_, place)) = stack.last_mut() else {
                    if t.trim().is_empty() {
                        continue;
                    }
                    return Err(XmlError::at(base + at, "text outside <Event>"));
                };
                match *place {
                    Place::EventId => append(event.id.get_or_insert_with(String::new), &t),
                    Place::Data(i) => append(&mut event.fields[i].1, &t),
                    Place::User(name) if !t.trim().is_empty() => {
                        let i = push_field(&mut event, Some(name.to_string()), base + at)?;
                        append(&mut event.fields[i].1, &t);
                        *place = Place::Data(i);
                    }
                    _ => {}
                }
            }
        }
    }
    if !closed {
        let open = stack.last().map_or("Event", |(n, _)| *n);
        return Err(XmlError::at(
            base + text.len(),
            format!("the event ends inside <{open}>"),
        ));
    }
    for (_, value) in &mut event.fields {
        let trimmed = value.trim();
        if trimmed.len() != value.len() {
            *value = trimmed.to_string();
        }
    }
    Ok(event)
}

/// Appends `text` to a field, up to [`MAX_FIELD_CHARS`].
fn append(value: &mut String, text: &str) {
    let room = MAX_FIELD_CHARS.saturating_sub(value.chars().count());
    value.extend(text.chars().take(room));
}

fn push_field(event: &mut RawEvent, name: Option<String>, at: usize) -> Result<usize, XmlError> {
    if event.fields.len() == MAX_FIELDS {
        return Err(XmlError::at(
            at,
            format!("the event has more than {MAX_FIELDS} data fields"),
        ));
    }
    event.fields.push((name.unwrap_or_default(), String::new()));
    Ok(event.fields.len() - 1)
}
