//! The agent's exit codes, defined once: the binary exits with these constants, `--help`
//! prints [`help`], and a test holds the README's table to [`TABLE`]. After BSD sysexits where
//! one fits.

/// `check`: ready; `run`: a clean shutdown; any other command: done.
pub const READY: u8 = 0;
pub const AT_RISK: u8 = 1;
pub const NOT_READY: u8 = 2;
pub const UNKNOWN: u8 = 3;
pub const USAGE: u8 = 64;
pub const DATA_ERROR: u8 = 65;
pub const NO_INPUT: u8 = 66;
pub const UNAVAILABLE: u8 = 69;
pub const SOFTWARE: u8 = 70;
pub const CANT_CREATE: u8 = 73;
pub const IO_ERROR: u8 = 74;
/// `run`: start me again (an update was installed or rolled back).
pub const RESTART: u8 = 75;
/// `update`: the artifact was refused (signature, digest, size).
pub const REFUSED: u8 = 76;
/// `update`: a downgrade was refused.
pub const DOWNGRADE: u8 = 77;
pub const CONFIG: u8 = 78;
/// `fix --apply`, `fix --undo`: registry values written and read back; they take effect after
/// a restart.
pub const REBOOT_NEEDED: u8 = 79;

/// Every exit code and what it means for each command, in Markdown (the README's table).
pub const TABLE: [(u8, &str); 16] = [
    (
        READY,
        "`check`: ready; `run`: clean shutdown (SIGINT/SIGTERM); `self-test`, `service`: done; \
         `update`: installed, already up to date, or checked (`--check`); `fix`: plan printed \
         (`--plan`), or nothing to change (`--apply`)",
    ),
    (AT_RISK, "`check`: at_risk"),
    (NOT_READY, "`check`: not_ready"),
    (UNKNOWN, "`check`: unknown"),
    (
        USAGE,
        "usage error (bad or missing arguments; `check` with no facts source; `service` on \
         Linux; `fix` where there is no Windows registry)",
    ),
    (
        DATA_ERROR,
        "malformed facts file or registry dump (the message names file, line and key); \
         `update`: invalid manifest, or `--version` not in the feed; `fix --apply --digest`: \
         the plan is another one now; `fix --undo`: the backup is not valid (file and place \
         named; nothing written)",
    ),
    (
        NO_INPUT,
        "facts file or registry dump cannot be read (missing, not a regular file, or over its \
         limit: see \"Files the agent reads\"); `fix --undo`: no backup to undo",
    ),
    (UNAVAILABLE, "`update`: the feed is unreachable"),
    (
        SOFTWARE,
        "internal error; `service`: the service manager refused (the message says why, e.g. \
         not administrator); `update`: the new binary failed its self-test (nothing replaced)",
    ),
    (
        CANT_CREATE,
        "`update`: the binary could not be replaced; `fix --apply`: an earlier fix's backup is \
         still there (undo it, or remove it to keep the values; nothing written)",
    ),
    (
        IO_ERROR,
        "`run`, `self-test`: the journal cannot be opened (directory not writable, a file or a \
         looping symbolic link in its place, or locked by another agent); `fix`: a registry \
         write or read-back, or the backup file, failed (the message says which and whether the \
         values were restored)",
    ),
    (
        RESTART,
        "`run`: restart me — a new version was installed, or the previous one restored",
    ),
    (
        REFUSED,
        "`update`: artifact refused: unsigned, signed by no pinned key, signed for another \
         version's file name, altered, digest mismatch, or over `update_max_mib`",
    ),
    (
        DOWNGRADE,
        "`update`: downgrade refused (`allow_downgrade = false`)",
    ),
    (
        CONFIG,
        "bad config file; `update`: updates not configured; `fix --apply`, `fix --undo`: \
         `allow_fix` is not `true`",
    ),
    (
        REBOOT_NEEDED,
        "`fix --apply`, `fix --undo`: registry values written and read back; restart the device \
         for them to take effect",
    ),
];

/// The table as `--help` prints it: wrapped at [`HELP_WIDTH`] columns.
pub fn help() -> String {
    let mut text = String::from("Exit codes:");
    for (code, meaning) in TABLE {
        let mut line = format!("  {code:>2} ");
        for word in meaning.replace('`', "").split(' ') {
            if line.len() + 1 + word.len() > HELP_WIDTH && line.len() > HELP_INDENT {
                text.push('\n');
                text.push_str(&line);
                line = " ".repeat(HELP_INDENT - 1);
            }
            line.push(' ');
            line.push_str(word);
        }
        text.push('\n');
        text.push_str(&line);
    }
    text
}

/// The width of [`help`]'s lines, and the indent of their continuations.
const HELP_WIDTH: usize = 100;
const HELP_INDENT: usize = 6;

/// The table as the README's Markdown.
pub fn markdown() -> String {
    let mut text = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in TABLE {
        text.push_str(&format!("| {code} | {meaning} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_code_once_in_order() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "{TABLE:?}");
    }

    #[test]
    fn help_names_every_code_within_its_width() {
        let help = help();
        for (code, _) in TABLE {
            assert!(help.contains(&format!("\n  {code:>2}  ")), "{code}: {help}");
        }
        assert!(
            help.lines().all(|l| l.chars().count() <= HELP_WIDTH),
            "{help}"
        );
        assert!(!help.contains('`'), "{help}");
    }

    #[test]
    fn the_readme_shows_this_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let section = readme
            .split("### Exit codes\n")
            .nth(1)
            .expect("the README has an exit codes section");
        let table: String = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            table,
            markdown(),
            "README.md's exit codes: replace them with this table"
        );
    }
}
