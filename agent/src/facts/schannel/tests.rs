//! Tests of the Schannel evidence: the XML reader, the export forms (the fixtures under
//! `agent/tests/fixtures/schannel/`), interpretation and the bounded summary.

use std::path::{Path, PathBuf};

use roomready_protocol::observed::{ObservedProtocol, Target};
use roomready_protocol::{ObservedSource, Timestamp};

use super::export::{self, ExportError};
use super::xml::{self, MAX_DEPTH, MAX_FIELD_CHARS};
use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schannel")
        .join(name)
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// "Now" for the fixtures: a day after their events.
fn now() -> Timestamp {
    ts("2026-12-01T10:00:00Z")
}

fn load(name: &str) -> Observations {
    from_export(&fixture(name), now(), Bounds::default()).expect("fixture loads")
}

fn row(o: &Observations, protocol: ObservedProtocol, target: &str) -> (u64, Option<u16>) {
    let h = o
        .handshakes
        .iter()
        .find(|h| h.protocol == protocol && h.target.as_ref().map(Target::as_str) == Some(target))
        .unwrap_or_else(|| panic!("no {protocol} row for {target}: {:?}", o.handshakes));
    (h.count, h.suite)
}

#[test]
fn a_wevtutil_export_is_counted_per_protocol_and_target() {
    let o = load("wevtutil.xml");
    assert_eq!(o.source, ObservedSource::Export);
    assert!(o.label.ends_with("wevtutil.xml"), "{}", o.label);
    // 6 client handshakes and 3 failures; the server handshake, 36886 and the other provider's
    // event are not counted.
    assert_eq!(o.events, 9);
    assert_eq!(o.malformed, 0);
    assert_eq!(o.problem, None);
    assert!(!o.truncated);
    assert_eq!(
        row(&o, ObservedProtocol::Tls12, "outlook.office365.com"),
        (2, Some(0xC030))
    );
    assert_eq!(
        row(&o, ObservedProtocol::Tls10, "sfb-pool.contoso.local"),
        (2, Some(0xC014))
    );
    assert_eq!(
        row(&o, ObservedProtocol::Tls11, "adfs.contoso.local"),
        (1, Some(0xC013))
    );
    assert_eq!(o.handshakes.len(), 4);
    // Legacy rows first, then the most recent first.
    let order: Vec<_> = o.handshakes.iter().map(|h| h.protocol).collect();
    assert_eq!(
        order,
        [
            ObservedProtocol::Tls11,
            ObservedProtocol::Tls10,
            ObservedProtocol::Tls12,
            ObservedProtocol::Tls12
        ]
    );
    assert_eq!(o.legacy().map(|h| h.count).sum::<u64>(), 3);
    assert_eq!(o.since, Some(ts("2026-11-30T09:12:44.482Z")));
    assert_eq!(o.until, Some(ts("2026-11-30T10:09:00Z")));
    let failures: Vec<_> = o
        .failures
        .iter()
        .map(|f| (f.event, f.alert, f.protocol, f.count))
        .collect();
    assert_eq!(
        failures,
        [
            (
                EVENT_NO_COMMON_SUITE,
                None,
                Some(ObservedProtocol::Tls12),
                1
            ),
            (EVENT_ALERT_SENT, Some(40), None, 1),
            (EVENT_ALERT_RECEIVED, Some(70), None, 1),
        ]
    );
}

#[test]
fn every_export_form_gives_the_same_summary() {
    let plain = load("wevtutil.xml");
    let saved = load("saved-utf16.xml");
    assert_eq!(saved.handshakes, plain.handshakes);
    assert_eq!(saved.failures, plain.failures);
    assert_eq!(
        (saved.events, saved.since, saved.until),
        (plain.events, plain.since, plain.until)
    );
    // The same bytes as UTF-16BE with BOM, UTF-16LE without, UTF-8 with BOM.
    let text = std::fs::read_to_string(fixture("wevtutil.xml")).expect("fixture");
    let be: Vec<u8> = [0xfe, 0xff]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bom: Vec<u8> = [0xef, 0xbb, 0xbf].into_iter().chain(text.bytes()).collect();
    for (name, bytes) in [
        ("utf-16be", be),
        ("utf-16le, no BOM", le),
        ("utf-8 BOM", bom),
    ] {
        let parsed = export::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(parsed.events.len(), 12, "{name}");
        assert_eq!(parsed.malformed, 0, "{name}");
    }
}

#[test]
fn windows_7_events_are_read_by_position() {
    let o = load("win7-positional.xml");
    assert_eq!(o.events, 1);
    let h = &o.handshakes[0];
    assert_eq!(
        (h.protocol, h.target.clone(), h.suite, h.count),
        (ObservedProtocol::Tls10, None, Some(0xC014), 1)
    );
    assert_eq!(h.last, ts("2026-11-29T08:00:00Z"));
}

#[test]
fn a_cut_export_keeps_every_whole_event_and_says_where_it_ends() {
    let o = load("cut.xml");
    // The first four events are whole: three TLS 1.2/1.0 handshakes... and the fifth is cut.
    assert_eq!(o.events, 4);
    let problem = o.problem.expect("the cut is reported");
    let whole = std::fs::read_to_string(fixture("wevtutil.xml")).expect("fixture");
    let fifth = whole
        .match_indices("<Event ")
        .nth(4)
        .map(|(i, _)| i)
        .expect("a fifth event");
    // wevtutil.xml has CRLF, cut.xml LF between events: 4 bytes fewer before the fifth.
    assert!(
        problem.contains(&format!("event at byte {} is never closed", fifth - 4)),
        "{problem}"
    );
}

#[test]
fn corrupt_events_are_skipped_counted_and_located() {
    let o = load("corrupt.xml");
    assert_eq!(o.events, 2, "the two good events");
    assert_eq!(o.malformed, 2);
    let problem = o.problem.expect("a problem is reported");
    assert!(problem.contains("</EvntID> closes <EventID>"), "{problem}");
    assert!(problem.contains("event at byte "), "{problem}");
}

#[test]
fn what_is_not_an_export_is_an_error_naming_the_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes, offset) in [
        ("text.xml", &b"  hello, world"[..], 2u64),
        ("binary.evtx", &b"ElfFile\0\x01\x02\x03"[..], 0),
        ("json.xml", &b"{\"Event\": 1}"[..], 0),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        match from_export(&path, now(), Bounds::default()) {
            Err(ExportError::NotAnExport { offset: at, .. }) => assert_eq!(at, offset, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Empty exports (wevtutil found nothing) are exports with no events.
    for (name, bytes) in [
        ("empty.xml", &b""[..]),
        (
            "wrapper.xml",
            &b"<?xml version=\"1.0\"?>\r\n<Events>\r\n</Events>\r\n"[..],
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let o = from_export(&path, now(), Bounds::default()).expect(name);
        assert_eq!((o.events, o.since, o.problem), (0, None, None), "{name}");
    }
    let missing = dir.path().join("missing.xml");
    let e = from_export(&missing, now(), Bounds::default()).expect_err("missing");
    assert!(matches!(e, ExportError::Read { .. }));
    assert!(e.to_string().contains("missing.xml"), "{e}");
}

#[test]
fn a_huge_export_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("huge.xml");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(export::MAX_EXPORT_BYTES + 1)
        .expect("sparse file");
    let e = from_export(&path, now(), Bounds::default()).expect_err("too big");
    assert!(matches!(e, ExportError::TooBig { .. }), "{e:?}");
    assert!(e.to_string().contains("/c:20000"), "{e}");
}

#[test]
fn many_events_are_bounded_by_the_window_and_the_count() {
    // 3,000 events over 30 days, one TLS 1.0 handshake 20 days ago.
    let text = std::fs::read_to_string(fixture("wevtutil.xml")).expect("fixture");
    let template = text.lines().next().expect("first event").to_string();
    let mut doc = String::new();
    let day = 86_400_000u64;
    for i in 0..3000u64 {
        let at = Timestamp::from_unix_ms(now().unix_ms() - i * 10 * day / 1000);
        doc.push_str(&template.replace("2026-11-30T09:12:44.4821836Z", &at.to_string()));
        doc.push('\n');
    }
    let old = Timestamp::from_unix_ms(now().unix_ms() - 20 * day);
    doc.push_str(
        &template
            .replace("2026-11-30T09:12:44.4821836Z", &old.to_string())
            .replace("TLS 1.2", "TLS 1.0"),
    );
    let parsed = export::parse(doc.as_bytes()).expect("parses");
    let reading = || Reading::from_events(parsed.events.clone());
    let label = || "test".to_string();
    let week = summarize(
        reading(),
        ObservedSource::Export,
        label(),
        now(),
        Bounds::default(),
    );
    assert_eq!(week.events, 701, "events of the last 7 days");
    assert!(!week.truncated);
    assert_eq!(week.legacy().count(), 0, "the TLS 1.0 handshake is older");
    let month = Bounds {
        window_days: 30,
        max_events: 500,
    };
    let newest = summarize(reading(), ObservedSource::Export, label(), now(), month);
    assert_eq!(newest.events, 500);
    assert!(newest.truncated);
    assert_eq!(newest.until, Some(now()));
    let all = Bounds {
        window_days: 30,
        max_events: 10_000,
    };
    let whole = summarize(reading(), ObservedSource::Export, label(), now(), all);
    assert_eq!(whole.events, 3001);
    assert_eq!(whole.legacy().map(|h| h.count).sum::<u64>(), 1);
}

#[test]
fn rows_are_bounded_and_legacy_rows_are_never_the_ones_left_out() {
    let mut reading = Reading::default();
    for i in 0..200u64 {
        reading.records.push((
            Timestamp::from_unix_ms(now().unix_ms() - 1000 * (i + 10)),
            Record::Handshake {
                protocol: ObservedProtocol::Tls12,
                target: Target::lossy(&format!("host-{i}.example")),
                suite: None,
            },
        ));
    }
    reading.records.push((
        Timestamp::from_unix_ms(now().unix_ms() - 3_600_000),
        Record::Handshake {
            protocol: ObservedProtocol::Tls10,
            target: Target::lossy("legacy.example"),
            suite: None,
        },
    ));
    let o = summarize(
        reading,
        ObservedSource::Export,
        "t".into(),
        now(),
        Bounds::default(),
    );
    assert_eq!(o.handshakes.len(), Observed::MAX_ROWS);
    assert_eq!(o.rows_omitted, 201 - Observed::MAX_ROWS as u64);
    assert_eq!(o.handshakes[0].protocol, ObservedProtocol::Tls10);
    assert_eq!(o.events, 201);
}

#[test]
fn the_xml_reader_handles_what_windows_writes_and_refuses_the_rest() {
    let event = |data: &str| {
        format!(
            "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\">\
             <System><Provider Name=\"Schannel\"/><EventID>36880</EventID>\
             <TimeCreated SystemTime=\"2026-11-30T10:00:00Z\"/></System>{data}</Event>"
        )
    };
    // Entities, character references, CDATA, comments, double quotes.
    let text = event(
        "<EventData><!-- c --><Data Name=\"Protocol\">TLS&#32;1.0</Data>\
         <Data Name='TargetName'>a&amp;b<![CDATA[<c>]]>&#x64;</Data></EventData>",
    );
    let raw = xml::read_event(&text, 0).expect("reads");
    assert_eq!(raw.field("Protocol", 9), Some("TLS 1.0"));
    assert_eq!(raw.field("TargetName", 9), Some("a&b<c>d"));
    // UserData leaves become fields by element name.
    let user = event(
        "<UserData><EventXML xmlns=\"x\"><AlertDesc>70</AlertDesc>\
         <Nested><ErrorState>1205</ErrorState></Nested></EventXML></UserData>",
    );
    let raw = xml::read_event(&user, 0).expect("reads");
    assert_eq!(raw.field("AlertDesc", 9), Some("70"));
    assert_eq!(raw.field("ErrorState", 9), Some("1205"));
    assert_eq!(raw.fields.len(), 2);
    // A field's text is bounded.
    let long = event(&format!(
        "<EventData><Data Name='TargetName'>{}</Data></EventData>",
        "x".repeat(5000)
    ));
    let raw = xml::read_event(&long, 0).expect("reads");
    assert_eq!(
        raw.field("TargetName", 0).map(str::len),
        Some(MAX_FIELD_CHARS)
    );
    // Refused, each with an offset inside the text.
    let deep = event(&format!(
        "{}{}",
        "<a>".repeat(MAX_DEPTH + 1),
        "</a>".repeat(MAX_DEPTH + 1)
    ));
    let cases = [
        (
            event("<!DOCTYPE x [<!ENTITY e \"boom\">]>"),
            "document type",
        ),
        (
            event("<EventData><Data Name=x>1</Data></EventData>"),
            "not quoted",
        ),
        (
            event("<EventData><Data>&bogus;</Data></EventData>"),
            "unknown entity",
        ),
        (
            event("<EventData><Data>&#xD800;</Data></EventData>"),
            "not a character",
        ),
        (
            event("<EventData><Data>a & b</Data></EventData>"),
            "does not start a reference",
        ),
        (
            event("<EventData></Data></EventData>"),
            "closes <EventData>",
        ),
        (
            event("<EventData><Data Name='a' b></Data></EventData>"),
            "has no value",
        ),
        (
            event("<EventData><Data Name='a<b'>1</Data></EventData>"),
            "'<' in the value",
        ),
        (deep, "nest more than"),
        ("<Event><System>".to_string(), "ends inside <System>"),
        ("<Events/>".to_string(), "expected <Event>"),
    ];
    for (text, expected) in cases {
        let e = xml::read_event(&text, 100).expect_err(&text);
        assert!(e.reason.contains(expected), "{text}: {e:?}");
        assert!(
            e.offset >= 100 && e.offset <= 100 + text.len(),
            "{text}: {e:?}"
        );
    }
}

#[test]
fn hostile_bytes_never_panic() {
    // Every prefix of a real export, and single-byte corruptions of it, parse or fail cleanly.
    let bytes = std::fs::read(fixture("wevtutil.xml")).expect("fixture");
    let first = &bytes[..bytes.iter().position(|&b| b == b'\n').expect("a line") + 1];
    for cut in 0..first.len() {
        let _ = export::parse(&first[..cut]);
    }
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let mut copy = first.to_vec();
        let at = seed as usize % copy.len();
        copy[at] = (seed >> 8) as u8;
        if let Ok(parsed) = export::parse(&copy) {
            let _ = Reading::from_events(parsed.events);
        }
    }
    // Odd-length UTF-16 and lone surrogates.
    let _ = export::parse(&[0xff, 0xfe, b'<', 0, 0x00, 0xd8, b'E']);
}

#[test]
fn interpretation_ignores_what_is_not_a_client_handshake_or_failure() {
    let raw = |provider: &str, id: &str, time: Option<&str>, fields: &[(&str, &str)]| RawEvent {
        provider: Some(provider.into()),
        id: Some(id.into()),
        time: time.map(Into::into),
        fields: fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    };
    let t = Some("2026-11-30T10:00:00Z");
    assert_eq!(
        interpret(&raw("Other", "36880", t, &[])),
        Interpreted::Ignored
    );
    assert_eq!(
        interpret(&raw("Schannel", "36886", t, &[])),
        Interpreted::Ignored
    );
    assert_eq!(
        interpret(&raw(
            "schannel",
            "36880",
            t,
            &[("Type", "server"), ("Protocol", "TLS 1.0")]
        )),
        Interpreted::Ignored
    );
    assert!(matches!(
        interpret(&raw("Schannel", "3688O", t, &[])),
        Interpreted::Malformed(m) if m.contains("not a number")
    ));
    assert!(matches!(
        interpret(&raw("Schannel", "36880", None, &[("Protocol", "TLS 1.0")])),
        Interpreted::Malformed(m) if m.contains("without TimeCreated")
    ));
    assert!(matches!(
        interpret(&raw("Schannel", "36880", t, &[("Type", "client")])),
        Interpreted::Malformed(m) if m.contains("Protocol")
    ));
    // An unknown protocol name is kept as `other`, a hostile target made printable.
    let Interpreted::Record(_, record) = interpret(&raw(
        "Schannel",
        "36880",
        t,
        &[
            ("Protocol", "QUIC 9"),
            ("CipherSuite", "49200"),
            ("TargetName", "x\u{1b}y"),
        ],
    )) else {
        panic!("a record");
    };
    assert_eq!(
        record,
        Record::Handshake {
            protocol: ObservedProtocol::Other,
            target: Target::lossy("x?y"),
            suite: Some(0xC030),
        }
    );
}
