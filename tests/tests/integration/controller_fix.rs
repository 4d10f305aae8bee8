//! The registry fix from the controller, end to end: an operator asks a device for its plan
//! from the device page ("Fix registry…"), sees the plan (escaped), applies exactly that plan
//! by its digest, the device writes it (an in-memory registry behind the same trait as the
//! Windows one), answers `accepted` then `succeeded`, and the check that follows shows the
//! finding gone; undo puts the old values back. A stale digest is `rejected` `plan_changed`, a
//! device without `allow_fix` `rejected` `not_allowed` (naming the key), a simulated device
//! without a registry `not_supported`; a viewer sees no fix control and is refused, a POST
//! without the session's CSRF token too.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::registry::write::{MemoryRegistry, RegistryWrite};
use roomready_agent::facts::registry::{MapRegistry, Registry, read_tls_settings};
use roomready_agent::facts::{Fact, Facts, FactsError, FactsSource, Source};
use roomready_agent::fix::FixEnv;
use roomready_agent::{Agent, AgentSettings};
use roomready_controller::store::{CommandRecord, Store};
use roomready_protocol::{DeviceId, DeviceKind, ResponseStatus};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::http::{Http, hidden};
use roomready_tests::console::Console;

use crate::controller_auth::{log_in, users_file};

pub(super) const CLIENT: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client";

/// A Teams Rooms device whose TLS settings are read from `registry` at every check.
#[derive(Clone)]
struct RegistryFacts(MemoryRegistry);

impl FactsSource for RegistryFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        let source = || Source::new("test device");
        Ok(Facts {
            device_id: None,
            kind: Fact::Known {
                value: DeviceKind::TeamsRoomsWindows,
                source: source(),
            },
            app_version: Fact::Known {
                value: "5.2.115.0".into(),
                source: source(),
            },
            os_build: Fact::Known {
                value: "19045.4894".into(),
                source: source(),
            },
            os_name: Fact::Absent { source: source() },
            tls: Fact::Known {
                value: read_tls_settings(&self.0),
                source: source(),
            },
            observed: Fact::Absent { source: source() },
        })
    }
}

/// A device with SCHANNEL's TLS 1.2 client switched off, running until the returned sender
/// is dropped; `allowed`: its `allow_fix`. Call it on a tokio runtime.
pub(super) fn device(
    broker: &BrokerUrl,
    id: &str,
    dir: &Path,
    allowed: bool,
) -> (MemoryRegistry, tokio::sync::oneshot::Sender<()>) {
    let registry = MemoryRegistry::new(MapRegistry::new().with(CLIENT, "Enabled", 0));
    let mut settings = AgentSettings::new(DeviceId::new(id).expect("id"), broker.clone());
    settings.keep_alive = Duration::from_secs(5);
    settings.fix = Some(FixEnv {
        registry: Arc::new(registry.clone()) as Arc<dyn RegistryWrite>,
        state_dir: dir.join(id),
        allowed,
        config: dir.join(format!("{id}.toml")),
    });
    let agent = Agent::new(settings, RegistryFacts(registry.clone()), SystemClock);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    (registry, stop)
}

fn fix(http: &Http, device: &str, body: serde_json::Value, csrf: &str) -> String {
    let sent = http.post_json(
        &format!("/api/v1/devices/{device}/commands"),
        &body,
        Some(csrf),
    );
    assert_eq!(sent.status, 202, "{}", sent.body);
    sent.json()["id"].as_str().expect("an id").to_owned()
}

/// Waits for command `id`'s final answer (not `accepted`).
async fn answered(console: &Console, id: &str) -> CommandRecord {
    console
        .until(&format!("the answer to {id}"), |store: &dyn Store| {
            let record = store.command(id).ok()??;
            record
                .status
                .filter(|s| *s != ResponseStatus::Accepted)
                .map(|_| record)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_plans_applies_and_undoes_a_fix_from_the_device_page() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |config, dir| {
        config.users_file = Some(users_file(dir));
    })
    .await;
    console.subscribed().await;
    let dir = tempfile::tempdir().expect("dir");
    let (registry, _stop) = device(&broker.url(), "mtr-fix", dir.path(), true);
    let (denied_registry, _stop_denied) = device(&broker.url(), "mtr-nofix", dir.path(), false);
    for id in ["mtr-fix", "mtr-nofix"] {
        let wanted = DeviceId::new(id).expect("id");
        console
            .until("the devices' first states", |store: &dyn Store| {
                store.device(&wanted).ok()??.state.map(|_| ())
            })
            .await;
    }

    let operator = console.http.fresh();
    let viewer = console.http.fresh();
    let (csrf, plan_id) = operator
        .run({
            let viewer = viewer.clone();
            move |http| {
                let csrf = log_in(http, "olga", "operator-pass");
                let page = http.get("/devices/mtr-fix").body;
                assert!(page.contains("Fix registry…"), "the operator's fix control");
                assert!(page.contains("section id=\"fix\""), "{page}");
                // A forged form (not the session's token) is refused.
                let forged = http.post_form(
                    "/devices/mtr-fix/commands",
                    &[
                        ("csrf", "not-the-token"),
                        ("command", "fix"),
                        ("mode", "plan"),
                        ("confirm", "yes"),
                    ],
                );
                assert_eq!(forged.status, 403, "{}", forged.body);
                // A digest that is not one is refused before it is sent.
                let bad = http.post_json(
                    "/api/v1/devices/mtr-fix/commands",
                    &serde_json::json!({"command": "fix", "mode": "apply", "plan": "<b>"}),
                    Some(&csrf),
                );
                assert_eq!(bad.status, 400, "{}", bad.body);

                let viewer_csrf = log_in(&viewer, "vic", "viewer-pass");
                let seen = viewer.get("/devices/mtr-fix").body;
                assert!(
                    !seen.contains("Fix registry"),
                    "a viewer sees no fix control"
                );
                assert!(!seen.contains("section id=\"fix\""));
                let refused = viewer.post_json(
                    "/api/v1/devices/mtr-fix/commands",
                    &serde_json::json!({"command": "fix", "mode": "plan"}),
                    Some(&viewer_csrf),
                );
                assert_eq!(refused.status, 403, "{}", refused.body);

                // The button: a form post, as the page sends it without JavaScript.
                let sent = http.post_form(
                    "/devices/mtr-fix/commands",
                    &[
                        ("csrf", &csrf),
                        ("command", "fix"),
                        ("mode", "plan"),
                        ("confirm", "yes"),
                    ],
                );
                assert_eq!(sent.status, 303, "{}", sent.body);
                let location = sent.header("location").expect("back to the page");
                let id = location
                    .split("sent=")
                    .nth(1)
                    .and_then(|rest| rest.split('#').next())
                    .expect("the command id")
                    .to_owned();
                (csrf, id)
            }
        })
        .await;
    let plan = answered(&console, &plan_id).await;
    assert_eq!(plan.status, Some(ResponseStatus::Succeeded), "{plan:?}");
    let message = plan.message.clone().expect("the plan");
    let digest = roomready_protocol::fix::fix_plan_digest(&message)
        .expect("the plan's digest first")
        .to_owned();
    assert!(
        message.contains(r"TLS 1.2\Client\Enabled (native): 0x0 -> 0x1"),
        "{message}"
    );
    assert_eq!(
        registry.snapshot(),
        MapRegistry::new().with(CLIENT, "Enabled", 0)
    );

    // The page shows the plan and offers exactly its digest; a stale digest is refused.
    let stale_id = operator
        .run({
            let (csrf, digest) = (csrf.clone(), digest.clone());
            move |http| {
                let page = http.get("/devices/mtr-fix").body;
                assert!(page.contains("id=\"fix-plan\""), "{page}");
                assert!(
                    page.contains(r"TLS 1.2\Client\Enabled (native): 0x0 -&gt; 0x1"),
                    "{page}"
                );
                assert_eq!(hidden(&page, "plan").as_deref(), Some(digest.as_str()));
                fix(
                    http,
                    "mtr-fix",
                    serde_json::json!({"command": "fix", "mode": "apply", "plan": "0000000000000000"}),
                    &csrf,
                )
            }
        })
        .await;
    let stale = answered(&console, &stale_id).await;
    assert_eq!(stale.status, Some(ResponseStatus::Rejected));
    assert_eq!(stale.reason.as_deref(), Some("plan_changed"));
    assert!(
        stale
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&digest)),
        "the message names the plan now: {stale:?}"
    );
    // The apply button of the page: its form, posted as the page would.
    let apply_id = operator
        .run({
            let csrf = csrf.clone();
            move |http| {
                let page = http.get("/devices/mtr-fix").body;
                let plan = hidden(&page, "plan").expect("the apply form");
                let sent = http.post_form(
                    "/devices/mtr-fix/commands",
                    &[
                        ("csrf", &csrf),
                        ("command", "fix"),
                        ("mode", "apply"),
                        ("plan", &plan),
                        ("confirm", "yes"),
                    ],
                );
                assert_eq!(sent.status, 303, "{}", sent.body);
                sent.header("location")
                    .and_then(|l| l.split("sent=").nth(1))
                    .and_then(|rest| rest.split('#').next())
                    .expect("the command id")
                    .to_owned()
            }
        })
        .await;
    let applied = answered(&console, &apply_id).await;
    assert_eq!(
        applied.status,
        Some(ResponseStatus::Succeeded),
        "{applied:?}"
    );
    let said = applied.message.clone().unwrap_or_default();
    assert!(said.contains("restart needed"), "{said}");
    assert_eq!(registry.dword(CLIENT, "Enabled").known(), Some(&1));
    let answers = console
        .store()
        .history(&roomready_controller::store::HistoryQuery {
            device: Some(DeviceId::new("mtr-fix").expect("id")),
            kinds: vec![roomready_controller::store::HistoryKind::Response],
            limit: 100,
            ..Default::default()
        })
        .expect("history");
    assert!(
        answers
            .iter()
            .any(|e| e.data["id"] == apply_id.as_str() && e.data["status"] == "accepted"),
        "accepted before succeeded"
    );
    // The check that follows shows the finding gone.
    let wanted = DeviceId::new("mtr-fix").expect("id");
    console
        .until(
            "a state without the SCHANNEL finding",
            |store: &dyn Store| {
                let state = store.device(&wanted).ok()??.state?;
                (!state
                    .findings
                    .iter()
                    .any(|f| f.code == "SCHANNEL_TLS12_CLIENT_DISABLED"))
                .then_some(())
            },
        )
        .await;

    // Undo, and the device without allow_fix.
    let (undo_id, denied_plan) = operator
        .run({
            let csrf = csrf.clone();
            move |http| {
                let page = http.get("/devices/mtr-fix").body;
                assert!(page.contains("Undo the last fix"), "{page}");
                let undo = fix(
                    http,
                    "mtr-fix",
                    serde_json::json!({"command": "fix", "mode": "undo"}),
                    &csrf,
                );
                let plan = fix(
                    http,
                    "mtr-nofix",
                    serde_json::json!({"command": "fix", "mode": "plan"}),
                    &csrf,
                );
                (undo, plan)
            }
        })
        .await;
    let undone = answered(&console, &undo_id).await;
    assert_eq!(undone.status, Some(ResponseStatus::Succeeded), "{undone:?}");
    assert_eq!(
        registry.snapshot(),
        MapRegistry::new().with(CLIENT, "Enabled", 0)
    );
    let denied_plan = answered(&console, &denied_plan).await;
    assert_eq!(
        denied_plan.status,
        Some(ResponseStatus::Succeeded),
        "planning needs no key"
    );
    assert!(
        denied_plan
            .message
            .as_deref()
            .is_some_and(|m| m.contains("needs allow_fix = true")),
        "{denied_plan:?}"
    );
    let denied_apply = operator
        .run({
            let csrf = csrf.clone();
            move |http| {
                fix(
                    http,
                    "mtr-nofix",
                    serde_json::json!({"command": "fix", "mode": "apply", "plan": "0123456789abcdef"}),
                    &csrf,
                )
            }
        })
        .await;
    let denied = answered(&console, &denied_apply).await;
    assert_eq!(denied.status, Some(ResponseStatus::Rejected));
    assert_eq!(denied.reason.as_deref(), Some("not_allowed"));
    assert!(
        denied
            .message
            .as_deref()
            .is_some_and(|m| m.contains("allow_fix = true") && m.contains("mtr-nofix.toml")),
        "{denied:?}"
    );
    assert_eq!(
        denied_registry.snapshot(),
        MapRegistry::new().with(CLIENT, "Enabled", 0),
        "nothing written without allow_fix"
    );

    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_a_registry_answers_not_supported() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 1).await;
    let id = console
        .http
        .run(|http| {
            let csrf =
                roomready_testkit::http::meta(&http.get("/devices/mtr-0001").body, "csrf-token")
                    .expect("a token");
            fix(
                http,
                "mtr-0001",
                serde_json::json!({"command": "fix", "mode": "plan"}),
                &csrf,
            )
        })
        .await;
    let answer = answered(&console, &id).await;
    assert_eq!(answer.status, Some(ResponseStatus::Rejected));
    assert_eq!(answer.reason.as_deref(), Some("not_supported"));
    crate::controller::shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}
