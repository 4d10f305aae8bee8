//! The Teams Rooms app update path end to end: `update_app` on a simulated Teams Rooms device is
//! answered `accepted`, then `succeeded`; `app_update` events bracket it; the check that follows
//! shows the new app version and the verdict it earns. A device without an update command
//! answers `rejected` / `not_configured`.

use std::time::Duration;

use roomready_protocol::{
    AppUpdateStage, DeviceKind, EventBody, ResponseStatus, TopicPrefix, Verdict,
};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::{DeviceEnv, SIM_APP_UPDATE_TO, SimDevice};
use roomready_tests::controller::Controller;
use roomready_tests::{WAIT, spec};

fn cmd(id: &str) -> String {
    format!(r#"{{"schema":"roomready.command/1","id":"{id}","command":"update_app"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_app_raises_the_app_version_and_the_verdict() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let env = DeviceEnv {
        keep_alive: Duration::from_secs(5),
        ..DeviceEnv::new(broker.url(), TopicPrefix::default())
    };
    let rooms = spec(
        "mtr-app",
        DeviceKind::TeamsRoomsWindows,
        Some("4.0.51.0"),
        Some("19045.1"),
    );
    let hub = spec("hub-app", DeviceKind::SurfaceHub, None, Some("15063.1897"));
    let mut controller = Controller::connect(&broker.url(), &rooms.id, "controller-app", false);
    let mut hub_controller = Controller::connect(&broker.url(), &hub.id, "controller-hub", false);
    let _rooms = SimDevice::spawn(rooms, &env);
    let _hub = SimDevice::spawn(hub, &env);

    let before = controller
        .wait_until(WAIT, |s| !s.states.is_empty())
        .await
        .unwrap_or_else(|s| panic!("no first state: {s:?}"));
    assert_eq!(before.states[0].verdict, Verdict::NotReady);

    controller.command(cmd("a-1")).await;
    let seen = controller
        .wait_until(WAIT, |s| {
            s.answers("a-1").len() >= 2
                && s.states
                    .iter()
                    .any(|st| st.facts.app_version.as_deref() == Some(SIM_APP_UPDATE_TO))
        })
        .await
        .unwrap_or_else(|s| panic!("update_app: {:?} / {} states", s.responses, s.states.len()));
    let answers = seen.answers("a-1");
    assert_eq!(answers[0].status, ResponseStatus::Accepted);
    assert_eq!(answers[1].status, ResponseStatus::Succeeded);
    assert!(answers[0].seq < answers[1].seq);
    let stages: Vec<AppUpdateStage> = seen
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::AppUpdate { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        vec![AppUpdateStage::Started, AppUpdateStage::Succeeded]
    );
    let after = seen.states.last().expect("a state after the update");
    assert_eq!(after.facts.app_version.as_deref(), Some(SIM_APP_UPDATE_TO));
    assert_eq!(after.verdict, Verdict::Ready, "5.2.115.0 is past 4.0.64.0");

    hub_controller.command(cmd("h-1")).await;
    let hub_seen = hub_controller
        .wait_until(WAIT, |s| !s.answers("h-1").is_empty())
        .await
        .unwrap_or_else(|s| panic!("hub answer: {:?}", s.responses));
    let answer = hub_seen.answers("h-1")[0];
    assert_eq!(answer.status, ResponseStatus::Rejected);
    assert_eq!(answer.reason.as_deref(), Some("not_configured"));
}
