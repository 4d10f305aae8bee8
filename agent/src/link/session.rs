//! The two MQTT protocol versions behind one small interface, so the link's driver and its
//! delivery tracking exist once: MQTT 3.1.1 (the agent's own session on rumqttc's packet codec,
//! [`super::v311`], a clean session every time) and MQTT 5 (`rumqttc::v5`: a session with an
//! expiry, so the broker keeps the agent's subscription and queues its commands while it is
//! away, and the response topic and correlation data of requests).
//!
//! Neither lets one oversized command cost the connection: MQTT 5 announces the largest packet
//! the agent takes in CONNECT, so the broker drops larger ones; MQTT 3.1.1 cannot, so its session
//! streams them past and hands on their head.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill as LastWill5, PublishProperties};

use super::v311;
use super::{LinkError, LinkOptions, MAX_PACKET, REQUEST_CAPACITY, tls, valid_topic_name};
use roomready_connect::broker::Credentials;

pub use roomready_connect::broker::MqttVersion;

/// How long an MQTT 5 broker keeps the agent's session (its subscription and the QoS 1 commands
/// queued for it) after the connection is lost.
pub(crate) const SESSION_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Where a request wants its answer (MQTT 5 response topic and correlation data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub topic: String,
    pub correlation: Option<Vec<u8>>,
}

/// One step of an event loop, in the terms the driver needs.
pub(super) enum Polled {
    /// The broker accepted the connection.
    ConnAck,
    /// A publish request was written with this packet id.
    OutgoingPublish(u16),
    /// The broker acknowledged the publish with this packet id.
    PubAck(u16),
    /// A message on a subscribed topic (`retained`: from the broker's retained store). The
    /// payload is whole unless it was over the incoming limit: then its first bytes, and
    /// `length` says how long it was.
    Message {
        topic: String,
        payload: Vec<u8>,
        length: usize,
        retained: bool,
        reply: Option<Reply>,
    },
    /// The DISCONNECT request was written.
    OutgoingDisconnect,
    /// Anything else (pings, SUBACKs, ...).
    Other,
    /// The client side is gone: stop.
    Done,
    /// The connection failed or was lost, with the reason for people.
    Failed(String),
}

/// A version's event loop.
pub(super) trait Session: Send + 'static {
    fn poll(&mut self) -> impl Future<Output = Polled> + Send;
    /// The last will of the next connection (the options are only read when connecting).
    fn set_will(&mut self, topic: &str, payload: Vec<u8>);
    /// Discards what the event loop would resend or has buffered from a dead connection
    /// (see [`super::forget_queued`]): pending requests, queued requests, buffered events other
    /// than incoming messages.
    fn forget_queued(&mut self);
}

/// A version's client handle.
#[derive(Clone)]
pub(super) enum Client {
    V311(v311::Handle),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    pub(super) fn try_publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), LinkError> {
        match self {
            Client::V311(c) => c.publish(topic, payload, retain),
            Client::V5(c) => c
                .try_publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    retain,
                    payload,
                )
                .map_err(|e| LinkError::Queue(e.to_string())),
        }
    }

    /// A publish carrying the correlation data of the request it answers (MQTT 5 only).
    pub(super) fn try_publish_reply(
        &self,
        reply: &Reply,
        payload: Vec<u8>,
    ) -> Result<(), LinkError> {
        match self {
            Client::V311(_) => Err(LinkError::NotSupported(
                "response topics need MQTT 5".into(),
            )),
            Client::V5(_) if !valid_topic_name(&reply.topic) => {
                Err(LinkError::InvalidTopic(reply.topic.clone()))
            }
            Client::V5(c) => {
                let properties = PublishProperties {
                    correlation_data: reply.correlation.clone().map(Into::into),
                    ..PublishProperties::default()
                };
                c.try_publish_with_properties(
                    reply.topic.clone(),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                    properties,
                )
                .map_err(|e| LinkError::Queue(e.to_string()))
            }
        }
    }

    pub(super) fn try_subscribe(&self, filter: &str) -> Result<(), LinkError> {
        match self {
            Client::V311(c) => c.subscribe(filter),
            Client::V5(c) => {
                use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule};
                // Retain handling 2: the broker sends no retained message on subscribing (a
                // retained command is never run; MQTT 3.1.1 has no such option, so the agent
                // also refuses what arrives retained).
                let filter = Filter {
                    retain_forward_rule: RetainForwardRule::Never,
                    ..Filter::new(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                };
                c.try_subscribe_many([filter])
                    .map_err(|e| LinkError::Queue(e.to_string()))
            }
        }
    }

    pub(super) fn try_disconnect(&self) -> Result<(), LinkError> {
        match self {
            Client::V311(c) => c.disconnect(),
            Client::V5(c) => c
                .try_disconnect()
                .map_err(|e| LinkError::Queue(e.to_string())),
        }
    }
}

/// MQTT 5.
pub(super) struct V5(rumqttc::v5::EventLoop);

/// Builds the client and event loop of `options.version`, with its last will.
pub(super) fn connect(options: &LinkOptions, will: Vec<u8>) -> (Client, SessionKind) {
    let password = |c: &Credentials| {
        c.password
            .as_ref()
            .map_or(String::new(), |p| p.expose().to_owned())
    };
    match options.version {
        MqttVersion::V311 => {
            let settings = v311::Settings {
                client_id: options.client_id.clone(),
                host: options.broker.host.clone(),
                port: options.broker.port,
                tls: options.tls.clone(),
                keep_alive: options.keep_alive,
                login: options
                    .credentials
                    .as_ref()
                    .map(|c| rumqttc::mqttbytes::v4::Login::new(c.username.clone(), password(c))),
                will_topic: options.will_topic.clone(),
                will,
                max_incoming: options.max_incoming_packet,
                max_outgoing: MAX_PACKET,
            };
            let (handle, session) = v311::V311::new(settings, REQUEST_CAPACITY);
            (Client::V311(handle), SessionKind::V311(session))
        }
        MqttVersion::V5 => {
            let mut mqtt = rumqttc::v5::MqttOptions::new(
                options.client_id.clone(),
                options.broker.host.clone(),
                options.broker.port,
            );
            mqtt.set_keep_alive(options.keep_alive);
            mqtt.set_clean_start(false);
            mqtt.set_outgoing_inflight_upper_limit(super::MAX_IN_FLIGHT);
            mqtt.set_session_expiry_interval(Some(
                u32::try_from(SESSION_EXPIRY.as_secs()).expect("a day fits u32"),
            ));
            // Announced in CONNECT: the broker drops what the agent would not take.
            mqtt.set_max_packet_size(Some(
                u32::try_from(options.max_incoming_packet).unwrap_or(u32::MAX),
            ));
            mqtt.set_last_will(LastWill5::new(
                options.will_topic.clone(),
                will,
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                true,
                None,
            ));
            if let Some(config) = &options.tls {
                mqtt.set_transport(rumqttc::Transport::tls_with_config(
                    rumqttc::TlsConfiguration::Rustls(Arc::clone(config)),
                ));
            }
            if let Some(credentials) = &options.credentials {
                mqtt.set_credentials(credentials.username.clone(), password(credentials));
            }
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(mqtt, REQUEST_CAPACITY);
            (Client::V5(client), SessionKind::V5(V5(eventloop)))
        }
    }
}

/// The event loop of either version (the driver is generic over [`Session`]). Built once per
/// link and moved straight into its task, so the size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum SessionKind {
    V311(v311::V311),
    V5(V5),
}

impl Session for v311::V311 {
    async fn poll(&mut self) -> Polled {
        v311::V311::poll(self).await
    }

    fn set_will(&mut self, topic: &str, payload: Vec<u8>) {
        v311::V311::set_will(self, topic, payload);
    }

    fn forget_queued(&mut self) {
        v311::V311::forget_queued(self);
    }
}

impl Session for V5 {
    async fn poll(&mut self) -> Polled {
        use rumqttc::Outgoing;
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::{Event, Incoming};
        match self.0.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => Polled::ConnAck,
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Polled::OutgoingPublish(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => Polled::PubAck(ack.pkid),
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let reply = publish.properties.as_ref().and_then(|p| {
                    p.response_topic.as_ref().map(|topic| Reply {
                        topic: topic.clone(),
                        correlation: p.correlation_data.as_ref().map(|c| c.to_vec()),
                    })
                });
                Polled::Message {
                    topic: String::from_utf8_lossy(&publish.topic).into_owned(),
                    length: publish.payload.len(),
                    payload: publish.payload.to_vec(),
                    retained: publish.retain,
                    reply,
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Polled::OutgoingDisconnect,
            Ok(_) => Polled::Other,
            Err(rumqttc::v5::ConnectionError::RequestsDone) => Polled::Done,
            Err(error) => Polled::Failed(tls::explain_v5(&error)),
        }
    }

    fn set_will(&mut self, topic: &str, payload: Vec<u8>) {
        self.0.options.set_last_will(LastWill5::new(
            topic,
            payload,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            true,
            None,
        ));
    }

    fn forget_queued(&mut self) {
        use rumqttc::v5::Event;
        use rumqttc::v5::mqttbytes::v5::Packet;
        self.0.clean();
        self.0.pending.clear();
        self.0
            .state
            .events
            .retain(|event| matches!(event, Event::Incoming(Packet::Publish(_))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{MqttVersion, Reconnect};

    fn options(version: MqttVersion) -> LinkOptions {
        LinkOptions {
            broker: "mqtt://127.0.0.1:1883".parse().expect("a broker URL"),
            client_id: "mtr-1".into(),
            keep_alive: Duration::from_secs(30),
            will_topic: "roomready/v1/mtr-1/status".into(),
            reconnect: Reconnect::default(),
            tls: None,
            credentials: None,
            version,
            max_incoming_packet: crate::link::max_incoming_packet(65536),
        }
    }

    /// rumqttc's MQTT 5 client allocates a slot per allowed in-flight publish up front; unset,
    /// that is 65,535 slots (13 MiB) on a device that keeps at most 100 in flight.
    #[tokio::test]
    async fn mqtt5_allows_as_many_publishes_in_flight_as_mqtt311() {
        let (_client, session) = connect(&options(MqttVersion::V5), Vec::new());
        let SessionKind::V5(V5(eventloop)) = session else {
            panic!("an MQTT 5 session");
        };
        assert_eq!(
            eventloop.options.get_outgoing_inflight_upper_limit(),
            Some(super::super::MAX_IN_FLIGHT)
        );
        assert_eq!(
            eventloop.options.max_packet_size(),
            Some(65536 + 16 * 1024),
            "the incoming limit is announced in CONNECT"
        );
    }
}
