//! The agent as a Windows service (`roomready-agent service install|uninstall|start|stop|run`),
//! on the windows-service crate.
//!
//! - `install --config FILE` registers the service `roomready-agent` ("roomready agent"):
//!   automatic start, LocalSystem, the command line `roomready-agent.exe service run --config
//!   FILE`, and recovery actions that restart it 5 s, 5 s and 30 s after a failure (the count
//!   resets after a day) — also when it stops with a non-zero exit code, which is how the
//!   self-update asks to be started again (75, see `update::trial`).
//! - `run` is what the service control manager starts: the daemon, with its log in a file
//!   rotated daily under `%ProgramData%\roomready\logs` (14 kept) and its errors also in the
//!   Windows Event Log (Application log, source `roomready-agent`), stopped cleanly (the agent
//!   publishes `offline`) on the manager's stop or shutdown control.
//! - `uninstall` stops and deletes it; `start` / `stop` do what they say.
//!
//! This module exists on Windows only; the binary explains elsewhere that Linux uses systemd
//! (docs/deploy/roomready-agent.service).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name.
pub const SERVICE_NAME: &str = "roomready-agent";
const DISPLAY_NAME: &str = "roomready agent";
const DESCRIPTION: &str = "Assesses this Teams Rooms / Surface Hub device for TLS 1.2-only \
                           Microsoft 365 and reports over MQTT.";
const SERVICE_TYPE: ServiceType = ServiceType::OWN_PROCESS;
/// Log files kept.
const LOG_FILES: usize = 14;
/// The Application log's registration of the event source.
const EVENT_SOURCE_KEY: &str =
    r"SYSTEM\CurrentControlSet\Services\EventLog\Application\roomready-agent";
/// EventCreate.exe's message table maps event ids 1 to 1000 to "%1": the text we report is the
/// whole description, with no message DLL of our own.
const EVENT_MESSAGE_FILE: &str = r"%SystemRoot%\System32\EventCreate.exe";

/// What the service's main runs: the daemon for a config file, until the future completes;
/// returns the process exit code.
pub type Daemon = fn(&Path, tokio::sync::oneshot::Receiver<()>) -> u8;

/// The config file and daemon the dispatcher's entry point runs (it takes no arguments of
/// ours).
static RUN: OnceLock<(PathBuf, Daemon)> = OnceLock::new();

/// A windows-service error with its cause (the crate's own message is only "IO error in winapi
/// call").
fn explain(e: &windows_service::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn manager(access: ServiceManagerAccess) -> windows_service::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
}

/// Registers the service for `config` (made absolute).
pub fn install(config: &Path) -> Result<(), String> {
    let config = std::path::absolute(config)
        .map_err(|e| format!("cannot make {} absolute: {e}", config.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)
        .map_err(|e| {
            format!(
                "cannot open the service manager (run as administrator): {}",
                explain(&e)
            )
        })?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: SERVICE_TYPE,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: vec![
            OsString::from("service"),
            OsString::from("run"),
            OsString::from("--config"),
            config.into_os_string(),
        ],
        dependencies: vec![],
        // LocalSystem: the registry, the AppX query and the journal under ProgramData.
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .map_err(|e| format!("cannot create the service {SERVICE_NAME}: {}", explain(&e)))?;
    service
        .set_description(DESCRIPTION)
        .map_err(|e| format!("cannot describe the service: {}", explain(&e)))?;
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(5), restart(5), restart(30)]),
        })
        .map_err(|e| format!("cannot set the recovery actions: {}", explain(&e)))?;
    // A stop with a non-zero exit code (75: restart into the new or previous version) counts as
    // a failure, so the recovery actions start it again.
    register_event_source()?;
    if let Err(e) = service.set_failure_actions_on_non_crash_failures(true) {
        // Wine's service manager lacks this setting; on Windows it is always there.
        eprintln!(
            "roomready-agent: warning: the service manager does not take the recovery actions \
             for non-crash exits ({}); exit code 75 (restart after an update) will not restart \
             the service by itself here",
            explain(&e)
        );
    }
    Ok(())
}

/// Stops (if running) and deletes the service.
pub fn uninstall() -> Result<(), String> {
    let manager = manager(ServiceManagerAccess::CONNECT).map_err(|e| {
        format!(
            "cannot open the service manager (run as administrator): {}",
            explain(&e)
        )
    })?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| format!("cannot open the service {SERVICE_NAME}: {}", explain(&e)))?;
    if let Ok(status) = service.query_status()
        && status.current_state != ServiceState::Stopped
    {
        let _ = service.stop();
    }
    service
        .delete()
        .map_err(|e| format!("cannot delete the service {SERVICE_NAME}: {}", explain(&e)))?;
    let machine = winreg::RegKey::predef(winreg::enums::HKEY_LOCAL_MACHINE);
    match machine.delete_subkey_all(EVENT_SOURCE_KEY) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove the event source HKLM\\{EVENT_SOURCE_KEY}: {e}"
        )),
    }
}

/// Registers the service's event source with the Application log.
fn register_event_source() -> Result<(), String> {
    let machine = winreg::RegKey::predef(winreg::enums::HKEY_LOCAL_MACHINE);
    let failed = |e: std::io::Error| {
        format!("cannot register the event source HKLM\\{EVENT_SOURCE_KEY}: {e}")
    };
    let (key, _) = machine.create_subkey(EVENT_SOURCE_KEY).map_err(failed)?;
    let message_file = winreg::RegValue {
        bytes: EVENT_MESSAGE_FILE
            .encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect(),
        vtype: winreg::enums::RegType::REG_EXPAND_SZ,
    };
    key.set_raw_value("EventMessageFile", &message_file)
        .map_err(failed)?;
    // Error, warning and information.
    key.set_value("TypesSupported", &7u32).map_err(failed)?;
    Ok(())
}

/// A tracing layer that also reports error events to the Windows Event Log.
pub struct EventLog {
    /// The event source's handle (a `HANDLE`, kept as an integer so the layer is `Send`).
    handle: usize,
}

impl EventLog {
    /// Opens the service's event source; `None` when it cannot be (the file log still works).
    pub fn open() -> Option<EventLog> {
        let name: Vec<u16> = SERVICE_NAME
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect();
        // SAFETY: `name` is a NUL-terminated UTF-16 string that outlives the call; a null server
        // name means this computer.
        let handle = unsafe {
            windows_sys::Win32::System::EventLog::RegisterEventSourceW(
                std::ptr::null(),
                name.as_ptr(),
            )
        };
        (!handle.is_null()).then_some(EventLog {
            handle: handle as usize,
        })
    }

    fn report(&self, text: &str) {
        let wide: Vec<u16> = text.encode_utf16().chain(std::iter::once(0)).collect();
        let strings = [wide.as_ptr()];
        // SAFETY: the handle came from RegisterEventSourceW and is closed only in Drop; the one
        // string is NUL-terminated and outlives the call; no SID and no raw data.
        unsafe {
            windows_sys::Win32::System::EventLog::ReportEventW(
                self.handle as windows_sys::Win32::Foundation::HANDLE,
                windows_sys::Win32::System::EventLog::EVENTLOG_ERROR_TYPE,
                0,
                1,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is not used after this.
        unsafe {
            windows_sys::Win32::System::EventLog::DeregisterEventSource(
                self.handle as windows_sys::Win32::Foundation::HANDLE,
            );
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventLog {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() != tracing::Level::ERROR {
            return;
        }
        let mut text = String::new();
        event.record(&mut Fields(&mut text));
        self.report(&text);
    }
}

/// An event's fields as `message key=value ...`.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

/// `ERROR_SERVICE_ALREADY_RUNNING`.
const ALREADY_RUNNING: i32 = 1056;

/// Starts the installed service; one already running (an automatic start) is fine.
pub fn start() -> Result<(), String> {
    let manager = manager(ServiceManagerAccess::CONNECT)
        .map_err(|e| format!("cannot open the service manager: {}", explain(&e)))?;
    let service = manager
        .open_service(SERVICE_NAME, ServiceAccess::START)
        .map_err(|e| format!("cannot open the service {SERVICE_NAME}: {}", explain(&e)))?;
    match service.start(&[] as &[&OsStr]) {
        Ok(()) => Ok(()),
        Err(windows_service::Error::Winapi(io)) if io.raw_os_error() == Some(ALREADY_RUNNING) => {
            println!("service {SERVICE_NAME} is already running");
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot start the service {SERVICE_NAME}: {}",
            explain(&e)
        )),
    }
}

/// Asks the running service to stop (it publishes `offline` and exits).
pub fn stop() -> Result<(), String> {
    let manager = manager(ServiceManagerAccess::CONNECT)
        .map_err(|e| format!("cannot open the service manager: {}", explain(&e)))?;
    let service = manager
        .open_service(SERVICE_NAME, ServiceAccess::STOP)
        .map_err(|e| format!("cannot open the service {SERVICE_NAME}: {}", explain(&e)))?;
    service
        .stop()
        .map(|_| ())
        .map_err(|e| format!("cannot stop the service {SERVICE_NAME}: {}", explain(&e)))
}

/// `%ProgramData%\roomready\logs`.
pub fn log_dir() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| OsString::from(r"C:\ProgramData"));
    PathBuf::from(base).join("roomready").join("logs")
}

/// Runs as the service: hands control to the service control manager, which calls back into
/// [`service_main`]. Returns once the service has stopped.
pub fn run(config: &Path, daemon: Daemon) -> Result<(), String> {
    RUN.set((config.to_owned(), daemon))
        .map_err(|_| "the service is already running in this process".to_owned())?;
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        format!(
            "cannot connect to the service control manager (is this started as a service?): {}",
            explain(&e)
        )
    })
}

define_windows_service!(ffi_service_main, service_main);

fn service_main(_arguments: Vec<OsString>) {
    let Some((config, daemon)) = RUN.get() else {
        return;
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let stop_tx = std::sync::Mutex::new(Some(stop_tx));
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(tx) = stop_tx.lock().ok().and_then(|mut slot| slot.take()) {
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(SERVICE_NAME, handler) else {
        return;
    };
    let report = |state, accept, exit_code| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: SERVICE_TYPE,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::Win32(0),
    );
    let code = daemon(config, stop_rx);
    let exit_code = match code {
        0 => ServiceExitCode::Win32(0),
        other => ServiceExitCode::ServiceSpecific(u32::from(other)),
    };
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit_code,
    );
}

/// The rotating log file writer for the service (daily, [`LOG_FILES`] kept).
pub fn log_writer() -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    let dir = log_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("roomready-agent")
        .filename_suffix("log")
        .max_log_files(LOG_FILES)
        .build(&dir)
        .map_err(|e| format!("cannot open a log file in {}: {e}", dir.display()))
}
