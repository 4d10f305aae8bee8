//! The Teams Rooms app version, as `Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem`
//! reports it: [`parse_appx_version`] reads PowerShell's output, and [`AppxQuery`] runs the
//! command (`powershell.exe` on Windows) with a timeout.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use roomready_protocol::AppVersion;

use super::{Fact, Source};

/// What an empty output means.
pub(crate) const NOT_INSTALLED: &str = "Microsoft.SkypeRoomSystem is not installed for user Skype";

/// The source of the facts read by running the command.
pub(crate) const SOURCE: &str = "Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem";

/// The PowerShell command line: the bare version, one line per installed package.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) const POWERSHELL_COMMAND: &str = "Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem \
                                      | Select-Object -ExpandProperty Version";

/// How long PowerShell may take by default: its first start on a busy device takes seconds.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the version out of what PowerShell printed for
/// `Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem`: either the default list
/// format (`Version           : 4.0.64.0` among the package's properties) or bare version lines
/// (`... | Select-Object -ExpandProperty Version`, `(Get-AppxPackage ...).Version`).
///
/// Empty output means the package is not installed ([`NOT_INSTALLED`]). When several packages
/// are listed the highest version is returned. Output that holds neither form, or a version
/// that is not `major.minor.build.revision`, is an error saying what was found.
pub(crate) fn parse_appx_version(output: &str) -> Result<String, String> {
    let output = output.strip_prefix('\u{feff}').unwrap_or(output);
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(NOT_INSTALLED.to_owned());
    }
    let listed: Vec<&str> = lines
        .iter()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("Version")
                .then_some(value.trim())
        })
        .collect();
    let candidates = if listed.is_empty() {
        // Bare version lines: every line must be one.
        if let Some(other) = lines.iter().find(|l| l.parse::<AppVersion>().is_err()) {
            return Err(format!(
                "unexpected output from Get-AppxPackage: no `Version : ...` line and {:?} is \
                 not a version",
                echo(other)
            ));
        }
        lines
    } else {
        listed
    };
    let mut best: Option<(AppVersion, &str)> = None;
    for text in candidates {
        let version = text
            .parse::<AppVersion>()
            .map_err(|e| format!("Get-AppxPackage reported version {e}"))?;
        if best.is_none_or(|(highest, _)| version > highest) {
            best = Some((version, text));
        }
    }
    best.map(|(_, text)| text.to_owned())
        .ok_or_else(|| NOT_INSTALLED.to_owned())
}

/// At most 60 characters of `text`, for messages.
fn echo(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The fact a finished PowerShell run yields: *absent* for empty output, *known* for a
/// version, *unreadable* when PowerShell failed or printed something else.
fn fact_from_output(
    success: bool,
    stdout: &str,
    stderr: &str,
    source: super::Source,
) -> super::Fact<String> {
    use super::Fact;
    if !success {
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no error message");
        return Fact::Unreadable {
            source,
            reason: format!("PowerShell failed: {}", echo(first)),
        };
    }
    if stdout.trim().trim_start_matches('\u{feff}').is_empty() {
        // A non-terminating error (e.g. access denied without elevation) exits 0 too.
        return match stderr.lines().map(str::trim).find(|l| !l.is_empty()) {
            Some(error) => Fact::Unreadable {
                source,
                reason: format!("PowerShell reported: {}", echo(error)),
            },
            None => Fact::Absent { source },
        };
    }
    match parse_appx_version(stdout) {
        Ok(value) => Fact::Known { value, source },
        Err(reason) => Fact::Unreadable { source, reason },
    }
}

/// A command that prints what `Get-AppxPackage` prints, run with a timeout: PowerShell on a
/// device ([`AppxQuery::powershell`]), any program in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppxQuery {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// After this the command is killed and the version is *unreadable*.
    pub timeout: Duration,
}

impl AppxQuery {
    /// `powershell.exe -NoProfile -NonInteractive -Command "Get-AppxPackage ... | Select-Object
    /// -ExpandProperty Version"`.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn powershell(timeout: Duration) -> Self {
        AppxQuery {
            program: PathBuf::from("powershell.exe"),
            args: [
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                POWERSHELL_COMMAND,
            ]
            .map(String::from)
            .to_vec(),
            timeout,
        }
    }

    /// Runs the command: the version is *known*, *absent* (empty output: not installed) or
    /// *unreadable* (the command could not start, failed, timed out or printed something
    /// else), with the reason.
    pub async fn read(&self) -> Fact<String> {
        let source = Source::new(format!("{SOURCE} (run by {})", self.program.display()));
        let child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                return Fact::Unreadable {
                    source,
                    reason: format!("cannot start {}: {e}", self.program.display()),
                };
            }
        };
        // On timeout the future, and with it the child, is dropped: kill_on_drop kills it.
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => Fact::Unreadable {
                source,
                reason: format!(
                    "{} did not answer within {} s",
                    self.program.display(),
                    self.timeout.as_secs_f64()
                ),
            },
            Ok(Err(e)) => Fact::Unreadable {
                source,
                reason: format!("running {} failed: {e}", self.program.display()),
            },
            Ok(Ok(output)) => fact_from_output(
                output.status.success(),
                &String::from_utf8_lossy(&output.stdout),
                &String::from_utf8_lossy(&output.stderr),
                source,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Fact, Source};
    use super::*;

    const LIST: &str = "\r
\r
Name              : Microsoft.SkypeRoomSystem\r
Publisher         : CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US\r
Architecture      : X64\r
ResourceId        :\r
Version           : 4.0.64.0\r
PackageFullName   : Microsoft.SkypeRoomSystem_4.0.64.0_x64__8wekyb3d8bbwe\r
InstallLocation   : C:\\Program Files\\WindowsApps\\Microsoft.SkypeRoomSystem_4.0.64.0_x64__8wekyb3d8bbwe\r
IsFramework       : False\r
PackageFamilyName : Microsoft.SkypeRoomSystem_8wekyb3d8bbwe\r
PublisherId       : 8wekyb3d8bbwe\r
PackageUserInformation : {S-1-5-21-1004336348-1177238915-682003330-1001 [Skype]: Installed}\r
IsResourcePackage : False\r
IsBundle          : False\r
IsDevelopmentMode : False\r
NonRemovable      : False\r
Dependencies      : {Microsoft.VCLibs.140.00_14.0.30704.0_x64__8wekyb3d8bbwe}\r
IsPartiallyStaged : False\r
SignatureKind     : Store\r
Status            : Ok\r
\r
\r
\r
";

    #[test]
    fn reads_the_default_list_format() {
        assert_eq!(parse_appx_version(LIST), Ok("4.0.64.0".to_owned()));
        assert_eq!(
            parse_appx_version(&LIST.replace("\r\n", "\n")),
            Ok("4.0.64.0".to_owned())
        );
    }

    #[test]
    fn reads_bare_version_lines() {
        assert_eq!(
            parse_appx_version("4.1.99.0\r\n"),
            Ok("4.1.99.0".to_owned())
        );
        assert_eq!(
            parse_appx_version("\u{feff}5.2.115.0"),
            Ok("5.2.115.0".to_owned())
        );
    }

    #[test]
    fn several_packages_give_the_highest_version() {
        let staged = LIST.replace("4.0.64.0", "4.0.105.0");
        let both = format!("{LIST}{staged}");
        assert_eq!(parse_appx_version(&both), Ok("4.0.105.0".to_owned()));
        assert_eq!(
            parse_appx_version("4.10.0.0\n4.9.255.0\n"),
            Ok("4.10.0.0".to_owned())
        );
    }

    #[test]
    fn empty_output_means_not_installed() {
        for output in ["", "\r\n\r\n", "   \n"] {
            assert_eq!(parse_appx_version(output), Err(NOT_INSTALLED.to_owned()));
        }
    }

    #[test]
    fn other_output_is_an_error_saying_what_was_found() {
        let err = parse_appx_version("Get-AppxPackage : Access is denied.\r\n").unwrap_err();
        assert!(err.contains("Access is denied"), "{err}");
        let err = parse_appx_version("Version : 4.0\r\n").unwrap_err();
        assert!(err.contains("4.0"), "{err}");
        let err = parse_appx_version("Version :\r\n").unwrap_err();
        assert!(err.contains("empty version"), "{err}");
    }

    #[test]
    fn never_panics_on_cut_output() {
        for cut in 0..=LIST.len() {
            if let Some(prefix) = LIST.get(..cut) {
                let _ = parse_appx_version(prefix);
            }
        }
    }

    #[test]
    fn run_outcomes_become_facts() {
        let source = || Source::new(SOURCE);
        assert_eq!(
            fact_from_output(true, "4.0.64.0\r\n", "", source()),
            Fact::Known {
                value: "4.0.64.0".to_owned(),
                source: source()
            }
        );
        assert_eq!(
            fact_from_output(true, "\r\n", "", source()),
            Fact::Absent { source: source() }
        );
        let denied = fact_from_output(true, "", "Get-AppxPackage : Access is denied.", source());
        assert!(
            matches!(&denied, Fact::Unreadable { reason, .. } if reason.contains("Access is denied")),
            "{denied:?}"
        );
        let failed = fact_from_output(
            false,
            "",
            "\r\nGet-AppxPackage : Access is denied.\r\n",
            source(),
        );
        assert!(
            matches!(&failed, Fact::Unreadable { reason, .. } if reason.contains("Access is denied")),
            "{failed:?}"
        );
    }
}
