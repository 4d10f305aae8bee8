//! The device page's registry fix, for operators: "plan first, then apply". The "Fix registry…"
//! button sends `fix` with mode `plan`; the device's answer (the plan, device-supplied text,
//! escaped like all of it) is shown here with an "Apply this plan" button that sends mode
//! `apply` with the plan's digest, so the device writes only what the operator saw (it answers
//! `plan_changed` otherwise); "Undo the last fix" sends mode `undo`. The state of the newest
//! `fix` request is read from the commands the page already loads.

use maud::{Markup, html};
use roomready_protocol::fix::{FIX_DIGEST_LEN, FIX_PLAN_PREFIX, fix_plan_digest};
use roomready_protocol::{CommandAction, FixMode, ResponseStatus};

use crate::store::CommandRecord;

/// A `fix` command form: `mode`, and the `plan` digest for `apply`.
fn form(
    device: &str,
    csrf: &str,
    mode: FixMode,
    plan: Option<&str>,
    label: &str,
    confirm: &str,
) -> Markup {
    html! {
        form.command method="post" action={ "/devices/" (device) "/commands" } data-command="fix"
            data-confirm=(confirm) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="command" value="fix";
            input type="hidden" name="mode" value=(mode.as_str());
            @if let Some(plan) = plan { input type="hidden" name="plan" value=(plan); }
            label.confirm { input type="checkbox" name="confirm" value="yes" required; " confirm" }
            button type="submit" data-button={ "fix-" (mode.as_str()) } { (label) }
        }
    }
}

/// The "Fix registry…" button beside the other command forms.
pub(super) fn plan_form(device: &str, csrf: &str) -> Markup {
    form(
        device,
        csrf,
        FixMode::Plan,
        None,
        "Fix registry…",
        &format!(
            "Ask {device} which TLS registry values its findings call for? Nothing is changed yet."
        ),
    )
}

/// The `fix` requests among `commands` (newest first), with their modes.
fn fixes(commands: &[CommandRecord]) -> Vec<(&CommandRecord, FixMode)> {
    commands
        .iter()
        .filter_map(|c| match &c.command.action {
            CommandAction::Fix { mode, .. } => Some((c, *mode)),
            _ => None,
        })
        .collect()
}

/// The plan to offer: the newest plan the device answered with changes to make, unless an
/// apply or undo succeeded after it (the registry it was made from is gone). With its digest.
fn offered<'a>(fixes: &[(&'a CommandRecord, FixMode)]) -> Option<(&'a CommandRecord, &'a str)> {
    let succeeded = |c: &CommandRecord| c.status == Some(ResponseStatus::Succeeded);
    fixes
        .iter()
        .take_while(|(c, mode)| *mode == FixMode::Plan || !succeeded(c))
        .filter(|(c, mode)| *mode == FixMode::Plan && succeeded(c))
        .find_map(|(c, _)| {
            let message = c.message.as_deref()?;
            let digest = fix_plan_digest(message)?;
            (!nothing_to_change(message)).then_some((*c, digest))
        })
}

/// Whether a plan answer says there is nothing to change.
fn nothing_to_change(message: &str) -> bool {
    message
        .get(FIX_PLAN_PREFIX.len() + FIX_DIGEST_LEN..)
        .is_some_and(|rest| rest.starts_with(": nothing to change"))
}

/// The fix section: the newest `fix` request and its answer, the plan on offer with its apply
/// button, and undo.
pub(super) fn panel(device: &str, csrf: &str, commands: &[CommandRecord]) -> Markup {
    let fixes = fixes(commands);
    let offered = offered(&fixes);
    html! {
        section #fix {
            h2 { "Registry fix" }
            p.note {
                "\"Fix registry…\" asks the device for the Windows TLS registry changes its findings call for \
                 (SCHANNEL TLS 1.2 client, WinHTTP DefaultSecureProtocols, .NET SchUseStrongCrypto and \
                 SystemDefaultTlsVersions). The device writes them only with allow_fix = true in its config, \
                 saves the old values first, and needs a restart afterwards."
            }
            @match fixes.first() {
                None => { p #fix-state { "No fix was asked for recently." } }
                Some((record, mode)) => {
                    p #fix-state data-mode=(mode.as_str()) data-command=(record.id) {
                        "Newest: " strong { "fix " (mode.as_str()) } " " code { (record.id) } " — "
                        @match record.status {
                            None => span.pending { "waiting for the device" },
                            Some(status) => {
                                (format!("{status:?}").to_lowercase())
                                @if let Some(reason) = &record.reason { " (" (reason) ")" }
                            }
                        }
                    }
                    @if offered.is_none_or(|(plan, _)| plan.id != record.id) {
                        @if let Some(message) = &record.message { pre #fix-answer { (message) } }
                    }
                }
            }
            @if let Some((plan, digest)) = offered {
                h3 { "Plan " code { (digest) } }
                p { "From " code { (plan.id) } ", sent by " (plan.by) ". Applying it writes exactly these values, \
                     and only while the device would still plan the same." }
                @if let Some(message) = &plan.message { pre #fix-plan { (message) } }
                (form(device, csrf, FixMode::Apply, Some(digest),
                    &format!("Apply plan {digest}"),
                    &format!("Write the registry values of plan {digest} on {device}? The old values are saved first; the device needs a restart afterwards.")))
            }
            (form(device, csrf, FixMode::Undo, None, "Undo the last fix",
                &format!("Restore the registry values {device} saved before its last fix?")))
        }
    }
}

#[cfg(test)]
mod tests {
    use roomready_protocol::{Command, DeviceId, Timestamp};

    use super::*;

    fn record(
        id: &str,
        mode: FixMode,
        status: Option<ResponseStatus>,
        message: &str,
    ) -> CommandRecord {
        CommandRecord {
            id: id.into(),
            device: DeviceId::new("mtr-1").expect("id"),
            command: Command {
                id: id.into(),
                action: CommandAction::Fix { mode, plan: None },
            },
            by: "olga".into(),
            sent_at: Timestamp::from_unix_ms(0),
            status,
            reason: None,
            message: Some(message.into()),
            answered_at: None,
        }
    }

    #[test]
    fn a_plan_answer_offers_to_apply_its_digest_and_escapes_the_device_text() {
        let plan = "plan 0123456789abcdef: 1 change; apply them with this digest, then restart \
                    the device\nX: HKLM\\<script>alert(1)</script> (native): 0x0 -> 0x1";
        let html = panel(
            "mtr-1",
            "token",
            &[record(
                "c-2",
                FixMode::Plan,
                Some(ResponseStatus::Succeeded),
                plan,
            )],
        )
        .into_string();
        assert!(
            html.contains("name=\"plan\" value=\"0123456789abcdef\""),
            "{html}"
        );
        assert!(html.contains("Apply plan 0123456789abcdef"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");

        // A refused apply after it keeps the offer; a succeeded one ends it.
        let refused = record(
            "c-3",
            FixMode::Apply,
            Some(ResponseStatus::Rejected),
            "busy",
        );
        let plan_record = record("c-2", FixMode::Plan, Some(ResponseStatus::Succeeded), plan);
        let html = panel("mtr-1", "t", &[refused, plan_record.clone()]).into_string();
        assert!(html.contains("Apply plan 0123456789abcdef"), "{html}");
        assert!(
            html.contains("id=\"fix-answer\""),
            "the refusal is shown: {html}"
        );
        let done = record(
            "c-4",
            FixMode::Apply,
            Some(ResponseStatus::Succeeded),
            "wrote",
        );
        let html = panel("mtr-1", "t", &[done, plan_record]).into_string();
        assert!(!html.contains("Apply plan"), "{html}");

        // Nothing to change, a plan still waiting, a forged digest: no apply button.
        for (status, message) in [
            (
                Some(ResponseStatus::Succeeded),
                "plan 0123456789abcdef: nothing to change: no finding fix repairs",
            ),
            (None, "plan 0123456789abcdef: 1 change"),
            (
                Some(ResponseStatus::Succeeded),
                "plan \"><b>0123456789: 1 change",
            ),
        ] {
            let html = panel(
                "mtr-1",
                "t",
                &[record("c-3", FixMode::Plan, status, message)],
            )
            .into_string();
            assert!(!html.contains("name=\"mode\" value=\"apply\""), "{html}");
            assert!(html.contains("name=\"mode\" value=\"undo\""), "{html}");
        }
    }
}
