//! Commands to devices: checked against the contract, recorded with the user who sent them
//! (before they are published, so none goes out unrecorded), published on the device's `cmd`
//! topic (QoS 1), and shown live. The device's answers arrive through ingest and are matched to
//! the command by its id.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use roomready_protocol::{Command, CommandAction, DeviceId, Message, TopicPrefix, Topics};
use tokio::sync::broadcast;

use crate::clock;
use crate::ingest::{Client, Stats};
use crate::store::{CommandRecord, Committed, Store, StoreError};

/// Why a command was not sent.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The arguments break the contract (the device would reject them).
    #[error("{0}")]
    Invalid(String),
    #[error("there is no device {0:?}")]
    UnknownDevice(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the command could not be handed to the MQTT client: {0}")]
    Publish(String),
}

/// Sends commands.
#[derive(Clone)]
pub struct Commander {
    client: Client,
    store: Arc<dyn Store>,
    prefix: TopicPrefix,
    stats: Arc<Stats>,
    live: broadcast::Sender<Arc<Committed>>,
}

/// The longest `version` argument taken.
const MAX_VERSION: usize = 64;

/// Checks `action`'s arguments as the agent will.
pub fn validate(action: &CommandAction) -> Result<(), String> {
    match action {
        CommandAction::SetInterval { seconds }
            if !CommandAction::INTERVAL_SECS.contains(seconds) =>
        {
            Err(format!(
                "seconds must be {}..={}",
                CommandAction::INTERVAL_SECS.start(),
                CommandAction::INTERVAL_SECS.end()
            ))
        }
        CommandAction::Update { version, channel } => {
            if let Some(version) = version
                && (version.is_empty()
                    || version.len() > MAX_VERSION
                    || !version
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')))
            {
                return Err(format!(
                    "version must be \"latest\" or a version such as 1.4.0 (at most {MAX_VERSION} \
                     characters of A-Z a-z 0-9 . - +)"
                ));
            }
            if let Some(channel) = channel
                && !CommandAction::UPDATE_CHANNELS.contains(&channel.as_str())
            {
                return Err(format!(
                    "channel must be one of {}",
                    CommandAction::UPDATE_CHANNELS.join(", ")
                ));
            }
            Ok(())
        }
        CommandAction::Fix { mode, plan } => {
            roomready_protocol::fix::check_fix(*mode, plan.as_deref())
        }
        _ => Ok(()),
    }
}

/// A new command id: `c-` and 16 random hex digits.
fn new_id() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for an id: {e}"))?;
    Ok(format!(
        "c-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Commander {
    pub fn new(
        client: Client,
        store: Arc<dyn Store>,
        prefix: TopicPrefix,
        stats: Arc<Stats>,
        live: broadcast::Sender<Arc<Committed>>,
    ) -> Commander {
        Commander {
            client,
            store,
            prefix,
            stats,
            live,
        }
    }

    /// Records and sends `action` to `device` on behalf of `user`.
    pub async fn send(
        &self,
        device: DeviceId,
        action: CommandAction,
        user: &str,
    ) -> Result<CommandRecord, CommandError> {
        let id = new_id().map_err(CommandError::Publish)?;
        self.send_as(device, action, user, id).await
    }

    /// A new command id, as [`Commander::send`] makes them: for a caller that records the id
    /// before sending (a rollout), so that after a crash it sends the same id again.
    pub fn new_id() -> Result<String, CommandError> {
        new_id().map_err(CommandError::Publish)
    }

    /// Sends `action` with the command id `id`. When a command with this id was recorded
    /// before (a resend after a restart), it is published again as it was recorded: the agent
    /// answers a repeated id from its ledger without running it twice.
    pub async fn send_as(
        &self,
        device: DeviceId,
        action: CommandAction,
        user: &str,
        id: String,
    ) -> Result<CommandRecord, CommandError> {
        validate(&action).map_err(CommandError::Invalid)?;
        let known = {
            let store = Arc::clone(&self.store);
            let id = id.clone();
            tokio::task::spawn_blocking(move || store.command(&id))
                .await
                .map_err(|e| CommandError::Publish(format!("the store task failed: {e}")))??
        };
        if let Some(known) = known {
            if known.device != device {
                return Err(CommandError::Invalid(format!(
                    "command {:?} was sent to another device",
                    known.id
                )));
            }
            let topic = Topics::new(&self.prefix, &device).cmd().to_owned();
            self.client
                .publish_command(topic, known.command.encode())
                .await
                .map_err(CommandError::Publish)?;
            self.stats.commands.fetch_add(1, Ordering::Relaxed);
            return Ok(known);
        }
        let record = CommandRecord {
            id: id.clone(),
            device: device.clone(),
            command: Command { id, action },
            by: user.to_owned(),
            sent_at: clock::now(),
            status: None,
            reason: None,
            message: None,
            answered_at: None,
        };
        let store = Arc::clone(&self.store);
        let to_record = record.clone();
        let entry = tokio::task::spawn_blocking(move || {
            if store.device(&to_record.device)?.is_none() {
                return Ok(None);
            }
            store.record_command(&to_record).map(Some)
        })
        .await
        .map_err(|e| CommandError::Publish(format!("the store task failed: {e}")))??;
        let Some(entry) = entry else {
            return Err(CommandError::UnknownDevice(device.as_str().to_owned()));
        };
        let topic = Topics::new(&self.prefix, &device).cmd().to_owned();
        self.client
            .publish_command(topic, record.command.encode())
            .await
            .map_err(CommandError::Publish)?;
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        let _ = self.live.send(Arc::new(Committed {
            history: vec![entry],
            ..Committed::default()
        }));
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_as_the_agent_checks_them() {
        assert!(validate(&CommandAction::CheckNow).is_ok());
        assert!(validate(&CommandAction::SetInterval { seconds: 900 }).is_ok());
        assert_eq!(
            validate(&CommandAction::SetInterval { seconds: 0 }),
            Err("seconds must be 1..=86400".into())
        );
        let update = |version: Option<&str>, channel: Option<&str>| CommandAction::Update {
            version: version.map(Into::into),
            channel: channel.map(Into::into),
        };
        assert!(validate(&update(None, None)).is_ok());
        assert!(validate(&update(Some("latest"), Some("beta"))).is_ok());
        assert!(validate(&update(Some("1.4.0-rc.1+b2"), None)).is_ok());
        assert!(validate(&update(Some("<script>"), None)).is_err());
        assert!(validate(&update(None, Some("nightly"))).is_err());
        let fix = |mode, plan: Option<&str>| CommandAction::Fix {
            mode,
            plan: plan.map(Into::into),
        };
        use roomready_protocol::FixMode;
        assert!(validate(&fix(FixMode::Plan, None)).is_ok());
        assert!(validate(&fix(FixMode::Apply, Some("0123456789abcdef"))).is_ok());
        assert!(validate(&fix(FixMode::Apply, None)).is_err());
        assert!(validate(&fix(FixMode::Apply, Some("\"><script>"))).is_err());
        let id = new_id().expect("random");
        assert_eq!(id.len(), 18);
        assert!(id.len() <= Command::MAX_ID_BYTES);
    }
}
