//! The `fix` command's arguments: what it asks for ([`FixMode`]), the digest that ties an
//! `apply` to the plan the operator saw, and how a plan answer carries that digest.
//!
//! "Plan first, then apply": `{"command":"fix","mode":"plan"}` is answered `succeeded` with the
//! plan in the answer's `message`, whose first line is `plan <digest>: …` ([`FIX_PLAN_PREFIX`],
//! [`fix_plan_digest`]); `{"command":"fix","mode":"apply","plan":"<digest>"}` writes the plan
//! only while the device's current plan still has that digest. The digest is
//! [`FIX_DIGEST_LEN`] lowercase hex digits; the agent computes it (SHA-256 of the plan's
//! changes), this crate only checks its form, as the agent and the controller both do before
//! anything is sent or run ([`check_fix`]).

use serde::{Deserialize, Serialize};

/// What a `fix` command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FixMode {
    /// Compute the registry changes the device's findings call for; change nothing.
    Plan,
    /// Write the plan whose digest is `plan` (backup first, read back after).
    Apply,
    /// Restore the values the last `apply` replaced, from its backup.
    Undo,
}

impl FixMode {
    pub const ALL: [FixMode; 3] = [FixMode::Plan, FixMode::Apply, FixMode::Undo];

    /// The wire name (`plan`, `apply`, `undo`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FixMode::Plan => "plan",
            FixMode::Apply => "apply",
            FixMode::Undo => "undo",
        }
    }
}

impl std::fmt::Display for FixMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The length of a plan digest: lowercase hex digits (64 bits).
pub const FIX_DIGEST_LEN: usize = 16;

/// How a plan answer's `message` starts: `plan 3f2ac9d01b7e4a55: 3 changes …`.
pub const FIX_PLAN_PREFIX: &str = "plan ";

/// Whether `text` has the form of a plan digest: [`FIX_DIGEST_LEN`] of `0-9 a-f`.
pub fn valid_fix_digest(text: &str) -> bool {
    text.len() == FIX_DIGEST_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a `fix` command's arguments as the agent does: `apply` needs `plan`, a digest of the
/// right form; `plan` and `undo` take none. `Err` says what is wrong, for a `rejected`
/// `invalid_argument` answer (or the controller's 400).
pub fn check_fix(mode: FixMode, plan: Option<&str>) -> Result<(), String> {
    match (mode, plan) {
        (FixMode::Apply, None) => Err(format!(
            "fix apply needs \"plan\": the digest of the plan to write ({FIX_DIGEST_LEN} hex \
             digits, from the answer to fix mode \"plan\")"
        )),
        (FixMode::Apply, Some(digest)) if !valid_fix_digest(digest) => Err(format!(
            "plan must be {FIX_DIGEST_LEN} lowercase hex digits, found {}",
            crate::version::echo(digest)
        )),
        (FixMode::Apply, Some(_)) => Ok(()),
        (mode, Some(_)) => Err(format!(
            "\"plan\" is for fix mode \"apply\" only, not \"{mode}\""
        )),
        (_, None) => Ok(()),
    }
}

/// The digest a plan answer's `message` starts with (`plan <digest>: …`), when it has one of the
/// right form; `None` for any other text.
pub fn fix_plan_digest(message: &str) -> Option<&str> {
    let rest = message.strip_prefix(FIX_PLAN_PREFIX)?;
    let digest = rest.get(..FIX_DIGEST_LEN)?;
    (valid_fix_digest(digest) && rest[FIX_DIGEST_LEN..].starts_with(':')).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_and_only_apply_takes_a_digest_of_the_right_form() {
        assert_eq!(check_fix(FixMode::Plan, None), Ok(()));
        assert_eq!(check_fix(FixMode::Undo, None), Ok(()));
        assert_eq!(check_fix(FixMode::Apply, Some("0123456789abcdef")), Ok(()));
        let missing = check_fix(FixMode::Apply, None).expect_err("no digest");
        assert!(missing.contains("\"plan\""), "{missing}");
        for bad in [
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdef0",
            "",
            "<script>",
        ] {
            let e = check_fix(FixMode::Apply, Some(bad)).expect_err(bad);
            assert!(e.contains("16 lowercase hex digits"), "{e}");
        }
        let e = check_fix(FixMode::Plan, Some("0123456789abcdef")).expect_err("plan with plan");
        assert!(e.contains("not \"plan\""), "{e}");
    }

    #[test]
    fn a_plan_answer_carries_its_digest_first() {
        assert_eq!(
            fix_plan_digest("plan 0123456789abcdef: 2 changes\nmore"),
            Some("0123456789abcdef")
        );
        for not in [
            "plan 0123456789abcde: x",
            "plan 0123456789abcdefa: x",
            "plan 0123456789ABCDEF: x",
            "Plan 0123456789abcdef: x",
            "applied plan 0123456789abcdef: x",
            "plan 0123456789abcdef",
            "plan é",
            "",
        ] {
            assert_eq!(fix_plan_digest(not), None, "{not:?}");
        }
        for mode in FixMode::ALL {
            let json = serde_json::to_string(&mode).expect("serializes");
            assert_eq!(json, format!("\"{mode}\""));
        }
    }
}
