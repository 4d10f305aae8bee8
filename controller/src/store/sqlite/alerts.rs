//! Alerts in SQLite: what the rules read (history after the cursor, offline devices, gaps,
//! expiring certificates), the alerts recorded with the cursor in one transaction (so a restart
//! neither repeats nor loses one), and their deliveries.

use std::time::Duration;

use roomready_protocol::{DeviceId, Message, State, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::store::{AlertOutcome, AlertRecord, AlertScan, NewAlert};

use super::rows::{history_entry, to_i64, to_u64};

/// History entries read per scan; the next scan goes on from the last one.
const HISTORY_BATCH: i64 = 5000;
/// The cursor's name in `alert_cursor`.
const CURSOR: &str = "history";

fn device(row: &Row<'_>, index: usize) -> Result<DeviceId, rusqlite::Error> {
    let id: String = row.get(index)?;
    DeviceId::new(id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn scan(
    conn: &Connection,
    offline_before: Timestamp,
    certs_before: Option<Timestamp>,
) -> Result<AlertScan, rusqlite::Error> {
    let newest: i64 =
        conn.query_row("SELECT coalesce(max(id), 0) FROM history", [], |r| r.get(0))?;
    let cursor: Option<i64> = conn
        .query_row(
            "SELECT value FROM alert_cursor WHERE name = ?1",
            params![CURSOR],
            |r| r.get(0),
        )
        .optional()?;
    let mut scan = AlertScan {
        cursor: newest,
        previous: cursor,
        ..AlertScan::default()
    };
    if let Some(cursor) = cursor {
        let mut stmt = conn.prepare_cached(
            "SELECT h.id, h.device_id, h.at, h.ts, h.seq, h.kind, h.data, d.site FROM history h \
             LEFT JOIN devices d ON d.id = h.device_id WHERE h.id > ?1 AND \
             h.kind IN ('verdict', 'event') ORDER BY h.id LIMIT ?2",
        )?;
        scan.history = stmt
            .query_map(params![cursor, HISTORY_BATCH], |r| {
                Ok((history_entry(r)?, r.get::<_, Option<String>>(7)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if scan.history.len() as i64 == HISTORY_BATCH {
            scan.cursor = scan.history.last().map_or(newest, |(e, _)| e.id);
        }
    }
    // Offline since its presence last changed (the history's presence entry), or, when that
    // entry is past its retention, since it was last heard from.
    let mut stmt = conn.prepare_cached(
        "SELECT id, site, since FROM (SELECT d.id, d.site, coalesce((SELECT max(h.at) FROM \
         history h WHERE h.device_id = d.id AND h.kind = 'presence'), d.last_seen) AS since \
         FROM devices d WHERE d.presence = 'offline') WHERE since < ?1 ORDER BY id",
    )?;
    scan.offline = stmt
        .query_map(params![to_i64(offline_before.unix_ms())], |r| {
            Ok((
                device(r, 0)?,
                r.get(1)?,
                Timestamp::from_unix_ms(to_u64(r.get(2)?)),
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, site, missing - dropped FROM devices WHERE missing > dropped ORDER BY id",
    )?;
    scan.gaps = stmt
        .query_map([], |r| Ok((device(r, 0)?, r.get(1)?, to_u64(r.get(2)?))))?
        .collect::<Result<Vec<_>, _>>()?;
    // The task looks every few seconds and its key makes each halt one alert: the last hour is
    // plenty, and a halt older than that (before alerts were on) is left alone.
    let hour_ago = to_i64(crate::clock::now().unix_ms()).saturating_sub(3_600_000);
    let mut stmt = conn.prepare_cached(
        "SELECT rollout_id, id, detail FROM rollout_log WHERE action = 'halted' AND at >= ?1 \
         ORDER BY id",
    )?;
    scan.halted = stmt
        .query_map(params![hour_ago], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(before) = certs_before {
        let mut stmt = conn.prepare_cached(
            "SELECT id, site, state FROM devices WHERE state LIKE '%\"not_after\"%' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                device(r, 0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, site, json) = row?;
            let Ok(state) = State::decode(json.as_bytes()) else {
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

pub(super) fn record(
    tx: &Transaction<'_>,
    alerts: &[NewAlert],
    quiet: Duration,
    cursor: i64,
) -> Result<u64, rusqlite::Error> {
    let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
    let mut recorded = 0;
    for alert in alerts {
        let known: bool = tx
            .prepare_cached("SELECT count(*) > 0 FROM alerts WHERE key = ?1")?
            .query_row(params![alert.key], |r| r.get(0))?;
        if known {
            continue;
        }
        let raised = to_i64(alert.raised_at.unix_ms());
        if !alert.suppressed && quiet_ms > 0 {
            let recent: bool = tx
                .prepare_cached(
                    "SELECT count(*) > 0 FROM alerts WHERE quiet_key = ?1 AND raised_at > ?2 \
                     AND outcome != 'suppressed'",
                )?
                .query_row(
                    params![alert.quiet_key, raised.saturating_sub(quiet_ms)],
                    |r| r.get(0),
                )?;
            if recent {
                continue;
            }
        }
        let outcome = if alert.suppressed {
            AlertOutcome::Suppressed
        } else {
            AlertOutcome::Pending
        };
        tx.prepare_cached(
            "INSERT INTO alerts (rule, key, quiet_key, device_id, site, raised_at, summary, \
             outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            alert.rule,
            alert.key,
            alert.quiet_key,
            alert.device.as_ref().map(DeviceId::as_str),
            alert.site,
            raised,
            alert.summary,
            outcome.as_str(),
        ])?;
        recorded += 1;
    }
    tx.prepare_cached(
        "INSERT INTO alert_cursor (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute(params![CURSOR, cursor])?;
    Ok(recorded)
}

const COLUMNS: &str =
    "id, rule, device_id, site, raised_at, summary, outcome, attempts, finished_at, last_error";

fn alert_record(row: &Row<'_>) -> Result<AlertRecord, rusqlite::Error> {
    let device = row
        .get::<_, Option<String>>(2)?
        .and_then(|d| DeviceId::new(d).ok());
    let outcome: String = row.get(6)?;
    Ok(AlertRecord {
        id: row.get(0)?,
        rule: row.get(1)?,
        device,
        site: row.get(3)?,
        raised_at: Timestamp::from_unix_ms(to_u64(row.get(4)?)),
        summary: row.get(5)?,
        outcome: AlertOutcome::parse(&outcome).unwrap_or(AlertOutcome::Failed),
        attempts: to_u64(row.get(7)?),
        finished_at: row
            .get::<_, Option<i64>>(8)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
        last_error: row.get(9)?,
    })
}

pub(super) fn pending(conn: &Connection, limit: u64) -> Result<Vec<AlertRecord>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE outcome = 'pending' ORDER BY id LIMIT ?1"
    ))?;
    stmt.query_map(params![to_i64(limit)], alert_record)?
        .collect()
}

pub(super) fn newest(conn: &Connection, limit: u64) -> Result<Vec<AlertRecord>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?1"
    ))?;
    stmt.query_map(params![to_i64(limit)], alert_record)?
        .collect()
}

pub(super) fn finish(
    tx: &Transaction<'_>,
    ids: &[i64],
    outcome: AlertOutcome,
    error: Option<&str>,
    at: Timestamp,
) -> Result<(), rusqlite::Error> {
    let finished = (outcome != AlertOutcome::Pending).then(|| to_i64(at.unix_ms()));
    for id in ids {
        tx.prepare_cached(
            "UPDATE alerts SET outcome = ?2, attempts = attempts + 1, finished_at = ?3, \
             last_error = ?4 WHERE id = ?1 AND outcome = 'pending'",
        )?
        .execute(params![id, outcome.as_str(), finished, error])?;
    }
    Ok(())
}
