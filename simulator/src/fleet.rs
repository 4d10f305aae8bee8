//! Deterministic fleets: the same count always gives the same devices, so a demo or a test run
//! can be compared with the last one.

use roomready_protocol::{DeviceId, DeviceKind, Placement, Ring, Room, Site, Tag, Tags};

use crate::device::{DeviceSpec, SimValue};

/// Teams Rooms app versions cycled through, around the 4.0.64.0 threshold; `None` is a device
/// whose version could not be read.
const APP_VERSIONS: [Option<&str>; 8] = [
    Some("4.0.64.0"),
    Some("4.0.51.0"),
    Some("4.0.105.0"),
    Some("5.2.115.0"),
    Some("4.0.63.0"),
    Some("4.0.76.0"),
    Some("5.1.24.0"),
    None,
];
/// Surface Hub builds cycled through: before TLS 1.2, before the setup fix, at it, current.
const HUB_BUILDS: [&str; 4] = ["15063.1745", "15063.1835", "15063.1897", "19045.4894"];
/// The OS build of the simulated Teams Rooms on Windows devices.
const ROOMS_OS_BUILD: &str = "19045.4894";

/// The sites the demo fleet is spread over, in blocks of [`SITE_BLOCK`] devices.
const SITES: [&str; 3] = ["oslo-hq", "bergen", "london-soho"];
const SITE_BLOCK: usize = 8;

/// Where demo device `n` is: a site by block, a room of its own, ring 0 (pilot) for one device
/// in ten, ring 1 for every third of the rest, ring 2 for the others; Surface Hubs tagged
/// `board`, every fifth device `vip`.
fn demo_placement(n: usize, hub: bool) -> Placement {
    let site = SITES[(n - 1) / SITE_BLOCK % SITES.len()];
    let ring = if n % 10 == 1 {
        0
    } else if n.is_multiple_of(3) {
        1
    } else {
        2
    };
    let tags = [hub.then_some("board"), n.is_multiple_of(5).then_some("vip")]
        .into_iter()
        .flatten()
        .map(|t| Tag::new(t).expect("a valid literal tag"))
        .collect();
    Placement {
        site: Some(Site::new(site).expect("a valid literal site")),
        room: Some(Room::new(format!("Room {n}")).expect("a valid room name")),
        ring: Some(Ring::new(ring).expect("0..=2 is a ring")),
        tags: Tags::new(tags).expect("at most two distinct tags"),
        utc_offset_minutes: None,
    }
}

/// `count` devices: every fourth a Surface Hub (`hub-NNNN`), the rest Teams Rooms on Windows
/// (`mtr-NNNN`), numbered from 1, versions cycling through the lists above, placed by
/// [`demo_placement`].
pub fn demo_fleet(count: usize) -> Vec<DeviceSpec> {
    let mut rooms = 0usize;
    let mut hubs = 0usize;
    (1..=count)
        .map(|n| {
            if n % 4 == 0 {
                hubs += 1;
                DeviceSpec {
                    id: device_id("hub", n),
                    kind: DeviceKind::SurfaceHub,
                    app_version: SimValue::Unreadable,
                    os_build: SimValue::Known(HUB_BUILDS[(hubs - 1) % HUB_BUILDS.len()].to_owned()),
                    registry: Vec::new(),
                    endpoints: Vec::new(),
                    placement: demo_placement(n, true),
                    handshakes: Vec::new(),
                }
            } else {
                rooms += 1;
                DeviceSpec {
                    id: device_id("mtr", n),
                    kind: DeviceKind::TeamsRoomsWindows,
                    app_version: APP_VERSIONS[(rooms - 1) % APP_VERSIONS.len()].into(),
                    os_build: SimValue::Known(ROOMS_OS_BUILD.to_owned()),
                    registry: Vec::new(),
                    endpoints: Vec::new(),
                    placement: demo_placement(n, false),
                    handshakes: Vec::new(),
                }
            }
        })
        .collect()
}

fn device_id(kind: &str, n: usize) -> DeviceId {
    DeviceId::new(format!("{kind}-{n:04}")).expect("kind prefix and digits are a valid device id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_are_deterministic_and_mixed() {
        let fleet = demo_fleet(20);
        assert_eq!(fleet, demo_fleet(20));
        assert_eq!(fleet.len(), 20);
        assert_eq!(fleet[0].id.as_str(), "mtr-0001");
        assert_eq!(fleet[3].id.as_str(), "hub-0004");
        let hubs = fleet
            .iter()
            .filter(|d| d.kind == DeviceKind::SurfaceHub)
            .count();
        assert_eq!(hubs, 5);
        let ids: std::collections::HashSet<_> = fleet.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids.len(), 20, "ids are unique");
        assert_eq!(demo_fleet(10_000).len(), 10_000);
        assert_eq!(demo_fleet(10_000)[9_999].id.as_str(), "hub-10000");
    }
}
