//! Query plans that stay prepared. Since 3.54, SQLite's planner looks at
//! the value bound to `x = ?` in a join and marks the statement to be
//! prepared again when that value changes; rusqlite clears a cached
//! statement's bindings when it goes back to the cache, which then counts
//! as a change. So every use of a cached join was compiled again: on the
//! writer, the lookup of a trace's stored span ids cost as much to compile
//! as to run (see BENCHMARKS.md). The query planner stability
//! guarantee (QPSG) turns the value-based planning off. otelite gives up
//! nothing for it: it keeps no `sqlite_stat` tables and binds no `LIKE`
//! patterns.

use rusqlite::Connection;
use rusqlite::config::DbConfig;

/// Every connection otelite opens calls this first.
pub fn keep_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// How many times a cached join was compiled again over three uses,
    /// each with a different bound value.
    fn recompilations(conn: &Connection) -> rusqlite::Result<i32> {
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, k BLOB UNIQUE);
             CREATE TABLE g (t_ref INTEGER, v BLOB);
             CREATE INDEX g_by_t ON g(t_ref);",
        )?;
        let sql = "SELECT g.v FROM t JOIN g ON g.t_ref = t.id WHERE t.k = ?1";
        for key in [[1u8; 16], [2; 16], [3; 16]] {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map([&key[..]], |row| row.get::<_, Vec<u8>>(0))?;
            assert_eq!(rows.count(), 0);
        }
        Ok(conn
            .prepare_cached(sql)?
            .get_status(StatementStatus::RePrepare))
    }

    #[test]
    fn a_cached_join_is_compiled_once() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        keep_plans(&conn)?;
        assert_eq!(recompilations(&conn)?, 0);
        Ok(())
    }

    /// Why `keep_plans` exists: without it the same statement is compiled
    /// again on every use after the first. If a new SQLite stops doing so,
    /// this fails and the setting can go.
    #[test]
    fn without_it_a_cached_join_is_compiled_on_every_use() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        assert_eq!(recompilations(&conn)?, 2);
        Ok(())
    }
}
