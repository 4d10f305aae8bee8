//! Golden wire-format tests: each fixture under `tests/fixtures/` is a payload as it travels on
//! the broker. Decoding must give exactly the expected value, and encoding that value must give
//! the fixture back (compared as JSON values, so whitespace and key order do not matter but every
//! name, type and value does). Any change of the wire format fails here first.

use std::path::Path;

use roomready_protocol::{
    AppUpdateStage, CertificateCheck, CipherSuite, Command, CommandAction, CommandResponse,
    DecodeError, DeviceFacts, DeviceId, DeviceKind, EndpointReport, EndpointRole, Event, EventBody,
    Finding, FixMode, Message, Placement, Presence, ProbeOutcome, ResponseStatus, Ring, Room,
    Severity, Site, State, Status, StatusReason, SuiteProbe, Tag, Tags, Timestamp, Tls12Suites,
    TlsVersion, UpdateStage, UtcOffset, Verdict, VersionProbe, codes,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("valid timestamp")
}

fn id(s: &str) -> DeviceId {
    DeviceId::new(s).expect("valid device id")
}

/// Decodes the fixture, compares with `expected`, and checks that encoding round-trips.
fn golden<M: Message + PartialEq + std::fmt::Debug>(name: &str, expected: M) {
    let bytes = fixture(name);
    let decoded = M::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded, expected, "{name}: decoded value");
    let encoded = expected.encode();
    let schema_first = format!("{{\"schema\":\"{}\"", M::schema());
    assert!(
        encoded.starts_with(schema_first.as_bytes()),
        "{name}: schema must be the first field: {}",
        String::from_utf8_lossy(&encoded)
    );
    let as_value = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).expect("valid JSON");
    assert_eq!(
        as_value(&encoded),
        as_value(&bytes),
        "{name}: encoded payload"
    );
    assert_eq!(
        M::decode(&encoded).expect("re-decode"),
        expected,
        "{name}: round trip"
    );
}

fn example_state() -> State {
    State {
        device: id("mtr-0007"),
        seq: 42,
        ts: ts("2026-11-23T14:07:25.123Z"),
        agent_version: "0.1.0".into(),
        facts: DeviceFacts {
            kind: DeviceKind::TeamsRoomsWindows,
            app_version: Some("4.0.51.0".into()),
            os_build: Some("19045.4894".into()),
        },
        verdict: Verdict::NotReady,
        findings: vec![Finding {
            code: codes::TLS12_APP_TOO_OLD.into(),
            severity: Severity::Critical,
            title: "Teams Rooms app 4.0.51.0 cannot use TLS 1.2".into(),
            evidence:
                "app version 4.0.51.0 (facts file /etc/roomready/facts.toml, key app_version)"
                    .into(),
            remediation: "Update the Microsoft Teams Rooms app to 4.0.64.0 or later.".into(),
            reference: "https://learn.microsoft.com/microsoftteams/room-systems/srs2-release-note"
                .into(),
        }],
        endpoints: vec![],
        placement: Placement::default(),
        observed: None,
    }
}

#[test]
fn state() {
    golden("state.json", example_state());
}

/// State 1.2: where the device is.
#[test]
fn state_with_a_placement() {
    let tags = ["board", "floor-4"].map(|t| Tag::new(t).expect("valid tag"));
    golden(
        "state_placement.json",
        State {
            device: id("mtr-0012"),
            seq: 7,
            placement: Placement {
                site: Some(Site::new("oslo-hq").expect("valid site")),
                room: Some(Room::new("Fjord 4.12").expect("valid room")),
                ring: Some(Ring::new(1).expect("valid ring")),
                tags: Tags::new(tags.to_vec()).expect("valid tags"),
                utc_offset_minutes: Some(UtcOffset::new(60).expect("UTC+01:00")),
            },
            ..example_state()
        },
    );
}

#[test]
fn state_observed() {
    use roomready_protocol::observed::{FailureCount, HandshakeCount, Target};
    use roomready_protocol::{Observed, ObservedProtocol, ObservedSource};
    let target = |t: &str| Some(Target::new(t).expect("valid target"));
    golden(
        "state_observed.json",
        State {
            device: id("mtr-0017"),
            seq: 88,
            ts: ts("2026-12-01T10:00:00Z"),
            facts: DeviceFacts {
                kind: DeviceKind::TeamsRoomsWindows,
                app_version: Some("5.2.115.0".into()),
                os_build: Some("19045.4894".into()),
            },
            verdict: Verdict::AtRisk,
            findings: vec![Finding {
                code: codes::OBSERVED_LEGACY_TLS.into(),
                severity: Severity::Warning,
                title: "This device negotiated TLS 1.0 2 time(s) recently: something on it still \
                        talks legacy TLS"
                    .into(),
                evidence: "TLS 1.0 ×2 to sfb-pool.contoso.local (last 2026-11-30T10:01:10Z); \
                           Schannel event 36880 from the System log (Schannel events), \
                           2026-11-30T09:12:44Z to 2026-11-30T10:09:00Z"
                    .into(),
                remediation: "Find the component that makes these connections and move it to \
                              TLS 1.2."
                    .into(),
                reference:
                    "https://learn.microsoft.com/microsoft-365/compliance/prepare-tls-1.2-in-office-365"
                        .into(),
            }],
            observed: Some(Box::new(Observed {
                source: ObservedSource::SystemLog,
                window_days: 7,
                since: Some(ts("2026-11-30T09:12:44.482Z")),
                until: Some(ts("2026-11-30T10:09:00Z")),
                events: 5,
                truncated: false,
                success_logging: Some(true),
                handshakes: vec![
                    HandshakeCount {
                        protocol: ObservedProtocol::Tls10,
                        target: target("sfb-pool.contoso.local"),
                        suite: Some(0xC014),
                        count: 2,
                        last: ts("2026-11-30T10:01:10.1Z"),
                    },
                    HandshakeCount {
                        protocol: ObservedProtocol::Tls12,
                        target: target("outlook.office365.com"),
                        suite: Some(0xC030),
                        count: 2,
                        last: ts("2026-11-30T09:12:45.003Z"),
                    },
                ],
                failures: vec![FailureCount {
                    event: 36887,
                    alert: Some(70),
                    protocol: None,
                    target: None,
                    count: 1,
                    last: ts("2026-11-30T10:09:00Z"),
                }],
                rows_omitted: 0,
                predicted: Verdict::Ready,
            })),
            ..example_state()
        },
    );
}

#[test]
fn a_state_of_1_2_decodes_without_observations_and_bad_observations_are_refused() {
    let mut old: serde_json::Value =
        serde_json::from_slice(&fixture("state_observed.json")).expect("JSON");
    old["schema"] = "roomready.state/1.2".into();
    old.as_object_mut().expect("object").remove("observed");
    let state = State::decode(&serde_json::to_vec(&old).expect("JSON")).expect("1.2 decodes");
    assert_eq!(state.observed, None);

    // A protocol name of a later minor version reads as `other`.
    let mut later: serde_json::Value =
        serde_json::from_slice(&fixture("state_observed.json")).expect("JSON");
    later["observed"]["handshakes"][0]["protocol"] = "quic2".into();
    let state = State::decode(&serde_json::to_vec(&later).expect("JSON")).expect("decodes");
    let observed = state.observed.expect("observed");
    assert_eq!(
        observed.handshakes[0].protocol,
        roomready_protocol::ObservedProtocol::Other
    );
    assert!(!observed.legacy(), "only TLS 1.2 and `other` are left");

    let row = serde_json::json!({"protocol": "tls1.2", "count": 1, "last": "2026-11-30T10:00:00Z"});
    for (pointer, value, reason) in [
        (
            "/observed/handshakes/0/target",
            serde_json::json!("evil\u{1b}[2J"),
            "control character",
        ),
        (
            "/observed/handshakes/0/target",
            serde_json::json!(""),
            "is empty",
        ),
        (
            "/observed/handshakes",
            serde_json::Value::Array(vec![row; 65]),
            "65 rows; at most 64",
        ),
        (
            "/observed/predicted",
            serde_json::json!("fine"),
            "unknown variant",
        ),
        (
            "/observed/source",
            serde_json::json!("rumour"),
            "unknown variant",
        ),
    ] {
        let mut bad: serde_json::Value =
            serde_json::from_slice(&fixture("state_observed.json")).expect("JSON");
        *bad.pointer_mut(pointer).expect(pointer) = value;
        let error = State::decode(&serde_json::to_vec(&bad).expect("JSON"))
            .expect_err(pointer)
            .to_string();
        assert!(error.contains(reason), "{pointer}: {error}");
    }
}

#[test]
fn a_state_of_1_1_decodes_without_a_placement_and_a_bad_placement_is_refused() {
    let mut old: serde_json::Value =
        serde_json::from_slice(&fixture("state_placement.json")).expect("JSON");
    old["schema"] = "roomready.state/1.1".into();
    old.as_object_mut().expect("object").remove("placement");
    let state = State::decode(&serde_json::to_vec(&old).expect("JSON")).expect("1.1 decodes");
    assert!(state.placement.is_empty());

    for (field, value, reason) in [
        (
            "site",
            serde_json::json!("<b>hq</b>"),
            "character '<' at byte 0",
        ),
        ("ring", serde_json::json!(12), "ring 12 is out of range"),
        (
            "tags",
            serde_json::json!(["a", "a"]),
            "tag \"a\" is given twice",
        ),
        ("room", serde_json::json!(""), "room is empty"),
    ] {
        let mut bad: serde_json::Value =
            serde_json::from_slice(&fixture("state_placement.json")).expect("JSON");
        bad["placement"][field] = value;
        let error = State::decode(&serde_json::to_vec(&bad).expect("JSON"))
            .expect_err(field)
            .to_string();
        assert!(error.contains(reason), "{field}: {error}");
        assert!(
            error.contains("column"),
            "{field}: the error says where: {error}"
        );
    }
}

/// A state with one probed endpoint, every field of state 1.1 in it.
fn endpoint_state() -> State {
    let suite = || Some(CipherSuite::from_code(0x0033));
    let probe = |version, outcome, detail: Option<&str>, alert| VersionProbe {
        version,
        outcome,
        suite: None,
        detail: detail.map(str::to_owned),
        handshake_ms: None,
        alert,
    };
    let mut report = EndpointReport::new(
        "pool.contoso.com".into(),
        443,
        EndpointRole::OnpremSfb,
        Some("6.0.9319.548".into()),
    );
    report.address = Some("192.0.2.10:443".into());
    report.versions = vec![
        probe(
            TlsVersion::Tls13,
            ProbeOutcome::Refused,
            Some("alert protocol_version (70)"),
            Some(70),
        ),
        VersionProbe {
            suite: suite(),
            ..probe(
                TlsVersion::Tls12,
                ProbeOutcome::Accepted,
                Some("the server asks for a client certificate"),
                None,
            )
        },
        probe(
            TlsVersion::Tls11,
            ProbeOutcome::Downgraded,
            Some("answered TLS 1.0"),
            None,
        ),
        VersionProbe {
            suite: suite(),
            ..probe(TlsVersion::Tls10, ProbeOutcome::Accepted, None, None)
        },
    ];
    report.certificate = Some(CertificateCheck {
        valid: true,
        error: None,
        not_after: Some(ts("2027-06-30T00:00:00.000Z")),
        days_left: Some(209),
        version: Some(TlsVersion::Tls12),
    });
    report.client_certificate_required = true;
    report.tls12_suites = Some(Tls12Suites {
        preferred: suite(),
        microsoft: Some(SuiteProbe {
            outcome: ProbeOutcome::Refused,
            suite: None,
            detail: Some("alert handshake_failure (40)".into()),
        }),
    });
    State {
        seq: 43,
        facts: DeviceFacts {
            kind: DeviceKind::TeamsRoomsWindows,
            app_version: Some("4.0.105.0".into()),
            os_build: Some("19045.4894".into()),
        },
        verdict: Verdict::AtRisk,
        findings: vec![Finding {
            code: codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS.into(),
            severity: Severity::Warning,
            title: "pool.contoso.com:443 accepts TLS 1.2 but no suite on the Office 365 / Azure \
                    Front Door lists"
                .into(),
            evidence: "a TLS 1.2 hello offering exactly C030 C02F C028 C027 C014 C013 009D 009C \
                       009F 009E: refused, alert handshake_failure (40); the server's own choice \
                       from every suite: TLS_DHE_RSA_WITH_AES_128_CBC_SHA (0x0033)"
                .into(),
            remediation: "Enable ECDHE_RSA_AES_256_GCM_SHA384 (C030) or \
                          ECDHE_RSA_AES_128_GCM_SHA256 (C02F): suites on the Office 365 and \
                          Azure Front Door lists."
                .into(),
            reference:
                "https://learn.microsoft.com/microsoft-365/compliance/prepare-tls-1.2-in-office-365"
                    .into(),
        }],
        endpoints: vec![report],
        placement: Placement::default(),
        ..example_state()
    }
}

#[test]
fn state_with_an_endpoint() {
    golden("state_endpoints.json", endpoint_state());
}

#[test]
fn an_endpoint_report_of_state_1_0_decodes_with_the_new_fields_empty() {
    let mut old: serde_json::Value =
        serde_json::from_slice(&fixture("state_endpoints.json")).expect("JSON");
    old["schema"] = "roomready.state/1".into();
    let endpoint = &mut old["endpoints"][0];
    for field in ["client_certificate_required", "tls12_suites"] {
        endpoint.as_object_mut().expect("object").remove(field);
    }
    endpoint["certificate"]
        .as_object_mut()
        .expect("object")
        .remove("version");
    endpoint["versions"][0]
        .as_object_mut()
        .expect("object")
        .remove("alert");
    let state = State::decode(&serde_json::to_vec(&old).expect("JSON")).expect("1.0 decodes");
    let report = &state.endpoints[0];
    assert!(!report.client_certificate_required);
    assert_eq!(report.tls12_suites, None);
    assert_eq!(report.certificate_unavailable, None);
    assert_eq!(report.certificate.as_ref().and_then(|c| c.version), None);
    assert_eq!(report.versions[0].alert, None);
    assert!(report.accepted(TlsVersion::Tls12));
}

#[test]
fn status_online_and_last_will() {
    let online = Status {
        device: id("mtr-0007"),
        seq: 41,
        ts: ts("2026-11-23T14:07:24.900Z"),
        status: Presence::Online,
        reason: None,
    };
    golden("status_online.json", online.clone());
    golden(
        "status_will.json",
        Status {
            status: Presence::Offline,
            reason: Some(StatusReason::ConnectionLost),
            ..online
        },
    );
}

#[test]
fn events() {
    golden(
        "event_check_completed.json",
        Event {
            device: id("mtr-0007"),
            seq: 43,
            ts: ts("2026-11-23T14:07:25.200Z"),
            body: EventBody::CheckCompleted {
                verdict: Verdict::NotReady,
                findings: 1,
            },
        },
    );
    golden(
        "event_verdict_changed.json",
        Event {
            device: id("mtr-0007"),
            seq: 44,
            ts: ts("2026-11-23T14:07:25.300Z"),
            body: EventBody::VerdictChanged {
                from: Some(Verdict::Ready),
                to: Verdict::NotReady,
            },
        },
    );
    golden(
        "event_journal_recovered.json",
        Event {
            device: id("mtr-0007"),
            seq: 45,
            ts: ts("2026-11-23T14:07:25.400Z"),
            body: EventBody::JournalRecovered {
                offset: 4096,
                discarded_bytes: 37,
                reason: "record at byte 4096 is cut short: 12 of 48 bytes".into(),
            },
        },
    );
    golden(
        "event_app_update.json",
        Event {
            device: id("mtr-0007"),
            seq: 47,
            ts: ts("2026-11-23T14:08:00.000Z"),
            body: EventBody::AppUpdate {
                stage: AppUpdateStage::Failed,
                reason: Some("exited with exit status: 3: no network".into()),
            },
        },
    );
    golden(
        "event_update_progress.json",
        Event {
            device: id("mtr-0007"),
            seq: 48,
            ts: ts("2026-11-23T14:09:00.000Z"),
            body: EventBody::UpdateProgress {
                stage: UpdateStage::Downloading,
                version: Some("0.2.0".into()),
                percent: Some(40),
                reason: None,
            },
        },
    );
    golden(
        "event_records_dropped.json",
        Event {
            device: id("mtr-0007"),
            seq: 46,
            ts: ts("2026-11-23T14:07:25.500Z"),
            body: EventBody::RecordsDropped {
                count: 120,
                total: 345,
            },
        },
    );
}

#[test]
fn commands() {
    golden(
        "command_set_interval.json",
        Command {
            id: "c-42".into(),
            action: CommandAction::SetInterval { seconds: 900 },
        },
    );
    golden(
        "command_ping.json",
        Command {
            id: "c-43".into(),
            action: CommandAction::Ping,
        },
    );
    golden(
        "command_update_app.json",
        Command {
            id: "c-45".into(),
            action: CommandAction::UpdateApp,
        },
    );
    golden(
        "command_update.json",
        Command {
            id: "c-44".into(),
            action: CommandAction::Update {
                version: Some("0.2.0".into()),
                channel: Some("beta".into()),
            },
        },
    );
    golden(
        "command_fix_plan.json",
        Command {
            id: "c-46".into(),
            action: CommandAction::Fix {
                mode: FixMode::Plan,
                plan: None,
            },
        },
    );
    golden(
        "command_fix_apply.json",
        Command {
            id: "c-47".into(),
            action: CommandAction::Fix {
                mode: FixMode::Apply,
                plan: Some("3f2ac9d01b7e4a55".into()),
            },
        },
    );
}

#[test]
fn command_responses() {
    golden(
        "command_response_rejected.json",
        CommandResponse {
            device: id("mtr-0007"),
            id: "c-42".into(),
            status: ResponseStatus::Rejected,
            reason: Some("invalid_argument".into()),
            message: Some("seconds must be 60..=86400".into()),
            seq: 17,
            ts: ts("2026-11-23T14:07:26.000Z"),
        },
    );
    golden(
        "command_response_succeeded.json",
        CommandResponse {
            device: id("mtr-0007"),
            id: "c-43".into(),
            status: ResponseStatus::Succeeded,
            reason: None,
            message: None,
            seq: 18,
            ts: ts("2026-11-23T14:07:26.100Z"),
        },
    );
    // A `fix` plan: the plan in the message, its digest first.
    let message = "plan 3f2ac9d01b7e4a55: 2 changes; apply them with this digest (needs \
                   allow_fix = true), then restart the device\n\
                   SCHANNEL_TLS12_CLIENT_DISABLED: HKLM\\SYSTEM\\CurrentControlSet\\Control\\\
                   SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client\\Enabled (native): \
                   0x0 -> 0x1\n\
                   WINHTTP_TLS12_NOT_DEFAULT: HKLM\\SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\\
                   CurrentVersion\\Internet Settings\\WinHttp\\DefaultSecureProtocols (wow64): \
                   absent -> 0xA80";
    assert_eq!(
        roomready_protocol::fix::fix_plan_digest(message),
        Some("3f2ac9d01b7e4a55")
    );
    golden(
        "command_response_fix_plan.json",
        CommandResponse {
            device: id("mtr-0007"),
            id: "c-46".into(),
            status: ResponseStatus::Succeeded,
            reason: None,
            message: Some(message.into()),
            seq: 19,
            ts: ts("2026-11-23T14:07:27.000Z"),
        },
    );
}

#[test]
fn a_later_minor_version_with_unknown_fields_decodes() {
    let state = State::decode(&fixture("state_future_minor.json")).expect("minor 1.3 decodes");
    assert_eq!(state.verdict, Verdict::Ready);
    assert_eq!(state.facts.kind, DeviceKind::SurfaceHub);
    assert_eq!(state.facts.os_build.as_deref(), Some("15063.1897"));
    assert_eq!(state.facts.app_version, None);

    let event = Event::decode(&fixture("event_future.json")).expect("unknown event type decodes");
    assert_eq!(event.body, EventBody::Unrecognized);
    assert_eq!(event.seq, 45);
}

#[test]
fn another_major_version_is_rejected() {
    let err = State::decode(&fixture("state_v2.json")).expect_err("v2 must not decode as v1");
    assert!(
        matches!(
            err,
            DecodeError::UnsupportedMajor {
                name: "roomready.state",
                supported: 1,
                found: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "roomready.state major version 2 is not supported (this build reads 1)"
    );
}

#[test]
fn another_message_type_is_rejected() {
    let err = State::decode(&fixture("status_online.json")).expect_err("status is not a state");
    assert!(matches!(err, DecodeError::WrongMessage { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "expected a roomready.state payload, found schema \"roomready.status\""
    );
}

#[test]
fn malformed_payloads_say_what_and_where() {
    let missing = State::decode(br#"{"device":"a"}"#).expect_err("no schema");
    assert!(
        matches!(missing, DecodeError::MissingSchema { .. }),
        "{missing:?}"
    );

    let malformed = State::decode(br#"{"schema":"roomready.state"}"#).expect_err("no major");
    assert!(
        matches!(malformed, DecodeError::MalformedSchema { .. }),
        "{malformed:?}"
    );

    let not_json = State::decode(b"{\"schema\":\n  oops}").expect_err("not JSON");
    let message = not_json.to_string();
    assert!(message.contains("line 2 column 3"), "{message}");

    let not_object = State::decode(b"[1,2]").expect_err("array");
    assert!(
        matches!(not_object, DecodeError::Json { .. }),
        "{not_object:?}"
    );

    let mut bad_field = serde_json::from_slice::<serde_json::Value>(&fixture("state.json"))
        .expect("fixture is JSON");
    bad_field["verdict"] = "green".into();
    let err =
        State::decode(&serde_json::to_vec(&bad_field).expect("ser")).expect_err("bad verdict");
    assert!(err.to_string().contains("unknown variant `green`"), "{err}");

    bad_field["verdict"] = "ready".into();
    bad_field["device"] = "a/b".into();
    let err = State::decode(&serde_json::to_vec(&bad_field).expect("ser")).expect_err("bad device");
    assert!(err.to_string().contains("'/' at byte 1"), "{err}");
}

#[test]
fn truncated_payloads_never_panic() {
    let full = fixture("state.json");
    for cut in 0..full.len() {
        let _ = State::decode(&full[..cut]);
    }
}
