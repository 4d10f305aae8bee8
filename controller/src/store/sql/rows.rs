//! Between result rows and the store's types: column lists, row readers, and the text forms of
//! verdicts, kinds, severities, presence and answers as the tables hold them.

use roomready_protocol::{
    Command, DeviceId, DeviceKind, Message, Presence, ResponseStatus, Severity, Timestamp, Verdict,
};

use super::Row;
use crate::store::{CommandRecord, DeviceRow, FindingRef, HistoryEntry, HistoryKind, StoreError};

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A time the tables hold as Unix milliseconds.
pub(crate) fn time(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(to_u64(ms))
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    to_i64(t.unix_ms())
}

pub(crate) fn device_id(row: &Row, index: usize) -> Result<DeviceId, StoreError> {
    DeviceId::new(row.text(index)?)
        .map_err(|e| StoreError::Database(format!("column {index}: not a device id: {e}")))
}

pub(crate) fn parse_verdict(text: &str) -> Option<Verdict> {
    Verdict::ALL.into_iter().find(|v| v.as_str() == text)
}

pub(crate) fn parse_severity(text: &str) -> Option<Severity> {
    [Severity::Info, Severity::Warning, Severity::Critical]
        .into_iter()
        .find(|s| s.as_str() == text)
}

pub(crate) fn parse_kind(text: &str) -> Option<DeviceKind> {
    [
        DeviceKind::TeamsRoomsWindows,
        DeviceKind::SurfaceHub,
        DeviceKind::TeamsRoomsAndroid,
        DeviceKind::Unknown,
    ]
    .into_iter()
    .find(|k| k.as_str() == text)
}

pub(crate) fn parse_presence(text: &str) -> Option<Presence> {
    [Presence::Online, Presence::Offline]
        .into_iter()
        .find(|p| p.as_str() == text)
}

pub(crate) fn severity_rank(severity: Severity) -> i64 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

pub(crate) fn status_name(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Accepted => "accepted",
        ResponseStatus::Rejected => "rejected",
        ResponseStatus::Succeeded => "succeeded",
        ResponseStatus::Failed => "failed",
    }
}

pub(crate) fn parse_status(text: &str) -> Option<ResponseStatus> {
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
pub(crate) const ROW_COLUMNS: &str = "id, kind, app_version, os_build, agent_version, verdict, \
                                      top_code, top_severity, top_title, findings, presence, \
                                      last_seen, state_ts, site, room, ring, tags";

/// How many columns [`ROW_COLUMNS`] names: where a query's own columns after them start.
pub(crate) const ROW_COLUMN_COUNT: usize = {
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

pub(crate) fn device_row(row: &Row) -> Result<DeviceRow, StoreError> {
    let top_finding = match (
        row.opt_text(6)?,
        row.opt_text(7)?.and_then(|s| parse_severity(&s)),
        row.opt_text(8)?,
    ) {
        (Some(code), Some(severity), Some(title)) => Some(FindingRef {
            code,
            severity,
            title,
        }),
        _ => None,
    };
    Ok(DeviceRow {
        id: device_id(row, 0)?,
        kind: row.opt_text(1)?.and_then(|k| parse_kind(&k)),
        app_version: row.opt_text(2)?,
        os_build: row.opt_text(3)?,
        agent_version: row.opt_text(4)?,
        verdict: row.opt_text(5)?.and_then(|v| parse_verdict(&v)),
        top_finding,
        findings: row.u64(9)?,
        presence: row.opt_text(10)?.and_then(|p| parse_presence(&p)),
        last_seen: time(row.int(11)?),
        state_ts: row.opt_int(12)?.map(time),
        site: row.opt_text(13)?,
        room: row.opt_text(14)?,
        ring: row.opt_int(15)?.and_then(|r| u8::try_from(r).ok()),
        tags: super::placement::split_tags(&row.opt_text(16)?.unwrap_or_default()),
    })
}

/// The columns of a [`HistoryEntry`], in [`history_entry`]'s order.
pub(crate) const HISTORY_COLUMNS: &str = "id, device_id, at, ts, seq, kind, data";

pub(crate) fn history_entry(row: &Row) -> Result<HistoryEntry, StoreError> {
    let kind = row.text(5)?;
    let kind = HistoryKind::parse(&kind)
        .ok_or_else(|| StoreError::Database(format!("column 5: unknown history kind {kind:?}")))?;
    Ok(HistoryEntry {
        id: row.int(0)?,
        device: device_id(row, 1)?,
        at: time(row.int(2)?),
        ts: row.opt_int(3)?.map(time),
        seq: row.opt_u64(4)?,
        kind,
        data: serde_json::from_str(&row.text(6)?).unwrap_or(serde_json::Value::Null),
    })
}

pub(crate) fn command_record(row: &Row) -> Result<CommandRecord, StoreError> {
    let command = row.text(2)?;
    let command = Command::decode(command.as_bytes())
        .map_err(|e| StoreError::Database(format!("column 2: not a command: {e}")))?;
    Ok(CommandRecord {
        id: row.text(0)?,
        device: device_id(row, 1)?,
        command,
        by: row.text(3)?,
        sent_at: time(row.int(4)?),
        status: row.opt_text(5)?.and_then(|s| parse_status(&s)),
        reason: row.opt_text(6)?,
        message: row.opt_text(7)?,
        answered_at: row.opt_int(8)?.map(time),
    })
}

pub(crate) const COMMAND_COLUMNS: &str =
    "id, device_id, command, by_user, sent_at, status, reason, message, answered_at";
