//! Who is asking, and may they: logins against the users file, session cookies, CSRF tokens,
//! HTTP Basic for scripts, and a limit on failed logins.
//!
//! - With a users file (always, off loopback), every page and API call needs a login. A browser
//!   logs in at `/login` and gets a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//!   under HTTPS) that lasts `login_hours`; scripts send `Authorization: Basic`.
//! - Without one (loopback only), every visitor is the local operator `local`, with a session
//!   of their own so that CSRF tokens still work.
//! - Every state-changing request made with a session cookie carries the session's CSRF token,
//!   as the form field `csrf` or the header `X-CSRF-Token`; the login form carries a token of a
//!   pre-login cookie. A request without the right token is refused with 403.
//! - A client address or user name with 5 failed logins in 15 minutes waits, doubling from 1 s to
//!   15 minutes, before the next try is even checked (429 with `Retry-After`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::users::{Role, Users};

/// The session cookie.
pub const SESSION_COOKIE: &str = "rr_session";
/// The pre-login cookie whose value the login form must echo.
pub const PRELOGIN_COOKIE: &str = "rr_prelogin";
/// The name of the local operator when no login is configured.
pub const LOCAL_USER: &str = "local";
/// Sessions kept at most; beyond, the oldest are dropped.
const MAX_SESSIONS: usize = 10_000;
/// Failed logins allowed in [`FAILURE_WINDOW`] before waits begin.
const FREE_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Addresses and names whose failures are tracked at most.
const MAX_TRACKED: usize = 10_000;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token (`None` for HTTP Basic: no cookie, nothing to forge).
    pub csrf: Option<String>,
}

impl Caller {
    pub fn is_operator(&self) -> bool {
        self.role >= Role::Operator
    }
}

#[derive(Debug, Clone)]
struct Session {
    caller: Caller,
    expires: Instant,
    created: Instant,
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in: the new session's token, for the cookie.
    Session {
        token: String,
        caller: Caller,
    },
    Refused,
    /// Too many failures: try again after this long.
    Wait(Duration),
}

#[derive(Debug, Default)]
struct Failures {
    times: Vec<Instant>,
    blocked_until: Option<Instant>,
}

/// Sessions, users and the failure limit.
pub struct Auth {
    users: Option<Users>,
    login: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// 32 random bytes, base64url: a session token or CSRF token.
pub fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Auth {
    /// `users`: the users file's users, or `None` for the local operator only.
    pub fn new(users: Option<Users>, login: Duration) -> Auth {
        Auth {
            users,
            login,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether callers must log in.
    pub fn required(&self) -> bool {
        self.users.is_some()
    }

    /// The caller of the session `token`, if it is live.
    pub fn session(&self, token: &str) -> Option<Caller> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        match sessions.get(token) {
            Some(s) if s.expires > now => Some(s.caller.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    /// A new session for `caller`; its token.
    pub fn open_session(&self, caller: Caller) -> Result<String, String> {
        let token = random_token()?;
        let now = Instant::now();
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| "the session table was poisoned".to_owned())?;
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires > now);
        }
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => sessions.remove(&key),
                None => break,
            };
        }
        sessions.insert(
            token.clone(),
            Session {
                caller,
                expires: now + self.login,
                created: now,
            },
        );
        Ok(token)
    }

    /// A session for the local operator (no login configured).
    pub fn local_session(&self) -> Result<(String, Caller), String> {
        let caller = Caller {
            name: LOCAL_USER.to_owned(),
            role: Role::Operator,
            csrf: Some(random_token()?),
        };
        let token = self.open_session(caller.clone())?;
        Ok((token, caller))
    }

    pub fn close_session(&self, token: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(token);
        }
    }

    /// How long `key` must still wait, if it must.
    fn waiting(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let until = failures.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    fn fail(&self, key: &str, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| f.times.last().is_some_and(|t| now - *t < FAILURE_WINDOW));
        }
        if failures.len() >= MAX_TRACKED && !failures.contains_key(key) {
            return;
        }
        let entry = failures.entry(key.to_owned()).or_default();
        entry.times.retain(|t| now - *t < FAILURE_WINDOW);
        entry.times.push(now);
        if entry.times.len() >= FREE_FAILURES {
            let over = u32::try_from(entry.times.len() - FREE_FAILURES).unwrap_or(u32::MAX);
            let wait = Duration::from_secs(1)
                .saturating_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
                .min(MAX_WAIT);
            entry.blocked_until = Some(now + wait);
        }
    }

    fn succeed(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// Checks `name` and `password` from `client`: blocking (Argon2 takes tens of
    /// milliseconds), so call it off the async workers.
    pub fn check_password(&self, client: IpAddr, name: &str, password: &str) -> LoginOutcome {
        let now = Instant::now();
        let by_client = format!("ip:{client}");
        let by_name = format!("user:{name}");
        let wait = [&by_client, &by_name]
            .iter()
            .filter_map(|key| self.waiting(key, now))
            .max();
        if let Some(wait) = wait {
            return LoginOutcome::Wait(wait);
        }
        let Some(users) = &self.users else {
            return LoginOutcome::Refused;
        };
        match users.verify(name, password) {
            Some(role) => {
                self.succeed(&by_client);
                self.succeed(&by_name);
                let caller = Caller {
                    name: name.to_owned(),
                    role,
                    csrf: None,
                };
                LoginOutcome::Session {
                    token: String::new(),
                    caller,
                }
            }
            None => {
                self.fail(&by_client, now);
                self.fail(&by_name, now);
                LoginOutcome::Refused
            }
        }
    }

    /// A browser login: the password checked, then a session with a CSRF token of its own.
    pub fn log_in(&self, client: IpAddr, name: &str, password: &str) -> LoginOutcome {
        match self.check_password(client, name, password) {
            LoginOutcome::Session { mut caller, .. } => {
                let csrf = match random_token() {
                    Ok(t) => t,
                    Err(_) => return LoginOutcome::Refused,
                };
                caller.csrf = Some(csrf);
                match self.open_session(caller.clone()) {
                    Ok(token) => LoginOutcome::Session { token, caller },
                    Err(_) => LoginOutcome::Refused,
                }
            }
            other => other,
        }
    }

    /// The caller of an `Authorization: Basic` header value, or what the check came to.
    pub fn basic(&self, client: IpAddr, header: &str) -> LoginOutcome {
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return LoginOutcome::Refused;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return LoginOutcome::Refused;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return LoginOutcome::Refused;
        };
        let Some((name, password)) = text.split_once(':') else {
            return LoginOutcome::Refused;
        };
        self.check_password(client, name, password)
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` under HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        let mut users = Users::default();
        users
            .add("alice", Role::Operator, "correct horse")
            .expect("add");
        users
            .add("bob", Role::Viewer, "battery staple")
            .expect("add");
        users
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn logins_make_sessions_with_csrf_tokens() {
        let auth = Auth::new(Some(users()), Duration::from_secs(60));
        let LoginOutcome::Session { token, caller } = auth.log_in(HOME, "alice", "correct horse")
        else {
            panic!("refused");
        };
        assert_eq!(caller.role, Role::Operator);
        assert!(caller.csrf.is_some());
        assert_eq!(auth.session(&token), Some(caller));
        auth.close_session(&token);
        assert_eq!(auth.session(&token), None);
        assert_eq!(auth.log_in(HOME, "bob", "wrong"), LoginOutcome::Refused);
    }

    #[test]
    fn failures_are_limited_per_address_and_per_name() {
        let auth = Auth::new(Some(users()), Duration::from_secs(60));
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.log_in(HOME, "alice", "guess"), LoginOutcome::Refused);
        }
        // Now waiting, even with the right password, from anywhere for this name.
        assert!(matches!(
            auth.log_in(HOME, "alice", "correct horse"),
            LoginOutcome::Wait(_)
        ));
        assert!(matches!(
            auth.log_in(other, "alice", "correct horse"),
            LoginOutcome::Wait(_)
        ));
        // And for this address, whatever the name.
        assert!(matches!(
            auth.log_in(HOME, "bob", "battery staple"),
            LoginOutcome::Wait(_)
        ));
        assert!(matches!(
            auth.log_in(other, "bob", "battery staple"),
            LoginOutcome::Session { .. }
        ));
    }

    #[test]
    fn basic_headers() {
        let auth = Auth::new(Some(users()), Duration::from_secs(60));
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:battery staple")
        );
        assert!(matches!(
            auth.basic(HOME, &header),
            LoginOutcome::Session { caller, .. } if caller.role == Role::Viewer && caller.csrf.is_none()
        ));
        for bad in ["Bearer x", "Basic !!!", "Basic Ym9i"] {
            assert_eq!(auth.basic(HOME, bad), LoginOutcome::Refused, "{bad}");
        }
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(
            cookie("a=1; rr_session=xyz; b=2", "rr_session"),
            Some("xyz")
        );
        assert_eq!(cookie("rr_sessionx=1", "rr_session"), None);
        assert_eq!(
            set_cookie("rr_session", "t", Some(Duration::from_secs(60)), true),
            "rr_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        let local = Auth::new(None, Duration::from_secs(60));
        assert!(!local.required());
        let (token, caller) = local.local_session().expect("session");
        assert_eq!(caller.name, LOCAL_USER);
        assert_eq!(local.session(&token), Some(caller));
    }
}
