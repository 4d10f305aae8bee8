//! The dashboard's users: a text file of `NAME ROLE ARGON2-HASH` lines (`#` comments allowed),
//! managed with `roomready-controller user add|remove|list`, checked at login.
//!
//! Passwords are stored only as Argon2id hashes (PHC strings with their own salt and
//! parameters). The file is written whole to a temporary file and renamed over the old one (mode
//! 0600 on Unix), so a crash never leaves half a file. A line that does not parse is an error
//! naming the file and line: a users file is never half read.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use roomready_connect::files::{self, Limit};

/// The users file's size limit.
pub const USERS_FILE: Limit = Limit {
    what: "a users file",
    bytes: 1024 * 1024,
};

/// The longest password taken (Argon2 hashes anything, but a login form has a bound).
pub const MAX_PASSWORD: usize = 1024;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also sends commands.
    Operator,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    hash: String,
}

/// Why the users file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// The users of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    users: Vec<User>,
}

/// A user name: 1..=64 of `A-Z a-z 0-9 . _ @ -`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("user name {name:?} must be 1 to 64 characters"));
    }
    match name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        Some((at, c)) => Err(format!(
            "user name {name:?}: character {c:?} at byte {at} is not allowed \
             (allowed: A-Z a-z 0-9 . _ @ -)"
        )),
        None => Ok(()),
    }
}

fn hasher() -> Argon2<'static> {
    // Argon2id v19 with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's minimum.
    Argon2::default()
}

impl Users {
    /// Reads the users file at `path`; a missing file is no users (for `user add`).
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let text = match files::read_text(path, USERS_FILE) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(source) => {
                return Err(UsersError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Users::parse(path, &text)
    }

    /// Parses the text of the users file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Users, UsersError> {
        let mut users: Vec<User> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let invalid = |reason: String| UsersError::Invalid {
                path: path.to_owned(),
                line: index + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, hash] = fields[..] else {
                return Err(invalid(format!(
                    "expected NAME ROLE HASH, found {} fields",
                    fields.len()
                )));
            };
            check_name(name).map_err(invalid)?;
            let role = Role::parse(role).ok_or_else(|| {
                invalid(format!("role {role:?} is not \"viewer\" or \"operator\""))
            })?;
            PasswordHash::new(hash)
                .map_err(|e| invalid(format!("the password hash is not a PHC string: {e}")))?;
            if users.iter().any(|u| u.name == name) {
                return Err(invalid(format!("user {name:?} is listed twice")));
            }
            users.push(User {
                name: name.to_owned(),
                role,
                hash: hash.to_owned(),
            });
        }
        Ok(Users { users })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn list(&self) -> &[User] {
        &self.users
    }

    /// The role of `name` when `password` is theirs. Takes as long for an unknown name as for a
    /// wrong password, so names cannot be told apart by timing.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        if password.len() > MAX_PASSWORD {
            return None;
        }
        let user = self.users.iter().find(|u| u.name == name);
        let hash = user.map_or(DUMMY_HASH, |u| u.hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        user.filter(|_| ok).map(|u| u.role)
    }

    /// Adds `name` with `role` and `password`; a name that exists is refused.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        check_name(name).map_err(UsersError::Refused)?;
        if self.users.iter().any(|u| u.name == name) {
            return Err(UsersError::Refused(format!(
                "user {name:?} exists already: remove it first to change it"
            )));
        }
        if password.chars().count() < 8 || password.len() > MAX_PASSWORD {
            return Err(UsersError::Refused(format!(
                "the password must be 8 to {MAX_PASSWORD} bytes long"
            )));
        }
        let hash = hash_password(password)?;
        self.users.push(User {
            name: name.to_owned(),
            role,
            hash,
        });
        Ok(())
    }

    /// Removes `name`; refused when there is no such user.
    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        if self.users.len() == before {
            return Err(UsersError::Refused(format!("there is no user {name:?}")));
        }
        Ok(())
    }

    /// Writes the file at `path` whole: a temporary file beside it, then a rename.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let failed = |source| UsersError::Write {
            path: path.to_owned(),
            source,
        };
        let mut text = String::from(
            "# roomready-controller users: NAME ROLE ARGON2-HASH (edit with `roomready-controller user`)\n",
        );
        for user in &self.users {
            text.push_str(&format!("{} {} {}\n", user.name, user.role, user.hash));
        }
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(failed)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(failed)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(failed)
    }
}

/// A valid hash of no one's password, verified against when a name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cm9vbXJlYWR5ZHVtbXk$\
                          8aWOq6Rk2JxPk5ZqXzM7c3l3b4c0QyS0b1hZk5f3V2g";

fn hash_password(password: &str) -> Result<String, UsersError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| UsersError::Refused(format!("no randomness for a salt: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| UsersError::Refused(format!("salt: {e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Refused(format!("cannot hash the password: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_save_load_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users");
        let mut users = Users::load(&path).expect("missing is empty");
        assert!(users.is_empty());
        users
            .add("alice", Role::Operator, "correct horse")
            .expect("add");
        users
            .add("bob", Role::Viewer, "battery staple")
            .expect("add");
        assert!(matches!(
            users.add("alice", Role::Viewer, "another one"),
            Err(UsersError::Refused(_))
        ));
        assert!(users.add("eve", Role::Viewer, "short").is_err());
        assert!(users.add("e ve", Role::Viewer, "long enough").is_err());
        users.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains("alice operator $argon2id$"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut loaded = Users::load(&path).expect("load");
        assert_eq!(loaded, users);
        assert_eq!(
            loaded.verify("alice", "correct horse"),
            Some(Role::Operator)
        );
        assert_eq!(loaded.verify("alice", "wrong"), None);
        assert_eq!(loaded.verify("bob", "battery staple"), Some(Role::Viewer));
        assert_eq!(loaded.verify("nobody", "battery staple"), None);
        loaded.remove("bob").expect("remove");
        assert!(loaded.remove("bob").is_err());
        assert_eq!(loaded.list().len(), 1);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let path = Path::new("/etc/roomready/users");
        for (text, expected) in [
            (
                "alice operator",
                "users:1: expected NAME ROLE HASH, found 2 fields",
            ),
            (
                "# c\nalice admin $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                "users:2: role \"admin\"",
            ),
            (
                "alice viewer plaintext",
                "users:1: the password hash is not a PHC string",
            ),
            ("a/b viewer x", "users:1: user name \"a/b\""),
        ] {
            let e = Users::parse(path, text).expect_err(text).to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert_eq!(Users::default().verify("x", "y"), None);
    }
}
