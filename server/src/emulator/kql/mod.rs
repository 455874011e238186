//! A small, strict subset of KQL (Kusto Query Language) for the Log Analytics and Application Insights
//! query endpoints (`POST /v1/workspaces/{id}/query`, `POST /v1/apps/{id}/query`).
//!
//! Anything outside the subset below is rejected with an error that names it; a query is never
//! half-understood and answered wrongly.
//!
//! # Query shape
//!
//! `TableName | operator | operator ...`, optionally ending in `;`. Table names are identifiers or
//! `['quoted name']`. `//` starts a comment that runs to the end of the line. Identifiers, operator names,
//! function names and keywords are case-sensitive, as in Kusto. `let`, multiple statements and tabular
//! sub-queries are not supported.
//!
//! Before the pipeline runs, the source table is restricted to the request's timespan on its
//! `TimeGenerated` column (or `timestamp`, for Application Insights tables), both ends inclusive.
//!
//! # Literals
//!
//! * `long`: `42`; `real`: `1.5`, `2e3`; `bool`: `true`, `false` (also `True`, `TRUE`, ...).
//! * `string`: `'...'` or `"..."` with `\\`, `\'`, `\"`, `\n`, `\r`, `\t`, `\uXXXX` escapes; verbatim `@'...'`.
//! * `timespan`: a number followed by a unit: `d`, `h`, `m`, `s`, `ms`, `microsecond`, `tick` (and the
//!   long forms `day(s)`, `hr(s)`, `hour(s)`, `min`, `minute(s)`, `sec`, `second(s)`, `milli(s)`,
//!   `millisecond(s)`, `microseconds`, `ticks`): `5m`, `1.5h`, `100ms`.
//! * `datetime(2026-12-04T10:00:00Z)`, `datetime(2026-12-04)`, `datetime(2026-12-04 10:00)`,
//!   `datetime(null)`; zone-less values are UTC.
//! * `dynamic(...)` holding JSON (strings may use `'...'`): `dynamic([1, 'a'])`, `dynamic({"a": 1})`,
//!   `dynamic(null)`.
//! * Typed nulls: `bool(null)`, `int(null)`, `long(null)`, `real(null)`/`double(null)`, `string(null)`,
//!   `timespan(null)`/`time(null)`, `guid(null)`.
//!
//! # Tabular operators
//!
//! | operator | notes |
//! |---|---|
//! | `where` *pred* (`filter`) | keeps rows where *pred* is `true` (null counts as false) |
//! | `project` *col*, *name* `=` *expr*, ... | duplicate output names are an error |
//! | `project-away` *col*, ... | no wildcards |
//! | `project-rename` *new* `=` *old*, ... | |
//! | `extend` *name* `=` *expr*, ... | later items see earlier ones; an existing name is replaced in place |
//! | `summarize` \[*aggs*\] \[`by` *keys*\] | see below |
//! | `order by` / `sort by` *expr* \[`asc`\|`desc`\] \[`nulls first`\|`nulls last`\], ... | default `desc`; nulls first when ascending, last when descending |
//! | `top` *N* `by` *expr* \[`asc`\|`desc`\] \[`nulls first`\|`nulls last`\] | default `desc` |
//! | `take` *N*, `limit` *N* | the first *N* rows |
//! | `count` | one column `Count` (long) |
//! | `distinct` *col*, ... / `distinct *` | rows in order of first appearance |
//! | `render` *chart* \[`with (...)`\] | must be last; recorded in [`QueryOutput::render`] |
//!
//! Other Kusto operators (`join`, `union`, `mv-expand`, `parse`, `make-series`, `lookup`, `evaluate`,
//! `search`, `print`, `let`, ...), infix operators (`hasprefix`, `has_any`, `matches regex`, ...) and
//! aggregations (`arg_max`, `make_list`, `make_set`, `take_any`, `stdev`, `variance`, ...) fail with code
//! [`UNSUPPORTED`] and a message naming them. Other unknown functions fail with [`UNRESOLVED`].
//!
//! # Summarize
//!
//! Aggregations: `count()`, `countif(pred)`, `sum(x)`, `sumif(x, pred)`, `avg(x)`, `min(x)`, `max(x)`,
//! `dcount(x [, accuracy])` (exact), `percentile(x, p)`, `percentiles(x, p1, p2, ...)`. An aggregation may
//! sit inside a scalar expression (`round(avg(x), 2)`, `countif(ok) * 100.0 / count()`). Nulls are
//! ignored. `percentile` uses the nearest-rank definition and keeps the type of `x`.
//!
//! Result types: `count`, `countif`, `dcount` → long; `avg` → real; `sum` → long for int/long input, real
//! for real, timespan for timespan; `min`, `max`, `percentile` → the input type. Over no rows, `count`,
//! `countif`, `dcount`, `sum`, `sumif` give 0 and the others null.
//!
//! Default column names follow Kusto: `count_`, `countif_`, `sum_x`, `avg_x`, `min_x`, `max_x`,
//! `dcount_x`, `sumif_x`, `percentile_x_95`; `percentiles(x, 50, 99.9)` gives `percentile_x_50` and
//! `percentile_x_99_9`. `x` is the column the argument refers to (through function calls, so
//! `avg(todouble(d.v))` is `avg_d_v`); other unnamed results are `Column1`, `Column2`, ... Name results
//! with `name = agg(...)`, or `(p50, p95) = percentiles(x, 50, 95)`; `p = percentiles(x, 50, 95)` gives
//! `p_50` and `p_95` (an emulator choice). Repeated names get a numeric suffix.
//!
//! `by` keys are expressions, optionally named; an unnamed key is named after the column it refers to,
//! so `bin(TimeGenerated, 5m)` gives a column `TimeGenerated`. Key columns come first, then aggregates.
//! Groups appear in order of first appearance. Without `by`, empty input still gives one row
//! (`count_` = 0); with `by`, empty input gives no rows.
//!
//! # Scalar expressions
//!
//! Precedence, loosest first: `or`; `and`; comparisons and string/set operators; `+ -`; `* / %`; unary
//! `-`; member access `d.key`, `d['key']`, `d[0]` on dynamic values.
//!
//! * Comparison: `==`, `!=` (`<>`), `<`, `<=`, `>`, `>=`; `=~`, `!~` (case-insensitive string equality).
//! * Strings (case-insensitive unless `_cs`; `!` negates): `contains`, `contains_cs`, `has`, `has_cs`,
//!   `startswith`, `startswith_cs`, `endswith`, `endswith_cs`, and the negations `!contains`, `!has`, ...
//!   `has` matches whole terms: the needle must occur with no letter or digit directly before or after it.
//!   Non-string operands are converted with `tostring`.
//! * Sets and ranges: `x in (a, b)` (or `in (dynamic([a, b]))`), `!in`, `in~`, `!in~`,
//!   `x between (lo .. hi)`, `!between`;
//!   `datetime between (start .. timespan)` means `start .. start + timespan`.
//! * Logic: `and`, `or`, `not(x)` with Kusto's three-valued null logic.
//! * Arithmetic: numbers (long ÷ long is integer division; ÷ 0 gives null), `datetime ± timespan`,
//!   `datetime - datetime` → timespan, `timespan ± timespan`, `timespan * number`, `timespan / number`,
//!   `timespan / timespan` → real.
//!
//! Functions: `ago(t)`, `now([offset])`, `bin(x, size)` and its alias `floor(x, size)` (datetime,
//! timespan, number; datetimes are binned from 0001-01-01 as in Kusto), `floor(x)`, `ceiling(x)`,
//! `abs(x)`, `round(x [, digits])`, `tostring`, `toint`, `tolong`, `todouble`/`toreal`,
//! `tobool`/`toboolean`, `todatetime`, `strlen`, `tolower`, `toupper`, `substring(s, start [, len])`,
//! `strcat(a, ...)`, `iff(c, a, b)`/`iif`, `coalesce(a, ...)`, `isempty`, `isnotempty`, `isnull`,
//! `isnotnull`, `isnan`, `not`, `todynamic`/`parse_json`. `floor(x)` with one argument (the
//! mathematical floor) is an extension; in Kusto `floor` always takes a bin size. `round` keeps long
//! input long. Conversions give null when the input cannot be converted; `tolong` of a datetime or
//! timespan gives its 100 ns ticks, as in Kusto. Strings are never null in Kusto, so a null string
//! behaves as `""`.
//!
//! Unnamed `project`/`extend` results are named after the column they are (`d.key` gives `d_key`), or
//! `Column1`, `Column2`, ... by position.
//!
//! # Types and errors
//!
//! Every column has a static type and every expression is type-checked before it runs, so unknown
//! names and type mismatches fail even on empty tables. Error codes ([`QueryError::code`]):
//! [`SYNTAX_ERROR`] (with line and column), [`UNRESOLVED`] (unknown table, column or function),
//! [`TYPE_MISMATCH`] (bad operand or argument types, and other misuse such as duplicate `project` names or
//! an aggregation outside `summarize`) and [`UNSUPPORTED`] (valid Kusto outside this subset). Expressions
//! nested more than 32 deep or with more than 200 levels in all are a syntax error, which bounds stack use
//! (the deepest accepted queries are tested on a 1 MiB stack in a debug build).
//!
//! # Output
//!
//! [`to_json`] gives `{"tables":[{"name":"PrimaryResult","columns":[{"name","type"}],"rows":[...]}]}`:
//! long/int/real as JSON numbers (non-finite reals as `"NaN"`, `"Infinity"`, `"-Infinity"`), bool as JSON
//! booleans, datetime as ISO 8601 UTC with up to 7 fractional digits (`2026-12-04T10:00:00Z`,
//! `2018-02-01T17:33:09.788Z`), timespan as `[-][d.]hh:mm:ss[.fffffff]`, and dynamic values as their
//! JSON text in a string (`"{\"a\":1}"`; a dynamic string is the string itself), as the Log Analytics
//! API does; null is `null`. Object keys come out in `serde_json`'s order, which is not Azure's
//! (`name`, `columns`, `rows`) but is equivalent JSON.

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;
mod value;

use chrono::{DateTime, Utc};
use serde_json::json;
use std::fmt;

pub use value::{Ty, Value};

/// Error code for malformed queries.
pub const SYNTAX_ERROR: &str = "SyntaxError";
/// Error code for a table, column or function name that does not resolve.
pub const UNRESOLVED: &str = "SEM0100";
/// Error code for operands or arguments of the wrong type.
pub const TYPE_MISMATCH: &str = "SEM0101";
/// Error code for valid Kusto that this subset does not implement.
pub const UNSUPPORTED: &str = "SEM0102";
/// Error code for a request timespan that is not a valid ISO 8601 duration or interval.
pub const INVALID_TIMESPAN: &str = "InvalidTimespan";

/// A named, typed column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: Ty,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: Ty) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// A table: typed columns and rows of values in column order.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// The query window given by the API's `timespan`; both ends are inclusive when filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t <= self.end
    }
}

/// Where table data comes from; `range` is the query's timespan so a generator can produce only rows
/// inside it.
pub trait Catalog {
    fn table(&self, name: &str, range: &TimeRange) -> Option<Table>;
    fn table_names(&self) -> Vec<String>;
}

/// The result of [`run`].
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    /// The primary result, named `PrimaryResult`.
    pub table: Table,
    /// Rows were cut at the row cap.
    pub truncated: bool,
    /// The chart of a final `render` operator, e.g. `"timechart"`.
    pub render: Option<String>,
}

/// A failed query: `code` is [`SYNTAX_ERROR`] or a semantic code such as [`UNRESOLVED`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub code: String,
    pub message: String,
}

impl QueryError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        QueryError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for QueryError {}

/// Parses the API's ISO 8601 `timespan`: a duration ending now (`PT1H`, `P1D`, `P7D`, `PT30M`,
/// `P1DT12H`, `P1W`, `P1M`, `PT1.5H`), or an interval `start/end`, `start/duration` or `duration/end`,
/// where `start` and `end` are RFC 3339 datetimes (a missing offset means UTC).
pub fn parse_timespan(s: &str, now: DateTime<Utc>) -> Result<TimeRange, QueryError> {
    value::parse_timespan(s, now)
        .ok_or_else(|| QueryError::new(INVALID_TIMESPAN, format!("Invalid timespan '{s}': expected an ISO 8601 duration such as 'PT1H' or an interval such as '2026-12-04T00:00:00Z/PT1H'")))
}

/// Runs `query` against `catalog`. `now` anchors `now()` and `ago()`; `range` restricts the source
/// table (see the module docs); at most `row_cap` rows are returned, with `truncated` set if more existed.
pub fn run(
    query: &str,
    catalog: &dyn Catalog,
    now: DateTime<Utc>,
    range: &TimeRange,
    row_cap: usize,
) -> Result<QueryOutput, QueryError> {
    let q = parser::parse(query)?;
    let source = catalog.table(&q.table, range).ok_or_else(|| {
        let hint = catalog
            .table_names()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(&q.table))
            .map(|n| format!(" (did you mean '{n}'? table names are case-sensitive)"))
            .unwrap_or_default();
        QueryError::new(
            UNRESOLVED,
            format!(
                "Failed to resolve table or column expression named '{}'{hint}",
                q.table
            ),
        )
    })?;
    let (mut table, render) = eval::execute(&q.ops, source, range, now)?;
    table.name = "PrimaryResult".to_string();
    let truncated = table.rows.len() > row_cap;
    table.rows.truncate(row_cap);
    Ok(QueryOutput {
        table,
        truncated,
        render,
    })
}

/// The Log Analytics response body: `{"tables":[{"name","columns":[{"name","type"}],"rows"}]}`.
pub fn to_json(out: &QueryOutput) -> serde_json::Value {
    let t = &out.table;
    let columns: Vec<_> = t
        .columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.ty.name()}))
        .collect();
    let rows: Vec<serde_json::Value> = t
        .rows
        .iter()
        .map(|r| r.iter().map(Value::to_json).collect())
        .collect();
    json!({"tables": [{"name": t.name, "columns": columns, "rows": rows}]})
}

/// The Log Analytics error body for a rejected query (HTTP 400).
pub fn error_json(err: &QueryError) -> serde_json::Value {
    json!({"error": {
        "message": "The request had some invalid properties",
        "code": "BadArgumentError",
        "innererror": {"code": err.code, "message": err.message},
    }})
}
