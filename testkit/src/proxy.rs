//! A TCP proxy a test can put between a client and a server to make connections *half-open*:
//! [`FreezableProxy::freeze`] stops forwarding in both directions on every connection accepted so
//! far, without closing either socket. The server still sees its client connected until its own
//! keep-alive gives up; the client sees silence (its writes are accepted by the kernel and go
//! nowhere), as after a NAT or firewall drops the flow, or a cable is pulled somewhere on the path.
//! Connections accepted after a freeze are forwarded normally, so a client that notices and
//! reconnects gets through.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A proxy on a loopback port forwarding to `upstream`; stops (and closes every socket) on drop.
pub struct FreezableProxy {
    addr: SocketAddr,
    accepted: watch::Receiver<usize>,
    /// How many times [`FreezableProxy::freeze`] was called: a connection accepted when this was
    /// `g` is frozen once it is above `g`.
    freezes: watch::Sender<u64>,
    /// The accept loop; it owns the connections' tasks, which end with it.
    task: JoinHandle<()>,
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FreezableProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards each accepted connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FreezableProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy's port");
        let addr = listener.local_addr().expect("the proxy's address");
        let (accepted_tx, accepted) = watch::channel(0usize);
        let (freezes, _) = watch::channel(0u64);
        let freezes_rx = freezes.subscribe();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    incoming = listener.accept() => {
                        let Ok((client, _)) = incoming else { continue };
                        accepted_tx.send_modify(|n| *n += 1);
                        let frozen = freezes_rx.clone();
                        connections.spawn(forward(client, upstream, frozen));
                    }
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        FreezableProxy {
            addr,
            accepted,
            freezes,
            task,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.borrow()
    }

    /// Waits until at least `n` connections were accepted; `false` after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> bool {
        let mut accepted = self.accepted.clone();
        tokio::time::timeout(timeout, accepted.wait_for(|count| *count >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops forwarding on every connection accepted so far, in both directions, keeping their
    /// sockets open (until the proxy is dropped). Later connections are not affected.
    pub fn freeze(&self) {
        self.freezes.send_modify(|g| *g += 1);
    }
}

/// Forwards one connection until either side closes it or it is frozen; a frozen connection keeps
/// both sockets open and silent for as long as the proxy lives.
async fn forward(client: TcpStream, upstream: SocketAddr, frozen: watch::Receiver<u64>) {
    let generation = *frozen.borrow();
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // Dropping the client closes it, as a server that refuses would.
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, frozen.clone(), generation);
    let down = pump(server_read, client_write, frozen, generation);
    let (up, down) = tokio::join!(up, down);
    if up.is_some() || down.is_some() {
        // Frozen: hold every half (a dropped half would close or half-close its socket).
        let _halves = (up, down);
        std::future::pending::<()>().await;
    }
}

/// Copies `from` to `to` until EOF or an error (then shuts `to` down and returns `None`), or until
/// the proxy is frozen past `generation` (then hands both halves back, untouched).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut frozen: watch::Receiver<u64>,
    generation: u64,
) -> Option<(OwnedReadHalf, OwnedWriteHalf)> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            biased;
            _ = frozen.wait_for(|g| *g > generation) => None,
            read = from.read(&mut buffer) => Some(read),
        };
        match read {
            None => return Some((from, to)),
            Some(Ok(0) | Err(_)) => {
                let _ = to.shutdown().await;
                return None;
            }
            Some(Ok(n)) => {
                if to.write_all(&buffer[..n]).await.is_err() {
                    return None;
                }
            }
        }
    }
}
