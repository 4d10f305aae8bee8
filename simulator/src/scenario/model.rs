//! The scenario file: its TOML shape (serde, unknown keys refused) and the checks serde cannot
//! make (names that must exist, counts that must add up), each error located by file, line and
//! column with the shape that was expected. The format is documented in simulator/README.md.
//!
//! Why serde here and `roomready_connect::keyfile` for the agent's files: those are flat key
//! files whose keys each feature owns; this is one nested document (arrays of tables) owned by
//! the simulator. The structs below are its one definition; `documented.rs` holds the README
//! and the error shapes to them.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_protocol::{DeviceKind, Placement, Ring, Site, Tag, Tags, Verdict};
use serde::Deserialize;
use toml::Spanned;

use crate::device::SimValue;
use crate::farm::EndpointSpec;

/// Most devices one scenario may simulate.
pub const MAX_DEVICES: u64 = 100_000;

/// A scenario file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}{}", file.display(), position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default(), context.as_deref().map(|c| format!("\n{c}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place.
    pub position: Option<(usize, usize)>,
    /// What is wrong, and the shape that was expected.
    pub message: String,
    /// The offending line with a caret under the column.
    pub context: Option<String>,
}

/// A duration written as `"250ms"`, `"5s"`, `"2m"`, `"1h"` or a whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        let expected = "a duration: \"250ms\", \"5s\", \"2m\", \"1h\" or whole seconds";
        match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom(format!("expected {expected}")))?
        {
            Raw::Secs(secs) => Ok(Span(Duration::from_secs(secs))),
            Raw::Text(text) => parse_duration(&text)
                .map(Span)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not {expected}"))),
        }
    }
}

/// `"250ms"`, `"5s"`, `"2m"`, `"1h"` (a whole number and a unit), or digits alone (seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = text[..digits].parse().ok()?;
    match &text[digits..] {
        "" | "s" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// One value for every device of a group, or weights over several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Distribution {
    One(String),
    Weighted(BTreeMap<String, u32>),
}

/// The scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The default seed (`--seed` overrides it).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How often each device checks and reports (default 1 h: once, plus `check_now`).
    #[serde(default)]
    pub report_interval: Option<Span>,
    /// Bound on each probe connection (default 2 s).
    #[serde(default)]
    pub probe_timeout: Option<Span>,
    /// How long after the timeline's last step the expectations may take to hold (default 60 s).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Device starts per second during the ramp-up (default 1000).
    #[serde(default)]
    pub ramp_per_sec: Option<Spanned<u32>>,
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupFile>,
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    pub update: Option<UpdateFile>,
    #[serde(default)]
    pub timeline: Vec<StepFile>,
    #[serde(default, rename = "expect")]
    pub expectations: Vec<ExpectFile>,
}

/// `[[group]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub name: Spanned<String>,
    pub count: Spanned<u64>,
    pub kind: DeviceKind,
    /// Teams Rooms app version(s); `"unreadable"` simulates a version that cannot be read,
    /// `"absent"` (or leaving it out) a device without the app.
    #[serde(default)]
    pub app_version: Option<Spanned<Distribution>>,
    /// OS build(s) (`CurrentBuild.UBR`); `"unreadable"` as above.
    #[serde(default)]
    pub os_build: Option<Spanned<Distribution>>,
    /// Registry DWORDs by full value path, as in a facts file's `[registry]`.
    #[serde(default)]
    pub registry: BTreeMap<String, Spanned<i64>>,
    /// The endpoints (by name) these devices probe; default: every `[[endpoint]]`.
    #[serde(default)]
    pub endpoints: Option<Vec<Spanned<String>>>,
    /// Whether these devices can update themselves from the scenario's `[update]` release.
    #[serde(default)]
    pub update: bool,
    /// Where these devices are (state 1.2's placement): their site, rollout ring and tags.
    #[serde(default)]
    pub site: Option<Spanned<String>>,
    #[serde(default)]
    pub ring: Option<Spanned<u64>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
}

/// `[update]`: the release the simulated update server serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFile {
    /// Its version (semver), above the agent's.
    pub version: Spanned<String>,
}

/// What a timeline step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The broker stops, and starts again on the same port after `for`.
    BrokerDown,
    /// `endpoint` refuses connections for `for` (or from then on).
    EndpointDown,
    /// The update server serves altered artifacts for `for` (or from then on).
    CorruptArtifact,
    /// The controller sends `check_now` to the group (or every device).
    CheckNow,
    /// The controller sends `update` to the group (or every device).
    Update,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::BrokerDown => "broker_down",
            Action::EndpointDown => "endpoint_down",
            Action::CorruptArtifact => "corrupt_artifact",
            Action::CheckNow => "check_now",
            Action::Update => "update",
        }
    }
}

/// `[[timeline]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    pub at: Span,
    pub action: Spanned<Action>,
    #[serde(default, rename = "for")]
    pub duration: Option<Span>,
    #[serde(default)]
    pub endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    /// For `update`: `"latest"` (default) or a version.
    #[serde(default)]
    pub version: Option<String>,
}

/// How many devices (per outcome) an expectation wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Count {
    Exactly(u64),
    /// `"all"`: every device of the group.
    All(AllWord),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllWord {
    All,
}

/// `[[expect]]`: exactly one of `verdicts`, `findings`, `delivered`, `updates`, `reported`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// A label for reports; default: made from the expectation.
    #[serde(default)]
    pub name: Option<String>,
    /// Only this group's devices; default: all.
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    /// It must hold from this long after the start at the latest, until the end.
    #[serde(default)]
    pub within: Option<Span>,
    #[serde(default)]
    pub verdicts: Option<Spanned<BTreeMap<String, u64>>>,
    #[serde(default)]
    pub findings: Option<Spanned<BTreeMap<String, u64>>>,
    #[serde(default)]
    pub delivered: Option<Spanned<bool>>,
    #[serde(default)]
    pub updates: Option<Spanned<BTreeMap<String, u64>>>,
    #[serde(default)]
    pub reported: Option<Spanned<Count>>,
}

/// The final outcome of a device's update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UpdateOutcome {
    Succeeded,
    Failed,
    RolledBack,
}

impl UpdateOutcome {
    pub const ALL: [UpdateOutcome; 3] = [
        UpdateOutcome::Succeeded,
        UpdateOutcome::Failed,
        UpdateOutcome::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOutcome::Succeeded => "succeeded",
            UpdateOutcome::Failed => "failed",
            UpdateOutcome::RolledBack => "rolled_back",
        }
    }
}

/// What an expectation checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Devices per verdict of their latest state.
    Verdicts(BTreeMap<Verdict, u64>),
    /// Devices whose latest state has each finding code.
    Findings(BTreeMap<String, u64>),
    /// Every device's messages arrived with no `seq` gap.
    Delivered,
    /// Devices per final update outcome.
    Updates(BTreeMap<UpdateOutcome, u64>),
    /// Devices that reported a state (`None`: all of the group).
    Reported(Option<u64>),
}

/// A validated expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub name: String,
    pub group: Option<String>,
    pub within: Option<Duration>,
    pub check: Check,
}

/// A validated device group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub count: u64,
    pub kind: DeviceKind,
    /// Values and their weights.
    pub app_versions: Vec<(SimValue, u32)>,
    pub os_builds: Vec<(SimValue, u32)>,
    /// (key path, value name, DWORD).
    pub registry: Vec<(String, String, u32)>,
    /// Endpoint names probed.
    pub endpoints: Vec<String>,
    pub update: bool,
    /// Where the group's devices are.
    pub placement: Placement,
}

/// A validated timeline step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at: Duration,
    pub action: Action,
    /// How long a fault lasts (`None`: to the end, for `endpoint_down` and `corrupt_artifact`).
    pub duration: Option<Duration>,
    pub endpoint: Option<String>,
    pub group: Option<String>,
    pub version: String,
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    pub report_interval: Duration,
    pub probe_timeout: Duration,
    pub timeout: Duration,
    pub ramp_per_sec: u32,
    pub groups: Vec<Group>,
    pub endpoints: Vec<EndpointSpec>,
    /// The release version served for updates, if any group can update.
    pub update_version: Option<semver::Version>,
    /// In time order.
    pub timeline: Vec<Step>,
    pub expectations: Vec<Expectation>,
}

impl Scenario {
    /// Devices in all groups.
    pub fn devices(&self) -> u64 {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// Devices in `group`, or in all groups.
    pub fn devices_in(&self, group: Option<&str>) -> u64 {
        self.groups
            .iter()
            .filter(|g| group.is_none_or(|name| g.name == name))
            .map(|g| g.count)
            .sum()
    }

    /// When the timeline's last step (and its fault) is over.
    pub fn timeline_end(&self) -> Duration {
        self.timeline
            .iter()
            .map(|s| s.at + s.duration.unwrap_or_default())
            .max()
            .unwrap_or_default()
    }
}

/// Reads and validates the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_owned(),
        position: None,
        message: format!("cannot read the scenario file: {e}"),
        context: None,
    })?;
    parse(path, &text)
}

/// Validates scenario `text`, read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let at = |span: Option<Range<usize>>, message: String| located(path, text, span, message);
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        let offset = e.span().map(|span| span.start);
        at(e.span(), with_shape(&message, text, offset))
    })?;
    validate(file, &at)
}

/// The error at `span` of `text`, with the line and a caret.
fn located(path: &Path, text: &str, span: Option<Range<usize>>, message: String) -> ScenarioError {
    let Some(span) = span else {
        return ScenarioError {
            file: path.to_owned(),
            position: None,
            message,
            context: None,
        };
    };
    let offset = span.start.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or_default();
    ScenarioError {
        file: path.to_owned(),
        position: Some((line, column)),
        message,
        context: Some(format!(
            "  {line_text}\n  {}^",
            " ".repeat(column.saturating_sub(1))
        )),
    }
}

/// The shapes of the file's tables, for a message about one of them.
pub(super) const SHAPES: [(&str, &str); 6] = [
    (
        "group",
        "[[group]] name = \"rooms\", count = 10, kind = \"teams_rooms_windows\", app_version = \
         \"4.0.105.0\" or { \"4.0.51.0\" = 1, \"5.2.115.0\" = 3 }, os_build, registry = { \
         \"HKLM\\\\...\\\\Enabled\" = 0 }, endpoints = [\"teams.microsoft.com\"], update = true, \
         site = \"oslo-hq\", ring = 0, tags = [\"board\"]",
    ),
    (
        "endpoint",
        "[[endpoint]] name = \"teams.microsoft.com\", port = 443, role = \"microsoft365\" | \
         \"onprem_sfb\" | \"adfs\" | \"custom\", sfb_version = \"6.0.9319.516\" (onprem_sfb), versions = [\"tls1.2\", \"tls1.3\"], suites = [..], certificate = \
         \"valid\" | \"expired\" | \"wrong_name\", behaviour = \"normal\" | \"refuses\" | \
         \"silent\" | { slow = { ms = 250 } }",
    ),
    (
        "timeline",
        "[[timeline]] at = \"5s\", action = \"broker_down\" | \"endpoint_down\" | \
         \"corrupt_artifact\" | \"check_now\" | \"update\", for = \"3s\", endpoint = \"..\", \
         group = \"..\", version = \"latest\"",
    ),
    (
        "expect",
        "[[expect]] one of verdicts = { ready = 3, not_ready = 1 }, findings = { \
         TLS12_APP_TOO_OLD = 2 }, delivered = true, updates = { succeeded = 3 }, reported = \
         \"all\" | N; optional group, within = \"30s\", name",
    ),
    ("update", "[update] version = \"0.2.0\""),
    (
        "scenario",
        "name = \"..\", description, seed = 1, report_interval = \"1h\", probe_timeout = \"2s\", \
         timeout = \"60s\", ramp_per_sec = 1000, then [[group]], [[endpoint]], [update], \
         [[timeline]], [[expect]]",
    ),
];

/// `message` with the expected shape of the table at byte `offset` of `text`: the last table
/// header before it (`[[group]]`, `[update]`, ...), or the top level.
fn with_shape(message: &str, text: &str, offset: Option<usize>) -> String {
    let before = offset.and_then(|o| text.get(..o)).unwrap_or("");
    let table = before
        .lines()
        .rev()
        .find_map(|line| {
            let line = line.trim();
            let name = line.strip_prefix("[[").and_then(|l| l.split("]]").next());
            let name = name.or_else(|| line.strip_prefix('[').and_then(|l| l.split(']').next()));
            name.map(str::trim)
        })
        .unwrap_or("scenario");
    match SHAPES.iter().find(|(name, _)| *name == table) {
        Some((_, shape)) => format!("{message}\n  expected: {shape}"),
        None => message.to_owned(),
    }
}

/// A group's `site`, `ring` and `tags` checked by the protocol's rules, each error at its value.
fn placement(
    site: Option<Spanned<String>>,
    ring: Option<Spanned<u64>>,
    tags: Vec<Spanned<String>>,
    at: &dyn Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Result<Placement, ScenarioError> {
    let site = site
        .map(|s| Site::new(s.get_ref().as_str()).map_err(|e| at(Some(s.span()), e.to_string())))
        .transpose()?;
    let ring = ring
        .map(|r| Ring::new(*r.get_ref()).map_err(|e| at(Some(r.span()), e.to_string())))
        .transpose()?;
    let mut checked = Vec::new();
    for tag in &tags {
        let value =
            Tag::new(tag.get_ref().as_str()).map_err(|e| at(Some(tag.span()), e.to_string()))?;
        checked.push(value);
    }
    let span = tags.first().map(|t| t.span());
    let tags = Tags::new(checked).map_err(|e| at(span, e.to_string()))?;
    Ok(Placement {
        site,
        room: None,
        ring,
        tags,
        utc_offset_minutes: None,
    })
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A group's values for one fact, with weights; not given: absent on every device.
fn distribution(
    given: Option<Spanned<Distribution>>,
    key: &str,
    at: &dyn Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Result<Vec<(SimValue, u32)>, ScenarioError> {
    let Some(given) = given else {
        return Ok(vec![(SimValue::Absent, 1)]);
    };
    let span = given.span();
    let value = |v: &str| match v {
        "unreadable" => SimValue::Unreadable,
        "absent" => SimValue::Absent,
        v => SimValue::Known(v.to_owned()),
    };
    let list = match given.into_inner() {
        Distribution::One(v) => vec![(value(&v), 1)],
        Distribution::Weighted(weights) => weights.iter().map(|(v, w)| (value(v), *w)).collect(),
    };
    if list.is_empty() || list.iter().all(|(_, w)| *w == 0) {
        return Err(at(
            Some(span),
            format!(
                "{key}: the weights are all zero or none is given; expected {{ \"VERSION\" = WEIGHT, .. }} with a weight above 0"
            ),
        ));
    }
    Ok(list)
}

fn validate(
    file: ScenarioFile,
    at: &dyn Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Result<Scenario, ScenarioError> {
    if file.name.trim().is_empty() {
        return Err(at(None, "name is empty".into()));
    }
    let endpoint_names: BTreeSet<String> = file
        .endpoints
        .iter()
        .map(|e| e.name.to_ascii_lowercase())
        .collect();
    if endpoint_names.len() != file.endpoints.len() {
        return Err(at(
            None,
            "two [[endpoint]] tables have the same name".into(),
        ));
    }
    for endpoint in &file.endpoints {
        endpoint
            .validate()
            .map_err(|e| at(None, format!("[[endpoint]] {:?}: {e}", endpoint.name)))?;
    }
    if file.groups.is_empty() {
        return Err(at(
            None,
            format!(
                "no [[group]]: a scenario needs devices\n  expected: {}",
                SHAPES[0].1
            ),
        ));
    }
    let mut groups = Vec::new();
    let mut total = 0u64;
    for g in file.groups {
        let name = g.name.get_ref().clone();
        if !name_ok(&name) {
            return Err(at(
                Some(g.name.span()),
                format!(
                    "group name {name:?}: expected 1 to 32 of A-Z a-z 0-9 - _ (it starts the device ids)"
                ),
            ));
        }
        if groups.iter().any(|x: &Group| x.name == name) {
            return Err(at(
                Some(g.name.span()),
                format!("a second group named {name:?}"),
            ));
        }
        let count = *g.count.get_ref();
        if count == 0 {
            return Err(at(
                Some(g.count.span()),
                "count: expected at least 1 device".into(),
            ));
        }
        total += count;
        if total > MAX_DEVICES {
            return Err(at(
                Some(g.count.span()),
                format!("more than {MAX_DEVICES} devices in all"),
            ));
        }
        let app_versions = distribution(g.app_version, "app_version", at)?;
        let os_builds = distribution(g.os_build, "os_build", at)?;
        let mut registry = Vec::new();
        for (path, value) in g.registry {
            let span = value.span();
            let dword = u32::try_from(*value.get_ref()).map_err(|_| {
                at(
                    Some(span.clone()),
                    format!("registry {path:?}: expected a DWORD (0 to 4294967295)"),
                )
            })?;
            let Some((key, name)) = path.rsplit_once('\\') else {
                return Err(at(
                    Some(span),
                    format!("registry {path:?}: expected a full value path, KEY\\\\VALUE_NAME"),
                ));
            };
            registry.push((key.to_owned(), name.to_owned(), dword));
        }
        let endpoints = match g.endpoints {
            None => file.endpoints.iter().map(|e| e.name.clone()).collect(),
            Some(list) => {
                let mut names = Vec::new();
                for e in list {
                    if !endpoint_names.contains(&e.get_ref().to_ascii_lowercase()) {
                        return Err(at(
                            Some(e.span()),
                            format!(
                                "endpoint {:?} is not an [[endpoint]] of this scenario (known: {})",
                                e.get_ref(),
                                known(endpoint_names.iter())
                            ),
                        ));
                    }
                    names.push(e.into_inner());
                }
                names
            }
        };
        let placement = placement(g.site, g.ring, g.tags, at)?;
        groups.push(Group {
            name,
            count,
            kind: g.kind,
            app_versions,
            os_builds,
            registry,
            endpoints,
            update: g.update,
            placement,
        });
    }
    let group_names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let check_group = |g: &Option<Spanned<String>>| -> Result<Option<String>, ScenarioError> {
        match g {
            None => Ok(None),
            Some(g) if group_names.contains(g.get_ref()) => Ok(Some(g.get_ref().clone())),
            Some(g) => Err(at(
                Some(g.span()),
                format!(
                    "group {:?} is not a [[group]] of this scenario (known: {})",
                    g.get_ref(),
                    known(group_names.iter())
                ),
            )),
        }
    };
    let updating = groups.iter().any(|g| g.update);
    let update_version = match (&file.update, updating) {
        (None, false) => None,
        (None, true) => {
            return Err(at(
                None,
                "a group has update = true but there is no [update] release\n  expected: [update] version = \"0.2.0\"".into(),
            ));
        }
        (Some(u), _) => {
            let version = semver::Version::parse(u.version.get_ref()).map_err(|e| {
                at(
                    Some(u.version.span()),
                    format!("[update] version: not semver: {e}"),
                )
            })?;
            let current = roomready_agent::update::current_version();
            if version <= current {
                return Err(at(
                    Some(u.version.span()),
                    format!("[update] version {version} is not above the agent's {current}"),
                ));
            }
            Some(version)
        }
    };
    let mut timeline = Vec::new();
    for step in file.timeline {
        let action = *step.action.get_ref();
        let action_span = step.action.span();
        let group = check_group(&step.group)?;
        let endpoint = match (&step.endpoint, action) {
            (Some(e), Action::EndpointDown) => {
                if !endpoint_names.contains(&e.get_ref().to_ascii_lowercase()) {
                    return Err(at(
                        Some(e.span()),
                        format!(
                            "endpoint {:?} is not an [[endpoint]] of this scenario (known: {})",
                            e.get_ref(),
                            known(endpoint_names.iter())
                        ),
                    ));
                }
                Some(e.get_ref().clone())
            }
            (None, Action::EndpointDown) => {
                return Err(at(
                    Some(action_span),
                    "endpoint_down needs endpoint = \"NAME\"".into(),
                ));
            }
            (Some(e), _) => {
                return Err(at(
                    Some(e.span()),
                    format!(
                        "endpoint is only for endpoint_down, not {}",
                        action.as_str()
                    ),
                ));
            }
            (None, _) => None,
        };
        // A broker that never comes back ends every run the same way; an endpoint or an
        // artifact may stay broken to the end.
        let needs_duration = action == Action::BrokerDown;
        if needs_duration && step.duration.is_none() {
            return Err(at(
                Some(action_span),
                format!(
                    "{} needs for = \"DURATION\" (how long it lasts)",
                    action.as_str()
                ),
            ));
        }
        if matches!(action, Action::CheckNow | Action::Update) && step.duration.is_some() {
            return Err(at(
                Some(action_span),
                format!("{} happens once: it takes no for", action.as_str()),
            ));
        }
        if step.group.is_some() && !matches!(action, Action::CheckNow | Action::Update) {
            return Err(at(
                Some(action_span),
                format!(
                    "{} applies to the whole scenario: it takes no group",
                    action.as_str()
                ),
            ));
        }
        if matches!(action, Action::Update | Action::CorruptArtifact) && update_version.is_none() {
            return Err(at(
                Some(action_span),
                format!(
                    "{} needs an [update] release and a group with update = true",
                    action.as_str()
                ),
            ));
        }
        let version = step.version.unwrap_or_else(|| "latest".into());
        if version != "latest" && semver::Version::parse(&version).is_err() {
            return Err(at(
                Some(action_span),
                format!("version {version:?}: expected \"latest\" or a semver version"),
            ));
        }
        timeline.push(Step {
            at: step.at.0,
            action,
            duration: step.duration.map(|d| d.0),
            endpoint,
            group,
            version,
        });
    }
    timeline.sort_by_key(|s| s.at);
    let mut expectations = Vec::new();
    for e in file.expectations {
        let group = check_group(&e.group)?;
        let mut checks = Vec::new();
        if let Some(v) = e.verdicts {
            let names = Verdict::ALL.map(|v| (v, v.to_string()));
            let expected = "ready, at_risk, not_ready or unknown";
            checks.push(Check::Verdicts(named_counts(
                v,
                &names,
                "verdicts",
                "a verdict",
                expected,
                at,
            )?));
        }
        if let Some(f) = e.findings {
            let span = f.span();
            let findings = f.into_inner();
            for code in findings.keys() {
                if !roomready_protocol::codes::ALL.contains(&code.as_str()) {
                    return Err(at(
                        Some(span),
                        format!(
                            "findings: {code:?} is not a finding code (docs/findings.md lists them)"
                        ),
                    ));
                }
            }
            checks.push(Check::Findings(findings));
        }
        if let Some(d) = e.delivered {
            if !*d.get_ref() {
                return Err(at(
                    Some(d.span()),
                    "delivered = false checks nothing; expected delivered = true".into(),
                ));
            }
            checks.push(Check::Delivered);
        }
        if let Some(u) = e.updates {
            let names = UpdateOutcome::ALL.map(|o| (o, o.as_str().to_owned()));
            let expected = "succeeded, failed or rolled_back";
            checks.push(Check::Updates(named_counts(
                u,
                &names,
                "updates",
                "an outcome",
                expected,
                at,
            )?));
        }
        if let Some(r) = e.reported {
            checks.push(Check::Reported(match r.into_inner() {
                Count::Exactly(n) => Some(n),
                Count::All(_) => None,
            }));
        }
        let check = match checks.len() {
            1 => checks.remove(0),
            n => {
                return Err(at(
                    e.group.as_ref().map(Spanned::span),
                    format!(
                        "an [[expect]] has {n} checks; expected exactly one of verdicts, findings, delivered, updates, reported\n  expected: {}",
                        SHAPES[3].1
                    ),
                ));
            }
        };
        let mut name = e.name.unwrap_or_else(|| describe(&check, group.as_deref()));
        // Names identify test cases in JUnit: keep them unique.
        let base = name.clone();
        let mut n = 1;
        while expectations.iter().any(|x: &Expectation| x.name == name) {
            n += 1;
            name = format!("{base} #{n}");
        }
        expectations.push(Expectation {
            name,
            group,
            within: e.within.map(|w| w.0),
            check,
        });
    }
    if expectations.is_empty() {
        return Err(at(
            None,
            format!(
                "no [[expect]]: a scenario must expect something\n  expected: {}",
                SHAPES[3].1
            ),
        ));
    }
    let ramp_per_sec = match file.ramp_per_sec {
        None => 1000,
        Some(r) if *r.get_ref() == 0 => {
            return Err(at(
                Some(r.span()),
                "ramp_per_sec: expected at least 1".into(),
            ));
        }
        Some(r) => r.into_inner(),
    };
    Ok(Scenario {
        file: PathBuf::new(),
        name: file.name,
        description: file.description,
        seed: file.seed.unwrap_or(1),
        report_interval: file
            .report_interval
            .map_or(Duration::from_secs(3600), |s| s.0),
        probe_timeout: file.probe_timeout.map_or(Duration::from_secs(2), |s| s.0),
        timeout: file.timeout.map_or(Duration::from_secs(60), |s| s.0),
        ramp_per_sec,
        groups,
        endpoints: file.endpoints,
        update_version,
        timeline,
        expectations,
    })
}

/// `{ NAME = COUNT, .. }` with each NAME one of `names`: `key: "x" is not WHAT; expected EXPECTED`.
fn named_counts<T: Copy + Ord>(
    given: Spanned<BTreeMap<String, u64>>,
    names: &[(T, String)],
    key: &str,
    what: &str,
    expected: &str,
    at: &dyn Fn(Option<Range<usize>>, String) -> ScenarioError,
) -> Result<BTreeMap<T, u64>, ScenarioError> {
    let span = given.span();
    let mut counts = BTreeMap::new();
    for (name, n) in given.into_inner() {
        let Some((value, _)) = names.iter().find(|(_, text)| *text == name) else {
            return Err(at(
                Some(span),
                format!("{key}: {name:?} is not {what}; expected {expected}"),
            ));
        };
        counts.insert(*value, n);
    }
    Ok(counts)
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// A default name for an expectation: its kind and group, `verdicts[rooms]` (the expected
/// column of a report shows the rest).
pub fn describe(check: &Check, group: Option<&str>) -> String {
    let kind = match check {
        Check::Verdicts(_) => "verdicts",
        Check::Findings(_) => "findings",
        Check::Delivered => "delivered",
        Check::Updates(_) => "updates",
        Check::Reported(_) => "reported",
    };
    match group {
        Some(g) => format!("{kind}[{g}]"),
        None => kind.to_owned(),
    }
}
