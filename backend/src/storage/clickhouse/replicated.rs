//! Replicated tables: with `?replicas=N` in the ClickHouse URL, every
//! MergeTree-family table otelite creates becomes its `Replicated…` twin,
//! kept in ZooKeeper under `/clickhouse/tables/{shard}/<database>/<table>`
//! with replica name `{replica}` (both macros from each server's config).
//! This is a function over the DDL, so each migration's tables (and any
//! later one's) are replicated without a replicated copy of the schema.

/// The engines rewritten: a replicated twin exists for each.
const ENGINES: &[&str] = &["SummingMergeTree", "ReplacingMergeTree", "MergeTree"];

/// `statement` with its MergeTree-family engine made replicated; any other
/// statement (views, `Null`, `TinyLog`, `ALTER`) unchanged.
pub fn replicate(statement: &str, database: &str) -> String {
    let Some(table) = created_table(statement) else {
        return statement.to_owned();
    };
    let Some(at) = statement.find("ENGINE = ") else {
        return statement.to_owned();
    };
    let engine_at = at + "ENGINE = ".len();
    let rest = &statement[engine_at..];
    let Some(engine) = ENGINES.iter().find(|e| {
        rest.starts_with(*e)
            && !rest[e.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    }) else {
        return statement.to_owned();
    };
    let after = &rest[engine.len()..];
    let path = format!("'/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}'");
    // `Engine(args)` keeps its args after the path and replica name.
    let (args, tail) = match after.strip_prefix('(') {
        Some(inner) => match closing(inner) {
            Some(close) if !inner[..close].trim().is_empty() => {
                (format!("{path}, {}", &inner[..close]), &inner[close + 1..])
            }
            Some(close) => (path, &inner[close + 1..]),
            None => return statement.to_owned(),
        },
        None => (path, after),
    };
    format!(
        "{}Replicated{engine}({args}){tail}",
        &statement[..engine_at]
    )
}

/// Where the `(` just before `text` closes.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(at),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The table a `CREATE TABLE [IF NOT EXISTS] name` statement creates.
fn created_table(statement: &str) -> Option<&str> {
    let start = statement.find("CREATE TABLE ")? + "CREATE TABLE ".len();
    let rest = statement[start..].trim_start();
    let rest = rest
        .strip_prefix("IF NOT EXISTS ")
        .unwrap_or(rest)
        .trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end]).filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_tree_engines_become_replicated_with_their_arguments() {
        assert_eq!(
            replicate(
                "CREATE TABLE IF NOT EXISTS spans (day Date) ENGINE = MergeTree PARTITION BY day ORDER BY (day)",
                "otelite"
            ),
            "CREATE TABLE IF NOT EXISTS spans (day Date) ENGINE = ReplicatedMergeTree(\
             '/clickhouse/tables/{shard}/otelite/spans', '{replica}') PARTITION BY day ORDER BY (day)"
        );
        assert_eq!(
            replicate(
                "CREATE TABLE IF NOT EXISTS service_edges (\n calls UInt64\n) ENGINE = SummingMergeTree((calls, errors)) ORDER BY (calls)",
                "db"
            ),
            "CREATE TABLE IF NOT EXISTS service_edges (\n calls UInt64\n) ENGINE = \
             ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/service_edges', '{replica}', (calls, errors)) ORDER BY (calls)"
        );
        assert_eq!(
            replicate(
                "CREATE TABLE IF NOT EXISTS exporter_series (v UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY (v)",
                "db"
            ),
            "CREATE TABLE IF NOT EXISTS exporter_series (v UInt64) ENGINE = \
             ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/exporter_series', '{replica}', version) ORDER BY (v)"
        );
    }

    #[test]
    fn other_statements_are_left_alone() {
        for statement in [
            "CREATE TABLE IF NOT EXISTS spans_in (day Date) ENGINE = Null",
            "CREATE TABLE IF NOT EXISTS schema_versions (version UInt32) ENGINE = TinyLog",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS mv TO spans AS SELECT day FROM spans_in",
            "ALTER TABLE spans ADD COLUMN x UInt8",
            "CREATE TABLE IF NOT EXISTS x (d Date) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY d",
        ] {
            assert_eq!(replicate(statement, "db"), statement);
        }
    }

    #[test]
    fn every_table_of_the_schema_but_spans_in_is_replicated() {
        let schema = include_str!("schema-18.16.sql");
        let replicated: Vec<String> = schema
            .split("\n;\n")
            .map(|s| replicate(s, "db"))
            .filter(|s| s.contains("ENGINE = Replicated"))
            .collect();
        assert_eq!(replicated.len(), 6, "{replicated:#?}");
    }
}
