//! Topic names of MQTT contract v1: `{prefix}/v1/{device}/{status|state|events|cmd|cmd/res}`.
//!
//! [`Topics`] holds the five topics of one device, built once; [`TopicPrefix::filter`] builds the
//! fleet-wide subscription filters a dashboard uses (`roomready/v1/+/state`), and
//! [`TopicPrefix::parse`] maps a received topic back to its device and [`Channel`].

use std::fmt;

use crate::device::DeviceId;
use crate::messages::{Command, CommandResponse, Event, State, Status};
use crate::schema::Message;
use crate::version::echo;

/// The version level of this contract in every topic.
pub const CONTRACT_VERSION: &str = "v1";

/// One of the per-device topics of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `status`: retained `online`/`offline` presence, set `offline` by the last will.
    Status,
    /// `state`: the retained latest full assessment.
    State,
    /// `events`: check completed, verdict changed, errors, update progress.
    Events,
    /// `cmd`: commands to the agent.
    Cmd,
    /// `cmd/res`: the agent's answers to commands.
    CmdRes,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Status,
        Channel::State,
        Channel::Events,
        Channel::Cmd,
        Channel::CmdRes,
    ];

    /// The topic levels after the device id.
    pub const fn suffix(self) -> &'static str {
        match self {
            Channel::Status => "status",
            Channel::State => "state",
            Channel::Events => "events",
            Channel::Cmd => "cmd",
            Channel::CmdRes => "cmd/res",
        }
    }

    /// The QoS of every publish and subscription on the channel: 1, at least once (consumers
    /// drop repeats by `seq`, the agent answers a repeated command `id` without running it again).
    pub const fn qos(self) -> u8 {
        1
    }

    /// Whether messages on the channel are published retained: the presence (also by the last
    /// will) and the latest state, so that a consumer gets the whole fleet when it subscribes.
    /// Commands never are: the agent does not run a retained command.
    pub const fn retained(self) -> bool {
        matches!(self, Channel::Status | Channel::State)
    }

    /// Whether the agent publishes on the channel; it subscribes to the one other, `cmd`.
    pub const fn from_agent(self) -> bool {
        !matches!(self, Channel::Cmd)
    }

    /// The message type on the channel: its [`Message::NAME`] (`roomready.state`, …).
    pub const fn message(self) -> &'static str {
        match self {
            Channel::Status => Status::NAME,
            Channel::State => State::NAME,
            Channel::Events => Event::NAME,
            Channel::Cmd => Command::NAME,
            Channel::CmdRes => CommandResponse::NAME,
        }
    }
}

/// A validated topic prefix (default `roomready`): one or more non-empty levels, no wildcards,
/// no NUL, not starting with `$` (reserved for broker topics), at most 256 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPrefix(String);

impl TopicPrefix {
    pub const DEFAULT: &'static str = "roomready";
    pub const MAX_LEN: usize = 256;

    pub fn new(prefix: impl Into<String>) -> Result<Self, TopicPrefixError> {
        let prefix = prefix.into();
        let reason = if prefix.is_empty() {
            Some("is empty")
        } else if prefix.len() > Self::MAX_LEN {
            Some("is longer than 256 bytes")
        } else if prefix.starts_with('$') {
            Some("starts with '$', which is reserved for broker topics")
        } else if prefix.contains(['+', '#']) {
            Some("contains an MQTT wildcard ('+' or '#')")
        } else if prefix.contains('\0') {
            Some("contains NUL")
        } else if prefix.split('/').any(str::is_empty) {
            Some("has an empty level (leading, trailing or doubled '/')")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(TopicPrefixError {
                prefix: echo(&prefix),
                reason,
            }),
            None => Ok(TopicPrefix(prefix)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subscription filter for one channel of every device: `{prefix}/v1/+/{channel}`.
    pub fn filter(&self, channel: Channel) -> String {
        format!("{}/{CONTRACT_VERSION}/+/{}", self.0, channel.suffix())
    }

    /// Maps a topic of this prefix back to its device and channel; `None` for any other topic
    /// (another prefix or contract version, an invalid device id, an unknown channel).
    pub fn parse(&self, topic: &str) -> Option<(DeviceId, Channel)> {
        let rest = topic.strip_prefix(self.0.as_str())?.strip_prefix('/')?;
        let rest = rest.strip_prefix(CONTRACT_VERSION)?.strip_prefix('/')?;
        let (device, suffix) = rest.split_once('/')?;
        let channel = Channel::ALL.into_iter().find(|c| c.suffix() == suffix)?;
        Some((DeviceId::new(device).ok()?, channel))
    }
}

impl Default for TopicPrefix {
    fn default() -> Self {
        TopicPrefix(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for TopicPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a [`TopicPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic prefix {prefix} {reason}")]
pub struct TopicPrefixError {
    pub prefix: String,
    pub reason: &'static str,
}

/// The topics of one device, built once and borrowed for every publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    status: String,
    state: String,
    events: String,
    cmd: String,
    cmd_res: String,
}

impl Topics {
    pub fn new(prefix: &TopicPrefix, device: &DeviceId) -> Self {
        let topic = |channel: Channel| {
            format!(
                "{}/{CONTRACT_VERSION}/{}/{}",
                prefix.as_str(),
                device.as_str(),
                channel.suffix()
            )
        };
        Topics {
            status: topic(Channel::Status),
            state: topic(Channel::State),
            events: topic(Channel::Events),
            cmd: topic(Channel::Cmd),
            cmd_res: topic(Channel::CmdRes),
        }
    }

    pub fn get(&self, channel: Channel) -> &str {
        match channel {
            Channel::Status => &self.status,
            Channel::State => &self.state,
            Channel::Events => &self.events,
            Channel::Cmd => &self.cmd,
            Channel::CmdRes => &self.cmd_res,
        }
    }

    pub fn status(&self) -> &str {
        &self.status
    }
    pub fn state(&self) -> &str {
        &self.state
    }
    pub fn events(&self) -> &str {
        &self.events
    }
    pub fn cmd(&self) -> &str {
        &self.cmd
    }
    pub fn cmd_res(&self) -> &str {
        &self.cmd_res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).expect("valid id")
    }

    #[test]
    fn builds_every_topic_of_the_contract() {
        let topics = Topics::new(&TopicPrefix::default(), &id("mtr-01"));
        assert_eq!(topics.status(), "roomready/v1/mtr-01/status");
        assert_eq!(topics.state(), "roomready/v1/mtr-01/state");
        assert_eq!(topics.events(), "roomready/v1/mtr-01/events");
        assert_eq!(topics.cmd(), "roomready/v1/mtr-01/cmd");
        assert_eq!(topics.cmd_res(), "roomready/v1/mtr-01/cmd/res");
        let custom = TopicPrefix::new("acme/site-3").expect("valid prefix");
        assert_eq!(
            Topics::new(&custom, &id("hub")).get(Channel::CmdRes),
            "acme/site-3/v1/hub/cmd/res"
        );
    }

    #[test]
    fn delivery_of_each_channel_is_the_contracts_table() {
        // DESIGN.md: status and state QoS 1 retained; events, cmd and cmd/res QoS 1.
        let table = [
            (Channel::Status, true, true, "roomready.status"),
            (Channel::State, true, true, "roomready.state"),
            (Channel::Events, false, true, "roomready.event"),
            (Channel::Cmd, false, false, "roomready.command"),
            (Channel::CmdRes, false, true, "roomready.command_response"),
        ];
        assert_eq!(table.map(|row| row.0), Channel::ALL);
        for (channel, retained, from_agent, message) in table {
            assert_eq!(channel.qos(), 1, "{channel:?}");
            assert_eq!(channel.retained(), retained, "{channel:?}");
            assert_eq!(channel.from_agent(), from_agent, "{channel:?}");
            assert_eq!(channel.message(), message, "{channel:?}");
        }
    }

    #[test]
    fn filters_and_parse_are_inverse() {
        let prefix = TopicPrefix::new("acme/site-3").expect("valid prefix");
        assert_eq!(prefix.filter(Channel::State), "acme/site-3/v1/+/state");
        let topics = Topics::new(&prefix, &id("d1"));
        for channel in Channel::ALL {
            assert_eq!(prefix.parse(topics.get(channel)), Some((id("d1"), channel)));
        }
        for other in [
            "acme/site-3/v2/d1/state",
            "acme/site-4/v1/d1/state",
            "acme/site-3/v1/d1/nonsense",
            "acme/site-3/v1/d1/cmd/other",
            "acme/site-3/v1/state",
            "acme/site-3/v1/a+b/state",
            "acme/site-3v1/d1/state",
            "acme/site-3",
        ] {
            assert_eq!(prefix.parse(other), None, "{other}");
        }
    }

    #[test]
    fn rejects_bad_prefixes() {
        for (prefix, reason) in [
            ("", "is empty"),
            ("a/+/b", "contains an MQTT wildcard"),
            ("a/#", "contains an MQTT wildcard"),
            ("$SYS", "reserved for broker topics"),
            ("a//b", "has an empty level"),
            ("/a", "has an empty level"),
            ("a/", "has an empty level"),
            ("a\0", "contains NUL"),
        ] {
            let err = TopicPrefix::new(prefix).expect_err(prefix);
            assert!(err.to_string().contains(reason), "{prefix:?}: {err}");
        }
        assert!(TopicPrefix::new("x".repeat(257)).is_err());
    }
}
