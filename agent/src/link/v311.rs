//! MQTT 3.1.1, a session of the agent's own on rumqttc's packet codec.
//!
//! Why not rumqttc's event loop, as for MQTT 5: it reads every packet whole into memory and
//! drops the connection on one larger than its limit. MQTT 3.1.1 has no way to tell the broker a
//! limit, so one oversized command published to the device's `cmd` topic cost the connection,
//! and, retained, came back on every connect and kept the agent offline. This session frames the
//! stream itself ([`super::frame`]): a PUBLISH over the limit is streamed past with its head kept,
//! acknowledged like any other, and handed on for the agent to answer `payload_too_large`.
//!
//! What the link needs and rumqttc provided is kept: a clean session on every connect with the
//! last will, user name and password; TLS through the same rustls configuration; QoS 1 publishes
//! reported in request order as `OutgoingPublish(pkid)` and their PUBACKs; a keep-alive ping
//! every `keep_alive`, whose missing answer by the next one ends the connection (a half-open
//! connection is noticed); the connection attempt bounded by [`CONNECT_TIMEOUT`].

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnectReturnCode, LastWill, Login, Packet, PubAck, PubComp, PubRec, Publish, Subscribe,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::frame::{Frame, Framer};
use super::session::Polled;
use super::{LinkError, MAX_IN_FLIGHT, tls, valid_topic_name};

/// Bound on one connection attempt: TCP, TLS and CONNACK (rumqttc's default).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request from the link's client handle.
#[derive(Debug)]
pub(super) enum Request {
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
    },
    Subscribe(String),
    Disconnect,
}

/// The link's handle: queues requests for the session without waiting.
#[derive(Debug, Clone)]
pub(super) struct Handle(mpsc::Sender<Request>);

impl Handle {
    pub(super) fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), LinkError> {
        if !valid_topic_name(topic) {
            return Err(LinkError::InvalidTopic(topic.to_owned()));
        }
        self.send(Request::Publish {
            topic: topic.to_owned(),
            payload,
            retain,
        })
    }

    pub(super) fn subscribe(&self, filter: &str) -> Result<(), LinkError> {
        self.send(Request::Subscribe(filter.to_owned()))
    }

    pub(super) fn disconnect(&self) -> Result<(), LinkError> {
        self.send(Request::Disconnect)
    }

    fn send(&self, request: Request) -> Result<(), LinkError> {
        self.0.try_send(request).map_err(|e| {
            LinkError::Queue(match e {
                mpsc::error::TrySendError::Full(_) => "full".into(),
                mpsc::error::TrySendError::Closed(_) => "closed".into(),
            })
        })
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub keep_alive: Duration,
    pub login: Option<Login>,
    pub will_topic: String,
    pub will: Vec<u8>,
    /// Largest packet (remaining length) taken whole; larger PUBLISHes are streamed past.
    pub max_incoming: usize,
    /// Largest packet sent.
    pub max_outgoing: usize,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to the broker.
struct Connection {
    stream: Box<dyn Io>,
    framer: Framer,
    read: BytesMut,
    write: BytesMut,
    next_pkid: u16,
    /// Packet ids of our publishes awaiting PUBACK.
    in_flight: HashSet<u16>,
    /// QoS 2 publishes received (PUBREC sent, PUBREL awaited).
    incoming_qos2: HashSet<u16>,
    ping_due: Instant,
    awaiting_pong: bool,
}

/// Why a step of the session ended it.
enum Stop {
    /// The client handles are gone.
    Done,
    /// The connection failed, with the reason for people.
    Failed(String),
}

/// The MQTT 3.1.1 session.
pub(super) struct V311 {
    settings: Settings,
    requests: mpsc::Receiver<Request>,
    connection: Option<Connection>,
    events: VecDeque<Polled>,
}

impl V311 {
    /// A session and its handle; nothing connects until the first poll.
    pub(super) fn new(settings: Settings, capacity: usize) -> (Handle, V311) {
        let (tx, requests) = mpsc::channel(capacity);
        let session = V311 {
            settings,
            requests,
            connection: None,
            events: VecDeque::new(),
        };
        (Handle(tx), session)
    }

    pub(super) async fn poll(&mut self) -> Polled {
        loop {
            if let Some(event) = self.events.pop_front() {
                return event;
            }
            if self.connection.is_none() {
                return match tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.settings)).await {
                    Ok(Ok(connection)) => {
                        self.connection = Some(connection);
                        Polled::ConnAck
                    }
                    Ok(Err(error)) => Polled::Failed(error),
                    Err(_) => Polled::Failed(format!(
                        "no connection to the broker within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )),
                };
            }
            match self.step().await {
                Ok(()) => {}
                Err(Stop::Done) => return Polled::Done,
                Err(Stop::Failed(error)) => {
                    self.connection = None;
                    return Polled::Failed(error);
                }
            }
        }
    }

    /// Waits for one thing to happen on the connection and handles it.
    async fn step(&mut self) -> Result<(), Stop> {
        let V311 {
            settings,
            requests,
            connection,
            events,
        } = self;
        let connection = connection.as_mut().expect("step runs on a connection");
        let can_send = connection.in_flight.len() < usize::from(MAX_IN_FLIGHT);
        let mut chunk = [0u8; 8192];
        tokio::select! {
            read = connection.stream.read(&mut chunk) => {
                let n = read.map_err(|e| Stop::Failed(tls::explain_io(&e)))?;
                if n == 0 {
                    return Err(Stop::Failed("the broker closed the connection".into()));
                }
                connection.read.extend_from_slice(&chunk[..n]);
                while let Some(frame) = connection
                    .framer
                    .next(&mut connection.read)
                    .map_err(|e| Stop::Failed(e.to_string()))?
                {
                    connection.on_frame(frame, events, settings.max_outgoing)?;
                }
                connection.flush().await
            }
            request = requests.recv(), if can_send => match request {
                None => Err(Stop::Done),
                Some(request) => {
                    connection.on_request(request, events, settings.max_outgoing)?;
                    connection.flush().await
                }
            },
            () = tokio::time::sleep_until(connection.ping_due) => {
                if connection.awaiting_pong {
                    return Err(Stop::Failed(format!(
                        "the broker did not answer the keep-alive ping within {} s",
                        settings.keep_alive.as_secs_f32()
                    )));
                }
                connection.awaiting_pong = true;
                connection.ping_due += settings.keep_alive;
                connection.queue(&Packet::PingReq, settings.max_outgoing)?;
                connection.flush().await
            }
        }
    }

    pub(super) fn set_will(&mut self, topic: &str, payload: Vec<u8>) {
        topic.clone_into(&mut self.settings.will_topic);
        self.settings.will = payload;
    }

    /// Drops the requests queued for a dead connection and what it had buffered, but incoming
    /// messages (see [`super::forget_queued`]).
    pub(super) fn forget_queued(&mut self) {
        while self.requests.try_recv().is_ok() {}
        self.events
            .retain(|event| matches!(event, Polled::Message { .. }));
    }
}

impl Connection {
    /// Encodes `packet` into the write buffer.
    fn queue(&mut self, packet: &Packet, max: usize) -> Result<(), Stop> {
        packet
            .write(&mut self.write, max)
            .map(|_| ())
            .map_err(|e| Stop::Failed(format!("cannot send an MQTT packet: {e:?}")))
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.write.is_empty() {
            return Ok(());
        }
        let sent = async {
            self.stream.write_all(&self.write).await?;
            self.stream.flush().await
        };
        sent.await.map_err(|e| Stop::Failed(tls::explain_io(&e)))?;
        self.write.clear();
        Ok(())
    }

    /// A free packet id for a new publish or subscription (never 0).
    fn pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.in_flight.contains(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    /// Answers what must be answered and reports what the link needs.
    fn on_frame(
        &mut self,
        frame: Frame,
        events: &mut VecDeque<Polled>,
        max: usize,
    ) -> Result<(), Stop> {
        let (topic, payload, qos, pkid, retain, length) = match frame {
            Frame::Packet(Packet::Publish(p)) => {
                let length = p.payload.len();
                (p.topic, p.payload.to_vec(), p.qos, p.pkid, p.retain, length)
            }
            Frame::Oversized(o) => (o.topic, o.head, o.qos, o.pkid, o.retain, o.payload_len),
            Frame::Packet(Packet::PubAck(ack)) => {
                if self.in_flight.remove(&ack.pkid) {
                    events.push_back(Polled::PubAck(ack.pkid));
                }
                return Ok(());
            }
            Frame::Packet(Packet::PubRel(rel)) => {
                self.incoming_qos2.remove(&rel.pkid);
                return self.queue(&Packet::PubComp(PubComp::new(rel.pkid)), max);
            }
            Frame::Packet(Packet::PingResp) => {
                self.awaiting_pong = false;
                return Ok(());
            }
            Frame::Packet(Packet::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::mqttbytes::v4::SubscribeReasonCode::Failure))
                {
                    tracing::warn!("the broker refused a subscription (SUBACK failure)");
                }
                events.push_back(Polled::Other);
                return Ok(());
            }
            Frame::Packet(_) => {
                events.push_back(Polled::Other);
                return Ok(());
            }
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.queue(&Packet::PubAck(PubAck::new(pkid)), max)?,
            QoS::ExactlyOnce => {
                // Exactly once: a repeat before PUBREL is the same message.
                self.queue(&Packet::PubRec(PubRec::new(pkid)), max)?;
                if !self.incoming_qos2.insert(pkid) {
                    return Ok(());
                }
            }
        }
        events.push_back(Polled::Message {
            topic,
            payload,
            length,
            retained: retain,
            reply: None,
        });
        Ok(())
    }

    /// Sends one request.
    fn on_request(
        &mut self,
        request: Request,
        events: &mut VecDeque<Polled>,
        max: usize,
    ) -> Result<(), Stop> {
        match request {
            Request::Publish {
                topic,
                payload,
                retain,
            } => {
                let pkid = self.pkid();
                let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
                publish.pkid = pkid;
                publish.retain = retain;
                self.queue(&Packet::Publish(publish), max)?;
                self.in_flight.insert(pkid);
                events.push_back(Polled::OutgoingPublish(pkid));
            }
            Request::Subscribe(filter) => {
                let mut subscribe = Subscribe::new(filter, QoS::AtLeastOnce);
                subscribe.pkid = self.pkid();
                self.queue(&Packet::Subscribe(subscribe), max)?;
            }
            Request::Disconnect => {
                self.queue(&Packet::Disconnect, max)?;
                events.push_back(Polled::OutgoingDisconnect);
            }
        }
        Ok(())
    }
}

/// TCP (and TLS), CONNECT, CONNACK.
async fn connect(settings: &Settings) -> Result<Connection, String> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", settings.host, settings.port))?;
    // Best effort: MQTT packets are small and latency matters more than throughput.
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = match &settings.tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(settings.host.clone())
                .map_err(|e| format!("{:?} is not a valid TLS server name: {e}", settings.host))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|e| tls::explain_io(&e))?;
            Box::new(tls)
        }
    };
    let mut connection = Connection {
        stream,
        framer: Framer::new(settings.max_incoming),
        read: BytesMut::with_capacity(8192),
        write: BytesMut::with_capacity(1024),
        next_pkid: 0,
        in_flight: HashSet::new(),
        incoming_qos2: HashSet::new(),
        ping_due: Instant::now() + settings.keep_alive,
        awaiting_pong: false,
    };
    let mut connect = rumqttc::mqttbytes::v4::Connect::new(settings.client_id.clone());
    connect.keep_alive = u16::try_from(settings.keep_alive.as_secs()).unwrap_or(u16::MAX);
    connect.clean_session = true;
    connect.last_will = Some(LastWill::new(
        settings.will_topic.clone(),
        settings.will.clone(),
        QoS::AtLeastOnce,
        true,
    ));
    connect.login.clone_from(&settings.login);
    // A TLS connection without a client certificate that ends before CONNACK: see
    // `tls::ended_before_connack`.
    let anonymous_tls = settings
        .tls
        .as_ref()
        .is_some_and(|config| !config.client_auth_cert_resolver.has_certs());
    let ended = |error: String| {
        if anonymous_tls {
            tls::ended_before_connack(error, false)
        } else {
            error
        }
    };
    let failed = |stop: Stop| match stop {
        Stop::Failed(error) => ended(error),
        Stop::Done => "stopped".into(),
    };
    connection
        .queue(&Packet::Connect(connect), settings.max_outgoing)
        .map_err(failed)?;
    connection.flush().await.map_err(failed)?;
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(frame) = connection
            .framer
            .next(&mut connection.read)
            .map_err(|e| e.to_string())?
        {
            return match frame {
                Frame::Packet(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => {
                    Ok(connection)
                }
                Frame::Packet(Packet::ConnAck(ack)) => Err(format!(
                    "{} [connection refused: {:?}]",
                    tls::refused(ack.code),
                    ack.code
                )),
                other => Err(format!("the broker answered CONNECT with {other:?}")),
            };
        }
        let n = connection
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| ended(tls::explain_io(&e)))?;
        if n == 0 {
            return Err(ended(
                "the broker closed the connection before CONNACK".into(),
            ));
        }
        connection.read.extend_from_slice(&chunk[..n]);
    }
}
