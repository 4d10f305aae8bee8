//! The SQLite schema, as numbered migrations run in order at start (`PRAGMA user_version` is the
//! number of the last one applied). A migration is never edited once released: a change is a new
//! one at the end.

/// `PRAGMA application_id` of a roomready controller database ("RRCT").
pub const APPLICATION_ID: i32 = 0x5252_4354;

/// Every migration, oldest first; the schema version is its position + 1.
pub const MIGRATIONS: &[&str] = &[
    // 1: devices, their current findings, history, commands, undecodable payloads.
    "
    CREATE TABLE devices (
        id TEXT PRIMARY KEY NOT NULL,
        kind TEXT,
        app_version TEXT,
        os_build TEXT,
        agent_version TEXT,
        verdict TEXT,
        verdict_rank INTEGER,
        top_code TEXT,
        top_severity TEXT,
        top_severity_rank INTEGER,
        top_title TEXT,
        findings INTEGER NOT NULL DEFAULT 0,
        presence TEXT,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        state_ts INTEGER,
        state_seq INTEGER,
        state TEXT,
        status TEXT,
        seq_ranges TEXT NOT NULL DEFAULT '',
        duplicates INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0,
        missing INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX devices_verdict ON devices (verdict_rank, id);
    CREATE INDEX devices_last_seen ON devices (last_seen);
    CREATE TABLE device_findings (
        device_id TEXT NOT NULL,
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        remediation TEXT NOT NULL,
        reference TEXT NOT NULL,
        PRIMARY KEY (device_id, code)
    ) WITHOUT ROWID;
    CREATE INDEX device_findings_code ON device_findings (code, device_id);
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        ts INTEGER,
        seq INTEGER,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX history_device ON history (device_id, id);
    CREATE INDEX history_kind_at ON history (kind, at);
    CREATE TABLE commands (
        id TEXT PRIMARY KEY NOT NULL,
        device_id TEXT NOT NULL,
        command TEXT NOT NULL,
        by_user TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        status TEXT,
        reason TEXT,
        message TEXT,
        answered_at INTEGER
    );
    CREATE INDEX commands_device ON commands (device_id, sent_at);
    CREATE TABLE decode_failures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at INTEGER NOT NULL,
        topic TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload_head TEXT NOT NULL,
        payload_len INTEGER NOT NULL
    );
    ",
    // 2: where each device is (state 1.2's placement): site, room, ring, tags (one row per tag
    // for filtering and totals) and its UTC offset.
    "
    ALTER TABLE devices ADD COLUMN site TEXT;
    ALTER TABLE devices ADD COLUMN room TEXT;
    ALTER TABLE devices ADD COLUMN ring INTEGER;
    ALTER TABLE devices ADD COLUMN tags TEXT NOT NULL DEFAULT '';
    ALTER TABLE devices ADD COLUMN utc_offset INTEGER;
    CREATE INDEX devices_site ON devices (site, id);
    CREATE INDEX devices_ring ON devices (ring, id);
    CREATE TABLE device_tags (
        tag TEXT NOT NULL,
        device_id TEXT NOT NULL,
        PRIMARY KEY (tag, device_id)
    ) WITHOUT ROWID;
    CREATE INDEX device_tags_device ON device_tags (device_id);
    ",
    // 3: alerts, each with its delivery result, and how far the history has been read for them.
    "
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        key TEXT NOT NULL,
        quiet_key TEXT NOT NULL,
        device_id TEXT,
        site TEXT,
        raised_at INTEGER NOT NULL,
        summary TEXT NOT NULL,
        outcome TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        finished_at INTEGER,
        last_error TEXT
    );
    CREATE UNIQUE INDEX alerts_key ON alerts (key);
    CREATE INDEX alerts_quiet ON alerts (quiet_key, raised_at);
    CREATE INDEX alerts_outcome ON alerts (outcome, id);
    CREATE TABLE alert_cursor (
        name TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 4: staged rollouts, their devices and their log.
    "
    CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE rollout_devices (
        rollout_id INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        ring INTEGER NOT NULL,
        stage TEXT NOT NULL,
        command_id TEXT,
        baseline TEXT,
        baseline_seq INTEGER,
        sent_at INTEGER,
        healthy_since INTEGER,
        reason TEXT,
        PRIMARY KEY (rollout_id, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE rollout_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rollout_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        by_user TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX rollout_log_rollout ON rollout_log (rollout_id, id);
    ",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
