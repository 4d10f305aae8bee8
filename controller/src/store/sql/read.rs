//! The queries behind the pages and the API: the fleet's totals, the device table with its
//! filters, one device, history, findings, commands and undecodable payloads; and retention.

use roomready_protocol::{
    DeviceId, DeviceKind, Message, Presence, Severity, State, Status, Verdict, codes,
};

use super::rows::*;
use super::{Conn, Dialect, Value, args};
use crate::seq::SeqLog;
use crate::store::{
    CommandRecord, DecodeFailure, DeviceDetail, DevicePage, DeviceQuery, DeviceRow, FindingCount,
    FleetSummary, HistoryEntry, HistoryQuery, MAX_DECODE_ERRORS, ObservedFilter, Retention,
    SeqSummary, SortKey, StoreError,
};

pub(crate) fn summary(conn: &mut dyn Conn) -> Result<FleetSummary, StoreError> {
    let mut summary = FleetSummary {
        by_verdict: Verdict::ALL.iter().map(|v| (*v, 0)).collect(),
        ..FleetSummary::default()
    };
    let rows = conn.rows(
        "SELECT verdict, presence, kind, count(*), CAST(sum(missing) AS BIGINT), \
         CAST(sum(CASE WHEN missing < dropped THEN missing ELSE dropped END) AS BIGINT) \
         FROM devices GROUP BY verdict, presence, kind",
        &[],
    )?;
    let mut kinds: Vec<(DeviceKind, u64)> = Vec::new();
    for row in &rows {
        let count = row.u64(3)?;
        summary.devices += count;
        summary.missing += row.opt_u64(4)?.unwrap_or(0);
        summary.missing_explained += row.opt_u64(5)?.unwrap_or(0);
        match row.opt_text(0)?.and_then(|v| parse_verdict(&v)) {
            Some(v) => {
                if let Some(slot) = summary.by_verdict.iter_mut().find(|(x, _)| *x == v) {
                    slot.1 += count;
                }
            }
            None => summary.no_state += count,
        }
        match row.opt_text(1)?.and_then(|p| parse_presence(&p)) {
            Some(Presence::Online) => summary.online += count,
            Some(Presence::Offline) => summary.offline += count,
            None => summary.presence_unknown += count,
        }
        if let Some(kind) = row.opt_text(2)?.and_then(|k| parse_kind(&k)) {
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some(slot) => slot.1 += count,
                None => kinds.push((kind, count)),
            }
        }
    }
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
    summary.by_kind = kinds;
    Ok(summary)
}

pub(crate) fn devices(conn: &mut dyn Conn, query: &DeviceQuery) -> Result<DevicePage, StoreError> {
    let per_page = query.per_page.clamp(1, DeviceQuery::MAX_PER_PAGE);
    let page = query.page.max(1);
    let text_clause: String;
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(verdict) = query.verdict {
        clauses.push("verdict = ?");
        args.push(verdict.as_str().into());
    }
    if let Some(kind) = query.kind {
        clauses.push("kind = ?");
        args.push(kind.as_str().into());
    }
    if let Some(code) = &query.finding {
        clauses.push("id IN (SELECT device_id FROM device_findings WHERE code = ?)");
        args.push(code.into());
    }
    if let Some(observed) = query.observed {
        clauses.push("id IN (SELECT device_id FROM device_findings WHERE code = ?)");
        args.push(codes::OBSERVED_LEGACY_TLS.into());
        if observed == ObservedFilter::LegacyPredictedReady {
            // The prediction's own verdict travels in the state (1.3): observed.predicted.
            clauses.push(match conn.dialect() {
                Dialect::Sqlite => "json_extract(state, '$.observed.predicted') = 'ready'",
                Dialect::Postgres => "(state::jsonb #>> '{observed,predicted}') = 'ready'",
            });
        }
    }
    if let Some(online) = query.online {
        if online {
            clauses.push("presence = 'online'");
        } else {
            clauses.push("(presence IS NULL OR presence != 'online')");
        }
    }
    if let Some(site) = &query.site {
        clauses.push("site = ?");
        args.push(site.into());
    }
    if let Some(ring) = query.ring {
        clauses.push("ring = ?");
        args.push(i64::from(ring).into());
    }
    if let Some(tag) = &query.tag {
        clauses.push("id IN (SELECT device_id FROM device_tags WHERE tag = ?)");
        args.push(tag.into());
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        let text: String = text.chars().take(DeviceQuery::MAX_TEXT).collect();
        // Case-insensitive: SQLite's LIKE is (for ASCII), PostgreSQL's ILIKE.
        let like = match conn.dialect() {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let columns = [
            "id",
            "app_version",
            "os_build",
            "top_code",
            "top_title",
            "site",
            "room",
        ];
        text_clause = format!(
            "({})",
            columns
                .iter()
                .map(|c| format!("{c} {like} ? ESCAPE '\\'"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        clauses.push(&text_clause);
        for _ in 0..7 {
            args.push(pattern.clone().into());
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let direction = if query.descending { "DESC" } else { "ASC" };
    // Text sorts byte by byte in both backends.
    let collate = match conn.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " COLLATE \"C\"",
    };
    let order = match query.sort {
        SortKey::Id => format!("id{collate} {direction}"),
        SortKey::Kind => format!("kind IS NULL, kind{collate} {direction}, id{collate}"),
        SortKey::AppVersion => {
            format!("app_version IS NULL, app_version{collate} {direction}, id{collate}")
        }
        SortKey::OsBuild => {
            format!("os_build IS NULL, os_build{collate} {direction}, id{collate}")
        }
        SortKey::Verdict => {
            format!("verdict_rank IS NULL, verdict_rank {direction}, id{collate}")
        }
        SortKey::TopFinding => format!(
            "top_severity_rank IS NULL, top_severity_rank {direction}, \
             top_code{collate} {direction}, id{collate}"
        ),
        SortKey::LastSeen => format!("last_seen {direction}, id{collate}"),
        SortKey::Online => format!("presence IS NULL, presence {direction}, id{collate}"),
    };
    let total = conn.count(&format!("SELECT count(*) FROM devices{filter}"), &args)?;
    let mut all = args;
    all.push(per_page.into());
    all.push((page - 1).saturating_mul(per_page).into());
    let devices = conn
        .rows(
            &format!("SELECT {ROW_COLUMNS} FROM devices{filter} ORDER BY {order} LIMIT ? OFFSET ?"),
            &all,
        )?
        .iter()
        .map(device_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DevicePage {
        total,
        page,
        per_page,
        devices,
    })
}

pub(crate) fn device(
    conn: &mut dyn Conn,
    id: &DeviceId,
) -> Result<Option<DeviceDetail>, StoreError> {
    let Some(row) = conn.row(
        &format!(
            "SELECT {ROW_COLUMNS}, state, status, seq_ranges, duplicates, dropped, first_seen \
             FROM devices WHERE id = ?1"
        ),
        args![id.as_str()],
    )?
    else {
        return Ok(None);
    };
    let base = ROW_COLUMN_COUNT;
    let ranges = row.text(base + 2)?;
    let log = SeqLog::parse(&ranges).unwrap_or_default();
    let dropped = row.u64(base + 4)?;
    Ok(Some(DeviceDetail {
        row: device_row(&row)?,
        state: row
            .opt_text(base)?
            .and_then(|s| State::decode(s.as_bytes()).ok()),
        status: row
            .opt_text(base + 1)?
            .and_then(|s| Status::decode(s.as_bytes()).ok()),
        seq: SeqSummary {
            highest: log.highest(),
            received: log.received(),
            duplicates: row.u64(base + 3)?,
            missing: log.missing(),
            explained: log.missing().min(dropped),
            ranges,
        },
        first_seen: time(row.int(base + 5)?),
    }))
}

pub(crate) fn history(
    conn: &mut dyn Conn,
    query: &HistoryQuery,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(device) = &query.device {
        clauses.push("device_id = ?".into());
        args.push(device.as_str().into());
    }
    if !query.kinds.is_empty() {
        let marks = vec!["?"; query.kinds.len()].join(", ");
        clauses.push(format!("kind IN ({marks})"));
        args.extend(query.kinds.iter().map(|k| Value::from(k.as_str())));
    }
    if let Some(before) = query.before {
        clauses.push("id < ?".into());
        args.push(before.into());
    }
    if let Some(since) = query.since {
        clauses.push("at >= ?".into());
        args.push(ms(since).into());
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    args.push(query.limit.clamp(1, HistoryQuery::MAX_LIMIT).into());
    conn.rows(
        &format!("SELECT {HISTORY_COLUMNS} FROM history{filter} ORDER BY id DESC LIMIT ?"),
        &args,
    )?
    .iter()
    .map(history_entry)
    .collect()
}

pub(crate) fn findings(conn: &mut dyn Conn) -> Result<Vec<FindingCount>, StoreError> {
    let mut counts: Vec<FindingCount> = Vec::new();
    let rows = conn.rows(
        "SELECT f.code, f.severity, f.title, f.remediation, f.reference, d.verdict, count(*) \
         FROM device_findings f JOIN devices d ON d.id = f.device_id \
         GROUP BY f.code, f.severity, f.title, f.remediation, f.reference, d.verdict \
         ORDER BY f.code",
        &[],
    )?;
    for row in &rows {
        let code = row.text(0)?;
        let severity = parse_severity(&row.text(1)?).unwrap_or(Severity::Info);
        let verdict = row.opt_text(5)?.and_then(|v| parse_verdict(&v));
        let count = row.u64(6)?;
        let entry = match counts.last_mut() {
            Some(last) if last.code == code => last,
            _ => {
                counts.push(FindingCount {
                    code,
                    severity,
                    title: row.text(2)?,
                    remediation: row.text(3)?,
                    reference: row.text(4)?,
                    devices: 0,
                    by_verdict: Vec::new(),
                });
                counts.last_mut().expect("just pushed")
            }
        };
        entry.severity = entry.severity.max(severity);
        entry.devices += count;
        if let Some(verdict) = verdict {
            match entry.by_verdict.iter_mut().find(|(v, _)| *v == verdict) {
                Some(slot) => slot.1 += count,
                None => entry.by_verdict.push((verdict, count)),
            }
        }
    }
    for count in &mut counts {
        count
            .by_verdict
            .sort_by_key(|(v, _)| std::cmp::Reverse(v.rank()));
    }
    counts.sort_by(|a, b| b.devices.cmp(&a.devices).then(a.code.cmp(&b.code)));
    Ok(counts)
}

pub(crate) fn devices_with_finding(
    conn: &mut dyn Conn,
    code: &str,
    limit: u64,
) -> Result<Vec<DeviceRow>, StoreError> {
    conn.rows(
        &format!(
            "SELECT {ROW_COLUMNS} FROM devices WHERE id IN \
             (SELECT device_id FROM device_findings WHERE code = ?1) ORDER BY id LIMIT ?2"
        ),
        args![code, limit],
    )?
    .iter()
    .map(device_row)
    .collect()
}

pub(crate) fn command(conn: &mut dyn Conn, id: &str) -> Result<Option<CommandRecord>, StoreError> {
    conn.row(
        &format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE id = ?1"),
        args![id],
    )?
    .map(|row| command_record(&row))
    .transpose()
}

pub(crate) fn commands(
    conn: &mut dyn Conn,
    device: &DeviceId,
    limit: u64,
) -> Result<Vec<CommandRecord>, StoreError> {
    conn.rows(
        &format!(
            "SELECT {COMMAND_COLUMNS} FROM commands WHERE device_id = ?1 \
             ORDER BY sent_at DESC, rowid DESC LIMIT ?2"
        ),
        args![device.as_str(), limit],
    )?
    .iter()
    .map(command_record)
    .collect()
}

pub(crate) fn decode_failures(conn: &mut dyn Conn) -> Result<Vec<DecodeFailure>, StoreError> {
    conn.rows(
        "SELECT received_at, topic, reason, payload_head, payload_len \
         FROM decode_failures ORDER BY id DESC LIMIT ?1",
        args![MAX_DECODE_ERRORS as u64],
    )?
    .iter()
    .map(|row| {
        Ok(DecodeFailure {
            received_at: time(row.int(0)?),
            topic: row.text(1)?,
            reason: row.text(2)?,
            payload_head: row.text(3)?,
            payload_len: usize::try_from(row.u64(4)?).unwrap_or(usize::MAX),
        })
    })
    .collect()
}

/// Deletes history older than `retention` allows at `now` (inside the caller's transaction);
/// how many history entries went.
pub(crate) fn prune(
    conn: &mut dyn Conn,
    retention: Retention,
    now: roomready_protocol::Timestamp,
) -> Result<u64, StoreError> {
    let day = 86_400_000u64;
    let cutoff = |days: u64| to_i64(now.unix_ms().saturating_sub(days.saturating_mul(day)));
    let events = conn.exec(
        "DELETE FROM history WHERE kind = 'event' AND at < ?1",
        args![cutoff(retention.events_days)],
    )?;
    let transitions = conn.exec(
        "DELETE FROM history WHERE kind != 'event' AND at < ?1",
        args![cutoff(retention.transitions_days)],
    )?;
    conn.exec(
        "DELETE FROM commands WHERE sent_at < ?1",
        args![cutoff(retention.transitions_days)],
    )?;
    Ok(events + transitions)
}
