//! The fix on Linux, through the registry trait: plans only for the findings present, apply
//! (backup first, read back, rolled back on a failure), undo, and every refusal with nothing
//! written.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use roomready_protocol::{DeviceKind, codes};

use super::backup;
use super::target::{REPAIRED, Target};
use super::*;
use crate::facts::registry::write::{MemoryRegistry, RegistryWriteError};
use crate::facts::registry::{MapRegistry, Registry};
use crate::facts::tls::{DOTNET4_RELEASE_KEY, DotNet, View};
use crate::facts::{Fact, Source};

const NOW: &str = "2026-11-23T14:07:27.000Z";

/// A Teams Rooms device on Windows 10 whose TLS settings are read from the registry.
fn facts() -> Facts {
    let known = |value: &str| Fact::Known {
        value: value.to_owned(),
        source: Source::new("test"),
    };
    Facts {
        device_id: None,
        kind: Fact::Known {
            value: DeviceKind::TeamsRoomsWindows,
            source: Source::new("test"),
        },
        app_version: known("5.2.115.0"),
        os_build: known("19045.4894"),
        os_name: Fact::Absent {
            source: Source::new("test"),
        },
        tls: Fact::Absent {
            source: Source::new("replaced by the fix's own read"),
        },
        observed: Fact::Absent {
            source: Source::new("test"),
        },
    }
}

fn env(registry: Arc<dyn RegistryWrite>, dir: &Path, allowed: bool) -> FixEnv {
    FixEnv {
        registry,
        state_dir: dir.join("journal"),
        allowed,
        config: dir.join("agent.toml"),
    }
}

fn set(map: MapRegistry, target: Target, value: u32) -> MapRegistry {
    map.with(&target.key(), target.name(), value)
}

/// SCHANNEL's TLS 1.2 client off, WinHTTP's native view without TLS 1.2 (SSL 3 + TLS 1.0), its
/// Wow6432Node view right.
fn broken() -> MapRegistry {
    let map = set(MapRegistry::new(), Target::SchannelEnabled, 0);
    let map = set(map, Target::WinHttp(View::Native), 0xA0);
    set(map, Target::WinHttp(View::Wow64), 0xA80)
}

fn lines(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(Change::line).collect()
}

fn now() -> roomready_protocol::Timestamp {
    NOW.parse().expect("time")
}

#[test]
fn the_plan_holds_exactly_the_changes_the_present_findings_call_for() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = MemoryRegistry::new(broken());
    let env = env(Arc::new(registry.clone()), dir.path(), false);
    let plan = env.plan(&facts());
    let schannel = Target::SchannelEnabled.path();
    let winhttp = Target::WinHttp(View::Native).path();
    assert_eq!(
        lines(&plan),
        [
            format!("SCHANNEL_TLS12_CLIENT_DISABLED: {schannel} (native): 0x0 -> 0x1"),
            format!("WINHTTP_TLS12_NOT_DEFAULT: {winhttp} (native): 0xA0 -> 0x8A0"),
        ]
    );
    assert_eq!(plan.digest.len(), 16);
    assert_eq!(
        env.plan(&facts()).digest,
        plan.digest,
        "the same plan, the same digest"
    );
    let message = plan.message(false);
    assert_eq!(
        roomready_protocol::fix::fix_plan_digest(&message),
        Some(plan.digest.as_str())
    );
    assert!(message.contains("needs allow_fix = true"), "{message}");
    let json = plan.to_json(false);
    assert_eq!(json["changes"][0]["value"], "Enabled");
    assert_eq!(json["changes"][0]["old"], 0);
    assert_eq!(json["changes"][1]["view"], "native");
    assert_eq!(json["changes"][1]["new"], 0x8A0);
    assert_eq!(registry.snapshot(), broken(), "planning writes nothing");

    // A clean registry, or a device the registry rules do not apply to: nothing to change.
    let clean = env_with(MapRegistry::new(), dir.path());
    assert!(clean.plan(&facts()).is_empty());
    let android = Facts {
        kind: Fact::Known {
            value: DeviceKind::TeamsRoomsAndroid,
            source: Source::new("test"),
        },
        ..facts()
    };
    let plan = env.plan(&android);
    assert!(plan.is_empty(), "{:?}", lines(&plan));
    assert!(plan.message(true).contains("nothing to change"));
    assert_ne!(plan.digest, env.plan(&facts()).digest);
}

fn env_with(map: MapRegistry, dir: &Path) -> FixEnv {
    env(Arc::new(MemoryRegistry::new(map)), dir, true)
}

#[test]
fn a_finding_hidden_by_another_is_planned_too() {
    let dir = tempfile::tempdir().expect("dir");
    // Enabled = 0 decides the SCHANNEL rule; DisabledByDefault = 1 shows only once it is 1.
    let map = set(MapRegistry::new(), Target::SchannelEnabled, 0);
    let map = set(map, Target::SchannelDisabledByDefault, 1);
    let plan = env_with(map, dir.path()).plan(&facts());
    assert_eq!(
        plan::answered(&plan),
        [
            codes::SCHANNEL_TLS12_CLIENT_DISABLED,
            codes::SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT
        ]
    );
    assert_eq!(plan.changes[1].old, Some(1));
    assert_eq!(plan.changes[1].new, 0);
}

#[test]
fn winhttp_gets_tls12_added_and_microsofts_value_where_absent() {
    let dir = tempfile::tempdir().expect("dir");
    let map = set(MapRegistry::new(), Target::WinHttp(View::Native), 0x200);
    let plan = env_with(map, dir.path()).plan(&facts());
    let got: Vec<(View, Option<u32>, u32)> = plan
        .changes
        .iter()
        .map(|c| (c.target.view(), c.old, c.new))
        .collect();
    assert_eq!(
        got,
        [
            (View::Native, Some(0x200), 0xA00),
            (View::Wow64, None, 0xA80)
        ]
    );
}

#[test]
fn dotnet_switches_are_set_where_missing_in_both_lines_and_views() {
    let dir = tempfile::tempdir().expect("dir");
    // .NET 4.5.1 with one switch set in the native view only.
    let map = MapRegistry::new()
        .with(DOTNET4_RELEASE_KEY, "Release", 378_675)
        .with(
            &Target::StrongCrypto(DotNet::V4, View::Native).key(),
            "SchUseStrongCrypto",
            1,
        )
        .with(
            &Target::SystemDefaultTls(DotNet::V2, View::Wow64).key(),
            "SystemDefaultTlsVersions",
            0,
        );
    let plan = env_with(map, dir.path()).plan(&facts());
    assert_eq!(plan::answered(&plan), [codes::DOTNET_TLS12_NOT_DEFAULT]);
    assert_eq!(plan.changes.len(), 7, "8 switches, one already 1");
    assert!(plan.changes.iter().all(|c| c.new == 1));
    assert!(
        !plan
            .changes
            .iter()
            .any(|c| c.target == Target::StrongCrypto(DotNet::V4, View::Native))
    );
    // .NET 4.8 needs no switch: no finding, no change.
    let map = MapRegistry::new().with(DOTNET4_RELEASE_KEY, "Release", 528_040);
    assert!(env_with(map, dir.path()).plan(&facts()).is_empty());
}

#[test]
fn apply_then_undo_restores_every_value_and_deletes_the_ones_that_were_absent() {
    let dir = tempfile::tempdir().expect("dir");
    let before = set(broken(), Target::WinHttp(View::Wow64), 0xA0).with(
        DOTNET4_RELEASE_KEY,
        "Release",
        378_675,
    );
    let registry = MemoryRegistry::new(before.clone());
    let env = env(Arc::new(registry.clone()), dir.path(), true);
    let plan = env.plan(&facts());
    let applied = apply(&env, &facts(), Some(&plan.digest), now()).expect("applied");
    assert_eq!(applied.plan, plan);
    let backup_path = env.state_dir.join("fix-backup.json");
    assert_eq!(applied.backup.as_deref(), Some(backup_path.as_path()));
    let message = applied.message();
    assert!(message.contains("restart needed"), "{message}");
    for change in &plan.changes {
        assert_eq!(
            registry.dword(&change.key(), change.name()).known(),
            Some(&change.new),
            "{}",
            change.line()
        );
    }
    let assessed = crate::assess::assess(&Facts {
        tls: Fact::Known {
            value: crate::facts::registry::read_tls_settings(&registry),
            source: Source::new("test"),
        },
        ..facts()
    });
    assert!(
        !assessed
            .findings
            .iter()
            .any(|f| REPAIRED.contains(&f.code.as_str())),
        "{:?}",
        assessed.findings
    );
    assert!(env.plan(&facts()).is_empty(), "nothing left to do");
    let saved = backup::load(&backup_path).expect("valid").expect("there");
    assert_eq!(saved.values.len(), plan.changes.len());

    let undone = undo(&env).expect("undone");
    assert_eq!(undone.restored.len(), plan.changes.len());
    assert!(undone.notes.is_empty(), "{:?}", undone.notes);
    assert_eq!(registry.snapshot(), before, "absent values deleted again");
    assert!(!backup_path.exists(), "the backup goes with the undo");
    assert!(matches!(undo(&env), Err(FixError::NoBackup { .. })));
}

#[test]
fn undo_restores_a_value_changed_since_and_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = MemoryRegistry::new(broken());
    let env = env(Arc::new(registry.clone()), dir.path(), true);
    apply(&env, &facts(), None, now()).expect("applied");
    let enabled = Target::SchannelEnabled;
    registry
        .set_dword(&enabled.key(), enabled.name(), 0xFFFF_FFFF)
        .expect("set");
    let undone = undo(&env).expect("undone");
    assert_eq!(undone.notes.len(), 1, "{:?}", undone.notes);
    assert!(
        undone.notes[0].contains("was 0xFFFFFFFF, not 0x1"),
        "{:?}",
        undone.notes
    );
    assert_eq!(registry.snapshot(), broken());
}

/// A registry that records, at each write, whether the backup is there, and can fail a value.
struct Spy {
    inner: MemoryRegistry,
    backup: PathBuf,
    /// (value name, backup present) per write.
    writes: Mutex<Vec<(String, bool)>>,
    /// Writes of this value name fail, or land as another value.
    fault: Option<(&'static str, Fault)>,
    /// Writes that landed as another value (for [`Fault::LandsOnce`]).
    landed: Mutex<u32>,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Every write is refused (access denied): nothing changes.
    Refuse,
    /// Every write lands as this value (a policy that sets it back).
    Lands(u32),
    /// The first write lands as this value, later ones as written.
    LandsOnce(u32),
}

impl Registry for Spy {
    fn dword(&self, path: &str, name: &str) -> Fact<u32> {
        self.inner.dword(path, name)
    }

    fn string(&self, path: &str, name: &str) -> Fact<String> {
        self.inner.string(path, name)
    }
}

impl RegistryWrite for Spy {
    fn set_dword(&self, path: &str, name: &str, value: u32) -> Result<(), RegistryWriteError> {
        self.writes
            .lock()
            .expect("lock")
            .push((name.to_owned(), self.backup.exists()));
        match self.fault {
            Some((faulty, Fault::Refuse)) if faulty == name => Err(RegistryWriteError {
                action: "set",
                value: format!("{path}\\{name}"),
                reason: "Access is denied. (os error 5)".into(),
            }),
            Some((faulty, Fault::Lands(other))) if faulty == name => {
                self.inner.set_dword(path, name, other)
            }
            Some((faulty, Fault::LandsOnce(other))) if faulty == name => {
                let mut landed = self.landed.lock().expect("lock");
                *landed += 1;
                let value = if *landed == 1 { other } else { value };
                self.inner.set_dword(path, name, value)
            }
            _ => self.inner.set_dword(path, name, value),
        }
    }

    fn delete_value(&self, path: &str, name: &str) -> Result<(), RegistryWriteError> {
        self.inner.delete_value(path, name)
    }
}

fn spy(dir: &Path, map: MapRegistry, fault: Option<(&'static str, Fault)>) -> (Arc<Spy>, FixEnv) {
    let spy = Arc::new(Spy {
        inner: MemoryRegistry::new(map),
        backup: dir.join("journal").join("fix-backup.json"),
        writes: Mutex::new(Vec::new()),
        fault,
        landed: Mutex::new(0),
    });
    let env = env(Arc::clone(&spy) as Arc<dyn RegistryWrite>, dir, true);
    (spy, env)
}

#[test]
fn the_backup_is_on_disk_before_the_first_write() {
    let dir = tempfile::tempdir().expect("dir");
    let (spy, env) = spy(dir.path(), broken(), None);
    apply(&env, &facts(), None, now()).expect("applied");
    let writes = spy.writes.lock().expect("lock").clone();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes.iter().all(|(_, backup)| *backup), "{writes:?}");
}

#[test]
fn a_failed_write_or_read_back_restores_what_was_written() {
    for fault in [Fault::Refuse, Fault::LandsOnce(0x80)] {
        let dir = tempfile::tempdir().expect("dir");
        // SCHANNEL is written first, then WinHTTP fails.
        let (spy, env) = spy(
            dir.path(),
            broken(),
            Some(("DefaultSecureProtocols", fault)),
        );
        let e = apply(&env, &facts(), None, now()).expect_err("fails");
        let FixError::Write(failure) = &e else {
            panic!("{e}");
        };
        assert!(failure.restore_errors.is_empty(), "{fault:?}: {e}");
        let text = e.to_string();
        let cause = match fault {
            Fault::Refuse => "Access is denied",
            _ => "reads back as 0x80 after writing 0x8A0",
        };
        assert!(text.contains(cause), "{text}");
        assert!(text.contains("the registry is as it was"), "{text}");
        assert_eq!(e.exit_code(), crate::exit::IO_ERROR);
        assert_eq!(e.reason(), "write_failed");
        assert_eq!(spy.inner.snapshot(), broken(), "{fault:?}");
        assert!(!spy.backup.exists(), "rolled back: no backup left");
    }
}

#[test]
fn a_value_that_cannot_be_put_back_keeps_the_backup_for_undo() {
    let dir = tempfile::tempdir().expect("dir");
    let (spy, env) = spy(
        dir.path(),
        broken(),
        Some(("DefaultSecureProtocols", Fault::Lands(0x80))),
    );
    let e = apply(&env, &facts(), None, now()).expect_err("fails");
    let text = e.to_string();
    assert!(
        text.contains("restoring failed too")
            && text.contains("reads back as 0x80 after writing 0xA0"),
        "{text}"
    );
    assert!(text.contains("fix --undo"), "{text}");
    assert!(spy.backup.exists(), "the backup stays");
    let enabled = Target::SchannelEnabled;
    assert_eq!(
        spy.inner.dword(&enabled.key(), enabled.name()).known(),
        Some(&0),
        "what could be put back was"
    );
}

#[test]
fn apply_is_refused_without_allow_fix_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = MemoryRegistry::new(broken());
    let env = env(Arc::new(registry.clone()), dir.path(), false);
    for e in [
        apply(&env, &facts(), None, now()).expect_err("not allowed"),
        undo(&env).expect_err("not allowed"),
    ] {
        let text = e.to_string();
        assert!(text.contains("allow_fix = true"), "{text}");
        assert!(text.contains(&env.config.display().to_string()), "{text}");
        assert_eq!(e.exit_code(), crate::exit::CONFIG);
        assert_eq!(e.reason(), "not_allowed");
        assert!(e.refused());
    }
    assert_eq!(registry.snapshot(), broken());
    assert!(!env.state_dir.join("fix-backup.json").exists());
}

#[test]
fn apply_is_refused_over_an_earlier_backup_and_for_another_plan() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = MemoryRegistry::new(broken());
    let env = env(Arc::new(registry.clone()), dir.path(), true);
    let old_plan = env.plan(&facts());
    // Another plan than the one asked for: nothing written.
    let other = "0000000000000000";
    let e = apply(&env, &facts(), Some(other), now()).expect_err("changed");
    assert!(matches!(&e, FixError::PlanChanged { .. }), "{e}");
    assert!(e.to_string().contains(&old_plan.digest), "{e}");
    assert_eq!(e.reason(), "plan_changed");
    assert_eq!(registry.snapshot(), broken());

    apply(&env, &facts(), Some(&old_plan.digest), now()).expect("applied");
    let after = registry.snapshot();
    // A new problem appears; the first fix's backup is still there.
    let dbd = Target::SchannelDisabledByDefault;
    registry.set_dword(&dbd.key(), dbd.name(), 1).expect("set");
    let e = apply(&env, &facts(), None, now()).expect_err("backup there");
    let text = e.to_string();
    assert!(matches!(e, FixError::BackupExists { .. }), "{text}");
    assert!(text.contains("fix-backup.json"), "{text}");
    assert!(
        text.contains(&format!(
            "written 2026-11-23T14:07:27Z for plan {}",
            old_plan.digest
        )),
        "{text}"
    );
    assert!(text.contains("fix --undo"), "{text}");
    assert_eq!(e.exit_code(), crate::exit::CANT_CREATE);
    assert_eq!(registry.dword(&dbd.key(), dbd.name()).known(), Some(&1));
    assert_eq!(registry.snapshot(), after.with(&dbd.key(), dbd.name(), 1));
    assert!(matches!(
        env.check_apply(&facts(), &env.plan(&facts()).digest),
        Err(FixError::BackupExists { .. })
    ));
}

#[test]
fn a_corrupt_or_tampered_backup_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().expect("dir");
    let registry = MemoryRegistry::new(broken());
    let env = env(Arc::new(registry.clone()), dir.path(), true);
    apply(&env, &facts(), None, now()).expect("applied");
    let after = registry.snapshot();
    let path = env.state_dir.join("fix-backup.json");
    let good = std::fs::read_to_string(&path).expect("backup");
    let cases = [
        (good.replace("\"new\": 1", "\"new\": true"), "line "),
        (good[..good.len() - 20].to_owned(), "EOF while parsing"),
        (
            good.replace(r"TLS 1.2\\Client", r"TLS 1.2\\Server"),
            "values[0]:",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&path, &text).expect("write");
        for e in [
            undo(&env).expect_err("invalid"),
            env.check_undo().expect_err("invalid"),
        ] {
            let message = e.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(expected), "{expected:?}: {message}");
            assert!(message.contains("nothing was written"), "{message}");
            assert_eq!(e.exit_code(), crate::exit::DATA_ERROR);
            assert_eq!(e.reason(), "backup_invalid");
        }
        assert_eq!(registry.snapshot(), after, "{expected}");
    }
}

#[test]
fn allow_fix_is_read_from_the_config_and_off_by_default() {
    let parse = |extra: &str| {
        crate::config::Config::parse(
            Path::new("/etc/roomready/agent.toml"),
            &format!(
                "broker_url = \"mqtt://127.0.0.1\"\ndevice_id = \"mtr-1\"\nfacts_file = \"f.toml\"\n{extra}"
            ),
        )
    };
    assert!(!parse("").expect("valid").allow_fix);
    assert!(parse("allow_fix = true\n").expect("valid").allow_fix);
    assert!(!parse("allow_fix = false\n").expect("valid").allow_fix);
    let e = parse("allow_fix = \"yes\"\n").expect_err("not a bool");
    assert_eq!(
        e.to_string(),
        "/etc/roomready/agent.toml:4:13: key \"allow_fix\": expected true or false, found a string \"yes\""
    );
}

mod cli {
    //! `roomready-agent fix` as a library function, on an in-memory registry.

    use super::*;
    use crate::cli::{FixRequest, fix};
    use crate::exit;

    fn config(dir: &Path, allowed: bool) -> PathBuf {
        std::fs::write(
            dir.join("facts.toml"),
            "kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\nos_build = \"19045.4894\"\n",
        )
        .expect("facts");
        let path = dir.join("agent.toml");
        std::fs::write(
            &path,
            format!(
                "broker_url = \"mqtt://127.0.0.1\"\ndevice_id = \"mtr-1\"\nfacts_file = \
                 \"facts.toml\"\nallow_fix = {allowed}\n"
            ),
        )
        .expect("config");
        path
    }

    #[tokio::test]
    async fn plan_apply_undo_and_their_exit_codes() {
        let dir = tempfile::tempdir().expect("dir");
        let registry = MemoryRegistry::new(broken());
        let shared = || Some(Arc::new(registry.clone()) as Arc<dyn RegistryWrite>);
        let denied = config(dir.path(), false);
        assert_eq!(
            fix(&denied, FixRequest::Plan { json: true }, shared()).await,
            exit::READY
        );
        assert_eq!(
            fix(&denied, FixRequest::Apply { digest: None }, shared()).await,
            exit::CONFIG
        );
        assert_eq!(registry.snapshot(), broken());
        assert_eq!(
            fix(&denied, FixRequest::Plan { json: false }, None).await,
            exit::USAGE,
            "no registry here"
        );
        let allowed = config(dir.path(), true);
        let stale = FixRequest::Apply {
            digest: Some("0000000000000000".into()),
        };
        assert_eq!(fix(&allowed, stale, shared()).await, exit::DATA_ERROR);
        assert_eq!(registry.snapshot(), broken());
        assert_eq!(
            fix(&allowed, FixRequest::Apply { digest: None }, shared()).await,
            exit::REBOOT_NEEDED
        );
        assert_ne!(registry.snapshot(), broken());
        assert!(dir.path().join("journal/fix-backup.json").exists());
        assert_eq!(
            fix(&allowed, FixRequest::Apply { digest: None }, shared()).await,
            exit::READY,
            "nothing left to change"
        );
        assert_eq!(
            fix(&allowed, FixRequest::Undo, shared()).await,
            exit::REBOOT_NEEDED
        );
        assert_eq!(registry.snapshot(), broken());
        assert_eq!(
            fix(&allowed, FixRequest::Undo, shared()).await,
            exit::NO_INPUT
        );
    }
}
