//! Whether a host is this machine, in every spelling a resolver takes for it: `localhost` (with
//! or without the root's trailing dot, any case), IPv4 127.0.0.0/8 in the forms `inet_aton`
//! accepts (`127.0.0.1`, `127.1`, `0x7f.1`, `0177.0.0.1`, `2130706433`), IPv6 `::1`, and IPv4
//! 127.x addresses mapped into IPv6 (`::ffff:127.0.0.1`). Plain-text connections (`mqtt://`,
//! `http://`) are allowed only to such a host, so a spelling missed here would refuse a safe
//! config, and one wrongly taken would send secrets in the clear.

use std::net::{IpAddr, Ipv4Addr};

/// Whether `host` (a name, or an address with or without IPv6 brackets) is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => inet_aton(host).is_some_and(|v4| v4.is_loopback()),
    }
}

/// An IPv4 address as BSD `inet_aton` reads it: one to four parts, each decimal, octal (leading
/// `0`) or hexadecimal (`0x`), the last one filling the remaining bytes (`127.1` is 127.0.0.1).
fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = text.split('.').map(number).collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|&p| p > 0xff) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len());
    if last_bits < 32 && *last >= 1 << last_bits {
        return None;
    }
    let value = leading
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, &p)| acc | p << (24 - 8 * i));
    Some(Ipv4Addr::from(value))
}

/// One part of an `inet_aton` address.
fn number(part: &str) -> Option<u32> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // "0x" alone is 0 for inet_aton.
        return (radix == 16).then_some(0);
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_this_machine_is_loopback() {
        for host in [
            "localhost",
            "LocalHost",
            "localhost.",
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "127.256",
            "127.255.255.254",
            "0x7f.1",
            "0X7F.0.0.1",
            "0177.0.0.1",
            "2130706433",
            "0x7f000001",
            "::1",
            "[::1]",
            "0:0:0:0:0:0:0:1",
            "::ffff:127.0.0.1",
            "[::ffff:127.9.8.7]",
            "::ffff:7f00:1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn other_hosts_are_not() {
        for host in [
            "broker.example",
            "localhost.example",
            "mylocalhost",
            "128.0.0.1",
            "10.0.0.1",
            "126.255.255.255",
            "0x80.1",
            "::2",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "127.16777216",
            "127.0.0.0.1",
            "127..1",
            "",
            "0x",
            "08.0.0.1",
            "4294967296",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
