//! Schannel's evidence end to end: simulated devices (the real agent library) report what their
//! Schannel logged beside the prediction (state 1.3 `observed`) → the embedded broker → the
//! controller, whose API filters "observed legacy" and "predicted ready, observed legacy" and
//! whose device page shows both.

use roomready_protocol::{DeviceKind, ObservedProtocol, Verdict};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::SimHandshake;
use roomready_tests::console::Console;
use roomready_tests::spec;

use super::controller::shutdown;

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_finds_the_rooms_predicted_ready_that_talk_legacy_tls() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let handshakes = |list: &[(ObservedProtocol, &str, u64)]| {
        list.iter()
            .map(|&(protocol, target, count)| SimHandshake {
                protocol,
                target: target.into(),
                count,
            })
            .collect()
    };
    let rooms = |id: &str, app: &str| {
        spec(
            id,
            DeviceKind::TeamsRoomsWindows,
            Some(app),
            Some("19045.4894"),
        )
    };
    let mut legacy = rooms("mtr-legacy", "5.2.115.0");
    legacy.handshakes = handshakes(&[
        (ObservedProtocol::Tls12, "outlook.office365.com", 40),
        (ObservedProtocol::Tls10, "sfb-pool.contoso.local", 7),
    ]);
    let mut modern = rooms("mtr-modern", "5.2.115.0");
    modern.handshakes = handshakes(&[(ObservedProtocol::Tls12, "teams.microsoft.com", 12)]);
    let mut old_app = rooms("mtr-old-app", "4.0.51.0");
    old_app.handshakes = handshakes(&[(ObservedProtocol::Tls11, "adfs.contoso.local", 2)]);
    let quiet = rooms("mtr-no-evidence", "5.2.115.0");
    let (devices, verdicts) = console
        .fleet_of(&broker.url(), vec![legacy, modern, old_app, quiet])
        .await;
    assert_eq!(
        verdicts["mtr-legacy"],
        Verdict::AtRisk,
        "the evidence: {verdicts:?}"
    );
    assert_eq!(verdicts["mtr-modern"], Verdict::Ready);
    assert_eq!(verdicts["mtr-old-app"], Verdict::NotReady);
    assert_eq!(verdicts["mtr-no-evidence"], Verdict::Ready);

    console
        .http
        .clone()
        .run(|http| {
            let all = http.get("/api/v1/devices?observed=legacy").json();
            assert_eq!(ids(&all), ["mtr-legacy", "mtr-old-app"]);
            let surprising = http
                .get("/api/v1/devices?observed=legacy_predicted_ready")
                .json();
            assert_eq!(ids(&surprising), ["mtr-legacy"]);
            assert_eq!(http.get("/api/v1/devices?observed=maybe").status, 400);

            let detail = http.get("/api/v1/devices/mtr-legacy").json();
            let observed = &detail["state"]["observed"];
            assert_eq!(observed["predicted"], "ready");
            assert_eq!(
                observed["handshakes"][0]["protocol"], "tls1.0",
                "legacy first"
            );
            assert_eq!(
                observed["handshakes"][0]["target"],
                "sfb-pool.contoso.local"
            );
            assert_eq!(observed["handshakes"][0]["count"], 7);
            let codes: Vec<&str> = detail["state"]["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter_map(|f| f["code"].as_str())
                .collect();
            assert!(codes.contains(&"OBSERVED_LEGACY_TLS"), "{codes:?}");

            let page = http.get("/devices/mtr-legacy");
            assert_eq!(page.status, 200);
            for part in [
                "Prediction and evidence",
                "id=\"predicted\"",
                "predicted ready, observed legacy TLS",
                "sfb-pool.contoso.local",
            ] {
                assert!(page.body.contains(part), "{part} on the device page");
            }
            let fleet = http.get("/?observed=legacy_predicted_ready");
            assert!(fleet.body.contains("mtr-legacy"));
            assert!(!fleet.body.contains("data-device=\"mtr-old-app\""));
            // A device without evidence says so.
            let quiet = http.get("/devices/mtr-no-evidence");
            assert!(quiet.body.contains("No Schannel evidence reported"));
        })
        .await;

    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}
