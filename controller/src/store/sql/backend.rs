//! [`Store`] for every SQL backend: a [`Backend`] supplies connections and transactions, and the
//! store's methods are the shared statements of this module's siblings run on them.

use std::time::Duration;

use roomready_protocol::{DeviceId, Timestamp};

use super::{Conn, alerts, placement, read, rollouts, write};
use crate::rollouts::plan::Plan;
use crate::rollouts::step::{DeviceProgress, Observed};
use crate::store::{
    AlertOutcome, AlertRecord, AlertScan, Batch, CommandRecord, Committed, DecodeFailure,
    DeviceDetail, DevicePage, DeviceQuery, DeviceRow, FindingCount, FleetSummary, Groups,
    HistoryEntry, HistoryQuery, NewAlert, Retention, RolloutDetail, RolloutLog, RolloutState,
    RolloutSummary, Store, StoreError,
};

/// A database the shared statements run on.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Runs `f` on a connection that reads.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Runs `f` in a transaction, committed when `f` returns `Ok` and rolled back otherwise;
    /// write transactions are serialized across every writer of the database.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;
    /// Commits a batch of messages ([`write::commit`] in a write transaction, with the
    /// backend's snapshots).
    fn commit_batch(&self, batch: &Batch) -> Result<Committed, StoreError>;
    /// Whether this controller may run the task named `task` (rollouts, alerts) now: always
    /// for a database of one controller; for a shared one, the one controller holding the
    /// task's lock.
    fn lead(&self, task: &str) -> Result<bool, StoreError>;
}

impl<B: Backend> Store for B {
    fn commit(&self, batch: &Batch) -> Result<Committed, StoreError> {
        self.commit_batch(batch)
    }

    fn record_command(&self, command: &CommandRecord) -> Result<HistoryEntry, StoreError> {
        self.write(|c| write::record_command(c, command))
    }

    fn summary(&self) -> Result<FleetSummary, StoreError> {
        self.read(read::summary)
    }

    fn groups(&self) -> Result<Groups, StoreError> {
        self.read(placement::groups)
    }

    fn lead(&self, task: &str) -> Result<bool, StoreError> {
        Backend::lead(self, task)
    }

    fn alert_scan(
        &self,
        offline_before: Timestamp,
        certs_before: Option<Timestamp>,
    ) -> Result<AlertScan, StoreError> {
        self.read(|c| alerts::scan(c, offline_before, certs_before))
    }

    fn record_alerts(
        &self,
        new: &[NewAlert],
        quiet: Duration,
        cursor: i64,
    ) -> Result<u64, StoreError> {
        self.write(|c| alerts::record(c, new, quiet, cursor))
    }

    fn pending_alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(|c| alerts::pending(c, limit))
    }

    fn finish_alerts(
        &self,
        ids: &[i64],
        outcome: AlertOutcome,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|c| alerts::finish(c, ids, outcome, error, at))
    }

    fn alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(|c| alerts::newest(c, limit))
    }

    fn create_rollout(&self, plan: &Plan, by: &str, at: Timestamp) -> Result<i64, StoreError> {
        self.write(|c| rollouts::create(c, plan, by, at))
    }

    fn rollouts(&self) -> Result<Vec<RolloutSummary>, StoreError> {
        self.read(rollouts::list)
    }

    fn rollout(&self, id: i64) -> Result<Option<RolloutDetail>, StoreError> {
        self.read(|c| rollouts::detail(c, id))
    }

    fn save_rollout(
        &self,
        id: i64,
        devices: &[DeviceProgress],
        state: Option<(RolloutState, Option<String>)>,
        log: &[RolloutLog],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|c| rollouts::save(c, id, devices, state, log, at))
    }

    fn observe(&self, devices: &[(DeviceId, Option<String>)]) -> Result<Vec<Observed>, StoreError> {
        self.read(|c| rollouts::observe(c, devices))
    }

    fn devices(&self, query: &DeviceQuery) -> Result<DevicePage, StoreError> {
        self.read(|c| read::devices(c, query))
    }

    fn device(&self, id: &DeviceId) -> Result<Option<DeviceDetail>, StoreError> {
        self.read(|c| read::device(c, id))
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(|c| read::history(c, query))
    }

    fn findings(&self) -> Result<Vec<FindingCount>, StoreError> {
        self.read(read::findings)
    }

    fn devices_with_finding(&self, code: &str, limit: u64) -> Result<Vec<DeviceRow>, StoreError> {
        self.read(|c| read::devices_with_finding(c, code, limit))
    }

    fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        self.read(|c| read::command(c, id))
    }

    fn commands(&self, device: &DeviceId, limit: u64) -> Result<Vec<CommandRecord>, StoreError> {
        self.read(|c| read::commands(c, device, limit))
    }

    fn decode_failures(&self) -> Result<Vec<DecodeFailure>, StoreError> {
        self.read(read::decode_failures)
    }

    fn prune(&self, retention: Retention, now: Timestamp) -> Result<u64, StoreError> {
        self.write(|c| read::prune(c, retention, now))
    }
}
