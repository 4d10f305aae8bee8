//! The scenario format's one definition is its serde structs (unknown keys refused): these tests
//! hold the two other places that name its keys to them — the format block of
//! simulator/README.md and the shapes quoted in error messages ([`model::SHAPES`]) — so a key
//! added, renamed or removed in the structs fails here until the docs follow.

use serde::Deserialize;
use serde::de::{self, Visitor};

use super::model::{self, ExpectFile, GroupFile, ScenarioFile, StepFile, UpdateFile};
use crate::farm::EndpointSpec;

/// The serialized field names serde hands to `deserialize_struct`: what a struct accepts.
struct Fields(&'static [&'static str]);

/// A deserializer that only records the fields of the struct asked of it.
struct FieldProbe;

#[derive(Debug)]
struct Probed(Option<&'static [&'static str]>);

impl std::fmt::Display for Probed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Probed(None)
    }
}

impl<'de> de::Deserializer<'de> for FieldProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<'de, T: Deserialize<'de>>() -> Fields {
    match T::deserialize(FieldProbe) {
        Err(Probed(Some(fields))) => Fields(fields),
        _ => panic!("{} is not a struct", std::any::type_name::<T>()),
    }
}

/// Each table of the file: its name in the shapes and its fields.
fn tables() -> Vec<(&'static str, Fields)> {
    vec![
        ("scenario", fields::<ScenarioFile>()),
        ("group", fields::<GroupFile>()),
        ("endpoint", fields::<EndpointSpec>()),
        ("update", fields::<UpdateFile>()),
        ("timeline", fields::<StepFile>()),
        ("expect", fields::<ExpectFile>()),
    ]
}

/// The ```toml block under "### The format" in simulator/README.md.
fn readme_format() -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split_once("### The format")
        .expect("simulator/README.md has a \"### The format\" section")
        .1;
    let block = section
        .split_once("```toml\n")
        .expect("the format section has a toml block")
        .1;
    block
        .split_once("```")
        .expect("the toml block ends")
        .0
        .to_owned()
}

#[test]
fn the_readme_names_every_key_and_no_other() {
    let block = readme_format();
    // Every key written (uncommented) is one the structs accept, with a valid value.
    if let Err(e) = toml::from_str::<ScenarioFile>(&block) {
        panic!("simulator/README.md's format block does not parse as a scenario file: {e}");
    }
    // Every key the structs accept is written, or shown in a comment as an alternative.
    let written = |key: &str| {
        block.lines().any(|line| {
            let line = line.trim_start().trim_start_matches("# ").trim_start();
            line.starts_with(&format!("{key} ="))
                || line.starts_with(&format!("[[{key}]]"))
                || line.starts_with(&format!("[{key}]"))
        })
    };
    let missing: Vec<String> = tables()
        .into_iter()
        .flat_map(|(table, Fields(fields))| {
            fields
                .iter()
                .filter(|key| !written(key))
                .map(move |key| format!("{table}.{key}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "simulator/README.md's format block lacks {missing:?}"
    );
}

#[test]
fn every_shape_in_error_messages_names_every_key_of_its_table() {
    for (table, Fields(fields)) in tables() {
        let (_, shape) = model::SHAPES
            .iter()
            .find(|(name, _)| *name == table)
            .unwrap_or_else(|| panic!("no shape for table {table}"));
        let missing: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|key| {
                !shape
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == *key)
            })
            .collect();
        assert!(
            missing.is_empty(),
            "the {table} shape lacks {missing:?}: {shape}"
        );
    }
}
