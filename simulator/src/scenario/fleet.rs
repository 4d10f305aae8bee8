//! A scenario's groups as devices. Each group's values are apportioned exactly by weight
//! (largest remainder), so the counts per value do not depend on the seed; the seed decides
//! which device gets which value. The same scenario and seed always give the same fleet.

use roomready_agent::probe::Endpoint;
use roomready_protocol::DeviceId;

use crate::device::{DeviceSpec, SimValue};
use crate::scenario::model::{Group, Scenario};

/// A small, fast, seedable generator (SplitMix64): enough for shuffles, and the same on every
/// platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let bound = u64::try_from(i + 1).expect("a slice index fits in u64");
            let j = usize::try_from(self.next_u64() % bound).expect("below a slice length");
            items.swap(i, j);
        }
    }
}

/// FNV-1a of `text`: mixes a group's name into the seed, so groups differ from each other.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// How many of `count` devices get each weighted value: exact by largest remainder (ties to the
/// earlier value), summing to `count`.
pub fn apportion(count: u64, weights: &[u32]) -> Vec<u64> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<u64> = weights
        .iter()
        .map(|&w| count * u64::from(w) / total)
        .collect();
    let mut rest = count - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; the sort is stable, so ties keep the file's order.
    order.sort_by_key(|&i| std::cmp::Reverse(count * u64::from(weights[i]) % total));
    for i in order {
        if rest == 0 {
            break;
        }
        shares[i] += 1;
        rest -= 1;
    }
    shares
}

/// `count` values laid out by weight, then shuffled by `rng`.
fn values(count: u64, weighted: &[(SimValue, u32)], rng: &mut SplitMix64) -> Vec<SimValue> {
    let weights: Vec<u32> = weighted.iter().map(|(_, w)| *w).collect();
    let mut out = Vec::new();
    for ((value, _), n) in weighted.iter().zip(apportion(count, &weights)) {
        for _ in 0..n {
            out.push(value.clone());
        }
    }
    rng.shuffle(&mut out);
    out
}

/// A device of the fleet, with its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetDevice {
    /// Index into [`Scenario::groups`].
    pub group: usize,
    pub spec: DeviceSpec,
}

/// The device id of device `n` (from 1) of `group`: `rooms-00001`.
pub fn device_id(group: &Group, n: u64) -> DeviceId {
    DeviceId::new(format!("{}-{n:05}", group.name))
        .expect("group names are checked to be valid device id characters")
}

/// The scenario's devices for `seed`, group by group; `endpoints` are the agent-side endpoints
/// of the scenario's farm (a group's devices probe those it names).
pub fn expand(scenario: &Scenario, seed: u64, endpoints: &[Endpoint]) -> Vec<FleetDevice> {
    let mut fleet = Vec::new();
    for (index, group) in scenario.groups.iter().enumerate() {
        let mut rng = SplitMix64::new(seed ^ fnv(&group.name));
        let apps = values(group.count, &group.app_versions, &mut rng);
        let builds = values(group.count, &group.os_builds, &mut rng);
        let probed: Vec<Endpoint> = endpoints
            .iter()
            .filter(|e| {
                group
                    .endpoints
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(&e.host))
            })
            .cloned()
            .collect();
        for (n, (app, build)) in (1..=group.count).zip(apps.into_iter().zip(builds)) {
            fleet.push(FleetDevice {
                group: index,
                spec: DeviceSpec {
                    id: device_id(group, n),
                    kind: group.kind,
                    app_version: app,
                    os_build: build,
                    registry: group.registry.clone(),
                    endpoints: probed.clone(),
                    placement: group.placement.clone(),
                    handshakes: Vec::new(),
                },
            });
        }
    }
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportioning_is_exact() {
        assert_eq!(apportion(10, &[1, 1]), [5, 5]);
        assert_eq!(apportion(10, &[1, 3]), [3, 7]);
        assert_eq!(apportion(7, &[1, 1, 1]), [3, 2, 2]);
        assert_eq!(apportion(1, &[1, 1]), [1, 0]);
        assert_eq!(apportion(0, &[2, 5]), [0, 0]);
        assert_eq!(apportion(5, &[0, 1]), [0, 5]);
        for count in 0..50 {
            assert_eq!(apportion(count, &[3, 7, 1, 9]).iter().sum::<u64>(), count);
        }
    }

    #[test]
    fn shuffles_depend_on_the_seed_only() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64::new(7).shuffle(&mut a);
        SplitMix64::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..100).collect();
        SplitMix64::new(8).shuffle(&mut c);
        assert_ne!(a, c);
        a.sort_unstable();
        assert_eq!(a, (0..100).collect::<Vec<_>>(), "a permutation");
    }
}
