//! What each alert rule raises from an [`AlertScan`]: pure, so every rule is tested without a
//! store, a clock or a webhook. Each alert carries the key that makes it once (the history
//! entry, the offline spell, the gap count, the certificate) and the quiet key of its rule and
//! device.

use roomready_protocol::{DeviceId, Timestamp, Verdict};

use super::{AlertSettings, Rule};
use crate::store::{AlertScan, HistoryEntry, HistoryKind, NewAlert};

/// The alerts the enabled rules raise from `scan` at `now`.
pub fn raise(settings: &AlertSettings, scan: &AlertScan, now: Timestamp) -> Vec<NewAlert> {
    let on = |rule: Rule| settings.rules.contains(&rule);
    let alert =
        |rule: Rule, device: &DeviceId, site: &Option<String>, key: String, summary| NewAlert {
            rule: rule.as_str(),
            quiet_key: format!("{}/{device}", rule.as_str()),
            key: format!("{}/{device}/{key}", rule.as_str()),
            device: Some(device.clone()),
            site: site.clone(),
            raised_at: now,
            summary,
            suppressed: settings.suppressed(device, site.as_deref()),
        };
    let place = |device: &DeviceId, site: &Option<String>| match site {
        Some(site) => format!("{device} ({site})"),
        None => device.to_string(),
    };
    let mut raised = Vec::new();
    for (entry, site) in &scan.history {
        let device = &entry.device;
        match entry.kind {
            HistoryKind::Verdict if on(Rule::VerdictWorse) => {
                if let Some((from, to)) = worsened(entry) {
                    raised.push(alert(
                        Rule::VerdictWorse,
                        device,
                        site,
                        entry.id.to_string(),
                        format!("{}: verdict {from} → {to}", place(device, site)),
                    ));
                }
            }
            HistoryKind::Event if on(Rule::SeqGap) && entry.data["event"] == "records_dropped" => {
                let count = entry.data["count"].as_u64().unwrap_or(0);
                raised.push(alert(
                    Rule::SeqGap,
                    device,
                    site,
                    format!("dropped/{}", entry.id),
                    format!(
                        "{}: the agent dropped {count} undelivered message(s), its journal \
                         full while the broker was out of reach",
                        place(device, site)
                    ),
                ));
            }
            _ => {}
        }
    }
    if on(Rule::Offline) {
        for (device, site, since) in &scan.offline {
            let minutes = now.unix_ms().saturating_sub(since.unix_ms()) / 60_000;
            raised.push(alert(
                Rule::Offline,
                device,
                site,
                since.unix_ms().to_string(),
                format!(
                    "{}: offline since {} ({minutes} min)",
                    place(device, site),
                    since.to_rfc3339_secs()
                ),
            ));
        }
    }
    if on(Rule::SeqGap) {
        for (device, site, missing) in &scan.gaps {
            raised.push(alert(
                Rule::SeqGap,
                device,
                site,
                format!("missing/{missing}"),
                format!(
                    "{}: {missing} message(s) missing (sequence gaps the device did not report \
                     dropping)",
                    place(device, site)
                ),
            ));
        }
    }
    if on(Rule::CertExpiring) {
        for (device, site, endpoint, not_after) in &scan.certs {
            let days = (i128::from(not_after.unix_ms()) - i128::from(now.unix_ms()))
                .div_euclid(86_400_000);
            let when = if days < 0 {
                format!("expired {}", not_after.to_rfc3339_secs())
            } else {
                format!("expires {} (in {days} days)", not_after.to_rfc3339_secs())
            };
            raised.push(alert(
                Rule::CertExpiring,
                device,
                site,
                format!("{endpoint}/{}", not_after.unix_ms()),
                format!(
                    "{}: the certificate of {endpoint} {when}",
                    place(device, site)
                ),
            ));
        }
    }
    if on(Rule::RolloutHalted) {
        for (rollout, line, reason) in &scan.halted {
            let rule = Rule::RolloutHalted.as_str();
            raised.push(NewAlert {
                rule,
                key: format!("{rule}/{rollout}/{line}"),
                quiet_key: format!("{rule}/{rollout}"),
                device: None,
                site: None,
                raised_at: now,
                summary: format!("rollout {rollout} halted: {reason}"),
                suppressed: false,
            });
        }
    }
    raised
}

/// `(from, to)` when `entry` (a verdict change) made a device worse: to at_risk or not_ready
/// from a better or unknown verdict. A first verdict is not a change.
fn worsened(entry: &HistoryEntry) -> Option<(Verdict, Verdict)> {
    let parse = |v: &serde_json::Value| {
        let text = v.as_str()?;
        Verdict::ALL.into_iter().find(|x| x.as_str() == text)
    };
    let from = parse(&entry.data["from"])?;
    let to = parse(&entry.data["to"])?;
    let worse = match to {
        Verdict::NotReady => from != Verdict::NotReady,
        Verdict::AtRisk => matches!(from, Verdict::Ready | Verdict::Unknown),
        Verdict::Ready | Verdict::Unknown => false,
    };
    worse.then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Suppress;
    use roomready_protocol::Site;

    fn id(name: &str) -> DeviceId {
        DeviceId::new(name).expect("valid id")
    }

    fn verdict(entry_id: i64, device: &str, from: Option<&str>, to: &str) -> HistoryEntry {
        HistoryEntry {
            id: entry_id,
            device: id(device),
            at: Timestamp::from_unix_ms(1000),
            ts: None,
            seq: Some(1),
            kind: HistoryKind::Verdict,
            data: serde_json::json!({ "from": from, "to": to }),
        }
    }

    const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

    #[test]
    fn only_a_worse_verdict_alerts() {
        let scan = AlertScan {
            history: vec![
                (
                    verdict(1, "a", Some("ready"), "not_ready"),
                    Some("oslo".into()),
                ),
                (verdict(2, "b", Some("ready"), "at_risk"), None),
                (verdict(3, "c", Some("not_ready"), "at_risk"), None),
                (verdict(4, "d", None, "not_ready"), None),
                (verdict(5, "e", Some("at_risk"), "ready"), None),
                (verdict(6, "f", Some("unknown"), "not_ready"), None),
            ],
            ..AlertScan::default()
        };
        let raised = raise(&AlertSettings::new("https://hooks.example/x"), &scan, NOW);
        let keys: Vec<&str> = raised.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "verdict_worse/a/1",
                "verdict_worse/b/2",
                "verdict_worse/f/6"
            ]
        );
        assert_eq!(raised[0].summary, "a (oslo): verdict ready → not_ready");
        assert_eq!(raised[0].quiet_key, "verdict_worse/a");
        assert_eq!(raised[0].site.as_deref(), Some("oslo"));
    }

    #[test]
    fn offline_gaps_drops_and_certificates_alert_once_each() {
        let day = 86_400_000;
        let scan = AlertScan {
            history: vec![(
                HistoryEntry {
                    kind: HistoryKind::Event,
                    data: serde_json::json!({ "event": "records_dropped", "count": 120, "total": 345 }),
                    ..verdict(9, "a", None, "ready")
                },
                None,
            )],
            offline: vec![(
                id("b"),
                None,
                Timestamp::from_unix_ms(NOW.unix_ms() - 45 * 60_000),
            )],
            gaps: vec![(id("c"), Some("bergen".into()), 3)],
            certs: vec![(
                id("d"),
                None,
                "pool.contoso.com:443".into(),
                Timestamp::from_unix_ms(NOW.unix_ms() + 10 * day),
            )],
            cursor: 9,
            halted: vec![(
                3,
                40,
                "1 of the 2 devices of ring 0 failed or rolled back".into(),
            )],
            previous: Some(8),
        };
        let raised = raise(&AlertSettings::new("https://hooks.example/x"), &scan, NOW);
        let summaries: Vec<(&str, &str)> = raised
            .iter()
            .map(|a| (a.key.as_str(), a.summary.as_str()))
            .collect();
        assert_eq!(summaries[0].0, "seq_gap/a/dropped/9");
        assert!(
            summaries[0].1.contains("dropped 120 undelivered"),
            "{summaries:?}"
        );
        assert!(summaries[1].0.starts_with("offline/b/"));
        assert!(summaries[1].1.ends_with("(45 min)"), "{summaries:?}");
        assert_eq!(summaries[2].0, "seq_gap/c/missing/3");
        assert!(
            summaries[2]
                .1
                .starts_with("c (bergen): 3 message(s) missing")
        );
        assert!(
            summaries[3]
                .0
                .starts_with("cert_expiring/d/pool.contoso.com:443/")
        );
        assert!(summaries[3].1.ends_with("(in 10 days)"), "{summaries:?}");
        assert_eq!(
            summaries[4],
            (
                "rollout_halted/3/40",
                "rollout 3 halted: 1 of the 2 devices of ring 0 failed or rolled back"
            )
        );
    }

    #[test]
    fn disabled_rules_raise_nothing_and_maintenance_is_marked() {
        let scan = AlertScan {
            history: vec![(
                verdict(1, "a", Some("ready"), "not_ready"),
                Some("oslo".into()),
            )],
            offline: vec![(id("b"), None, Timestamp::from_unix_ms(0))],
            ..AlertScan::default()
        };
        let mut settings = AlertSettings::new("https://hooks.example/x");
        settings.rules = vec![Rule::VerdictWorse];
        settings.suppress = vec![Suppress::Site(Site::new("oslo").expect("site"))];
        let raised = raise(&settings, &scan, NOW);
        assert_eq!(raised.len(), 1, "offline is off");
        assert!(raised[0].suppressed, "oslo is under maintenance");
    }
}
