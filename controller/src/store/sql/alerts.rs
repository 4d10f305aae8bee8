//! Alerts: what the rules read (history after the cursor, offline devices, gaps, expiring
//! certificates), the alerts recorded with the cursor in one transaction (so a restart neither
//! repeats nor loses one), and their deliveries.

use std::time::Duration;

use roomready_protocol::{DeviceId, Message, State, Timestamp};

use super::rows::{HISTORY_COLUMNS, device_id, history_entry, ms, time, to_i64};
use super::{Conn, Row, args};
use crate::store::{AlertOutcome, AlertRecord, AlertScan, NewAlert, StoreError};

/// History entries read per scan; the next scan goes on from the last one.
const HISTORY_BATCH: u64 = 5000;
/// The cursor's name in `alert_cursor`.
const CURSOR: &str = "history";

pub(crate) fn scan(
    conn: &mut dyn Conn,
    offline_before: Timestamp,
    certs_before: Option<Timestamp>,
) -> Result<AlertScan, StoreError> {
    let newest = to_i64(conn.count("SELECT coalesce(max(id), 0) FROM history", &[])?);
    let cursor = conn
        .row(
            "SELECT value FROM alert_cursor WHERE name = ?1",
            args![CURSOR],
        )?
        .map(|r| r.int(0))
        .transpose()?;
    let mut scan = AlertScan {
        cursor: newest,
        previous: cursor,
        ..AlertScan::default()
    };
    if let Some(cursor) = cursor {
        let columns = HISTORY_COLUMNS
            .split(", ")
            .map(|c| format!("h.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        scan.history = conn
            .rows(
                &format!(
                    "SELECT {columns}, d.site FROM history h LEFT JOIN devices d ON \
                     d.id = h.device_id WHERE h.id > ?1 AND h.kind IN ('verdict', 'event') \
                     ORDER BY h.id LIMIT ?2"
                ),
                args![cursor, HISTORY_BATCH],
            )?
            .iter()
            .map(|r| Ok((history_entry(r)?, r.opt_text(7)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if scan.history.len() as u64 == HISTORY_BATCH {
            scan.cursor = scan.history.last().map_or(newest, |(e, _)| e.id);
        }
    }
    // Offline since its presence last changed (the history's presence entry), or, when that
    // entry is past its retention, since it was last heard from.
    scan.offline = conn
        .rows(
            "SELECT id, site, since FROM (SELECT d.id, d.site, coalesce((SELECT max(h.at) FROM \
             history h WHERE h.device_id = d.id AND h.kind = 'presence'), d.last_seen) AS since \
             FROM devices d WHERE d.presence = 'offline') AS offline WHERE since < ?1 \
             ORDER BY id",
            args![ms(offline_before)],
        )?
        .iter()
        .map(|r| Ok((device_id(r, 0)?, r.opt_text(1)?, time(r.int(2)?))))
        .collect::<Result<Vec<_>, StoreError>>()?;
    scan.gaps = conn
        .rows(
            "SELECT id, site, missing - dropped FROM devices WHERE missing > dropped ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Ok((device_id(r, 0)?, r.opt_text(1)?, r.u64(2)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // The task looks every few seconds and its key makes each halt one alert: the last hour is
    // plenty, and a halt older than that (before alerts were on) is left alone.
    let hour_ago = ms(crate::clock::now()).saturating_sub(3_600_000);
    scan.halted = conn
        .rows(
            "SELECT rollout_id, id, detail FROM rollout_log WHERE action = 'halted' AND \
             at >= ?1 ORDER BY id",
            args![hour_ago],
        )?
        .iter()
        .map(|r| Ok((r.int(0)?, r.int(1)?, r.text(2)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    if let Some(before) = certs_before {
        let rows = conn.rows(
            "SELECT id, site, state FROM devices WHERE state LIKE '%\"not_after\"%' ORDER BY id",
            &[],
        )?;
        for row in &rows {
            let id = device_id(row, 0)?;
            let site = row.opt_text(1)?;
            let Ok(state) = State::decode(row.text(2)?.as_bytes()) else {
                continue;
            };
            for endpoint in &state.endpoints {
                let Some(not_after) = endpoint.certificate.as_ref().and_then(|c| c.not_after)
                else {
                    continue;
                };
                if not_after < before {
                    let name = format!("{}:{}", endpoint.host, endpoint.port);
                    scan.certs.push((id.clone(), site.clone(), name, not_after));
                }
            }
        }
    }
    Ok(scan)
}

pub(crate) fn record(
    conn: &mut dyn Conn,
    alerts: &[NewAlert],
    quiet: Duration,
    cursor: i64,
) -> Result<u64, StoreError> {
    let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let mut recorded = 0;
    for alert in alerts {
        let known = conn.count(
            "SELECT count(*) FROM alerts WHERE key = ?1",
            args![alert.key.as_str()],
        )?;
        if known > 0 {
            continue;
        }
        let raised = ms(alert.raised_at);
        if !alert.suppressed && quiet_ms > 0 {
            let recent = conn.count(
                "SELECT count(*) FROM alerts WHERE quiet_key = ?1 AND raised_at > ?2 \
                 AND outcome != 'suppressed'",
                args![alert.quiet_key.as_str(), raised.saturating_sub(quiet_ms)],
            )?;
            if recent > 0 {
                continue;
            }
        }
        let outcome = if alert.suppressed {
            AlertOutcome::Suppressed
        } else {
            AlertOutcome::Pending
        };
        conn.exec(
            "INSERT INTO alerts (rule, key, quiet_key, device_id, site, raised_at, summary, \
             outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                alert.rule,
                alert.key.as_str(),
                alert.quiet_key.as_str(),
                alert.device.as_ref().map(DeviceId::as_str),
                alert.site.as_ref(),
                raised,
                alert.summary.as_str(),
                outcome.as_str(),
            ],
        )?;
        recorded += 1;
    }
    conn.exec(
        "INSERT INTO alert_cursor (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE \
         SET value = CASE WHEN excluded.value > alert_cursor.value THEN excluded.value \
         ELSE alert_cursor.value END",
        args![CURSOR, cursor],
    )?;
    Ok(recorded)
}

const COLUMNS: &str =
    "id, rule, device_id, site, raised_at, summary, outcome, attempts, finished_at, last_error";

fn alert_record(row: &Row) -> Result<AlertRecord, StoreError> {
    let outcome = row.text(6)?;
    Ok(AlertRecord {
        id: row.int(0)?,
        rule: row.text(1)?,
        device: row.opt_text(2)?.and_then(|d| DeviceId::new(d).ok()),
        site: row.opt_text(3)?,
        raised_at: time(row.int(4)?),
        summary: row.text(5)?,
        outcome: AlertOutcome::parse(&outcome).unwrap_or(AlertOutcome::Failed),
        attempts: row.u64(7)?,
        finished_at: row.opt_int(8)?.map(time),
        last_error: row.opt_text(9)?,
    })
}

pub(crate) fn pending(conn: &mut dyn Conn, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
    conn.rows(
        &format!("SELECT {COLUMNS} FROM alerts WHERE outcome = 'pending' ORDER BY id LIMIT ?1"),
        args![limit],
    )?
    .iter()
    .map(alert_record)
    .collect()
}

pub(crate) fn newest(conn: &mut dyn Conn, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
    conn.rows(
        &format!("SELECT {COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?1"),
        args![limit],
    )?
    .iter()
    .map(alert_record)
    .collect()
}

pub(crate) fn finish(
    conn: &mut dyn Conn,
    ids: &[i64],
    outcome: AlertOutcome,
    error: Option<&str>,
    at: Timestamp,
) -> Result<(), StoreError> {
    let finished = (outcome != AlertOutcome::Pending).then(|| ms(at));
    for id in ids {
        conn.exec(
            "UPDATE alerts SET outcome = ?2, attempts = attempts + 1, finished_at = ?3, \
             last_error = ?4 WHERE id = ?1 AND outcome = 'pending'",
            args![*id, outcome.as_str(), finished, error],
        )?;
    }
    Ok(())
}
