//! The evidence rules over the fixture exports: legacy handshakes make a device predicted
//! ready at_risk, logging off is said, and the prediction's verdict is kept beside.

use std::path::Path;

use roomready_protocol::{DeviceKind, ObservedProtocol, Severity, Timestamp, Verdict, codes};

use crate::assess::assess_device;
use crate::facts::schannel::{self, Bounds};
use crate::facts::tls::{SCHANNEL, TlsSettings};
use crate::facts::{Fact, Facts, Source};

fn src() -> Source {
    Source::new("test")
}

/// A Teams Rooms device the prediction calls ready, with `event_logging` in the registry and
/// the fixture export `export` (none: no evidence read).
fn device(event_logging: Option<u32>, export: Option<&str>) -> Facts {
    let tls = TlsSettings::read(|key, name| match (key, name, event_logging) {
        (k, "EventLogging", Some(v)) if k == SCHANNEL => Fact::Known {
            value: v,
            source: Source::new("registry EventLogging"),
        },
        _ => Fact::Absent { source: src() },
    });
    let observed = match export {
        Some(name) => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/schannel")
                .join(name);
            let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("timestamp");
            let o = schannel::from_export(&path, now, Bounds::default()).expect("fixture");
            Fact::Known {
                source: Source::new(o.label.clone()),
                value: o,
            }
        }
        None => Fact::Absent { source: src() },
    };
    Facts {
        device_id: None,
        kind: Fact::Known {
            value: DeviceKind::TeamsRoomsWindows,
            source: src(),
        },
        app_version: Fact::Known {
            value: "5.2.115.0".into(),
            source: src(),
        },
        os_build: Fact::Known {
            value: "19045.4894".into(),
            source: src(),
        },
        os_name: Fact::Absent { source: src() },
        tls: Fact::Known {
            value: tls,
            source: src(),
        },
        observed,
    }
}

fn codes_of(a: &crate::assess::Assessment) -> Vec<&str> {
    a.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn predicted_ready_observed_legacy_is_at_risk_with_the_targets() {
    let a = assess_device(&device(Some(7), Some("wevtutil.xml")), &[]);
    assert_eq!(a.verdict, Verdict::AtRisk);
    let observed = a
        .observed
        .as_ref()
        .expect("the evidence travels in the state");
    assert_eq!(observed.predicted, Verdict::Ready);
    assert_eq!(observed.success_logging, Some(true));
    assert!(observed.legacy());
    assert_eq!(
        codes_of(&a),
        [
            codes::OBSERVED_LEGACY_TLS,
            codes::OBSERVED_HANDSHAKE_FAILURES
        ]
    );
    let legacy = &a.findings[0];
    assert_eq!(legacy.severity, Severity::Warning);
    assert!(
        legacy.title.contains("TLS 1.0/TLS 1.1 3 time(s)"),
        "{}",
        legacy.title
    );
    for part in [
        "TLS 1.1 ×1 to adfs.contoso.local (last 2026-11-30T10:02:00Z)",
        "TLS 1.0 ×2 to sfb-pool.contoso.local (last 2026-11-30T10:01:10Z)",
        "Schannel event 36880 from Schannel events export ",
        "2026-11-30T09:12:44Z to 2026-11-30T10:09:00Z",
    ] {
        assert!(
            legacy.evidence.contains(part),
            "{part}: {}",
            legacy.evidence
        );
    }
    let failures = &a.findings[1];
    assert_eq!(failures.severity, Severity::Info);
    assert!(
        failures
            .evidence
            .contains("alert 70 (protocol_version) received ×1"),
        "{}",
        failures.evidence
    );
    assert!(
        failures
            .evidence
            .contains("no common cipher suite (TLS 1.2) ×1"),
        "{}",
        failures.evidence
    );
    assert!(failures.remediation.contains("protocol_version"));
}

#[test]
fn without_evidence_the_state_carries_none_and_nothing_changes() {
    let a = assess_device(&device(None, None), &[]);
    assert_eq!((a.verdict, a.observed.clone()), (Verdict::Ready, None));
    assert!(a.findings.is_empty(), "{:?}", a.findings);
}

#[test]
fn logging_off_is_said_with_the_value_to_set_and_its_cost() {
    // Events read but none logged (an empty export), EventLogging absent: Windows' default.
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.xml");
    std::fs::write(&empty, "").expect("write");
    let mut f = device(None, None);
    let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("timestamp");
    let o = schannel::from_export(&empty, now, Bounds::default()).expect("empty export");
    f.observed = Fact::Known {
        source: src(),
        value: o,
    };
    let a = assess_device(&f, &[]);
    assert_eq!(a.verdict, Verdict::Ready, "info only");
    assert_eq!(codes_of(&a), [codes::SCHANNEL_EVENT_LOGGING_OFF]);
    let off = &a.findings[0];
    assert!(
        off.evidence.contains("EventLogging absent"),
        "{}",
        off.evidence
    );
    assert!(
        off.remediation
            .contains(r"SCHANNEL\EventLogging (REG_DWORD) to 7"),
        "{}",
        off.remediation
    );
    assert!(
        off.remediation
            .contains("one System log event for every TLS handshake")
    );
    assert_eq!(
        a.observed.as_ref().and_then(|o| o.success_logging),
        Some(false)
    );

    // EventLogging = 1 (errors only): the same; = 4 or 7: logging is on, nothing to say.
    let mut one = f.clone();
    one.tls = device(Some(1), None).tls;
    let a = assess_device(&one, &[]);
    assert_eq!(codes_of(&a), [codes::SCHANNEL_EVENT_LOGGING_OFF]);
    assert!(
        a.findings[0]
            .evidence
            .contains("EventLogging = 0x1 (registry EventLogging)")
    );
    for on in [4, 7] {
        let mut f2 = f.clone();
        f2.tls = device(Some(on), None).tls;
        assert!(
            assess_device(&f2, &[]).findings.is_empty(),
            "EventLogging {on}"
        );
    }
    // Handshakes in the log show logging is on, whatever the registry says.
    let a = assess_device(&device(Some(1), Some("wevtutil.xml")), &[]);
    assert!(!codes_of(&a).contains(&codes::SCHANNEL_EVENT_LOGGING_OFF));
}

#[test]
fn unreadable_evidence_is_said_and_never_changes_the_verdict() {
    let mut f = device(Some(7), None);
    f.observed = Fact::Unreadable {
        source: Source::new("the System log (Schannel events)"),
        reason: "the Event Log API could not query the System log (EvtQuery error 120)".into(),
    };
    let a = assess_device(&f, &[]);
    assert_eq!(a.verdict, Verdict::Ready);
    assert_eq!(codes_of(&a), [codes::SCHANNEL_EVENTS_UNREADABLE]);
    assert!(a.findings[0].evidence.contains("EvtQuery error 120"));
    assert_eq!(a.observed, None);

    // A corrupt export: its good events count, the bad ones are said.
    let a = assess_device(&device(Some(7), Some("corrupt.xml")), &[]);
    assert!(codes_of(&a).contains(&codes::SCHANNEL_EVENTS_UNREADABLE));
    let unreadable = a
        .findings
        .iter()
        .find(|f| f.code == codes::SCHANNEL_EVENTS_UNREADABLE)
        .expect("said");
    assert!(
        unreadable.evidence.starts_with("2 Schannel event(s)"),
        "{}",
        unreadable.evidence
    );
    assert!(
        unreadable.evidence.contains("byte"),
        "{}",
        unreadable.evidence
    );
}

#[test]
fn a_not_ready_prediction_stays_not_ready_and_keeps_its_own_verdict() {
    let mut f = device(Some(7), Some("wevtutil.xml"));
    f.app_version = Fact::Known {
        value: "4.0.51.0".into(),
        source: src(),
    };
    let a = assess_device(&f, &[]);
    assert_eq!(a.verdict, Verdict::NotReady);
    let observed = a.observed.expect("evidence");
    assert_eq!(observed.predicted, Verdict::NotReady);
    assert_eq!(observed.handshakes[0].protocol, ObservedProtocol::Tls11);
}
