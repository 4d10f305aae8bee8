//! What to probe: an endpoint as the admin names it (`[ROLE=]HOST[:PORT][@SFB_VERSION]`), the
//! Microsoft 365 hosts that `microsoft365` stands for, and `HOST:PORT:ADDRESS` entries that name
//! the address to connect to while SNI and the certificate's name check stay on the host name
//! (`check --resolve`, config key `resolve`, after curl's `--resolve`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use roomready_protocol::EndpointRole;

/// An endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name (sent as SNI, checked against the certificate) or an IP address (no SNI: RFC
    /// 6066 allows only names; the certificate must then hold the address).
    pub host: String,
    pub port: u16,
    pub role: EndpointRole,
    /// For `onprem_sfb`: the server version, when known (`6.0.9319.548`).
    pub sfb_version: Option<String>,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    /// `[ROLE=]HOST[:PORT][@SFB_VERSION]`: `HOST[:PORT]` or `[V6]:PORT` (an IPv6 address always
    /// in brackets: `::1:443` could be either address or port), port 443 by default, role
    /// `custom` by default (`microsoft365`, `onprem_sfb`, `adfs`, `custom`), and for
    /// `onprem_sfb` optionally the server version, e.g. `onprem_sfb=pool.contoso.com@6.0.9319.548`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let full = text;
        let (role, text) = match text.split_once('=') {
            Some((role, rest)) => {
                let found = EndpointRole::ALL.into_iter().find(|r| r.as_str() == role);
                let Some(role) = found else {
                    return Err(format!(
                        "unknown endpoint role {role:?} in {full:?}; expected microsoft365, onprem_sfb, adfs or custom"
                    ));
                };
                (role, rest)
            }
            None => (EndpointRole::Custom, text),
        };
        let (text, sfb_version) = match text.rsplit_once('@') {
            Some((rest, version)) if role == EndpointRole::OnpremSfb => {
                version
                    .parse::<roomready_protocol::AppVersion>()
                    .map_err(|e| format!("Skype for Business Server version in {full:?}: {e}"))?;
                (rest, Some(version.to_owned()))
            }
            Some(_) => {
                return Err(format!(
                    "a server version (@…) is only for onprem_sfb: {full:?}"
                ));
            }
            None => (text, None),
        };
        let (host, port) = host_port(text)?;
        Ok(Endpoint {
            host: host.to_owned(),
            port: port.unwrap_or(443),
            role,
            sfb_version,
        })
    }
}

/// Splits `HOST[:PORT]` or `[V6][:PORT]`; a bare IPv6 address is refused as ambiguous.
fn host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {text:?}; expected [V6]:PORT"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "{host:?} in {text:?} is not an IPv6 address; brackets are for IPv6 only"
            ));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("unexpected {after:?} after ']' in {text:?}; expected [V6]:PORT")
            })?),
        };
        (host, port)
    } else {
        if text.matches(':').count() > 1 {
            return Err(format!(
                "{text:?} is ambiguous: write an IPv6 address in brackets, [V6]:PORT (e.g. [::1]:443), or [V6] for port 443"
            ));
        }
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("invalid host in {text:?}; expected HOST[:PORT]"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port in {text:?}; expected 1..=65535"))?,
        ),
    };
    Ok((host, port))
}

/// Whether `host` is an IP address (probed without SNI) rather than a name.
pub(crate) fn is_ip_address(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// The Microsoft 365 endpoints probed by default (role `microsoft365`, port 443): Teams,
/// Exchange Online and Entra ID sign-in, the services a Teams Rooms device talks to.
pub(crate) const MICROSOFT365_HOSTS: [&str; 3] = [
    "teams.microsoft.com",
    "outlook.office365.com",
    "login.microsoftonline.com",
];

/// The entry that stands for [`MICROSOFT365_HOSTS`] in an endpoint list.
pub(crate) const MICROSOFT365: &str = "microsoft365";

/// [`MICROSOFT365_HOSTS`] as endpoints.
pub(crate) fn microsoft365_endpoints() -> Vec<Endpoint> {
    MICROSOFT365_HOSTS
        .iter()
        .map(|host| Endpoint {
            host: (*host).to_owned(),
            port: 443,
            role: EndpointRole::Microsoft365,
            sfb_version: None,
        })
        .collect()
}

/// One entry of an endpoint list (config or `--endpoint`): `microsoft365` alone stands for
/// [`MICROSOFT365_HOSTS`]; anything else is one [`Endpoint`].
pub fn parse_entry(text: &str) -> Result<Vec<Endpoint>, String> {
    if text.trim().eq_ignore_ascii_case(MICROSOFT365) {
        Ok(microsoft365_endpoints())
    } else {
        text.parse().map(|endpoint| vec![endpoint])
    }
}

/// `endpoints` without repeats of the same host, port and role, in their first order.
pub fn dedup(endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    let mut kept: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let seen = kept.iter().any(|k| {
            k.host.eq_ignore_ascii_case(&endpoint.host)
                && k.port == endpoint.port
                && k.role == endpoint.role
        });
        if !seen {
            kept.push(endpoint);
        }
    }
    kept
}

/// Addresses that stand in for DNS: `(lower-case host, port)` → the address to connect to.
pub type ResolveOverrides = HashMap<(String, u16), SocketAddr>;

/// One `HOST:PORT:ADDRESS` entry: connect to ADDRESS (IPv4, or IPv6 with or without brackets)
/// when probing HOST on PORT; SNI and the certificate's name check stay on HOST, a DNS name.
pub fn parse_resolve(text: &str) -> Result<((String, u16), SocketAddr), String> {
    let usage = "expected HOST:PORT:ADDRESS, e.g. pool.contoso.com:443:192.0.2.10";
    let mut parts = text.splitn(3, ':');
    let (Some(host), Some(port), Some(address)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?}: {usage}"));
    };
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !is_ip_address(host);
    if !valid_name {
        return Err(format!(
            "{text:?}: {host:?} is not a DNS name (the name to send as SNI and to check the certificate against); {usage}"
        ));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{text:?}: invalid port {port:?}; expected 1..=65535"))?;
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    let ip = bare
        .parse::<IpAddr>()
        .map_err(|_| format!("{text:?}: {address:?} is not an IP address; {usage}"))?;
    Ok(((host.to_ascii_lowercase(), port), SocketAddr::new(ip, port)))
}

/// Adds one `HOST:PORT:ADDRESS` entry (see [`parse_resolve`]) to `overrides`. It must name the
/// host and port of one of `endpoints`, or it would silently do nothing, and a host and port
/// get one address.
pub(crate) fn add_resolve(
    overrides: &mut ResolveOverrides,
    entry: &str,
    endpoints: &[Endpoint],
) -> Result<(), String> {
    let (key, addr) = parse_resolve(entry)?;
    let used = endpoints
        .iter()
        .any(|e| e.host.eq_ignore_ascii_case(&key.0) && e.port == key.1);
    if !used {
        return Err(format!(
            "{entry:?} names {}:{}, which is not an endpoint to probe",
            key.0, key.1
        ));
    }
    match overrides.insert(key, addr) {
        Some(previous) if previous != addr => Err(format!(
            "{entry:?}: another address ({previous}) was already given for it"
        )),
        _ => Ok(()),
    }
}

/// The overrides of `entries`, each added with [`add_resolve`].
pub fn resolve_overrides(
    entries: &[String],
    endpoints: &[Endpoint],
) -> Result<ResolveOverrides, String> {
    let mut overrides = ResolveOverrides::new();
    for entry in entries {
        add_resolve(&mut overrides, entry, endpoints)?;
    }
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = |s: &str| s.parse::<Endpoint>();
        assert_eq!(
            e("teams.microsoft.com").map(|e| (e.host, e.port)),
            Ok(("teams.microsoft.com".into(), 443))
        );
        assert_eq!(e("pool:5061").map(|e| e.port), Ok(5061));
        assert_eq!(
            e("[::1]:8443").map(|e| (e.host, e.port)),
            Ok(("::1".into(), 8443))
        );
        assert_eq!(
            e("[::1]").map(|e| (e.host, e.port)),
            Ok(("::1".into(), 443))
        );
        assert_eq!(
            e("192.0.2.1:8443").map(|e| (e.host, e.port)),
            Ok(("192.0.2.1".into(), 8443))
        );
        let sfb = e("onprem_sfb=pool.contoso.com:5061@6.0.9319.548").expect("sfb");
        assert_eq!(
            (sfb.role, sfb.port, sfb.sfb_version.as_deref()),
            (EndpointRole::OnpremSfb, 5061, Some("6.0.9319.548"))
        );
        let sfb6 = e("onprem_sfb=[2001:db8::5]:5061@6.0.9319.548").expect("sfb v6");
        assert_eq!((sfb6.host.as_str(), sfb6.port), ("2001:db8::5", 5061));
        assert_eq!(
            e("adfs=sts.contoso.com").map(|e| e.role),
            Ok(EndpointRole::Adfs)
        );
        for bad in [
            "",
            ":443",
            "host:0",
            "host:x",
            "a b:1",
            "[::1",
            "[::1]x",
            "[host]:443",
            "h/x",
            "pool@6.0.1.1",
            "onprem_sfb=pool@6.x",
            "lync=pool",
        ] {
            assert!(e(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bare_ipv6_address_is_ambiguous() {
        for bare in ["::1:443", "::1", "2001:db8::1", "fe80::1:8443"] {
            let error = bare.parse::<Endpoint>().expect_err(bare);
            assert!(
                error.contains("ambiguous") && error.contains("[V6]:PORT"),
                "{error}"
            );
        }
    }

    #[test]
    fn resolve_entries_parse() {
        assert_eq!(
            parse_resolve("Pool.Contoso.com:443:192.0.2.10"),
            Ok((
                ("pool.contoso.com".into(), 443),
                "192.0.2.10:443".parse().expect("addr")
            ))
        );
        for v6 in ["pool:5061:[2001:db8::1]", "pool:5061:2001:db8::1"] {
            assert_eq!(
                parse_resolve(v6).map(|(_, a)| a),
                Ok("[2001:db8::1]:5061".parse().expect("addr")),
                "{v6}"
            );
        }
        for bad in [
            "pool:443",
            "pool",
            "192.0.2.1:443:192.0.2.10",
            "pool:0:192.0.2.10",
            "pool:443:pool2",
            ":443:192.0.2.10",
            "a b:443:192.0.2.10",
        ] {
            assert!(parse_resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_overrides_must_name_an_endpoint() {
        let endpoints = vec![
            "pool.contoso.com:5061"
                .parse::<Endpoint>()
                .expect("endpoint"),
        ];
        let overrides =
            resolve_overrides(&["POOL.contoso.com:5061:10.0.0.5".into()], &endpoints).expect("ok");
        assert_eq!(
            overrides.get(&("pool.contoso.com".into(), 5061)),
            Some(&"10.0.0.5:5061".parse().expect("addr"))
        );
        let unused = resolve_overrides(&["pool.contoso.com:443:10.0.0.5".into()], &endpoints)
            .expect_err("port 443 is not probed");
        assert!(unused.contains("not an endpoint"), "{unused}");
        let twice = resolve_overrides(
            &[
                "pool.contoso.com:5061:10.0.0.5".into(),
                "pool.contoso.com:5061:10.0.0.6".into(),
            ],
            &endpoints,
        )
        .expect_err("two addresses");
        assert!(twice.contains("another address"), "{twice}");
    }
}
