//! The controller's dashboard in a real browser: headless Chromium over WebDriver
//! (`roomready_testkit::webdriver`) against a controller started in the test's process, fed by a
//! simulated fleet (real agents with simulated facts) through the embedded broker.
//!
//! What a user sees and does: the fleet totals against the verdicts an independent subscriber
//! saw; the verdict filter used through its form; a device's findings with their remediation;
//! an operator's "Check now", confirmed in the dialog, whose answer and check appear on the page
//! over the live stream without a reload; a viewer without command buttons, and forged posts
//! from the page refused; the fleet by site and ring, followed from its totals and narrowed with
//! the form. Markup from a device is in `controller_markup`, the operations pages (alerts,
//! rollouts) in `operations_browser`, both on this file's rig. The
//! fleet page test takes a screenshot of a mixed fleet at 1280x900, written to
//! `docs/images/fleet.png` when `ROOMREADY_WRITE_SCREENSHOT=1`.
//!
//! Every wait is on a condition (the page's DOM, the controller's store or subscriptions), never
//! a sleep. Each test skips with a printed reason without chromium / chromedriver, and fails
//! then under `ROOMREADY_REQUIRE_PEERS=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use roomready_agent::config::BrokerUrl;
use roomready_controller::config::Config;
use roomready_controller::users::{Role, Users};
use roomready_protocol::{DeviceId, Verdict};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::SimDevice;
use roomready_testkit::webdriver::{Browser, WebDriverError};
use roomready_tests::WAIT;
use roomready_tests::console::Console;
use roomready_tests::publish::publish;
use serde_json::json;

use super::controller_markup::{IMG_PAYLOAD, assert_nothing_ran};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// The size of the screenshot of the fleet page.
const SCREENSHOT_SIZE: (u32, u32) = (1280, 900);
/// Set to `1` to write the fleet page's screenshot to `docs/images/fleet.png`.
const WRITE_SCREENSHOT_ENV: &str = "ROOMREADY_WRITE_SCREENSHOT";

pub(super) const OPERATOR: (&str, &str) = ("olga", "operator-pass");
pub(super) const VIEWER: (&str, &str) = ("vic", "viewer-pass");

/// A broker, a controller on it, and a simulated fleet, on a runtime of their own: the test's
/// thread drives the browser (blocking WebDriver calls) while the runtime's threads serve.
pub(super) struct Rig {
    pub(super) rt: tokio::runtime::Runtime,
    broker: Option<EmbeddedBroker>,
    console: Option<Console>,
    devices: Vec<SimDevice>,
    /// Each device's verdict as an independent subscriber (a dashboard) saw it.
    verdicts: BTreeMap<String, Verdict>,
}

impl Rig {
    /// Starts the broker and a controller (its config changed by `tweak`), waits for the
    /// controller's subscriptions, then starts `count` devices of the demo fleet and waits until
    /// both the dashboard and the controller's store have every device's state.
    pub(super) fn start(count: usize, tweak: impl FnOnce(&mut Config, &Path)) -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let (broker, console, devices, verdicts) = rt.block_on(async {
            let broker = EmbeddedBroker::start().await.expect("the broker starts");
            let console = Console::start(&broker.url(), tweak).await;
            console.subscribed().await;
            let (devices, verdicts) = console.fleet(&broker.url(), count).await;
            (broker, console, devices, verdicts)
        });
        Rig {
            rt,
            broker: Some(broker),
            console: Some(console),
            devices,
            verdicts,
        }
    }

    pub(super) fn console(&self) -> &Console {
        self.console
            .as_ref()
            .expect("the console runs until finish")
    }

    /// The dashboard's URL for `path`.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.console().running.url())
    }

    pub(super) fn broker_url(&self) -> BrokerUrl {
        self.broker.as_ref().expect("the broker runs").url()
    }

    /// The ids of the devices whose verdict is `verdict`, in order.
    fn with_verdict(&self, verdict: Verdict) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|(_, v)| **v == verdict)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Stops the devices, the controller and the broker.
    pub(super) fn finish(mut self) {
        let devices = std::mem::take(&mut self.devices);
        let console = self.console.take();
        let broker = self.broker.take();
        self.rt.block_on(async move {
            for device in devices {
                device.shutdown().await.expect("the device stops");
            }
            if let Some(console) = console {
                console.stop().await;
            }
            if let Some(broker) = broker {
                broker.stop().await.expect("the broker stops");
            }
        });
    }
}

/// A users file in `dir` with the operator [`OPERATOR`] and the viewer [`VIEWER`].
fn users_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("users");
    let mut users = Users::default();
    users
        .add(OPERATOR.0, Role::Operator, OPERATOR.1)
        .expect("add the operator");
    users
        .add(VIEWER.0, Role::Viewer, VIEWER.1)
        .expect("add the viewer");
    users.save(&path).expect("save the users file");
    path
}

pub(super) fn with_users(config: &mut Config, dir: &Path) {
    config.users_file = Some(users_file(dir));
}

/// Panics with the error and the end of chromedriver's log, which shows what the browser did.
pub(super) trait OrLog<T> {
    fn or_log(self, browser: &Browser, what: &str) -> T;
}

impl<T> OrLog<T> for Result<T, WebDriverError> {
    fn or_log(self, browser: &Browser, what: &str) -> T {
        self.unwrap_or_else(|e| {
            let log = browser.driver_log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{what}: {e}\nchromedriver's log (end):\n{}",
                tail.join("\n")
            )
        })
    }
}

/// The rendered text of the first element matching `css`.
pub(super) fn text(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .and_then(|e| e.text())
        .or_log(browser, &format!("the text of {css}"))
}

/// Waits until the first element matching `css` shows `want`.
pub(super) fn wait_text(browser: &Browser, css: &str, want: &str) {
    browser
        .wait_until(&format!("{css} to show {want:?}"), WAIT, |b| {
            Ok(b.find(css)?.text()? == want)
        })
        .or_log(browser, &format!("{css} never showed {want:?}"));
}

/// Waits until the page's script has its live stream open (`#live-state` says `live`): from
/// then on every committed change reaches the page.
pub(super) fn wait_live(browser: &Browser) {
    wait_text(browser, "#live-state", "live");
}

/// Picks `value` in the fleet form's `select` and presses Filter, as a user does.
pub(super) fn pick_and_filter(browser: &Browser, select: &str, value: &str) {
    browser
        .find(&format!(
            "#filters select[name={select}] option[value='{value}']"
        ))
        .and_then(|option| option.click())
        .or_log(browser, &format!("pick {select} {value}"));
    browser
        .find("#filters button[type=submit]")
        .and_then(|button| button.click())
        .or_log(browser, "press Filter");
}

/// The device table's rows as (id, verdict, presence), as rendered.
pub(super) fn rows(browser: &Browser) -> Vec<(String, String, String)> {
    let value = browser
        .execute(
            "return Array.from(document.querySelectorAll('#device-table tbody tr')).map(tr => [\
               tr.dataset.device,\
               tr.querySelector('[data-field=verdict]').innerText.trim(),\
               tr.querySelector('[data-field=presence]').innerText.trim()]);",
            &[],
        )
        .or_log(browser, "reading the device table");
    serde_json::from_value(value).expect("rows of three strings")
}

/// Logs in through the login form as a user would: opens `path`, is sent to the login form,
/// types the name and password, submits, and waits to be back on `path` as `name`.
pub(super) fn log_in(
    browser: &Browser,
    rig: &Rig,
    path: &str,
    (name, password): (&str, &str),
    role: Role,
) {
    browser.goto(&rig.url(path)).or_log(browser, "open a page");
    browser
        .wait_until("the login form", WAIT, |b| {
            Ok(b.current_url()?.contains("/login?next=") && b.find("#login").is_ok())
        })
        .or_log(browser, "sent to the login form");
    let form = browser.find("#login").or_log(browser, "the login form");
    form.find("input[name=name]")
        .and_then(|input| input.send_keys(name))
        .or_log(browser, "type the user name");
    form.find("input[name=password]")
        .and_then(|input| input.send_keys(password))
        .or_log(browser, "type the password");
    form.find("button[type=submit]")
        .and_then(|button| button.click())
        .or_log(browser, "submit the login form");
    let want = rig.url(path);
    let who = format!("{name} ({role})");
    browser
        .wait_until(&format!("{path} as {who}"), WAIT, |b| {
            Ok(b.current_url()? == want && b.find("#who")?.text()? == who)
        })
        .or_log(browser, "logged in");
}

/// A POST made by script from the page (as a forged request would be): `fetch` of `path` with
/// `content_type`, `body` and, when given, the `X-CSRF-Token` header; its status and body.
fn page_post(
    browser: &Browser,
    path: &str,
    content_type: &str,
    body: &str,
    csrf: Option<&str>,
) -> (u64, String) {
    let answer = browser
        .execute(
            "const [path, type, body, csrf] = arguments;\
             const headers = { 'Content-Type': type };\
             if (csrf !== null) headers['X-CSRF-Token'] = csrf;\
             return fetch(path, { method: 'POST', headers, body, credentials: 'same-origin' })\
               .then(async r => [r.status, await r.text()]);",
            &[json!(path), json!(content_type), json!(body), json!(csrf)],
        )
        .or_log(browser, &format!("POST {path} from the page"));
    serde_json::from_value(answer).expect("a status and a body")
}

/// The page's CSRF token, from its `<meta name="csrf-token">`.
fn page_csrf(browser: &Browser) -> String {
    browser
        .find("meta[name=csrf-token]")
        .and_then(|m| m.attribute("content"))
        .or_log(browser, "the page's CSRF token")
        .unwrap_or_default()
}

/// The width and height in a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(PNG_SIGNATURE) && &png[12..16] == b"IHDR",
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

/// Devices shut down in the fleet page test, so the page shows some offline.
const SHUT_DOWN: usize = 3;

#[test]
fn the_fleet_page_shows_the_fleets_totals() {
    let test = "the_fleet_page_shows_the_fleets_totals";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let count = 32;
    let mut rig = Rig::start(count, |_, _| {});
    let distinct: BTreeSet<Verdict> = rig.verdicts.values().copied().collect();
    assert!(
        distinct.len() >= 3,
        "the demo fleet should mix verdicts: {:?}",
        rig.verdicts
    );
    // A few rooms are switched off: the page shows them offline.
    let stopped: Vec<SimDevice> = rig.devices.split_off(count - SHUT_DOWN);
    let offline: BTreeSet<String> = stopped.iter().map(|d| d.spec().id.to_string()).collect();
    rig.rt.block_on(async {
        for device in stopped {
            device.shutdown().await.expect("the device stops");
        }
        rig.console()
            .until("the stopped devices offline", |store| {
                let summary = store.summary().ok()?;
                (summary.offline == SHUT_DOWN as u64).then_some(())
            })
            .await;
    });

    let (width, height) = SCREENSHOT_SIZE;
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page");
    wait_live(&browser);
    let viewport = browser
        .set_viewport_size(width, height)
        .or_log(&browser, "resize the window");
    assert_eq!(viewport, SCREENSHOT_SIZE, "the viewport as asked");
    assert_eq!(
        browser.title().or_log(&browser, "the title"),
        "Fleet · roomready"
    );

    // The totals: every verdict, zeros included, as the devices reported them.
    assert_eq!(text(&browser, "#total-devices"), count.to_string());
    for verdict in Verdict::ALL {
        let want = rig.with_verdict(verdict).len();
        assert_eq!(
            text(&browser, &format!("#total-{}", verdict.as_str())),
            want.to_string(),
            "the {} total",
            verdict.as_str()
        );
    }
    assert_eq!(text(&browser, "#total-no_state"), "0");
    assert_eq!(
        text(&browser, "#total-online"),
        (count - SHUT_DOWN).to_string()
    );
    assert_eq!(text(&browser, "#total-offline"), SHUT_DOWN.to_string());

    // The table: every device once, with its verdict and presence.
    assert_eq!(text(&browser, "#shown-total"), count.to_string());
    let shown = rows(&browser);
    let ids: Vec<&str> = shown.iter().map(|(id, _, _)| id.as_str()).collect();
    let want: Vec<&str> = rig.verdicts.keys().map(String::as_str).collect();
    assert_eq!(ids, want, "the table lists every device, by id");
    for (id, verdict, presence) in &shown {
        assert_eq!(verdict, rig.verdicts[id].as_str(), "{id}'s verdict");
        let want = if offline.contains(id) {
            "offline"
        } else {
            "online"
        };
        assert_eq!(presence, want, "{id}'s presence");
    }
    // The cutover section names what stands in the way of the not ready devices.
    if !rig.with_verdict(Verdict::NotReady).is_empty() {
        assert!(
            text(&browser, "#cutover").contains("TLS12_APP_TOO_OLD"),
            "the cutover lists the old app"
        );
    }

    // The screenshot: after any live highlight has faded, so it shows the page at rest.
    browser
        .wait_until("no row highlighted as just changed", WAIT, |b| {
            Ok(b.find_all(".changed")?.is_empty())
        })
        .or_log(&browser, "the page at rest");
    let png = browser.screenshot_png().or_log(&browser, "a screenshot");
    let ratio = browser
        .execute("return window.devicePixelRatio;", &[])
        .or_log(&browser, "the pixel ratio");
    assert_eq!(ratio.as_f64(), Some(1.0), "one pixel per CSS pixel");
    assert_eq!(png_size(&png), viewport, "the screenshot is the viewport");
    if std::env::var(WRITE_SCREENSHOT_ENV).is_ok_and(|v| v == "1") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate is in the workspace");
        let dir = root.join("docs/images");
        let path = dir.join("fleet.png");
        std::fs::create_dir_all(dir).expect("create docs/images");
        std::fs::write(&path, &png).expect("write the screenshot");
        eprintln!(
            "screenshot: {} ({}x{}, {} bytes)",
            path.display(),
            viewport.0,
            viewport.1,
            png.len()
        );
    }
    drop(browser);
    rig.finish();
}

#[test]
fn filtering_by_not_ready_shows_exactly_those_devices() {
    let test = "filtering_by_not_ready_shows_exactly_those_devices";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let count = 24;
    let rig = Rig::start(count, |_, _| {});
    let want = rig.with_verdict(Verdict::NotReady);
    assert!(
        !want.is_empty() && want.len() < count,
        "the demo fleet has some but not only not_ready devices: {:?}",
        rig.verdicts
    );

    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page");
    wait_live(&browser);
    assert_eq!(rows(&browser).len(), count, "unfiltered, every device");
    // The filter form, as a user fills it: pick the verdict, press Filter.
    pick_and_filter(&browser, "verdict", "not_ready");
    browser
        .wait_until("the filtered page", WAIT, |b| {
            Ok(b.current_url()?.contains("verdict=not_ready")
                && b.find("#shown-total")?.text()? == want.len().to_string())
        })
        .or_log(&browser, "the filtered page");
    let shown = rows(&browser);
    let ids: Vec<String> = shown.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(ids, want, "exactly the not_ready devices");
    assert!(
        shown.iter().all(|(_, verdict, _)| verdict == "not_ready"),
        "{shown:?}"
    );
    // The form keeps the choice.
    let chosen = browser
        .find("#filters select[name=verdict]")
        .and_then(|select| select.property("value"))
        .or_log(&browser, "the chosen verdict");
    assert_eq!(chosen, "not_ready");

    // The totals' cards are links to the same filter: another verdict through its card.
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "back to the fleet");
    let ready = rig.with_verdict(Verdict::Ready);
    browser
        .find("#totals a.card.v-ready")
        .and_then(|card| card.click())
        .or_log(&browser, "click the ready card");
    browser
        .wait_until("the ready devices", WAIT, |b| {
            Ok(b.current_url()?.contains("verdict=ready")
                && b.find("#shown-total")?.text()? == ready.len().to_string())
        })
        .or_log(&browser, "the ready page");
    let ids: Vec<String> = rows(&browser).into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids, ready, "exactly the ready devices");

    // Where devices are: the demo fleet puts devices 9-16 at bergen; its row in the "Where"
    // totals links to them, and the form narrows them to a ring (ring 0 there: device 11).
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "back to the fleet once more");
    assert_eq!(
        text(&browser, "#by-site tr[data-group=bergen] td:nth-child(2)"),
        "8",
        "bergen's devices in the totals"
    );
    browser
        .find("#by-site tr[data-group=bergen] a")
        .and_then(|link| link.click())
        .or_log(&browser, "click bergen");
    browser
        .wait_until("bergen's devices", WAIT, |b| {
            Ok(b.current_url()?.contains("site=bergen") && b.find("#shown-total")?.text()? == "8")
        })
        .or_log(&browser, "the bergen page");
    let places = browser
        .execute(
            "return Array.from(document.querySelectorAll('#device-table tbody [data-field=where]'))\
               .map(td => td.innerText.trim());",
            &[],
        )
        .or_log(&browser, "the where cells");
    let places: Vec<String> = serde_json::from_value(places).expect("a list of texts");
    assert_eq!(places.len(), 8);
    assert!(
        places.iter().all(|p| p.starts_with("bergen · ring ")),
        "{places:?}"
    );
    pick_and_filter(&browser, "ring", "0");
    browser
        .wait_until("bergen's pilot ring", WAIT, |b| {
            let url = b.current_url()?;
            Ok(url.contains("site=bergen")
                && url.contains("ring=0")
                && b.find("#shown-total")?.text()? == "1")
        })
        .or_log(&browser, "the bergen ring 0 page");
    let ids: Vec<String> = rows(&browser).into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids, ["mtr-0011"], "the one pilot device at bergen");
    drop(browser);
    rig.finish();
}

#[test]
fn a_device_page_shows_its_findings_with_remediation() {
    let test = "a_device_page_shows_its_findings_with_remediation";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(8, |_, _| {});
    let id = rig
        .with_verdict(Verdict::NotReady)
        .into_iter()
        .next()
        .expect("the demo fleet has a not_ready device");
    let detail = rig
        .console()
        .store()
        .device(&DeviceId::new(id.as_str()).expect("a device id"))
        .expect("the store answers")
        .expect("the device is stored");
    let stored: BTreeMap<String, (String, String)> = detail
        .state
        .as_ref()
        .expect("the device has a state")
        .findings
        .iter()
        .map(|f| (f.code.clone(), (f.evidence.clone(), f.remediation.clone())))
        .collect();
    assert!(!stored.is_empty(), "a not_ready device has findings");

    // From the fleet table to the device, as a user goes.
    browser
        .goto(&rig.url("/"))
        .or_log(&browser, "open the fleet page");
    browser
        .find(&format!("tr[data-device=\"{id}\"] td.id a"))
        .and_then(|link| link.click())
        .or_log(&browser, "click the device");
    wait_text(&browser, "#device-id", &id);
    assert_eq!(text(&browser, "#summary [data-field=verdict]"), "not_ready");

    let findings = browser
        .execute(
            "return Array.from(document.querySelectorAll('#findings tr.finding')).map(tr => [\
               tr.dataset.code,\
               tr.querySelector('td.evidence').innerText.trim(),\
               tr.querySelector('td.remediation').innerText.trim(),\
               tr.querySelector('td.remediation').getBoundingClientRect().height > 0]);",
            &[],
        )
        .or_log(&browser, "reading the findings");
    let findings: Vec<(String, String, String, bool)> =
        serde_json::from_value(findings).expect("rows of findings");
    let shown: BTreeMap<String, (String, String)> = findings
        .iter()
        .map(|(code, evidence, remediation, _)| {
            (code.clone(), (evidence.clone(), remediation.clone()))
        })
        .collect();
    assert_eq!(
        shown, stored,
        "every finding with its evidence and remediation"
    );
    for (code, _, remediation, visible) in &findings {
        assert!(
            !remediation.is_empty() && *visible,
            "{code}'s remediation is shown"
        );
    }
    assert!(
        shown.contains_key("TLS12_APP_TOO_OLD")
            || shown.contains_key("TLS12_SURFACE_HUB_BUILD_TOO_OLD"),
        "a not_ready device says which version stands in the way: {shown:?}"
    );
    drop(browser);
    rig.finish();
}

#[test]
fn check_now_shows_its_answer_live_without_a_reload() {
    let test = "check_now_shows_its_answer_live_without_a_reload";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(3, with_users);
    let id = "mtr-0001";
    let path = format!("/devices/{id}");
    log_in(&browser, &rig, &path, OPERATOR, Role::Operator);
    wait_live(&browser);
    let last_seen = |b: &Browser| -> Result<Option<String>, WebDriverError> {
        b.find("#summary [data-field=last_seen] time")?
            .attribute("datetime")
    };
    let seen_before = last_seen(&browser).or_log(&browser, "last seen");
    assert!(seen_before.is_some(), "the device was seen");
    let checks = |b: &Browser| -> Result<usize, WebDriverError> {
        let mut n = 0;
        for entry in b.find_all("#history-list li[data-kind=event]")? {
            if entry.text()?.contains("check_completed") {
                n += 1;
            }
        }
        Ok(n)
    };
    let checks_before = checks(&browser).or_log(&browser, "the checks so far");
    // A mark on this document: a reload would make a new one without it.
    browser
        .execute(
            "window.roomreadyMark = 'before the click'; return null;",
            &[],
        )
        .or_log(&browser, "mark the page");

    let button = "form.command[data-command=check_now] button[type=submit]";
    assert_eq!(text(&browser, button), "Check now");
    // First the operator thinks better of it: Cancel sends nothing.
    browser
        .find(button)
        .and_then(|b| b.click())
        .or_log(&browser, "click Check now");
    let question = browser
        .wait_for("the confirmation", WAIT, |b| b.alert_text())
        .or_log(&browser, "the confirmation");
    assert_eq!(question, format!("Send check_now to {id}?"));
    browser.dismiss_alert().or_log(&browser, "Cancel");
    // Then they mean it.
    browser
        .find(button)
        .and_then(|b| b.click())
        .or_log(&browser, "click Check now again");
    browser
        .wait_for("the confirmation", WAIT, |b| b.alert_text())
        .or_log(&browser, "the second confirmation");
    browser.accept_alert().or_log(&browser, "OK");
    let notice = browser
        .wait_for("the command's notice", WAIT, |b| {
            let text = b.find("#command-notice")?.text()?;
            Ok((!text.is_empty()).then_some(text))
        })
        .or_log(&browser, "the notice");
    let command = notice
        .strip_prefix("Sent check_now (")
        .and_then(|rest| rest.split_once(')'))
        .map(|(command, _)| command.to_owned())
        .unwrap_or_else(|| panic!("the notice names the command sent: {notice:?}"));

    // The live stream brings the command, its answer, and the check it asked for.
    let answer = format!("#commands-table tr[data-command=\"{command}\"] [data-field=answer]");
    let answered = browser
        .wait_for("the device's answer in the commands table", WAIT, |b| {
            let text = b.find(&answer)?.text()?;
            Ok(text.starts_with("accepted").then_some(text))
        })
        .or_log(&browser, "the answer");
    browser
        .wait_until("the check's event in the history", WAIT, |b| {
            Ok(checks(b)? > checks_before)
        })
        .or_log(&browser, "the check completed");
    browser
        .wait_until("a later last seen", WAIT, |b| {
            Ok(last_seen(b)? != seen_before)
        })
        .or_log(&browser, "last seen moved");
    let commands = browser
        .find_all("#commands-table tbody tr")
        .or_log(&browser, "the commands");
    assert_eq!(commands.len(), 1, "the cancelled click sent nothing");
    let row = browser
        .find(&format!("#commands-table tr[data-command=\"{command}\"]"))
        .and_then(|row| row.text())
        .or_log(&browser, "the command's row");
    assert!(row.contains(OPERATOR.0), "sent by the operator: {row:?}");

    // The answer as the page renders it when loaded: the status and the device's message.
    assert!(answered.starts_with("accepted: "), "{answered:?}");

    // All of it on the same document: no reload, no form post.
    let mark = browser
        .execute("return window.roomreadyMark || null;", &[])
        .or_log(&browser, "the mark");
    assert_eq!(mark, json!("before the click"), "the page was not reloaded");
    assert_eq!(
        browser.current_url().or_log(&browser, "the URL"),
        rig.url(&path)
    );
    // The store agrees.
    let stored = rig
        .console()
        .store()
        .command(&command)
        .expect("the store answers")
        .expect("the command is stored");
    assert_eq!(stored.by, OPERATOR.0);
    assert_eq!(
        rig.console()
            .store()
            .commands(&DeviceId::new(id).expect("id"), 10)
            .expect("commands")
            .len(),
        1
    );
    drop(browser);
    rig.finish();
}

#[test]
fn a_viewer_sees_no_command_buttons_and_forged_posts_are_refused() {
    let test = "a_viewer_sees_no_command_buttons_and_forged_posts_are_refused";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(2, with_users);
    let id = "mtr-0001";
    let path = format!("/devices/{id}");
    let api = format!("/api/v1/devices/{id}/commands");
    let check_now = r#"{"command":"check_now"}"#;

    log_in(&browser, &rig, &path, VIEWER, Role::Viewer);
    wait_text(&browser, "#device-id", id);
    assert!(
        browser
            .find_all("form.command, #actions")
            .or_log(&browser, "command forms")
            .is_empty(),
        "a viewer gets no command forms"
    );
    let buttons = browser
        .execute(
            "return Array.from(document.querySelectorAll('button')).map(b => b.innerText.trim());",
            &[],
        )
        .or_log(&browser, "the buttons");
    assert_eq!(buttons, json!(["Log out"]), "a viewer's only button");
    // Even with the session's own token, a viewer may not send commands.
    let csrf = page_csrf(&browser);
    assert!(!csrf.is_empty(), "the viewer's page carries a token");
    let (status, body) = page_post(&browser, &api, "application/json", check_now, Some(&csrf));
    assert_eq!(status, 403, "a viewer's command: {body}");
    let (status, body) = page_post(&browser, &api, "application/json", check_now, None);
    assert_eq!(status, 403, "no token: {body}");

    // Log out through the button, log in as the operator.
    browser
        .find("form[action=\"/logout\"] button")
        .and_then(|b| b.click())
        .or_log(&browser, "Log out");
    browser
        .wait_until("the login form after logging out", WAIT, |b| {
            Ok(b.find("#login").is_ok())
        })
        .or_log(&browser, "logged out");
    log_in(&browser, &rig, &path, OPERATOR, Role::Operator);
    assert!(
        !browser
            .find_all("form.command")
            .or_log(&browser, "command forms")
            .is_empty(),
        "an operator gets the command forms"
    );
    let csrf = page_csrf(&browser);
    // Forged: without the token, with another token, with the viewer's old one in a form.
    let (status, body) = page_post(&browser, &api, "application/json", check_now, None);
    assert_eq!(status, 403, "no token: {body}");
    assert!(body.contains("CSRF"), "{body}");
    let (status, body) = page_post(
        &browser,
        &api,
        "application/json",
        check_now,
        Some("not-the-token"),
    );
    assert_eq!(status, 403, "a wrong token: {body}");
    let (status, body) = page_post(
        &browser,
        &format!("/devices/{id}/commands"),
        "application/x-www-form-urlencoded",
        "csrf=not-the-token&command=check_now&confirm=yes",
        None,
    );
    assert_eq!(status, 403, "a form with a wrong token: {body}");
    let (status, body) = page_post(
        &browser,
        &format!("/devices/{id}/commands"),
        "application/x-www-form-urlencoded",
        "command=check_now&confirm=yes",
        None,
    );
    assert_eq!(status, 403, "a form without a token: {body}");
    assert_eq!(
        rig.console()
            .store()
            .commands(&DeviceId::new(id).expect("id"), 10)
            .expect("commands")
            .len(),
        0,
        "nothing forged was sent"
    );
    // The same request with the session's token goes through: the refusals were the token's.
    let (status, body) = page_post(&browser, &api, "application/json", check_now, Some(&csrf));
    assert_eq!(status, 202, "with the token: {body}");
    let commands = rig
        .console()
        .store()
        .commands(&DeviceId::new(id).expect("id"), 10)
        .expect("commands");
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].by, OPERATOR.0);
    drop(browser);
    rig.finish();
}

#[test]
fn the_findings_and_ingest_pages_show_what_the_store_holds() {
    let test = "the_findings_and_ingest_pages_show_what_the_store_holds";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(8, |_, _| {});
    // A payload no decoder takes, with markup in it: kept for the ingest page, shown as text.
    let garbage = format!("not json {IMG_PAYLOAD}");
    rig.rt.block_on(async {
        publish(
            &rig.broker_url(),
            "garbage",
            vec![(
                "roomready/v1/mtr-g/state".to_owned(),
                garbage.clone().into_bytes(),
                false,
            )],
        )
        .await;
        rig.console()
            .until("the undecodable payload in the store", |store| {
                (!store.decode_failures().ok()?.is_empty()).then_some(())
            })
            .await;
    });
    let store = rig.console().store();
    let counts: BTreeMap<String, String> = store
        .findings()
        .expect("the store's findings")
        .into_iter()
        .map(|f| (f.code, f.devices.to_string()))
        .collect();
    assert!(!counts.is_empty(), "the demo fleet has findings");

    // The findings page: every code with its device count.
    browser
        .goto(&rig.url("/findings"))
        .or_log(&browser, "open the findings page");
    let shown = browser
        .execute(
            "return Array.from(document.querySelectorAll('#findings-table tbody tr'))\
               .map(tr => [tr.dataset.code, tr.querySelector('td.num').innerText.trim()]);",
            &[],
        )
        .or_log(&browser, "reading the findings table");
    let shown: BTreeMap<String, String> = serde_json::from_value::<Vec<(String, String)>>(shown)
        .expect("rows of findings")
        .into_iter()
        .collect();
    assert_eq!(shown, counts, "every finding code with its device count");

    // One finding's page, reached by its link: exactly the devices that have it.
    let code = counts.keys().next().expect("a finding").clone();
    browser
        .find(&format!("#findings-table tr[data-code=\"{code}\"] td a"))
        .and_then(|link| link.click())
        .or_log(&browser, "click the finding");
    browser
        .wait_until("the finding's page", WAIT, |b| {
            Ok(b.find("h1")?.text()?.contains(&code))
        })
        .or_log(&browser, "the finding's page never opened");
    let devices = browser
        .execute(
            "return Array.from(document.querySelectorAll('tr[data-device]')).map(tr => tr.dataset.device);",
            &[],
        )
        .or_log(&browser, "reading the finding's devices");
    let devices: BTreeSet<String> = serde_json::from_value(devices).expect("device ids");
    let expected: BTreeSet<String> = store
        .devices_with_finding(&code, 10_000)
        .expect("the store's devices with the finding")
        .into_iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(devices, expected, "the devices with {code}");

    // The ingest page: the undecodable payload, its topic, as text.
    browser
        .goto(&rig.url("/ingest"))
        .or_log(&browser, "open the ingest page");
    let payload = text(&browser, "code.payload");
    assert!(payload.contains(IMG_PAYLOAD), "{payload:?}");
    assert!(
        browser
            .find("main")
            .and_then(|m| m.text())
            .or_log(&browser, "the ingest page's text")
            .contains("roomready/v1/mtr-g/state"),
        "the topic is shown"
    );
    assert_nothing_ran(&browser, "ingest");
    drop(browser);
    rig.finish();
}
