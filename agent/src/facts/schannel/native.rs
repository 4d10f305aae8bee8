//! Schannel events from the live System log, through the Windows Event Log API (wevtapi):
//! `EvtQuery` on the `System` channel with an XPath filter on the provider, the event ids and
//! the window, newest first (`EvtQueryReverseDirection`), `EvtNext` in batches, `EvtRender` of
//! each event as XML, read by the same [`super::xml`] reader as an export. At most
//! `max_events` events are read; the XPath's `timediff` keeps older ones out in the service.

use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_ITEMS, GetLastError,
};
use windows_sys::Win32::System::EventLog::{
    EVT_HANDLE, EvtClose, EvtNext, EvtQuery, EvtQueryChannelPath, EvtQueryReverseDirection,
    EvtRender, EvtRenderEventXml,
};

use super::{Bounds, EVENTS, Reading, xml};

/// Events asked of `EvtNext` at a time.
const BATCH: usize = 64;
/// How long `EvtNext` may wait for a batch, in milliseconds.
const NEXT_TIMEOUT_MS: u32 = 5_000;
/// The largest rendering of one event accepted (characters); Schannel's are about 2,000.
const MAX_EVENT_CHARS: u32 = 64 * 1024;

/// An event log handle, closed on drop.
struct Handle(EVT_HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from EvtQuery or EvtNext and is closed once, here.
        unsafe {
            EvtClose(self.0);
        }
    }
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The XPath query: Schannel's events of interest within the window.
pub(crate) fn query(bounds: Bounds) -> String {
    let ids = EVENTS
        .iter()
        .map(|id| format!("EventID={id}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let window_ms = u64::from(bounds.window_days) * 86_400_000;
    format!(
        "*[System[Provider[@Name='Schannel'] and ({ids}) and \
         TimeCreated[timediff(@SystemTime) <= {window_ms}]]]"
    )
}

/// Reads the newest `bounds.max_events` Schannel events of the System log.
pub(crate) fn read(bounds: Bounds) -> Result<Reading, String> {
    let channel = wide("System");
    let xpath = wide(&query(bounds));
    // SAFETY: both strings are NUL-terminated UTF-16 that outlive the call.
    let results = unsafe {
        EvtQuery(
            0,
            channel.as_ptr(),
            xpath.as_ptr(),
            EvtQueryChannelPath | EvtQueryReverseDirection,
        )
    };
    if results == 0 {
        // SAFETY: reads the calling thread's last-error value.
        let code = unsafe { GetLastError() };
        return Err(if code == 0 {
            // Wine 8's EvtQuery is a stub that fails this way.
            "the Event Log API could not query the System log (EvtQuery returned no handle \
             and no error code)"
                .to_owned()
        } else {
            format!("the Event Log API could not query the System log (EvtQuery error {code})")
        });
    }
    let results = Handle(results);
    let mut events = Vec::new();
    let mut malformed = 0u64;
    let mut problem = None;
    let mut buffer: Vec<u16> = vec![0; 4096];
    'batches: while events.len() + (malformed as usize) < bounds.max_events {
        let mut batch: [EVT_HANDLE; BATCH] = [0; BATCH];
        let mut returned = 0u32;
        // SAFETY: `batch` has room for BATCH handles; `returned` receives how many were set.
        let ok = unsafe {
            EvtNext(
                results.0,
                BATCH as u32,
                batch.as_mut_ptr(),
                NEXT_TIMEOUT_MS,
                0,
                &mut returned,
            )
        };
        if ok == 0 {
            // SAFETY: as above.
            let code = unsafe { GetLastError() };
            if code == ERROR_NO_MORE_ITEMS {
                break;
            }
            return Err(format!(
                "the Event Log API stopped reading the System log (EvtNext error {code})"
            ));
        }
        let handles: Vec<Handle> = batch[..returned as usize]
            .iter()
            .map(|&h| Handle(h))
            .collect();
        for handle in &handles {
            if events.len() + (malformed as usize) >= bounds.max_events {
                break 'batches;
            }
            match render(handle, &mut buffer) {
                Ok(text) => match xml::read_event(&text, 0) {
                    Ok(event) => events.push(event),
                    Err(e) => {
                        malformed += 1;
                        problem.get_or_insert(format!(
                            "an event rendered by the Event Log API: {} (byte {})",
                            e.reason, e.offset
                        ));
                    }
                },
                Err(reason) => {
                    malformed += 1;
                    problem.get_or_insert(reason);
                }
            }
        }
    }
    let mut reading = Reading::from_events(events);
    reading.malformed += malformed;
    if problem.is_some() {
        reading.problem = problem;
    }
    Ok(reading)
}

/// The event's XML.
fn render(event: &Handle, buffer: &mut Vec<u16>) -> Result<String, String> {
    loop {
        let mut used = 0u32;
        let mut properties = 0u32;
        let bytes = u32::try_from(buffer.len() * 2).unwrap_or(u32::MAX);
        // SAFETY: `buffer` holds `bytes` bytes; the API writes at most that and reports `used`.
        let ok = unsafe {
            EvtRender(
                0,
                event.0,
                EvtRenderEventXml,
                bytes,
                buffer.as_mut_ptr().cast(),
                &mut used,
                &mut properties,
            )
        };
        if ok != 0 {
            let chars = (used as usize / 2).min(buffer.len());
            let text = &buffer[..chars];
            let text = text.strip_suffix(&[0]).unwrap_or(text);
            return Ok(String::from_utf16_lossy(text));
        }
        // SAFETY: as above.
        let code = unsafe { GetLastError() };
        if code != ERROR_INSUFFICIENT_BUFFER || used / 2 > MAX_EVENT_CHARS {
            return Err(format!(
                "the Event Log API could not render an event (EvtRender error {code}, {used} bytes)"
            ));
        }
        buffer.resize(used as usize / 2 + 1, 0);
    }
}
