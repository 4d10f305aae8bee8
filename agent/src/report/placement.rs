//! Where the device is, owned here: the keys of [`KEYS`], read from the agent's config file by
//! [`read`] into the protocol's [`Placement`], which every `state` carries (protocol 1.2) so the
//! controller can show, filter and total the fleet by site, ring and tag.
//!
//! ```toml
//! site = "oslo-hq"                       # optional; 1..=64 of A-Z a-z 0-9 . _ -
//! room = "Fjord 4.12"                    # optional; 1..=128 characters, no control characters
//! ring = 1                               # optional; 0..=9, the rollout ring (0 = pilot, first)
//! tags = ["board", "floor-4"]            # optional; at most 16 distinct, 1..=32 of a-z 0-9 . _ - :
//! ```

use crate::keyfile::{KeyFile, KeyFileError};
use roomready_protocol::{Placement, PlacementError, Ring, Room, Site, Tag, Tags};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["site", "room", "ring", "tags"];

/// Reads `site`, `room`, `ring` and `tags`; each is optional, the placement empty without them.
/// A value that breaks the protocol's rule is an error at its line and column.
pub(crate) fn read(file: &mut KeyFile<'_>) -> Result<Placement, KeyFileError> {
    let site = checked(file, "site", Site::new)?;
    let room = checked(file, "room", Room::new)?;
    let ring = match file.integer("ring", 0..=u64::from(Ring::MAX))? {
        Some(ring) => Some(
            Ring::new(*ring.get_ref())
                .map_err(|e| file.error("ring", ring.span(), e.to_string()))?,
        ),
        None => None,
    };
    let mut tags = Vec::new();
    for value in file.string_array("tags")?.unwrap_or_default() {
        let at = |e: PlacementError| file.error("tags", value.span(), e.to_string());
        let tag = Tag::new(value.get_ref().as_str()).map_err(at)?;
        if tags.contains(&tag) {
            return Err(at(PlacementError::DuplicateTag {
                tag: tag.to_string(),
            }));
        }
        if tags.len() == Tags::MAX {
            return Err(at(PlacementError::TooManyTags {
                count: Tags::MAX + 1,
                max: Tags::MAX,
            }));
        }
        tags.push(tag);
    }
    let tags = Tags::new(tags).expect("distinct and within Tags::MAX: checked one by one above");
    Ok(Placement {
        site,
        room,
        ring,
        tags,
        // Not a key: the agent reads it when it starts (`start::from_config`).
        utc_offset_minutes: None,
    })
}

/// The string at `key` made a `T` by `make`, or `None` when absent.
fn checked<T>(
    file: &mut KeyFile<'_>,
    key: &str,
    make: impl Fn(String) -> Result<T, PlacementError>,
) -> Result<Option<T>, KeyFileError> {
    let Some(value) = file.string(key)? else {
        return Ok(None);
    };
    let span = value.span();
    make(value.into_inner())
        .map(Some)
        .map_err(|e| file.error(key, span, e.to_string()))
}
