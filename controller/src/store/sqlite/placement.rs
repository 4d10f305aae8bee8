//! Where devices are, in SQLite: the placement columns a state writes (`site`, `room`, `ring`,
//! `tags`, and one `device_tags` row per tag), the device-table filters on them, and the fleet
//! totals by site, ring and tag.

use roomready_protocol::Placement;
use rusqlite::{Connection, Transaction, params};

use crate::store::{GroupTotal, Groups};

use super::rows::{to_i64, to_u64};

/// Tags as the `tags` column holds them: space-separated (a tag has no space).
pub(super) fn join_tags(placement: &Placement) -> String {
    placement
        .tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `tags` column back as a list.
pub(super) fn split_tags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Writes `placement` as device `id`'s, replacing what its previous state said.
pub(super) fn write(
    tx: &Transaction<'_>,
    id: &str,
    placement: &Placement,
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "UPDATE devices SET site = ?2, room = ?3, ring = ?4, tags = ?5, utc_offset = ?6 WHERE \
         id = ?1",
    )?
    .execute(params![
        id,
        placement.site.as_ref().map(|s| s.as_str()),
        placement.room.as_ref().map(|r| r.as_str()),
        placement.ring.map(|r| i64::from(r.get())),
        join_tags(placement),
        placement.utc_offset_minutes.map(|o| i64::from(o.minutes())),
    ])?;
    tx.prepare_cached("DELETE FROM device_tags WHERE device_id = ?1")?
        .execute(params![id])?;
    for tag in placement.tags.iter() {
        tx.prepare_cached("INSERT OR IGNORE INTO device_tags (tag, device_id) VALUES (?1, ?2)")?
            .execute(params![tag.as_str(), id])?;
    }
    Ok(())
}

/// The totals of one grouping: `sql` selects name, devices, not_ready, at_risk, online.
fn totals(conn: &Connection, sql: &str) -> Result<Vec<GroupTotal>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![to_i64(Groups::MAX)], |row| {
        let name = match row.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(n) => n.to_string(),
            _ => row.get::<_, String>(0)?,
        };
        Ok(GroupTotal {
            name,
            devices: to_u64(row.get(1)?),
            not_ready: to_u64(row.get::<_, Option<i64>>(2)?.unwrap_or(0)),
            at_risk: to_u64(row.get::<_, Option<i64>>(3)?.unwrap_or(0)),
            online: to_u64(row.get::<_, Option<i64>>(4)?.unwrap_or(0)),
        })
    })?;
    rows.collect()
}

/// The counted columns of a grouping, over `devices` as `d`.
const COUNTS: &str = "count(*), sum(d.verdict = 'not_ready'), sum(d.verdict = 'at_risk'), \
                      sum(d.presence = 'online')";

/// The fleet by site, ring and tag.
pub(super) fn groups(conn: &Connection) -> Result<Groups, rusqlite::Error> {
    let sites = totals(
        conn,
        &format!(
            "SELECT d.site, {COUNTS} FROM devices d WHERE d.site IS NOT NULL GROUP BY d.site \
             ORDER BY count(*) DESC, d.site LIMIT ?1"
        ),
    )?;
    let rings = totals(
        conn,
        &format!(
            "SELECT d.ring, {COUNTS} FROM devices d WHERE d.ring IS NOT NULL GROUP BY d.ring \
             ORDER BY d.ring LIMIT ?1"
        ),
    )?;
    let tags = totals(
        conn,
        &format!(
            "SELECT t.tag, {COUNTS} FROM device_tags t JOIN devices d ON d.id = t.device_id \
             GROUP BY t.tag ORDER BY count(*) DESC, t.tag LIMIT ?1"
        ),
    )?;
    let (without_site, without_ring): (i64, i64) = conn.query_row(
        "SELECT count(*) FILTER (WHERE site IS NULL), count(*) FILTER (WHERE ring IS NULL) \
         FROM devices",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Groups {
        sites,
        rings,
        tags,
        without_site: to_u64(without_site),
        without_ring: to_u64(without_ring),
    })
}
