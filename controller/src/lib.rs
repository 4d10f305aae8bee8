//! The roomready controller as a library: the admin's side of the fleet.
//!
//! [`ingest`] subscribes to every device's `state`, `status`, `events` and `cmd/res` over a
//! persistent MQTT session, decodes each payload with `roomready-protocol` and commits it to the
//! [`store`] before acknowledging it to the broker; [`model`] decides what each message changes
//! (duplicates, gaps, verdict and finding transitions, presence); [`web`] serves the dashboard,
//! the JSON API, exports, `/metrics` and commands ([`commands`]) from the same store; [`alerts`]
//! tells a webhook what needs the admins. [`start`] runs all of it from a [`config::Config`];
//! the binary adds the CLI and `user` management.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod clock;
pub mod commands;
pub mod config;
pub mod ingest;
pub mod model;
pub mod rollouts;
pub mod seq;
pub mod store;
pub mod users;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::ingest::{Ingest, IngestOptions};
use crate::store::{PostgresStore, SqliteOptions, SqliteStore, Store};
use crate::users::Users;
use crate::web::{AppState, Auth, Server};

/// How often history past its retention is deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Committed batches waiting for slow live pages before those pages are told to reload. Each
/// holds its history entries and device rows (a 2,000-message batch about 2.5 MiB), so this
/// bounds what a stalled page can pin in memory.
const LIVE_CAPACITY: usize = 32;

/// Why the controller could not start; each names the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    #[error("users_file: {0}")]
    Users(#[from] users::UsersError),
    #[error(
        "users_file: {0} has no users: add one with `roomready-controller user add NAME --role operator --users {0}`"
    )]
    NoUsers(String),
    #[error("{0}")]
    BrokerTls(String),
    #[error("{0}")]
    Web(#[from] web::ServerError),
}

/// The running controller.
pub struct Running {
    pub server: Server,
    pub ingest_stats: Arc<ingest::Stats>,
    pub store: Arc<dyn Store>,
    ingest: Ingest,
    live: broadcast::Sender<Arc<store::Committed>>,
    pruner: JoinHandle<()>,
    waker: JoinHandle<()>,
    alerter: Option<JoinHandle<()>>,
    alert_changes: watch::Receiver<u64>,
    rollouts: JoinHandle<()>,
    rollout_changes: watch::Receiver<u64>,
}

impl Running {
    /// The dashboard's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Counts the alert task's changes to the store (alerts raised, delivery attempts ended).
    pub fn alert_changes(&self) -> watch::Receiver<u64> {
        self.alert_changes.clone()
    }

    /// Counts the rollout runner's steps that changed the store.
    pub fn rollout_changes(&self) -> watch::Receiver<u64> {
        self.rollout_changes.clone()
    }

    /// Every batch committed from now on (what the live pages are sent).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<store::Committed>> {
        self.live.subscribe()
    }

    /// Stops serving, disconnects from the broker (the session stays) and closes the store.
    pub async fn stop(self) {
        self.pruner.abort();
        self.waker.abort();
        self.rollouts.abort();
        if let Some(alerter) = self.alerter {
            alerter.abort();
        }
        self.server.stop().await;
        self.ingest.stop().await;
    }
}

/// Opens the store `config` names: its SQLite file, or its PostgreSQL database (connecting,
/// checking and migrating: this blocks).
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, store::StoreError> {
    Ok(match &config.postgres {
        Some(options) => Arc::new(PostgresStore::open(options)?),
        None => Arc::new(SqliteStore::open(&SqliteOptions {
            path: config.database.clone(),
            synchronous: config.synchronous,
        })?),
    })
}

/// The database `config` names, for logs and messages (a PostgreSQL URL without its password).
pub fn database_name(config: &Config) -> String {
    match &config.postgres {
        Some(options) => options
            .check()
            .unwrap_or_else(|_| "(a PostgreSQL database)".into()),
        None => config.database.display().to_string(),
    }
}

/// Opens the store, connects to the broker and serves the dashboard, as `config` says.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let opening = config.clone();
    let store = tokio::task::spawn_blocking(move || open_store(&opening))
        .await
        .map_err(|e| store::StoreError::Open(format!("the store task failed: {e}")))??;
    let users = match &config.users_file {
        None => None,
        Some(path) => {
            let users = Users::load(path)?;
            if users.is_empty() {
                return Err(StartError::NoUsers(path.display().to_string()));
            }
            Some(users)
        }
    };
    let tls = match &config.https {
        None => None,
        Some(files) => Some(web::server::tls_config(&web::TlsFiles {
            cert_file: files.cert_file.clone(),
            key_file: files.key_file.clone(),
        })?),
    };
    let broker_tls = if config.broker.url.tls {
        Some(
            roomready_connect::tls::client_config(&config.broker.tls)
                .map_err(|e| StartError::BrokerTls(format!("{}: {e}", e.key())))?,
        )
    } else {
        None
    };
    let (live, _) = broadcast::channel(LIVE_CAPACITY);
    let shared: Arc<dyn Store> = store.clone();
    let ingest = Ingest::start(
        IngestOptions {
            broker: config.broker.clone(),
            tls: broker_tls,
            prefix: config.topic_prefix.clone(),
            client_id: config.client_id.clone(),
            shared_group: config.shared_group.clone(),
            session_expiry: config.session_expiry,
            max_payload: config.max_payload,
        },
        Arc::clone(&shared),
        live.clone(),
    );
    let commander = commands::Commander::new(
        ingest.client.clone(),
        Arc::clone(&shared),
        config.topic_prefix.clone(),
        Arc::clone(&ingest.stats),
        live.clone(),
    );
    let commander_for_rollouts = commander.clone();
    let app = Arc::new(AppState {
        store: Arc::clone(&shared),
        stats: Arc::clone(&ingest.stats),
        commander,
        live: live.clone(),
        auth: Auth::new(users, config.login),
        https: tls.is_some(),
        max_body: config.web_max_body,
        alerts_to: config.alerts.as_ref().map(|a| a.webhook_host()),
    });
    let server = match Server::start(config.listen, tls, web::router(app)).await {
        Ok(server) => server,
        Err(e) => {
            ingest.stop().await;
            return Err(e.into());
        }
    };
    // The background tasks need to know that something was committed, not what: they wait on
    // a counter, so no batch waits in the live channel for them to read it.
    let (committed, commits) = watch::channel(0u64);
    let mut receiver = live.subscribe();
    let waker = tokio::spawn(async move {
        loop {
            match receiver.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    committed.send_modify(|n| *n += 1);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let (rollouts_changed, rollout_changes) = watch::channel(0);
    let rollouts = rollouts::run::start(
        Arc::clone(&shared),
        commander_for_rollouts,
        commits.clone(),
        rollouts_changed,
    );
    let (alerts_changed, alert_changes) = watch::channel(0);
    let alerter = config.alerts.clone().map(|settings| {
        alerts::start(
            Arc::clone(&shared),
            settings,
            commits.clone(),
            alerts_changed,
        )
    });
    let retention = config.retention;
    let pruning = Arc::clone(&shared);
    let pruner = tokio::spawn(async move {
        loop {
            let store = Arc::clone(&pruning);
            let now = clock::now();
            match tokio::task::spawn_blocking(move || store.prune(retention, now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!("deleted {n} history entries past their retention"),
                Ok(Err(e)) => tracing::warn!("pruning history failed: {e}"),
                Err(_) => return,
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    });
    Ok(Running {
        server,
        ingest_stats: Arc::clone(&ingest.stats),
        store,
        ingest,
        live,
        pruner,
        waker,
        alerter,
        alert_changes,
        rollouts,
        rollout_changes,
    })
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM: when a served controller (the binary, the
/// demo) should stop. The handlers are installed when this is called, not when it is first
/// awaited, so a signal that arrives right after the dashboard's address is printed is not
/// the default action (death without cleaning up). Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use futures_util::future::Either;
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => Either::Left(async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }),
            _ => Either::Right(async {
                let _ = tokio::signal::ctrl_c().await;
            }),
        }
    }
    #[cfg(not(unix))]
    {
        // Windows: the console's Ctrl-C, registered here, before the first await.
        let ctrl_c = tokio::signal::windows::ctrl_c();
        async move {
            match ctrl_c {
                Ok(mut ctrl_c) => {
                    ctrl_c.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        }
    }
}
