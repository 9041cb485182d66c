//! The few places where the three engines spell SQL differently. Every
//! statement of the store is written once, with `?` placeholders, and passes
//! through [`Dialect::sql`]; the pieces below fill the remaining gaps.

use std::borrow::Cow;

use crate::Engine;

/// SQL spelling for one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dialect {
    pub(crate) engine: Engine,
}

impl Dialect {
    /// `sql` with its `?` placeholders numbered `$1, $2, …` for PostgreSQL;
    /// unchanged for SQLite and MySQL. No statement of the store has a `?`
    /// inside a string literal.
    pub(crate) fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        if self.engine != Engine::Postgres || !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut number = 0;
        for c in sql.chars() {
            if c == '?' {
                number += 1;
                out.push('$');
                out.push_str(&number.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// ` FOR UPDATE` where the engine locks rows that way (SQLite locks the
    /// whole file with `BEGIN IMMEDIATE` instead).
    pub(crate) fn for_update(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "",
            _ => " FOR UPDATE",
        }
    }

    /// The clause that makes an `INSERT` skip a row whose key is taken:
    /// appended after `VALUES (…)`. MySQL's no-op update stands in for
    /// `DO NOTHING` (`INSERT IGNORE` would also hide data errors).
    pub(crate) fn on_conflict_do_nothing(&self, key: &str, first_column: &str) -> String {
        match self.engine {
            Engine::MySql => format!(" ON DUPLICATE KEY UPDATE {first_column} = {first_column}"),
            _ => format!(" ON CONFLICT ({key}) DO NOTHING"),
        }
    }

    /// `SUM(expr)` as a 64-bit integer: PostgreSQL sums `BIGINT` into
    /// `NUMERIC` and MySQL into `DECIMAL`, which are cast back (exact, as
    /// every summed half is below 2^32).
    pub(crate) fn sum(&self, expr: &str) -> String {
        match self.engine {
            Engine::Sqlite => format!("SUM({expr})"),
            Engine::Postgres => format!("CAST(SUM({expr}) AS BIGINT)"),
            Engine::MySql => format!("CAST(SUM({expr}) AS SIGNED)"),
        }
    }

    /// The UTC day (days since 1970-01-01) of a column of non-negative Unix
    /// seconds.
    pub(crate) fn day(&self, column: &str) -> String {
        match self.engine {
            Engine::MySql => format!("({column} DIV 86400)"),
            _ => format!("({column} / 86400)"),
        }
    }

    /// The type of an indexed text column of at most `chars` characters,
    /// compared byte by byte (code point order) on every engine, so that
    /// keys and `ORDER BY` agree across engines. `mysql_collation` is the
    /// binary, no-pad collation found on the MySQL server.
    pub(crate) fn key_text(&self, chars: u32, mysql_collation: &str) -> String {
        match self.engine {
            Engine::Sqlite => "TEXT".to_owned(),
            Engine::Postgres => "TEXT COLLATE \"C\"".to_owned(),
            Engine::MySql => {
                format!("VARCHAR({chars}) CHARACTER SET utf8mb4 COLLATE {mysql_collation}")
            }
        }
    }

    /// The type of a long text column that is never a key.
    pub(crate) fn long_text(&self, mysql_collation: &str) -> String {
        match self.engine {
            Engine::MySql => format!("TEXT CHARACTER SET utf8mb4 COLLATE {mysql_collation}"),
            _ => "TEXT".to_owned(),
        }
    }

    /// The type of every integer column.
    pub(crate) fn integer(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "INTEGER",
            _ => "BIGINT",
        }
    }

    /// What follows a `CREATE TABLE (…)`.
    pub(crate) fn table_options(&self, mysql_collation: &str) -> String {
        match self.engine {
            Engine::MySql => {
                format!(" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={mysql_collation}")
            }
            _ => String::new(),
        }
    }

    /// The statement that counts the tables of the database (of the current
    /// schema on PostgreSQL).
    pub(crate) fn count_tables(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
            }
            Engine::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
            }
        }
    }

    /// The statement that tells whether a table of this name exists (one
    /// parameter: the name).
    pub(crate) fn table_exists(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
            }
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
            }
            Engine::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let sql = "SELECT a FROM t WHERE b = ? AND c = ?";
        let postgres = Dialect {
            engine: Engine::Postgres,
        };
        assert_eq!(postgres.sql(sql), "SELECT a FROM t WHERE b = $1 AND c = $2");
        for engine in [Engine::Sqlite, Engine::MySql] {
            assert_eq!(Dialect { engine }.sql(sql), sql);
        }
    }
}
