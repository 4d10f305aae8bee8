//! Between SQLite rows and the store's types: column lists, row readers, and the text forms of
//! verdicts, kinds, severities, presence and answers as the tables hold them.

use roomready_protocol::{
    Command, DeviceId, DeviceKind, Message, Presence, ResponseStatus, Severity, Timestamp, Verdict,
};
use rusqlite::Row;

use crate::store::{CommandRecord, DeviceRow, FindingRef, HistoryEntry, HistoryKind, StoreError};

use super::db;

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn get_u64(row: &Row<'_>, index: usize) -> Result<u64, StoreError> {
    row.get::<_, i64>(index).map(to_u64).map_err(db)
}

pub(super) fn parse_verdict(text: &str) -> Option<Verdict> {
    Verdict::ALL.into_iter().find(|v| v.as_str() == text)
}

pub(super) fn parse_severity(text: &str) -> Option<Severity> {
    [Severity::Info, Severity::Warning, Severity::Critical]
        .into_iter()
        .find(|s| s.as_str() == text)
}

pub(super) fn parse_kind(text: &str) -> Option<DeviceKind> {
    [
        DeviceKind::TeamsRoomsWindows,
        DeviceKind::SurfaceHub,
        DeviceKind::TeamsRoomsAndroid,
        DeviceKind::Unknown,
    ]
    .into_iter()
    .find(|k| k.as_str() == text)
}

pub(super) fn parse_presence(text: &str) -> Option<Presence> {
    [Presence::Online, Presence::Offline]
        .into_iter()
        .find(|p| p.as_str() == text)
}

pub(super) fn severity_rank(severity: Severity) -> i64 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

pub(super) fn status_name(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Accepted => "accepted",
        ResponseStatus::Rejected => "rejected",
        ResponseStatus::Succeeded => "succeeded",
        ResponseStatus::Failed => "failed",
    }
}

pub(super) fn parse_status(text: &str) -> Option<ResponseStatus> {
    [
        ResponseStatus::Accepted,
        ResponseStatus::Rejected,
        ResponseStatus::Succeeded,
        ResponseStatus::Failed,
    ]
    .into_iter()
    .find(|s| status_name(*s) == text)
}

/// The columns of a [`DeviceRow`], in [`device_row`]'s order.
pub(super) const ROW_COLUMNS: &str = "id, kind, app_version, os_build, agent_version, verdict, top_code, \
                           top_severity, top_title, findings, presence, last_seen, state_ts, \
                           site, room, ring, tags";

/// How many columns [`ROW_COLUMNS`] names: where a query's own columns after them start.
pub(super) const ROW_COLUMN_COUNT: usize = {
    let bytes = ROW_COLUMNS.as_bytes();
    let mut commas = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            commas += 1;
        }
        i += 1;
    }
    commas + 1
};

pub(super) fn device_row(row: &Row<'_>) -> Result<DeviceRow, rusqlite::Error> {
    let id: String = row.get(0)?;
    let id = DeviceId::new(id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let top_finding = match (
        text(6)?,
        text(7)?.and_then(|s| parse_severity(&s)),
        text(8)?,
    ) {
        (Some(code), Some(severity), Some(title)) => Some(FindingRef {
            code,
            severity,
            title,
        }),
        _ => None,
    };
    Ok(DeviceRow {
        id,
        kind: text(1)?.and_then(|k| parse_kind(&k)),
        app_version: text(2)?,
        os_build: text(3)?,
        agent_version: text(4)?,
        verdict: text(5)?.and_then(|v| parse_verdict(&v)),
        top_finding,
        findings: to_u64(row.get(9)?),
        presence: text(10)?.and_then(|p| parse_presence(&p)),
        last_seen: Timestamp::from_unix_ms(to_u64(row.get(11)?)),
        state_ts: row
            .get::<_, Option<i64>>(12)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
        site: text(13)?,
        room: text(14)?,
        ring: row
            .get::<_, Option<i64>>(15)?
            .and_then(|r| u8::try_from(r).ok()),
        tags: super::placement::split_tags(&text(16)?.unwrap_or_default()),
    })
}

pub(super) fn history_entry(row: &Row<'_>) -> Result<HistoryEntry, rusqlite::Error> {
    let device: String = row.get(1)?;
    let device = DeviceId::new(device).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let kind: String = row.get(5)?;
    let kind = HistoryKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown history kind {kind:?}").into(),
        )
    })?;
    let data: String = row.get(6)?;
    Ok(HistoryEntry {
        id: row.get(0)?,
        device,
        at: Timestamp::from_unix_ms(to_u64(row.get(2)?)),
        ts: row
            .get::<_, Option<i64>>(3)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
        seq: row.get::<_, Option<i64>>(4)?.map(to_u64),
        kind,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}

pub(super) fn command_record(row: &Row<'_>) -> Result<CommandRecord, rusqlite::Error> {
    let conversion = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let device: String = row.get(1)?;
    let device = DeviceId::new(device).map_err(|e| conversion(1, e.to_string()))?;
    let command: String = row.get(2)?;
    let command = Command::decode(command.as_bytes()).map_err(|e| conversion(2, e.to_string()))?;
    Ok(CommandRecord {
        id: row.get(0)?,
        device,
        command,
        by: row.get(3)?,
        sent_at: Timestamp::from_unix_ms(to_u64(row.get(4)?)),
        status: row
            .get::<_, Option<String>>(5)?
            .and_then(|s| parse_status(&s)),
        reason: row.get(6)?,
        message: row.get(7)?,
        answered_at: row
            .get::<_, Option<i64>>(8)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
    })
}

pub(super) const COMMAND_COLUMNS: &str =
    "id, device_id, command, by_user, sent_at, status, reason, message, answered_at";
