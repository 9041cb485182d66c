//! Which store to open: a SQLite file or a PostgreSQL or MySQL/MariaDB
//! database, parsed from the text of a `--db` flag or a `db =` setting.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::StoreError;

/// The database engine of a [`StoreTarget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
    /// A MySQL or MariaDB database (InnoDB).
    MySql,
}

impl Engine {
    /// The engine's name as people write it: `SQLite`, `PostgreSQL`, `MySQL`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
            Engine::MySql => "MySQL",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated store target: a SQLite file path, or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
/// `mysql://USER[:PASSWORD]@HOST[:PORT]/DB` (DESIGN §10).
///
/// Its `Display` and `Debug` never show the password; neither does any
/// error about it. User, password and database name may be percent-encoded
/// in the URL (`p%40ss` for `p@ss`). The default ports are 5432 and 3306.
///
/// # Example
///
/// ```
/// use usage_store::{Engine, StoreTarget};
///
/// let target: StoreTarget = "postgres://billing:s3cret@db.example:5433/usage".parse()?;
/// assert_eq!(target.engine(), Engine::Postgres);
/// assert_eq!(target.to_string(), "postgres://billing@db.example:5433/usage");
/// assert!(!format!("{target:?}").contains("s3cret"));
///
/// // A password may come separately, e.g. from an environment variable.
/// let target = StoreTarget::parse("mysql://root@127.0.0.1/usage")?.with_password("pw")?;
/// assert!(target.has_password());
///
/// let file = StoreTarget::parse("usage.sqlite")?;
/// assert_eq!(file.engine(), Engine::Sqlite);
/// # Ok::<(), usage_store::StoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoreTarget {
    kind: TargetKind,
}

#[derive(Clone, PartialEq, Eq)]
enum TargetKind {
    Sqlite(PathBuf),
    Server {
        engine: Engine,
        user: String,
        password: Option<String>,
        host: String,
        port: u16,
        database: String,
    },
}

impl StoreTarget {
    /// Parses `text`: a URL of scheme `postgres` or `mysql`, or else a path
    /// of a SQLite file.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidTarget`] for an empty text, another URL scheme
    /// (`sqlite://…`: give the path itself), or a URL without user, host or
    /// database, with a query, fragment or extra path segment, or with
    /// text that is not valid percent-encoded UTF-8.
    pub fn parse(text: &str) -> Result<StoreTarget, StoreError> {
        let invalid = |reason: String| StoreError::InvalidTarget {
            target: redact(text),
            reason,
        };
        if text.is_empty() {
            return Err(invalid(
                "empty: give a file path or a postgres:// or mysql:// URL".to_owned(),
            ));
        }
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(StoreTarget::sqlite(text));
        };
        let engine = match scheme {
            "postgres" => Engine::Postgres,
            "mysql" => Engine::MySql,
            other if is_scheme(other) => {
                return Err(invalid(format!(
                    "unknown scheme {other:?}: give a SQLite file path, or a postgres:// or mysql:// URL"
                )));
            }
            _ => return Ok(StoreTarget::sqlite(text)),
        };
        let url = Url::parse(text).map_err(|e| invalid(format!("not a URL ({e})")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a query or fragment is not allowed".to_owned()));
        }
        let user = decode(url.username()).map_err(|e| invalid(format!("user: {e}")))?;
        if user.is_empty() {
            return Err(invalid(
                "no user: expected SCHEME://USER[:PASSWORD]@HOST[:PORT]/DB".to_owned(),
            ));
        }
        let password = url
            .password()
            .map(|p| decode(p).map_err(|e| invalid(format!("password: {e}"))))
            .transpose()?;
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => return Err(invalid("no host".to_owned())),
        };
        let port = url.port().unwrap_or(match engine {
            Engine::MySql => 3306,
            _ => 5432,
        });
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        let database = decode(path).map_err(|e| invalid(format!("database: {e}")))?;
        if database.is_empty() || path.contains('/') {
            return Err(invalid(
                "expected exactly one database name after the host".to_owned(),
            ));
        }
        Ok(StoreTarget {
            kind: TargetKind::Server {
                engine,
                user,
                password,
                host,
                port,
                database,
            },
        })
    }

    /// The SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> StoreTarget {
        StoreTarget {
            kind: TargetKind::Sqlite(path.into()),
        }
    }

    /// Sets the password of a server target given without one in its URL,
    /// e.g. from an environment variable.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidTarget`] for a SQLite target, or when the URL
    /// already holds a password.
    pub fn with_password(mut self, password: impl Into<String>) -> Result<StoreTarget, StoreError> {
        let shown = self.to_string();
        match &mut self.kind {
            TargetKind::Sqlite(_) => Err(StoreError::InvalidTarget {
                target: shown,
                reason: "a SQLite file takes no password".to_owned(),
            }),
            TargetKind::Server {
                password: Some(_), ..
            } => Err(StoreError::InvalidTarget {
                target: shown,
                reason: "the URL already holds a password; give it in one place only".to_owned(),
            }),
            TargetKind::Server { password: slot, .. } => {
                *slot = Some(password.into());
                Ok(self)
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        match &self.kind {
            TargetKind::Sqlite(_) => Engine::Sqlite,
            TargetKind::Server { engine, .. } => *engine,
        }
    }

    /// The SQLite file, for a SQLite target.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            TargetKind::Sqlite(path) => Some(path),
            TargetKind::Server { .. } => None,
        }
    }

    /// The database name, for a server target.
    pub fn database(&self) -> Option<&str> {
        match &self.kind {
            TargetKind::Sqlite(_) => None,
            TargetKind::Server { database, .. } => Some(database),
        }
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        matches!(
            self.kind,
            TargetKind::Server {
                password: Some(_),
                ..
            }
        )
    }

    /// The URL sqlx connects to, with the password. `sqlite_mode` is the
    /// SQLite open mode (`ro`, `rw` or `rwc`) for a file path already made
    /// absolute.
    pub(crate) fn connect_url(
        &self,
        sqlite_path: Option<&Path>,
        sqlite_mode: &str,
    ) -> Result<String, StoreError> {
        match &self.kind {
            TargetKind::Sqlite(given) => {
                let path = sqlite_path.unwrap_or(given);
                let text = path.to_str().ok_or_else(|| StoreError::InvalidTarget {
                    target: self.to_string(),
                    reason: "the path is not valid UTF-8".to_owned(),
                })?;
                Ok(format!(
                    "sqlite://{}?mode={sqlite_mode}",
                    encode(text, true)
                ))
            }
            TargetKind::Server {
                engine,
                user,
                password,
                host,
                port,
                database,
            } => Ok(server_url(
                *engine,
                user,
                password.as_deref(),
                host,
                *port,
                database,
            )),
        }
    }

    /// The password, to scrub it from any message that might echo it.
    pub(crate) fn password(&self) -> Option<&str> {
        match &self.kind {
            TargetKind::Server { password, .. } => password.as_deref(),
            TargetKind::Sqlite(_) => None,
        }
    }
}

impl FromStr for StoreTarget {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<StoreTarget, StoreError> {
        StoreTarget::parse(text)
    }
}

/// The path, or the URL without its password:
/// `postgres://USER@HOST:PORT/DB`.
impl fmt::Display for StoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TargetKind::Sqlite(path) => write!(f, "{}", path.display()),
            TargetKind::Server {
                engine,
                user,
                host,
                port,
                database,
                ..
            } => f.write_str(&server_url(*engine, user, None, host, *port, database)),
        }
    }
}

impl fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.has_password() {
            "Some(***)"
        } else {
            "None"
        };
        f.debug_struct("StoreTarget")
            .field("engine", &self.engine())
            .field("target", &self.to_string())
            .field("password", &format_args!("{password}"))
            .finish()
    }
}

/// Whether `text` is a URL scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - _ . ~`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// [`RESERVED`] but `/`, for a file path.
const RESERVED_BUT_SLASH: &AsciiSet = &RESERVED.remove(b'/');

/// Percent-encodes every byte but unreserved ones (and `/` when `path`).
fn encode(text: &str, path: bool) -> String {
    let set = if path { RESERVED_BUT_SLASH } else { RESERVED };
    utf8_percent_encode(text, set).to_string()
}

/// `SCHEME://USER[:PASSWORD]@HOST:PORT/DATABASE` of a server target, each
/// part percent-encoded, an IPv6 host in brackets.
fn server_url(
    engine: Engine,
    user: &str,
    password: Option<&str>,
    host: &str,
    port: u16,
    database: &str,
) -> String {
    let scheme = if engine == Engine::MySql {
        "mysql"
    } else {
        "postgres"
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let password = password
        .map(|p| format!(":{}", encode(p, false)))
        .unwrap_or_default();
    format!(
        "{scheme}://{}{password}@{host}:{port}/{}",
        encode(user, false),
        encode(database, false)
    )
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {index}"))?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once percent-decoded".to_owned())
}

/// `text` with the password part of a URL's user info replaced by `***`.
pub(crate) fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &text[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return text.to_owned();
    };
    format!(
        "{}{}:***{}",
        &text[..rest_start],
        &user_info[..colon],
        &text[rest_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_into_engines_and_fields() {
        let cases = [
            ("usage.sqlite", Engine::Sqlite, "usage.sqlite"),
            (
                "/var/lib/usage db?.sqlite",
                Engine::Sqlite,
                "/var/lib/usage db?.sqlite",
            ),
            (
                "postgres://u@h/d",
                Engine::Postgres,
                "postgres://u@h:5432/d",
            ),
            (
                "postgres://u:p@h:6000/d",
                Engine::Postgres,
                "postgres://u@h:6000/d",
            ),
            (
                "mysql://root@127.0.0.1/test",
                Engine::MySql,
                "mysql://root@127.0.0.1:3306/test",
            ),
            (
                "mysql://r%40x:p%3Aw@[::1]:3307/my%20db",
                Engine::MySql,
                "mysql://r%40x@[::1]:3307/my%20db",
            ),
        ];
        for (text, engine, shown) in cases {
            let target = StoreTarget::parse(text).unwrap();
            assert_eq!(target.engine(), engine, "{text}");
            assert_eq!(target.to_string(), shown, "{text}");
        }
        let target = StoreTarget::parse("mysql://r%40x:p%3Aw@[::1]:3307/my%20db").unwrap();
        assert_eq!(target.password(), Some("p:w"));
        assert_eq!(target.database(), Some("my db"));
        assert_eq!(
            target.connect_url(None, "rw").unwrap(),
            "mysql://r%40x:p%3Aw@[::1]:3307/my%20db"
        );
    }

    #[test]
    fn bad_targets_are_refused_without_their_password() {
        let cases = [
            ("", "empty"),
            ("sqlite://usage.db", "unknown scheme"),
            ("postgres://h/d", "no user"),
            ("postgres://u:secret@h", "exactly one database"),
            ("postgres://u:secret@h/d/e", "exactly one database"),
            ("mysql://u:secret@h/d?ssl=1", "query"),
            ("mysql://u:secret@h:99999/d", "not a URL"),
            ("mysql://u:sec%ZZret@h/d", "bad percent escape"),
        ];
        for (text, want) in cases {
            let err = StoreTarget::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(want), "{text}: {message}");
            assert!(
                !message.contains("secret") && !message.contains("sec%ZZret"),
                "{message}"
            );
            assert!(matches!(err, StoreError::InvalidTarget { .. }));
        }
    }

    #[test]
    fn passwords_never_show() {
        let target = StoreTarget::parse("postgres://u:hunter2@h/d").unwrap();
        assert!(!target.to_string().contains("hunter2"));
        assert!(!format!("{target:?}").contains("hunter2"));
        assert!(format!("{target:?}").contains("***"));
        let err = target
            .clone()
            .with_password("again")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already holds a password") && !err.contains("hunter2"),
            "{err}"
        );
        let err = StoreTarget::sqlite("x.db")
            .with_password("p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("takes no password"), "{err}");
        assert_eq!(redact("postgres://u:hunter2@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("mysql://u:a@b@h/d"), "mysql://u:***@h/d");
    }
}
