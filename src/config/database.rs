//! The `database` setting: an SQLite file (a path) or a PostgreSQL database (a `postgres://`
//! or `postgresql://` connection string, shared by several instances). A connection string
//! carries a password: it is never shown, not in logs, not in `Debug`, not in errors.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use crate::store::pg::{self, Target};

/// Where the store keeps its tables.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created when missing.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user:pass@host:port/db?sslmode=…`).
    Postgres(PostgresUrl),
}

/// A PostgreSQL connection string; shown without its password (see [`Target`]).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The connection string itself, password included: only for connecting.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The database it names, without the password, or why it names none.
    pub fn target(&self) -> Result<Target, pg::PgError> {
        Target::of_url(&self.0)
    }
}

impl Database {
    /// Reads a setting: a `postgres://` or `postgresql://` URL is PostgreSQL, anything else
    /// a path to an SQLite file.
    pub fn from_setting(value: &str) -> Self {
        if pg::is_postgres_url(value) {
            Database::Postgres(PostgresUrl(value.to_string()))
        } else {
            Database::Sqlite(PathBuf::from(value))
        }
    }

    /// Why the setting cannot name a database, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        match self {
            Database::Sqlite(path) => {
                // SQLite opens "", ":memory:" and `file:` URIs such as "file::memory:" as a
                // private database per connection, gone at exit: the readers would not see
                // the writer's tables ("no such table" at start-up). A name with surrounding
                // blanks is a typo.
                let database = path.to_string_lossy();
                if database.trim().is_empty()
                    || database == ":memory:"
                    || database.starts_with("file:")
                {
                    Some(
                        "must name a database file, not \"\", \":memory:\" or a file: URI \
                         (SQLite would open a private, temporary database for each \
                         connection, lost at exit), or a postgres:// URL"
                            .into(),
                    )
                } else if database.trim() != database {
                    Some("must not begin or end with blanks".into())
                } else {
                    None
                }
            }
            Database::Postgres(url) => url.target().err().map(|e| match e {
                pg::PgError::Url(why) => {
                    format!("not a valid PostgreSQL connection string ({why})")
                }
                other => other.to_string(),
            }),
        }
    }
}

impl fmt::Display for Database {
    /// The path of an SQLite file; for PostgreSQL `postgres://user@host:port/db`, never the
    /// password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => match url.target() {
                Ok(target) => write!(f, "postgres://{target}"),
                Err(_) => f.write_str("postgres://(a malformed connection string)"),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

impl<'de> Deserialize<'de> for Database {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Database::from_setting(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_postgres_and_is_shown_without_its_password() {
        let db = Database::from_setting("postgres://relay:s3cret-Pw@db.example:6432/hooks");
        assert!(matches!(db, Database::Postgres(_)));
        assert_eq!(db.to_string(), "postgres://relay@db.example:6432/hooks");
        assert!(!format!("{db:?}").contains("s3cret-Pw"));
        assert_eq!(db.problem(), None);
        let db = Database::from_setting("postgresql://relay@db.example/hooks");
        assert!(matches!(db, Database::Postgres(_)));
    }

    #[test]
    fn a_malformed_url_is_a_problem_that_hides_the_password() {
        let db = Database::from_setting("postgres://u:hunter2-Pw@h:notaport/db");
        let problem = db.problem().expect("malformed");
        assert!(problem.contains("not a valid PostgreSQL connection string"), "{problem}");
        assert!(!problem.contains("hunter2-Pw"), "{problem}");
        assert!(!db.to_string().contains("hunter2-Pw"));
    }

    #[test]
    fn a_path_is_sqlite() {
        let db = Database::from_setting("./data/hookrelay.db");
        assert_eq!(db, Database::Sqlite(PathBuf::from("./data/hookrelay.db")));
        assert_eq!(db.to_string(), "./data/hookrelay.db");
        assert!(Database::from_setting(":memory:").problem().is_some());
    }
}
