//! The controller's documentation against its one definition of the config keys: every key the
//! config takes has its row in docs/controller.md and a line in docs/examples/controller.toml,
//! nothing undocumented is listed there, and the example is a valid config.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_owned()
}

fn keys() -> Vec<&'static str> {
    roomready_controller::config::all_keys().collect()
}

#[test]
fn every_config_key_has_its_row_in_docs_controller_md() {
    let doc =
        std::fs::read_to_string(repo().join("docs/controller.md")).expect("docs/controller.md");
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("## Configuration"))
        .take_while(|l| !l.starts_with("## Users"))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(key, _)| key))
        .collect();
    let keys = keys();
    for key in &keys {
        assert!(
            table.contains(key),
            "docs/controller.md: no row for `{key}`"
        );
    }
    for row in &table {
        assert!(
            keys.contains(row),
            "docs/controller.md: `{row}` is not a config key"
        );
    }
}

#[test]
fn the_example_config_names_every_key_and_is_valid() {
    let example = repo().join("docs/examples/controller.toml");
    let text = std::fs::read_to_string(&example).expect("docs/examples/controller.toml");
    for key in keys() {
        let named = text.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        assert!(named, "docs/examples/controller.toml does not show `{key}`");
    }
    // Valid as it stands, with the files it names in place.
    let dir = tempfile::tempdir().expect("tempdir");
    for file in [
        "broker-ca.pem",
        "broker-password",
        "https.pem",
        "https.key",
        "users",
    ] {
        std::fs::write(dir.path().join(file), "x\n").expect("a named file");
    }
    let config = dir.path().join("controller.toml");
    let parsed = roomready_controller::config::Config::parse(&config, &text, &|_| None);
    let config = parsed.unwrap_or_else(|e| panic!("docs/examples/controller.toml: {e}"));
    assert_eq!(config.listen.to_string(), "0.0.0.0:8443");
    assert!(config.https.is_some() && config.users_file.is_some());
}
