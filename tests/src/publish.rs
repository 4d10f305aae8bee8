//! Raw publishes to the broker, for payloads no agent would send (garbage, another device's
//! name, hand-made sequence gaps): each published with QoS 1 and its PUBACK awaited.

use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::WAIT;

/// One message: topic, payload, retained.
pub type Message = (String, Vec<u8>, bool);

/// Publishes `messages` in order from a client of its own; returns once the broker has
/// acknowledged all of them.
pub async fn publish(broker: &BrokerUrl, client_id: &str, messages: Vec<Message>) {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, messages.len() + 10);
    let count = messages.len();
    let sender = client.clone();
    tokio::spawn(async move {
        for (topic, payload, retain) in messages {
            if sender
                .publish(topic, QoS::AtLeastOnce, retain, payload)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acked = 0;
    tokio::time::timeout(WAIT, async {
        while acked < count {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("publishing to {broker}: {e}"),
            }
        }
        let _ = client.disconnect().await;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{acked} of {count} publishes acknowledged within {WAIT:?}"));
}
