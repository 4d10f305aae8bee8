//! Markup from a device in a real browser (headless Chromium, on `controller_browser`'s rig):
//! ids, versions, finding titles, evidence, remediation, references and rooms holding script and
//! image payloads stay text on the fleet page and the device page, rendered by the server and
//! written by the live updates, and nothing of them runs. And Schannel's evidence as a user
//! meets it: the fleet form's "predicted ready, observed legacy" and the device page beside it.

use roomready_protocol::DeviceId;
use roomready_testkit::webdriver::Browser;
use roomready_tests::WAIT;
use roomready_tests::publish::publish;
use serde_json::{Value, json};

use super::controller_browser::{OrLog, Rig, pick_and_filter, rows, text, wait_live, wait_text};

/// Markup a device might send; each would set `window.roomreadyXss` if it ran.
const SCRIPT_PAYLOAD: &str = "<script>window.roomreadyXss = 'script'</script>";
pub(super) const IMG_PAYLOAD: &str =
    "<img src=x onerror=\"window.roomreadyXss = 'img'; alert('xss')\">";

/// A `state` of the device `mtr-x` with `app_version` and the findings `(code, title,
/// evidence)`, as a hostile device could publish it.
fn hostile_state(seq: u64, app_version: &str, findings: &[(&str, &str, &str)]) -> Vec<u8> {
    let findings: Vec<Value> = findings
        .iter()
        .map(|(code, title, evidence)| {
            json!({
                "code": code,
                "severity": "critical",
                "title": title,
                "evidence": evidence,
                "remediation": format!("<b>update</b> {IMG_PAYLOAD}"),
                "reference": "javascript:alert(1)"
            })
        })
        .collect();
    json!({
        "schema": "roomready.state/1.3",
        "device": "mtr-x",
        "seq": seq,
        "ts": format!("2026-12-01T10:00:0{seq}.000Z"),
        "agent_version": "0.1.0",
        "facts": {"kind": "teams_rooms_windows", "app_version": app_version},
        "verdict": "not_ready",
        "findings": findings,
        // A room is free text: markup in it is valid, and must stay text.
        "placement": {"site": "oslo-hq", "room": IMG_PAYLOAD, "ring": seq % 10},
        // So is a target Schannel logged (no control characters is all it must be).
        "observed": {
            "source": "system_log",
            "window_days": 7,
            "events": 1,
            "handshakes": [{"protocol": "tls1.0", "target": IMG_PAYLOAD, "count": 1,
                            "last": "2026-12-01T09:00:00.000Z"}],
            "predicted": "ready",
        },
    })
    .to_string()
    .into_bytes()
}

/// Asserts that nothing of the payloads became markup or ran: no element a payload would make
/// in the page's main part, no flag set, no dialog open.
pub(super) fn assert_nothing_ran(browser: &Browser, page: &str) {
    assert_eq!(
        browser.alert_text().or_log(browser, "any dialog"),
        None,
        "{page}: no dialog"
    );
    let found = browser
        .execute(
            "return [window.roomreadyXss === undefined,\
                     document.querySelectorAll('main img, main script, main b').length,\
                     Array.from(document.querySelectorAll('main a[href]'))\
                       .filter(a => a.href.startsWith('javascript:')).length];",
            &[],
        )
        .or_log(browser, "looking for what a payload would leave");
    assert_eq!(
        found,
        json!([true, 0, 0]),
        "{page}: no flag, element or link"
    );
}

#[test]
fn markup_from_a_device_shows_as_text_and_never_runs() {
    let test = "markup_from_a_device_shows_as_text_and_never_runs";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(1, |_, _| {});
    let topic = "roomready/v1/mtr-x/state".to_owned();
    let evidence = format!("seen {IMG_PAYLOAD}");
    rig.rt.block_on(async {
        publish(
            &rig.broker_url(),
            "hostile",
            vec![(
                topic.clone(),
                hostile_state(
                    1,
                    IMG_PAYLOAD,
                    &[("TLS12_APP_TOO_OLD", SCRIPT_PAYLOAD, &evidence)],
                ),
                false,
            )],
        )
        .await;
        rig.console()
            .until("the hostile device's state", |store| {
                store.device(&DeviceId::new("mtr-x").ok()?).ok()??.state
            })
            .await;
    });

    // Rendered by the server: the fleet table and the device page.
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page");
    wait_live(&browser);
    let row = "#device-table tr[data-device=\"mtr-x\"]";
    assert_eq!(
        text(&browser, &format!("{row} [data-field=app_version]")),
        IMG_PAYLOAD
    );
    assert_eq!(
        text(&browser, &format!("{row} [data-field=top_finding] .title")),
        SCRIPT_PAYLOAD
    );
    assert_eq!(
        text(&browser, &format!("{row} [data-field=where]")),
        "oslo-hq · ring 1"
    );
    let room = browser
        .execute(
            &format!(
                "return document.querySelector('{}').title;",
                format!("{row} [data-field=where]").replace('\'', "\\'")
            ),
            &[],
        )
        .or_log(&browser, "the room in the where cell's title");
    assert_eq!(room, json!(IMG_PAYLOAD), "the room as a plain title");
    assert_nothing_ran(&browser, "the fleet page");

    browser
        .goto(&rig.url("/devices/mtr-x"))
        .or_log(&browser, "open the device page");
    wait_live(&browser);
    let finding = "#findings tr.finding[data-code=TLS12_APP_TOO_OLD]";
    assert_eq!(text(&browser, &format!("{finding} .title")), SCRIPT_PAYLOAD);
    assert_eq!(text(&browser, &format!("{finding} td.evidence")), evidence);
    assert_eq!(
        text(&browser, &format!("{finding} td.remediation")),
        format!("<b>update</b> {IMG_PAYLOAD}")
    );
    assert!(
        text(&browser, "#facts").contains(IMG_PAYLOAD),
        "the app version as text"
    );
    assert_eq!(
        text(&browser, "#place-room td:nth-child(2)"),
        IMG_PAYLOAD,
        "the room as text"
    );
    assert_eq!(
        text(&browser, "#observed-handshakes tbody tr td:nth-child(2)"),
        IMG_PAYLOAD,
        "the observed target as text"
    );
    assert_nothing_ran(&browser, "the device page");

    // Written by the page's script from the live stream: a new finding appears in the history.
    browser
        .execute(
            "window.roomreadyMark = 'before the update'; return null;",
            &[],
        )
        .or_log(&browser, "mark the page");
    rig.rt.block_on(publish(
        &rig.broker_url(),
        "hostile",
        vec![(
            topic,
            hostile_state(
                2,
                SCRIPT_PAYLOAD,
                &[
                    ("TLS12_APP_TOO_OLD", SCRIPT_PAYLOAD, &evidence),
                    ("OS_BUILD_MISSING", IMG_PAYLOAD, SCRIPT_PAYLOAD),
                ],
            ),
            false,
        )],
    ));
    let appeared = browser
        .wait_for("the new finding in the history, live", WAIT, |b| {
            for entry in b.find_all("#history-list li[data-kind=finding_appeared]")? {
                let text = entry.text()?;
                if text.contains("OS_BUILD_MISSING") {
                    return Ok(Some(text));
                }
            }
            Ok(None)
        })
        .or_log(&browser, "the live history entry");
    assert!(
        appeared.ends_with(&format!("OS_BUILD_MISSING {IMG_PAYLOAD}")),
        "the title as text: {appeared:?}"
    );
    assert_nothing_ran(&browser, "the device page after the live update");
    let mark = browser
        .execute("return window.roomreadyMark || null;", &[])
        .or_log(&browser, "the mark");
    assert_eq!(
        mark,
        json!("before the update"),
        "the update came without a reload"
    );

    // The fleet table's where cell follows a device that moves ring, live, written by app.js.
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page again");
    wait_live(&browser);
    wait_text(
        &browser,
        &format!("{row} [data-field=where]"),
        "oslo-hq · ring 2",
    );
    browser
        .execute("window.roomreadyMark = 'fleet'; return null;", &[])
        .or_log(&browser, "mark the fleet page");
    rig.rt.block_on(publish(
        &rig.broker_url(),
        "hostile",
        vec![(
            "roomready/v1/mtr-x/state".to_owned(),
            hostile_state(3, SCRIPT_PAYLOAD, &[]),
            false,
        )],
    ));
    wait_text(
        &browser,
        &format!("{row} [data-field=where]"),
        "oslo-hq · ring 3",
    );
    assert_nothing_ran(&browser, "the fleet page after the live update");
    assert_eq!(
        browser
            .execute("return window.roomreadyMark || null;", &[])
            .or_log(&browser, "the fleet mark"),
        json!("fleet"),
        "the where cell changed without a reload"
    );
    // The device page's place links to the devices sharing it: its ring, now 3.
    browser
        .goto(&rig.url("/devices/mtr-x"))
        .or_log(&browser, "open the device page again");
    browser
        .find("#place-ring a")
        .and_then(|link| link.click())
        .or_log(&browser, "click its ring");
    browser
        .wait_until("ring 3's devices", WAIT, |b| {
            Ok(b.current_url()?.ends_with("/?ring=3") && b.find("#shown-total")?.text()? == "1")
        })
        .or_log(&browser, "the ring's devices");
    assert_nothing_ran(&browser, "the fleet page of ring 3");
    drop(browser);
    rig.finish();
}

/// A state of `device` whose prediction says `predicted` and whose Schannel logged TLS 1.0.
fn legacy_state(device: &str, predicted: &str, verdict: &str) -> Vec<u8> {
    json!({
        "schema": "roomready.state/1.3",
        "device": device,
        "seq": 1,
        "ts": "2026-12-01T10:00:00.000Z",
        "agent_version": "0.1.0",
        "facts": {"kind": "teams_rooms_windows", "app_version": "5.2.115.0"},
        "verdict": verdict,
        "findings": [{
            "code": "OBSERVED_LEGACY_TLS",
            "severity": "warning",
            "title": "This device negotiated TLS 1.0 3 time(s) recently",
            "evidence": "TLS 1.0 ×3 to sfb-pool.contoso.local",
            "remediation": "Move it to TLS 1.2.",
            "reference": "https://learn.microsoft.com/microsoft-365/compliance/prepare-tls-1.2-in-office-365"
        }],
        "observed": {
            "source": "system_log",
            "window_days": 7,
            "events": 3,
            "handshakes": [{"protocol": "tls1.0", "target": "sfb-pool.contoso.local",
                            "count": 3, "last": "2026-12-01T09:00:00.000Z"}],
            "predicted": predicted,
        },
    })
    .to_string()
    .into_bytes()
}

#[test]
fn the_evidence_filter_finds_the_rooms_predicted_ready_that_talk_legacy_tls() {
    let test = "the_evidence_filter_finds_the_rooms_predicted_ready_that_talk_legacy_tls";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(2, |_, _| {});
    rig.rt.block_on(async {
        publish(
            &rig.broker_url(),
            "evidence",
            vec![
                (
                    "roomready/v1/mtr-surprise/state".to_owned(),
                    legacy_state("mtr-surprise", "ready", "at_risk"),
                    false,
                ),
                (
                    "roomready/v1/mtr-expected/state".to_owned(),
                    legacy_state("mtr-expected", "not_ready", "not_ready"),
                    false,
                ),
            ],
        )
        .await;
        rig.console()
            .until("both states", |store| {
                let a = store
                    .device(&DeviceId::new("mtr-surprise").ok()?)
                    .ok()??
                    .state;
                let b = store
                    .device(&DeviceId::new("mtr-expected").ok()?)
                    .ok()??
                    .state;
                a.and(b)
            })
            .await;
    });

    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page");
    wait_live(&browser);
    // As a user does it: pick the evidence, press Filter.
    pick_and_filter(&browser, "observed", "legacy_predicted_ready");
    browser
        .wait_until("the filtered page", WAIT, |b| {
            Ok(b.current_url()?.contains("observed=legacy_predicted_ready")
                && b.find("#shown-total")?.text()? == "1")
        })
        .or_log(&browser, "the filtered page");
    let shown: Vec<String> = rows(&browser).into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(shown, ["mtr-surprise"], "only the room predicted ready");
    // Its page puts the prediction beside the evidence.
    browser
        .goto(&rig.url("/devices/mtr-surprise"))
        .or_log(&browser, "open its page");
    assert_eq!(text(&browser, "#predicted"), "ready");
    assert_eq!(
        text(&browser, "#observed-legacy"),
        "predicted ready, observed legacy TLS"
    );
    assert_eq!(
        text(&browser, "#observed-handshakes tbody tr td:nth-child(2)"),
        "sfb-pool.contoso.local"
    );
}
