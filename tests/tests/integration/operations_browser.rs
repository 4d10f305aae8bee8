//! The controller's operations pages in a real browser (headless Chromium over WebDriver, with
//! the rig of `controller_browser`): the alerts page with an alert's delivery, and a rollout
//! started, paused, resumed and aborted by an operator, read by a viewer. Each test skips with a
//! printed reason without chromium / chromedriver, and fails then under
//! `ROOMREADY_REQUIRE_PEERS=1`.

use roomready_controller::users::Role;
use roomready_protocol::DeviceId;
use roomready_testkit::webdriver::Browser;
use roomready_tests::WAIT;
use roomready_tests::publish::publish;
use serde_json::json;

use super::controller_browser::{OPERATOR, OrLog, Rig, VIEWER, log_in, text, with_users};
use super::controller_markup::assert_nothing_ran;

/// The alerts page lists what the rules raised and how its delivery stands: here a webhook that
/// nobody answers (a closed loopback port), so the alert waits, its attempts and the error shown,
/// and the webhook's secret path nowhere on the page.
#[test]
fn the_alerts_page_shows_each_alert_and_its_delivery() {
    let test = "the_alerts_page_shows_each_alert_and_its_delivery";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port");
    let webhook = format!("http://{closed}/webhookb2/SECRET-TOKEN/IncomingWebhook");
    let rig = Rig::start(1, |config, _| {
        let mut settings = roomready_controller::alerts::AlertSettings::new(webhook);
        settings.group = std::time::Duration::from_millis(100);
        config.alerts = Some(settings);
    });
    let state = |seq: u64, verdict: &str| {
        json!({
            "schema": "roomready.state/1.2",
            "device": "mtr-alert",
            "seq": seq,
            "ts": format!("2026-12-01T10:00:0{seq}.000Z"),
            "agent_version": "0.1.0",
            "facts": {"kind": "teams_rooms_windows", "app_version": "4.0.64.0"},
            "verdict": verdict,
            "findings": [],
            "placement": {"site": "oslo-hq"},
        })
        .to_string()
        .into_bytes()
    };
    let topic = "roomready/v1/mtr-alert/state".to_owned();
    rig.rt.block_on(async {
        publish(
            &rig.broker_url(),
            "alerting",
            vec![(topic.clone(), state(1, "ready"), true)],
        )
        .await;
        rig.console()
            .until("mtr-alert's first state", |store| {
                store.device(&DeviceId::new("mtr-alert").ok()?).ok()??.state
            })
            .await;
        publish(
            &rig.broker_url(),
            "alerting",
            vec![(topic, state(2, "not_ready"), true)],
        )
        .await;
        rig.console()
            .until_alerts("a failed delivery attempt", |store| {
                store.alerts(10).ok()?.into_iter().find(|a| a.attempts >= 1)
            })
            .await;
    });
    browser
        .goto(&rig.url("/alerts"))
        .or_log(&browser, "open the alerts page");
    let to = text(&browser, "#alerts-to");
    assert!(to.contains(&format!("http://{closed}")), "{to}");
    let row = "#alerts-table tr[data-outcome=pending]";
    assert_eq!(
        text(&browser, &format!("{row} td.summary")),
        "mtr-alert (oslo-hq): verdict ready → not_ready"
    );
    let delivery = text(&browser, &format!("{row} td.delivery"));
    assert!(delivery.starts_with("pending after "), "{delivery}");
    assert!(delivery.contains("cannot reach the webhook"), "{delivery}");
    let page = browser
        .execute("return document.documentElement.outerHTML;", &[])
        .or_log(&browser, "the page's HTML");
    assert!(
        !page.as_str().unwrap_or_default().contains("SECRET-TOKEN"),
        "the webhook's secret path is never shown"
    );
    assert_nothing_ran(&browser, "the alerts page");
    drop(browser);
    rig.finish();
}

/// An operator starts a rollout from the rollouts page (its window closed, so nothing is sent
/// yet), pauses, resumes and aborts it with the page's buttons; each step is logged with their
/// name; a viewer sees no form and no button.
#[test]
fn an_operator_starts_pauses_resumes_and_aborts_a_rollout_from_the_pages() {
    let test = "an_operator_starts_pauses_resumes_and_aborts_a_rollout_from_the_pages";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(4, with_users);
    log_in(&browser, &rig, "/rollouts", OPERATOR, Role::Operator);
    // A window that opens two hours from now: the rollout runs but sends nothing yet.
    let hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 3600
        + 2)
        % 24;
    let window = format!("{hour:02}:00-{:02}:00", (hour + 1) % 24);
    let form = browser
        .find("#start-rollout")
        .or_log(&browser, "the start form");
    for (name, value) in [
        ("version", "9.9.9"),
        ("rings", "0:1:10,1:2:10,2:5:10"),
        ("halt_after", "10%"),
        ("window", window.as_str()),
    ] {
        form.find(&format!("input[name={name}]"))
            .and_then(|input| input.send_keys(value))
            .or_log(&browser, &format!("type {name}"));
    }
    form.find("button[type=submit]")
        .and_then(|button| button.click())
        .or_log(&browser, "start the rollout");
    browser
        .wait_until("the rollout's page", WAIT, |b| {
            Ok(b.current_url()?.contains("/rollouts/")
                && b.find("#rollout-state")?
                    .attribute("data-state")?
                    .as_deref()
                    == Some("running"))
        })
        .or_log(&browser, "the rollout page");
    let waiting = browser
        .execute(
            "return document.querySelectorAll('table.ring tr[data-stage=waiting]').length;",
            &[],
        )
        .or_log(&browser, "the waiting devices");
    assert_eq!(
        waiting,
        json!(4),
        "every device of the fleet is in a ring, none sent yet"
    );
    for (button, state) in [
        ("pause", "paused"),
        ("resume", "running"),
        ("abort", "aborted"),
    ] {
        browser
            .find(&format!("#rollout-{button}"))
            .and_then(|b| b.click())
            .or_log(&browser, &format!("press {button}"));
        browser
            .wait_until(&format!("the rollout {state}"), WAIT, |b| {
                Ok(b.find("#rollout-state")?
                    .attribute("data-state")?
                    .as_deref()
                    == Some(state))
            })
            .or_log(&browser, state);
    }
    let log = text(&browser, "#rollout-log");
    for action in ["started", "paused", "resumed", "aborted"] {
        assert!(
            log.contains(&format!("{action} by olga")),
            "{action}: {log}"
        );
    }
    assert!(
        browser.find("#rollout-resume").is_err() && browser.find("#rollout-abort").is_err(),
        "an aborted rollout has no buttons"
    );
    let commands = rig
        .console()
        .store()
        .commands(&DeviceId::new("mtr-0001").expect("id"), 10)
        .expect("commands");
    assert!(commands.is_empty(), "the window never opened: {commands:?}");

    // A viewer reads the same pages without the form or the buttons.
    browser
        .execute("document.cookie = ''; return null;", &[])
        .or_log(&browser, "forget the page state");
    drop(browser);
    let Some(viewer) = Browser::for_test(test) else {
        return;
    };
    log_in(&viewer, &rig, "/rollouts", VIEWER, Role::Viewer);
    assert!(
        viewer.find("#start-rollout").is_err(),
        "no start form for a viewer"
    );
    assert_eq!(
        text(&viewer, "#rollouts-table tr[data-state=aborted] td.state"),
        "aborted"
    );
    drop(viewer);
    rig.finish();
}
