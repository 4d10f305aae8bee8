//! The plan: exactly the registry changes the device's findings call for, derived by the rules
//! themselves.
//!
//! The facts are assessed; for each finding the fix repairs ([`REPAIRED`]) its values
//! ([`Target::for_finding`]) get Microsoft's value where they are wrong ([`Target::repair`]).
//! The planned values are then put into the facts and the facts assessed again, because one
//! finding can hide another (with TLS 1.2 `Enabled` = 0 the `DisabledByDefault` rule is not
//! asked): the plan is complete when no repaired finding is left. A value that exists but
//! cannot be read is left alone and said so. Nothing here reads or writes the registry: the
//! caller hands in facts whose TLS settings come from the registry the plan will be written to.

use roomready_protocol::DeviceKind;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::target::{REPAIRED, Target};
use crate::assess::assess;
use crate::facts::{Fact, Facts, Source};

/// How many times the planned values are assessed again: one finding can hide one more
/// (SCHANNEL's two switches), so two rounds suffice; the third proves it.
const ROUNDS: usize = 3;

/// One value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub(crate) target: Target,
    /// What it is now: `None` when absent.
    pub old: Option<u32>,
    /// What it becomes.
    pub new: u32,
    /// The finding code this change answers.
    pub finding: &'static str,
}

impl Change {
    /// `HKLM\...\Key`.
    pub fn key(&self) -> String {
        self.target.key()
    }

    /// The value's name.
    pub fn name(&self) -> &'static str {
        self.target.name()
    }

    /// `native` or `wow64`.
    pub fn view(&self) -> &'static str {
        self.target.view().name()
    }

    /// `CODE: HKLM\...\Name (view): 0x0 -> 0x1`, one line.
    pub fn line(&self) -> String {
        format!(
            "{}: {} ({}): {} -> {}",
            self.finding,
            self.target.path(),
            self.view(),
            hex(self.old),
            hex(Some(self.new))
        )
    }
}

/// `0x800`, or `absent`.
pub(crate) fn hex(value: Option<u32>) -> String {
    value.map_or_else(|| "absent".to_owned(), |v| format!("0x{v:X}"))
}

/// The changes for one device, with the digest that names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The device kind the rules saw (the registry rules apply to Windows kinds only).
    pub kind: DeviceKind,
    pub changes: Vec<Change>,
    /// [`roomready_protocol::fix::FIX_DIGEST_LEN`] hex digits of SHA-256 over the changes: the
    /// same changes from the same values give the same digest.
    pub digest: String,
    /// What was left alone, and why (values that cannot be read, no registry facts).
    pub notes: Vec<String>,
}

impl Plan {
    /// The plan for `facts`, whose TLS settings must come from the registry it will be written
    /// to (see the module documentation).
    pub fn new(facts: &Facts) -> Plan {
        let kind = facts.kind();
        let mut notes = Vec::new();
        let Some(read) = facts.tls.known() else {
            let why = match &facts.tls {
                Fact::Unreadable { reason, .. } => reason.clone(),
                _ => "no registry values".to_owned(),
            };
            notes.push(format!(
                "no registry facts ({}: {why}): nothing can be planned",
                facts.tls.source()
            ));
            return Plan::of(kind, Vec::new(), notes);
        };
        let mut settings = read.clone();
        let mut changes: Vec<Change> = Vec::new();
        for _ in 0..ROUNDS {
            let trial = Facts {
                tls: Fact::Known {
                    value: settings.clone(),
                    source: Source::new("the registry with the planned changes"),
                },
                ..facts.clone()
            };
            let found: Vec<&'static str> = assess(&trial)
                .findings
                .iter()
                .filter_map(|f| REPAIRED.iter().copied().find(|&code| code == f.code))
                .collect();
            let mut round = Vec::new();
            for code in found {
                for target in Target::for_finding(code) {
                    if changes.iter().any(|c| c.target == target) {
                        continue;
                    }
                    let old = match target.fact(&settings) {
                        Some(Fact::Known { value, .. }) => Some(*value),
                        Some(Fact::Absent { .. }) | None => None,
                        Some(Fact::Unreadable { source, reason }) => {
                            let note = format!("{source} left alone: it cannot be read ({reason})");
                            if !notes.contains(&note) {
                                notes.push(note);
                            }
                            continue;
                        }
                    };
                    if let Some(new) = target.repair(old) {
                        round.push(Change {
                            target,
                            old,
                            new,
                            finding: code,
                        });
                    }
                }
            }
            if round.is_empty() {
                break;
            }
            for change in &round {
                if let Some(fact) = change.target.fact_mut(&mut settings) {
                    *fact = Fact::Known {
                        value: change.new,
                        source: Source::new(format!("{} as planned", change.target.path())),
                    };
                }
            }
            changes.extend(round);
        }
        Plan::of(kind, changes, notes)
    }

    /// A plan of exactly `changes` (digest computed).
    pub(crate) fn of(kind: DeviceKind, changes: Vec<Change>, notes: Vec<String>) -> Plan {
        let digest = digest(&changes);
        Plan {
            kind,
            changes,
            digest,
            notes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// What takes the changes into use, one line each kind, or nothing for an empty plan.
    pub fn restart(&self) -> Vec<&'static str> {
        let mut steps: Vec<&'static str> = Vec::new();
        for change in &self.changes {
            let step = change.target.restart();
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
        steps
    }

    /// The plan as the `fix` command's answer and the command line print it: the first line
    /// `plan <digest>: …` ([`roomready_protocol::fix::FIX_PLAN_PREFIX`]), then one line per
    /// change ([`Change::line`]) and per note.
    pub fn message(&self, allowed: bool) -> String {
        use roomready_protocol::fix::FIX_PLAN_PREFIX;

        let mut text = format!("{FIX_PLAN_PREFIX}{}: ", self.digest);
        if self.changes.is_empty() {
            text.push_str(&format!(
                "nothing to change: no finding fix repairs ({}) on this {} device",
                REPAIRED.join(", "),
                self.kind.as_str()
            ));
        } else {
            let count = self.changes.len();
            let s = if count == 1 { "" } else { "s" };
            text.push_str(&format!("{count} change{s}; apply them with this digest"));
            if !allowed {
                text.push_str(" (needs allow_fix = true)");
            }
            text.push_str(", then restart the device");
        }
        for change in &self.changes {
            text.push('\n');
            text.push_str(&change.line());
        }
        for note in &self.notes {
            text.push_str("\nnote: ");
            text.push_str(note);
        }
        text
    }

    /// The plan as `fix --plan --json` prints it.
    pub fn to_json(&self, allowed: bool) -> serde_json::Value {
        #[derive(Serialize)]
        struct Json<'a> {
            digest: &'a str,
            kind: &'a str,
            allowed: bool,
            changes: Vec<ChangeJson<'a>>,
            restart: Vec<&'static str>,
            notes: &'a [String],
        }
        #[derive(Serialize)]
        struct ChangeJson<'a> {
            key: String,
            value: &'a str,
            view: &'a str,
            old: Option<u32>,
            new: u32,
            finding: &'a str,
        }
        let json = Json {
            digest: &self.digest,
            kind: self.kind.as_str(),
            allowed,
            changes: self
                .changes
                .iter()
                .map(|c| ChangeJson {
                    key: c.key(),
                    value: c.name(),
                    view: c.view(),
                    old: c.old,
                    new: c.new,
                    finding: c.finding,
                })
                .collect(),
            restart: self.restart(),
            notes: &self.notes,
        };
        serde_json::to_value(json).expect("a plan is strings and numbers, which always serialize")
    }
}

/// SHA-256 over one line per change (`path`, view, old, new, finding; tab-separated), its first
/// [`roomready_protocol::fix::FIX_DIGEST_LEN`] hex digits.
fn digest(changes: &[Change]) -> String {
    let mut hash = Sha256::new();
    for change in changes {
        hash.update(
            format!(
                "{}\t{}\t{}\t{}\t{}\n",
                change.target.path(),
                change.view(),
                hex(change.old),
                hex(Some(change.new)),
                change.finding
            )
            .as_bytes(),
        );
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    hex[..roomready_protocol::fix::FIX_DIGEST_LEN].to_owned()
}

/// The codes of the findings a plan answers (for tests and messages).
#[cfg(test)]
pub(crate) fn answered(plan: &Plan) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = plan.changes.iter().map(|c| c.finding).collect();
    found.dedup();
    found
}
