//! The agent's test harness: `openssl s_client` and sslscan as the reference clients a probe is
//! compared with ([`reference`]) and misbehaving TLS servers ([`fakes`]); the peers themselves
//! (throwaway certificates, `openssl s_server`, Mosquitto) come from `roomready-testkit`,
//! re-exported here.
//!
//! Tests that need a peer call [`need_openssl`] / [`need_mosquitto`] and skip (with one line on
//! stderr) when it is missing, unless `ROOMREADY_REQUIRE_PEERS=1`, in which case a missing peer
//! is a failure.

// Each test crate uses its own subset of this module.
#![allow(dead_code, unused_imports)]

pub mod fakes;
pub mod reference;

pub use roomready_testkit::openssl::{OpensslServer, need_openssl, openssl_available, pki};
pub use roomready_testkit::peers::{
    Mosquitto, find_program, free_port, mosquitto_password_file, need_mosquitto, need_program,
    require_peers, wait_for_port,
};
pub use roomready_testkit::pki::{TestCert, TestPki};

use std::net::{Ipv4Addr, SocketAddr};

/// A loopback address where connections are refused for as long as the returned socket lives:
/// the port is bound but never listened on, so no other test can take it meanwhile.
pub fn refused_addr() -> (SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("bind a loopback port");
    let addr = socket.local_addr().expect("bound address");
    (addr, socket)
}

/// Whether `openssl s_client` completes a handshake with 127.0.0.1:`port` at the version of
/// `version_flag` (`-tls1`, `-tls1_1`, `-tls1_2`, `-tls1_3`), SNI `localhost`: see
/// [`reference::s_client_negotiates`].
pub fn s_client_accepts(port: u16, version_flag: &str) -> bool {
    let version = match version_flag {
        "-tls1" => roomready_protocol::TlsVersion::Tls10,
        "-tls1_1" => roomready_protocol::TlsVersion::Tls11,
        "-tls1_2" => roomready_protocol::TlsVersion::Tls12,
        "-tls1_3" => roomready_protocol::TlsVersion::Tls13,
        other => panic!("not an s_client version flag: {other}"),
    };
    reference::s_client_negotiates(port, version, Some("localhost"), None)
}
