//! Whether an output stream gets colour: only a terminal, and not when the user asked for none
//! (`NO_COLOR` set and not empty, or `TERM=dumb`). Logs to a file, a pipe, the systemd journal or
//! the Windows event log are plain text.

/// Colour for a stream that `is_terminal` (or not).
pub fn colour(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    is_terminal && !no_color && !dumb
}

/// Colour for standard error, where the logs go.
pub fn stderr_colour() -> bool {
    use std::io::IsTerminal as _;
    colour(std::io::stderr().is_terminal())
}
