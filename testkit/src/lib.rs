//! The test kit: everything roomready's tests need from outside roomready, in one crate that
//! depends on no roomready crate, so the tests of every crate can use it without a dependency
//! cycle.
//!
//! - [`peers`]: finding programs, skipping or failing when a peer is missing
//!   (`ROOMREADY_REQUIRE_PEERS=1`), free ports, and a real Mosquitto broker on its own config.
//! - [`openssl`]: `openssl s_server` on a loopback port, and certificates made by the `openssl`
//!   command line ([`openssl::pki`]).
//! - [`pki`]: throwaway CAs, server and client certificates made with rcgen.
//! - [`postgres`]: a throwaway PostgreSQL cluster (Debian's binaries) on a loopback port.
//! - [`proxy`]: a TCP proxy that can freeze traffic (half-open connections).
//! - [`http`]: a small HTTP(S) client with a cookie jar, for web servers under test.
//! - [`webdriver`]: headless Chromium driven over WebDriver.
//! - [`wine`]: Windows programs cross-built and run under wine, with its registry.
//!
//! What is specific to roomready (its devices, its MQTT observer, its binaries) lives in the
//! `roomready-tests` crate and in each crate's own `tests/`.

pub mod http;
pub mod openssl;
pub mod peers;
pub mod pki;
#[cfg(unix)]
pub mod postgres;
pub mod proxy;
pub mod webdriver;
pub mod wine;
