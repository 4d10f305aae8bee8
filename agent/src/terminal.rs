//! What the agent draws on a terminal, and only there: colour (not when the user asked for none:
//! `NO_COLOR` set and not empty, or `TERM=dumb`) and `update`'s download progress bar. Logs to a
//! file, a pipe, the systemd journal or the Windows event log are plain text.

use std::io::IsTerminal as _;

/// Colour for a stream that `is_terminal` (or not).
pub fn colour(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    is_terminal && !no_color && !dumb
}

/// Colour for standard error, where the logs go.
pub fn stderr_colour() -> bool {
    colour(std::io::stderr().is_terminal())
}

/// Colour for standard output, where `check` prints.
pub fn stdout_colour() -> bool {
    colour(std::io::stdout().is_terminal())
}

/// A one-line download progress bar on standard error, drawn only when it is a terminal.
pub(crate) struct ProgressBar {
    label: String,
    enabled: bool,
}

impl ProgressBar {
    pub(crate) fn new(label: String) -> Self {
        ProgressBar {
            label,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn draw(&self, done: u64, total: Option<u64>) {
        if self.enabled {
            eprint!("{}", self.line(done, total));
        }
    }

    /// The bar after `done` of `total` bytes, starting with a carriage return.
    fn line(&self, done: u64, total: Option<u64>) -> String {
        const WIDTH: u64 = 30;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        match total {
            Some(total) if total > 0 => {
                let filled = (done.min(total) * WIDTH / total) as usize;
                format!(
                    "\r{} [{}{}] {:.1}/{:.1} MiB",
                    self.label,
                    "#".repeat(filled),
                    " ".repeat(WIDTH as usize - filled),
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("\r{} {:.1} MiB", self.label, mib(done)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_download_and_never_overflows() {
        let bar = ProgressBar {
            label: "agent.tar.gz".into(),
            enabled: true,
        };
        let half = bar.line(512 * 1024, Some(1024 * 1024));
        assert_eq!(half.matches('#').count(), 15, "{half}");
        assert!(half.ends_with("0.5/1.0 MiB"), "{half}");
        // More than announced (a lying Content-Length) is drawn full, not past the end.
        let over = bar.line(3 * 1024 * 1024, Some(1024 * 1024));
        assert_eq!(over.matches('#').count(), 30, "{over}");
        assert_eq!(bar.line(0, None), "\ragent.tar.gz 0.0 MiB");
    }
}
