//! Where devices are: the placement columns a state writes (`site`, `room`, `ring`,
//! `tags`, and one `device_tags` row per tag), the device-table filters on them, and the fleet
//! totals by site, ring and tag.

use roomready_protocol::Placement;

use super::{Conn, args};
use crate::store::{GroupTotal, Groups, StoreError};

/// Tags as the `tags` column holds them: space-separated (a tag has no space).
pub(crate) fn join_tags(placement: &Placement) -> String {
    placement
        .tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `tags` column back as a list.
pub(crate) fn split_tags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Writes `placement` as device `id`'s, replacing what its previous state said.
pub(crate) fn write(
    conn: &mut dyn Conn,
    id: &str,
    placement: &Placement,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE devices SET site = ?2, room = ?3, ring = ?4, tags = ?5, utc_offset = ?6 WHERE \
         id = ?1",
        args![
            id,
            placement.site.as_ref().map(|s| s.as_str()),
            placement.room.as_ref().map(|r| r.as_str()),
            placement.ring.map(|r| i64::from(r.get())),
            join_tags(placement),
            placement.utc_offset_minutes.map(|o| i64::from(o.minutes())),
        ],
    )?;
    conn.exec("DELETE FROM device_tags WHERE device_id = ?1", args![id])?;
    for tag in placement.tags.iter() {
        conn.exec(
            "INSERT INTO device_tags (tag, device_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            args![tag.as_str(), id],
        )?;
    }
    Ok(())
}

/// The totals of one grouping: `sql` selects name, devices, not_ready, at_risk, online.
fn totals(conn: &mut dyn Conn, sql: &str) -> Result<Vec<GroupTotal>, StoreError> {
    conn.rows(sql, args![Groups::MAX])?
        .iter()
        .map(|row| {
            Ok(GroupTotal {
                name: row.name(0)?,
                devices: row.u64(1)?,
                not_ready: row.opt_u64(2)?.unwrap_or(0),
                at_risk: row.opt_u64(3)?.unwrap_or(0),
                online: row.opt_u64(4)?.unwrap_or(0),
            })
        })
        .collect()
}

/// The counted columns of a grouping, over `devices` as `d`.
const COUNTS: &str = "count(*), count(*) FILTER (WHERE d.verdict = 'not_ready'), \
                      count(*) FILTER (WHERE d.verdict = 'at_risk'), \
                      count(*) FILTER (WHERE d.presence = 'online')";

/// The fleet by site, ring and tag.
pub(crate) fn groups(conn: &mut dyn Conn) -> Result<Groups, StoreError> {
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
    let row = conn.row(
        "SELECT count(*) FILTER (WHERE site IS NULL), count(*) FILTER (WHERE ring IS NULL) \
         FROM devices",
        &[],
    )?;
    let (without_site, without_ring) = match row {
        Some(row) => (row.u64(0)?, row.u64(1)?),
        None => (0, 0),
    };
    Ok(Groups {
        sites,
        rings,
        tags,
        without_site,
        without_ring,
    })
}
