//! The registry fix in a real browser (headless Chromium, the rig of `controller_browser`): an
//! operator clicks "Fix registry…", confirms, and the page shows the device's plan once it is
//! answered; "Apply plan DIGEST", confirmed, writes exactly that plan on the device (an
//! in-process agent on an in-memory registry), and the page shows it succeeded. Every wait is on
//! the page's DOM or the store; skipped with a printed reason without chromium / chromedriver.

use roomready_agent::facts::registry::Registry;
use roomready_controller::users::Role;
use roomready_protocol::DeviceId;
use roomready_testkit::webdriver::{Browser, WebDriverError};
use roomready_tests::WAIT;

use super::controller_browser::{OPERATOR, OrLog, Rig, log_in, wait_live, with_users};
use super::controller_fix::{CLIENT, device};

/// Clicks the button `css`, checks the confirmation asks `question` (in part) and accepts it.
fn click_and_confirm(browser: &Browser, css: &str, question: &str) {
    browser
        .find(css)
        .and_then(|b| b.click())
        .or_log(browser, &format!("click {css}"));
    let asked = browser
        .wait_for("the confirmation", WAIT, |b| b.alert_text())
        .or_log(browser, "the confirmation");
    assert!(asked.contains(question), "{asked:?}");
    browser.accept_alert().or_log(browser, "OK");
}

/// The text of `css` (while the page reloads, the wait sees "no such element" and goes on).
fn text_of(b: &Browser, css: &str) -> Result<Option<String>, WebDriverError> {
    Ok(Some(b.find(css)?.text()?))
}

#[test]
fn an_operator_plans_and_applies_a_fix_by_clicking() {
    let test = "an_operator_plans_and_applies_a_fix_by_clicking";
    let Some(browser) = Browser::for_test(test) else {
        return;
    };
    let rig = Rig::start(0, with_users);
    let dir = tempfile::tempdir().expect("dir");
    let broker = rig.broker_url();
    let (registry, stop) = rig
        .rt
        .block_on(async { device(&broker, "mtr-fix", dir.path(), true) });
    let wanted = DeviceId::new("mtr-fix").expect("id");
    rig.rt
        .block_on(rig.console().until("the device's state", |store| {
            store.device(&wanted).ok()??.state.map(|_| ())
        }));
    let path = "/devices/mtr-fix";
    log_in(&browser, &rig, path, OPERATOR, Role::Operator);
    wait_live(&browser);

    click_and_confirm(
        &browser,
        "form.command[data-command=fix] button[data-button=fix-plan]",
        "Ask mtr-fix which TLS registry values",
    );
    // The answer redraws the page with the plan.
    let plan = browser
        .wait_for("the plan on the page", WAIT, |b| {
            Ok(text_of(b, "#fix-plan")?.filter(|t| t.starts_with("plan ")))
        })
        .or_log(&browser, "the plan");
    assert!(
        plan.contains(r"TLS 1.2\Client\Enabled (native): 0x0 -> 0x1"),
        "{plan:?}"
    );
    let digest = roomready_protocol::fix::fix_plan_digest(&plan)
        .expect("the digest first")
        .to_owned();
    assert_eq!(
        registry.dword(CLIENT, "Enabled").known(),
        Some(&0),
        "nothing written yet"
    );

    let apply = "form.command[data-command=fix] button[data-button=fix-apply]";
    let label = browser
        .find(apply)
        .and_then(|b| b.text())
        .or_log(&browser, "the apply button");
    assert_eq!(label, format!("Apply plan {digest}"));
    click_and_confirm(&browser, apply, &format!("plan {digest} on mtr-fix"));
    let state = browser
        .wait_for("the apply's answer", WAIT, |b| {
            Ok(text_of(b, "#fix-state")?
                .filter(|t| t.contains("fix apply") && t.ends_with("succeeded")))
        })
        .or_log(&browser, "the apply succeeded");
    assert!(state.contains("fix apply"), "{state:?}");
    let answer = browser
        .find("#fix-answer")
        .and_then(|e| e.text())
        .or_log(&browser, "the apply's message");
    assert!(answer.contains("restart needed"), "{answer:?}");
    assert_eq!(registry.dword(CLIENT, "Enabled").known(), Some(&1));
    assert!(
        browser.find(apply).is_err(),
        "the applied plan is no longer offered"
    );
    drop(browser);
    drop(stop);
    rig.finish();
}
