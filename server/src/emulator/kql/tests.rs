use super::value::{format_datetime, format_timespan};
use super::*;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value as Json};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, h, m, s)
        .single()
        .expect("valid")
}

fn now() -> DateTime<Utc> {
    at(12, 0, 0)
}

struct Fixture(Vec<Table>);

impl Catalog for Fixture {
    fn table(&self, name: &str, _range: &TimeRange) -> Option<Table> {
        self.0.iter().find(|t| t.name == name).cloned()
    }
    fn table_names(&self) -> Vec<String> {
        self.0.iter().map(|t| t.name.clone()).collect()
    }
}

/// A table from `"name:type ..."` and JSON rows (datetimes as strings; `run` coerces them).
fn table(name: &str, schema: &str, rows: Json) -> Table {
    let columns = schema
        .split_whitespace()
        .filter_map(|c| c.split_once(':'))
        .map(|(n, t)| Column::new(n, Ty::from_name(t).expect("type")))
        .collect();
    let cell = |j: &Json| match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map_or(Value::Real(n.as_f64().unwrap_or(0.0)), Value::Long),
        Json::String(s) => Value::String(s.clone()),
        j => Value::Dynamic(j.clone()),
    };
    let rows = rows.as_array().into_iter().flatten();
    let rows = rows
        .map(|r| r.as_array().into_iter().flatten().map(cell).collect())
        .collect();
    Table {
        name: name.into(),
        columns,
        rows,
    }
}

fn fixture() -> Fixture {
    let requests = table(
        "requests",
        "timestamp:datetime name:string duration:real resultCode:string success:bool \
         cloud_RoleName:string customDimensions:dynamic",
        json!([
            ["2026-12-04T11:02:00Z", "POST /score", 120.0, "200", true, "api", {"model": "m1"}],
            ["2026-12-04T11:04:30Z", "POST /score", 80.0, "200", true, "api", {"model": "m2"}],
            ["2026-12-04T11:07:00Z", "GET /health", 5.0, "200", true, "web", null],
            ["2026-12-04T11:08:00Z", "POST /Score/batch", 300.0, "500", false, "worker", {"model": "m1"}],
            ["2026-12-04T11:12:00Z", "GET /scores-summary", 40.0, "200", true, "web", {}],
            ["2026-12-04T11:13:00Z", "POST /score", null, "404", false, "api", null],
            ["2026-12-04T09:00:00Z", "GET /health", 7.0, "200", true, "web", null],
            ["2026-12-02T09:00:00Z", "POST /score", 1000.0, "200", true, "api", null],
        ]),
    );
    let perf = table(
        "Perf",
        "TimeGenerated:datetime Computer:string CounterName:string CounterValue:real",
        json!([
            ["2026-12-04T10:00:00Z", "vm1", "% Processor Time", 10.0],
            ["2026-12-04T11:00:00Z", "vm1", "% Processor Time", 20.0],
            ["2026-12-04T11:00:00Z", "vm2", "% Processor Time", 50.0],
            ["2026-12-04T11:00:00Z", "vm1", "Available MBytes", 1024.0],
        ]),
    );
    let logs = table(
        "ContainerLog",
        "TimeGenerated:datetime LogEntry:string ContainerID:string",
        json!([
            ["2026-12-04T11:30:00Z", "error: boom", "c1"],
            ["2026-12-04T10:00:00Z", "ok", "c1"],
            ["2026-12-04T11:50:00Z", "started", "c1"],
        ]),
    );
    Fixture(vec![requests, perf, logs])
}

fn run_with(query: &str, span: &str, cap: usize) -> Result<QueryOutput, QueryError> {
    let range = parse_timespan(span, now()).expect("valid timespan");
    run(query, &fixture(), now(), &range, cap)
}

fn output(query: &str) -> QueryOutput {
    run_with(query, "P1D", 1000).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// The response rows as compact JSON text, as a client receives them.
fn data(query: &str) -> String {
    to_json(&output(query))["tables"][0]["rows"].to_string()
}

/// The columns as `name:type, ...`.
fn schema(query: &str) -> String {
    let cols = output(query).table.columns;
    let cols: Vec<String> = cols
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .collect();
    cols.join(", ")
}

fn check(query: &str, expected_schema: &str, expected_data: &str) {
    assert_eq!(schema(query), expected_schema, "{query}");
    assert_eq!(data(query), expected_data, "{query}");
}

fn count(query: &str) -> i64 {
    let out = output(&format!("{query} | count"));
    match out.table.rows.first().and_then(|r| r.first()) {
        Some(Value::Long(n)) => *n,
        other => panic!("{query}: {other:?}"),
    }
}

/// Row counts of `requests | where <predicate>`.
fn check_counts(cases: &[(&str, i64)]) {
    for (pred, n) in cases {
        assert_eq!(count(&format!("requests | where {pred}")), *n, "{pred}");
    }
}

fn error(query: &str) -> QueryError {
    match run_with(query, "P1D", 1000) {
        Ok(out) => panic!("{query}: expected an error, got {:?}", out.table.rows),
        Err(e) => e,
    }
}

// ------------------------------------------------------------------------------------- source and time

#[test]
fn timespan_filters_the_source_table() {
    assert_eq!(count("requests"), 7);
    let hour = run_with("requests | count", "PT1H", 10).expect("runs");
    assert_eq!(hour.table.rows, vec![vec![Value::Long(6)]]);
    let perf = run_with("Perf | count", "PT30M", 10).expect("runs");
    assert_eq!(perf.table.rows, vec![vec![Value::Long(0)]]);
}

#[test]
fn take_and_limit() {
    let out = output("requests | take 2");
    assert_eq!((out.table.columns.len(), out.table.rows.len()), (7, 2));
    assert_eq!(
        data("requests | limit 1 | project name"),
        r#"[["POST /score"]]"#
    );
    assert_eq!(data("requests | take 0"), "[]");
}

#[test]
fn container_log_ago() {
    let q = "ContainerLog | where TimeGenerated > ago(1h) | project LogEntry";
    assert_eq!(data(q), r#"[["error: boom"],["started"]]"#);
    assert_eq!(count("ContainerLog | where TimeGenerated <= now() - 1h"), 1);
}

// -------------------------------------------------------------------------------------------- where

#[test]
fn contains_is_case_insensitive_and_avg_ignores_nulls() {
    let q = "requests | where name contains 'score' | summarize avg(duration)";
    check(q, "avg_duration:real", "[[135.0]]");
    check_counts(&[
        ("name contains_cs 'Score'", 1),
        ("name !contains 'score'", 2),
        ("name !contains_cs 'score'", 3),
    ]);
}

#[test]
fn has_matches_whole_terms() {
    check_counts(&[
        ("name has 'score'", 4),
        ("name has 'SCORE'", 4),
        ("name has 'scores-summary'", 1),
        ("name has 'cor'", 0),
        ("name has 'POST /score'", 4),
        ("name !has 'score'", 3),
        ("name has_cs 'Score'", 1),
        ("name !has_cs 'Score'", 6),
    ]);
}

#[test]
fn prefix_suffix_and_equality_operators() {
    check_counts(&[
        ("name startswith 'post'", 4),
        ("name startswith_cs 'post'", 0),
        ("name !startswith 'get'", 4),
        ("name endswith '/SCORE'", 3),
        ("name endswith_cs 'batch'", 1),
        ("name == 'post /score'", 0),
        ("name =~ 'post /score'", 3),
        ("name !~ 'post /score'", 4),
        ("resultCode != '200'", 2),
        ("resultCode <> '200'", 2),
    ]);
}

#[test]
fn in_and_between() {
    check_counts(&[
        ("resultCode in ('500', '404')", 2),
        ("resultCode !in ('500', '404')", 5),
        ("cloud_RoleName in~ ('API', 'Worker')", 4),
        ("cloud_RoleName !in~ ('API')", 4),
        ("resultCode in (dynamic(['500', '404']))", 2),
        ("duration between (40 .. 120)", 3),
        ("duration !between (40 .. 120)", 3),
        (
            "timestamp between (datetime(2026-12-04 11:00) .. datetime(2026-12-04T11:05:00Z))",
            2,
        ),
        (
            "timestamp between (datetime(2026-12-04T11:00:00Z) .. 5m)",
            2,
        ),
    ]);
}

#[test]
fn comparisons_and_logic_with_nulls() {
    check_counts(&[
        ("duration > 0", 6),
        ("duration != 5", 5),
        ("duration >= 80 and success", 2),
        ("duration < 10 or resultCode == '404'", 3),
        ("not(success)", 2),
        ("not(duration > 100)", 4),
        (
            "(duration > 100 or duration < 10) and not(success == false)",
            3,
        ),
        ("success == true | where cloud_RoleName == 'api'", 2),
        (
            "timestamp > datetime(2026-12-04T11:10:00Z) and timestamp < datetime(null) or true",
            7,
        ),
    ]);
    assert_eq!(count("requests | filter success"), 5);
}

#[test]
fn dynamic_member_access() {
    check_counts(&[
        ("customDimensions.model == 'm1'", 2),
        ("customDimensions['model'] == 'm2'", 1),
    ]);
    let q = "requests | summarize count() by tostring(customDimensions.model) \
             | order by customDimensions_model asc";
    check(
        q,
        "customDimensions_model:string, count_:long",
        r#"[["",4],["m1",2],["m2",1]]"#,
    );
}

// ---------------------------------------------------------------------------------------- summarize

#[test]
fn percentiles_by_role() {
    check(
        "requests | summarize percentiles(duration, 50, 95) by cloud_RoleName",
        "cloud_RoleName:string, percentile_duration_50:real, percentile_duration_95:real",
        r#"[["api",80.0,120.0],["web",7.0,40.0],["worker",300.0,300.0]]"#,
    );
    check(
        "requests | summarize (p50, p95) = percentiles(duration, 50, 95), percentile(duration, 99.9)",
        "p50:real, p95:real, percentile_duration_99_9:real",
        "[[40.0,300.0,300.0]]",
    );
}

#[test]
fn count_by_five_minute_bins() {
    check(
        "requests | summarize count() by bin(timestamp, 5m) | order by timestamp asc",
        "timestamp:datetime, count_:long",
        r#"[["2026-12-04T09:00:00Z",1],["2026-12-04T11:00:00Z",2],["2026-12-04T11:05:00Z",2],["2026-12-04T11:10:00Z",2]]"#,
    );
}

#[test]
fn perf_processor_time_by_computer() {
    check(
        "Perf | where CounterName == '% Processor Time' \
         | summarize AggregatedValue = avg(CounterValue) by Computer",
        "Computer:string, AggregatedValue:real",
        r#"[["vm1",15.0],["vm2",50.0]]"#,
    );
    check(
        "Perf | summarize avg(CounterValue) by Computer, CounterName | take 1",
        "Computer:string, CounterName:string, avg_CounterValue:real",
        r#"[["vm1","% Processor Time",15.0]]"#,
    );
}

#[test]
fn aggregate_functions_names_and_types() {
    check(
        "requests | summarize count(), sum(duration), min(duration), max(duration), \
         dcount(cloud_RoleName), countif(success), sumif(duration, success), n = count(), max(timestamp)",
        "count_:long, sum_duration:real, min_duration:real, max_duration:real, \
         dcount_cloud_RoleName:long, countif_:long, sumif_duration:real, n:long, max_timestamp:datetime",
        r#"[[7,552.0,5.0,300.0,3,5,252.0,7,"2026-12-04T11:13:00Z"]]"#,
    );
    check(
        "requests | extend ms = tolong(duration) | summarize sum(ms), avg(ms), count(), count()",
        "sum_ms:long, avg_ms:real, count_:long, count_1:long",
        "[[552,92.0,7,7]]",
    );
}

#[test]
fn aggregates_inside_expressions() {
    check(
        "requests | summarize rate = round(100.0 * countif(success) / count(), 1), \
         slow = countif(duration > 100) by cloud_RoleName",
        "cloud_RoleName:string, rate:real, slow:long",
        r#"[["api",66.7,1],["web",100.0,0],["worker",0.0,1]]"#,
    );
}

#[test]
fn summarize_over_empty_input() {
    let q = "requests | where name == 'nope' | summarize count(), sum(duration), avg(duration), dcount(name)";
    assert_eq!(data(q), "[[0,0.0,null,0]]");
    assert_eq!(
        data("requests | where name == 'nope' | summarize count() by name"),
        "[]"
    );
    let roles = "requests | summarize by cloud_RoleName";
    assert_eq!(data(roles), r#"[["api"],["web"],["worker"]]"#);
}

// ----------------------------------------------------------------------------------- shaping operators

#[test]
fn order_by_defaults_to_desc_with_kusto_null_placement() {
    let q = "requests | order by duration | project duration";
    assert_eq!(
        data(q),
        "[[300.0],[120.0],[80.0],[40.0],[7.0],[5.0],[null]]"
    );
    let q = "requests | sort by duration asc | project duration | take 2";
    assert_eq!(data(q), "[[null],[5.0]]");
    let q = "requests | sort by duration asc nulls last | take 1 | project duration";
    assert_eq!(data(q), "[[5.0]]");
    let q = "requests | order by cloud_RoleName asc, timestamp desc | project resultCode | take 2";
    assert_eq!(data(q), r#"[["404"],["200"]]"#);
}

#[test]
fn top_count_and_distinct() {
    assert_eq!(
        data("requests | top 2 by duration | project duration"),
        "[[300.0],[120.0]]"
    );
    assert_eq!(
        data("requests | top 1 by duration asc | project duration"),
        "[[null]]"
    );
    let q = "requests | top 1 by duration asc nulls last | project duration";
    assert_eq!(data(q), "[[5.0]]");
    check("requests | count", "Count:long", "[[7]]");
    let q = "requests | distinct cloud_RoleName";
    assert_eq!(data(q), r#"[["api"],["web"],["worker"]]"#);
    assert_eq!(count("requests | distinct cloud_RoleName, success"), 4);
    assert_eq!(count("Perf | project Computer | distinct *"), 2);
}

#[test]
fn project_extend_away_rename() {
    check(
        "requests | take 1 | project name, ms = duration * 1000, duration",
        "name:string, ms:real, duration:real",
        r#"[["POST /score",120000.0,120.0]]"#,
    );
    check(
        "requests | take 1 | extend duration = tostring(duration), twice = strlen(duration) * 2 \
         | project-away timestamp, customDimensions",
        "name:string, duration:string, resultCode:string, success:bool, cloud_RoleName:string, twice:long",
        r#"[["POST /score","120","200",true,"api",6]]"#,
    );
    check(
        "requests | take 1 | project-rename role = cloud_RoleName \
         | project role, Column = strlen(role), strlen(name)",
        "role:string, Column:long, Column3:long",
        r#"[["api",3,11]]"#,
    );
}

#[test]
fn render_is_recorded() {
    let out = output("requests | summarize count() by bin(timestamp, 1h) | render timechart");
    assert_eq!(out.render.as_deref(), Some("timechart"));
    let out = output("requests | count | render barchart with (title='x', ytitle=\"n\")");
    assert_eq!(out.render.as_deref(), Some("barchart"));
    assert_eq!(output("requests | count").render, None);
    assert_eq!(error("requests | render table | count").code, SYNTAX_ERROR);
}

// ---------------------------------------------------------------------------------------- functions

#[test]
fn conversion_and_string_functions() {
    let q = "requests | take 1 | project tostring(duration), toint('42'), tolong(' 7 '), todouble('2.5'), \
             toreal(3), strlen(name), tolower(name), toupper(cloud_RoleName), toint('x'), tostring(success), \
             tostring(timestamp), substring(name, 5), substring(name, 0, 4), strcat(name, '#', 1), \
             tobool('TRUE'), todatetime('2026-12-04')";
    let expected = r#"[["120",42,7,2.5,3.0,11,"post /score","API",null,"true","2026-12-04T11:02:00Z","/score","POST","POST /score#1",true,"2026-12-04T00:00:00Z"]]"#;
    assert_eq!(data(q), expected);
    let q = "requests | project toint(1), tolong(1), todouble(1), tostring(1), strlen('a')";
    assert!(schema(q).ends_with(":int, Column2:long, Column3:real, Column4:string, Column5:long"));
}

#[test]
fn numeric_and_time_functions() {
    let q = "Perf | take 1 | project round(2.346, 2), round(2.5), round(1250, -2), floor(2.7), floor(17, 5), \
             bin(17.5, 5), ceiling(2.1), abs(-3), iff(CounterValue > 5, 'big', 'small'), iif(false, 1, 2.5), \
             bin(datetime(2026-12-04T10:17:45Z), 1h), bin(datetime(2026-12-03), 7d), ago(1d), now(), \
             now(-1h), bin(90s, 1m)";
    let expected = r#"[[2.35,3.0,1300,2.0,15,15.0,3.0,3,"big",2.5,"2026-12-04T10:00:00Z","2026-11-30T00:00:00Z","2026-12-03T12:00:00Z","2026-12-04T12:00:00Z","2026-12-04T11:00:00Z","00:01:00"]]"#;
    assert_eq!(data(q), expected);
}

#[test]
fn emptiness_and_null_functions() {
    let q = "requests | where isnull(duration) | project isnull(duration), isnotnull(duration), \
             isempty(''), isnotempty(name), isempty(customDimensions.model), coalesce(duration, -1.0)";
    assert_eq!(data(q), "[[true,false,true,true,true,-1.0]]");
    check_counts(&[
        ("isnotnull(duration)", 6),
        ("isnotempty(customDimensions.model)", 3),
    ]);
}

#[test]
fn arithmetic_rules() {
    let q = "requests | take 1 | project 7 / 2, 7 / 2.0, 7 % 3, -7 / 2, 1 / 0, \
             timestamp - datetime(2026-12-04T11:00:00Z), timestamp + 1h, 1h / 30m, 2 * 1.5h, 90m / 2, \
             now() - timestamp, 2h - 30m";
    let expected = r#"[[3,3.5,1,-3,null,"00:02:00","2026-12-04T12:02:00Z",2.0,"03:00:00","00:45:00","00:58:00","01:30:00"]]"#;
    assert_eq!(data(q), expected);
    let q = "requests | project 1 + 1, 1 + 1.0, timestamp - timestamp, timestamp + 1d";
    let expected = "Column1:long, Column2:real, Column3:timespan, Column4:datetime";
    assert_eq!(schema(q), expected);
}

#[test]
fn literals_and_lexing() {
    let q = "requests // a comment\n| take 1 | project 1.5h, 100ms, 30s, 1d, 2.5e1, 'it\\'s', \"tab\\t\", \
             @'C:\\dir', true, TRUE, dynamic({\"a\": [1]}), dynamic(['x'])";
    let expected = r#"[["01:30:00","00:00:00.1000000","00:00:30","1.00:00:00",25.0,"it's","tab\t","C:\\dir",true,true,"{\"a\":[1]}","[\"x\"]"]]"#;
    assert_eq!(data(q), expected);
}

// ------------------------------------------------------------------------------------------- errors

#[test]
fn syntax_errors_say_where() {
    for q in [
        "requests | where",
        "requests | where name ==",
        "requests |",
        "requests | project a,",
        "requests | take -1",
        "requests | where name == 'x",
        "requests | where (name == 'x'",
        "requests name",
        "requests | where 1 $ 2",
        "requests | where duration > 1h1",
    ] {
        let e = error(q);
        assert_eq!(e.code, SYNTAX_ERROR, "{q}: {e}");
        assert!(e.message.contains("on line [1,"), "{q}: {e}");
    }
    let e = error("requests\n| where name = 'x'");
    assert!(e.message.contains("at '=' on line [2,14]"), "{e}");
    let e = error("requests | frobnicate");
    assert!(e.message.contains("unknown query operator 'frobnicate'"));
    assert!(error("requests | WHERE name == 'x'")
        .message
        .contains("'WHERE'"));
}

#[test]
fn unknown_names_are_semantic_errors() {
    let e = error("requests | where foo == 1");
    assert_eq!(e.code, UNRESOLVED);
    let msg = "'where' operator: Failed to resolve scalar expression named 'foo'";
    assert_eq!(e.message, msg);
    let e = error("Foo | take 1");
    assert_eq!(e.code, UNRESOLVED);
    let msg = "Failed to resolve table or column expression named 'Foo'";
    assert_eq!(e.message, msg);
    assert!(error("Requests | count")
        .message
        .contains("did you mean 'requests'"));
    let e = error("requests | extend x = frob(name)");
    assert_eq!(e.code, UNRESOLVED);
    assert!(e.message.contains("Unknown function: 'frob'"), "{e}");
    for q in [
        "requests | project-away nope",
        "requests | summarize count() by nope",
        "requests | project name | where duration > 1",
        "requests | distinct nope",
    ] {
        assert_eq!(error(q).code, UNRESOLVED, "{q}");
    }
}

#[test]
fn unsupported_operators_are_named() {
    for (q, op) in [
        (
            "requests | join (Perf) on $left.name == $right.Computer",
            "join",
        ),
        ("requests | mv-expand customDimensions", "mv-expand"),
        ("requests | parse name with * '/' rest", "parse"),
        (
            "requests | make-series count() on timestamp step 1h",
            "make-series",
        ),
        ("union requests, Perf", "union"),
        ("let x = 1; requests", "let"),
        ("requests | where name hasprefix 'PO'", "hasprefix"),
        (
            "requests | summarize arg_max(timestamp, *) by name",
            "arg_max",
        ),
        ("requests | summarize make_list(name)", "make_list"),
    ] {
        let e = error(q);
        assert_eq!(e.code, UNSUPPORTED, "{q}: {e}");
        assert!(e.message.contains(&format!("'{op}'")), "{q}: {e}");
    }
}

#[test]
fn type_mismatches_are_rejected() {
    let e = error("requests | where name > 5");
    assert_eq!(e.code, TYPE_MISMATCH);
    let msg = "'where' operator: Cannot compare values of types string and long. Try adding explicit casts";
    assert_eq!(e.message, msg);
    for q in [
        "requests | where duration",
        "requests | extend x = name + 1",
        "requests | where timestamp > 5",
        "requests | where success and 1",
        "requests | extend x = avg(duration)",
        "requests | summarize avg(name)",
        "requests | summarize duration",
        "requests | extend x = strlen(duration)",
        "requests | extend x = iff(success, 1, 'a')",
        "requests | summarize percentile(duration, 120)",
        "requests | project name, name",
        "requests | where duration in ('a')",
        "requests | extend x = name.foo",
        "requests | extend x = ago(5)",
    ] {
        assert_eq!(error(q).code, TYPE_MISMATCH, "{q}");
    }
}

// ------------------------------------------------------------------------------------ output and API

#[test]
fn row_cap_truncates() {
    let out = run_with("requests | order by timestamp asc", "P1D", 3).expect("runs");
    assert!(out.truncated);
    assert_eq!(out.table.rows.len(), 3);
    let exact = run_with("requests", "P1D", 7).expect("runs");
    assert!(!exact.truncated);
    assert_eq!(exact.table.rows.len(), 7);
}

#[test]
fn timespans_parse_like_the_api() {
    let n = now();
    let start = |s: &str| {
        parse_timespan(s, n)
            .map(|r| r.start)
            .map_err(|e| format!("{s}: {e}"))
    };
    assert_eq!(
        parse_timespan("PT1H", n),
        Ok(TimeRange {
            start: at(11, 0, 0),
            end: n
        })
    );
    assert_eq!(start("PT30M"), Ok(at(11, 30, 0)));
    assert_eq!(start("PT12H"), Ok(at(0, 0, 0)));
    assert_eq!(start("P1D"), Ok(n - TimeDelta::days(1)));
    assert_eq!(start("P7D"), Ok(n - TimeDelta::days(7)));
    assert_eq!(start("P1W"), Ok(n - TimeDelta::days(7)));
    assert_eq!(start("P1DT12H"), Ok(n - TimeDelta::hours(36)));
    assert_eq!(start("PT1.5H"), Ok(at(10, 30, 0)));
    assert_eq!(start("P1M"), Ok(n - TimeDelta::days(30)));
    let interval = |a, b| Ok(TimeRange { start: a, end: b });
    let r = parse_timespan("2026-12-04T08:00:00Z/2026-12-04T10:00:00Z", n);
    assert_eq!(r, interval(at(8, 0, 0), at(10, 0, 0)));
    let r = parse_timespan("2026-12-04T08:00:00Z/PT1H", n);
    assert_eq!(r, interval(at(8, 0, 0), at(9, 0, 0)));
    let r = parse_timespan("PT1H/2026-12-04T10:00:00+01:00", n);
    assert_eq!(r, interval(at(8, 0, 0), at(9, 0, 0)));
    for bad in [
        "",
        "1H",
        "P",
        "PT",
        "P1H",
        "PT1D",
        "PT1H2",
        "P1DT",
        "PT-1H",
        "x/y",
        "2026-12-04T10:00:00Z/2026-12-04T08:00:00Z",
    ] {
        assert_eq!(
            parse_timespan(bad, n).map_err(|e| e.code),
            Err(INVALID_TIMESPAN.into()),
            "{bad}"
        );
    }
}

#[test]
fn json_shapes_match_log_analytics() {
    let out = output(
        "requests | take 1 | project timestamp, name, duration, success, customDimensions, \
         age = now() - timestamp, n = 1",
    );
    let columns = [
        ("timestamp", "datetime"),
        ("name", "string"),
        ("duration", "real"),
        ("success", "bool"),
        ("customDimensions", "dynamic"),
        ("age", "timespan"),
        ("n", "long"),
    ];
    let columns: Vec<Json> = columns
        .iter()
        .map(|(n, t)| json!({"name": n, "type": t}))
        .collect();
    let row = json!([
        "2026-12-04T11:02:00Z",
        "POST /score",
        120.0,
        true,
        "{\"model\":\"m1\"}",
        "00:58:00",
        1
    ]);
    let expected =
        json!({"tables": [{"name": "PrimaryResult", "columns": columns, "rows": [row]}]});
    assert_eq!(to_json(&out), expected);
    let err = error("requests | where foo == 1");
    let inner = json!({"code": "SEM0100", "message": err.message});
    let expected = json!({"error": {
        "message": "The request had some invalid properties",
        "code": "BadArgumentError",
        "innererror": inner,
    }});
    assert_eq!(error_json(&err), expected);
}

#[test]
fn value_text_forms() {
    let t = |s: i64, ns: i64| TimeDelta::seconds(s) + TimeDelta::nanoseconds(ns);
    assert_eq!(format_timespan(t(26 * 3600, 0)), "1.02:00:00");
    assert_eq!(format_timespan(t(90, 0)), "00:01:30");
    assert_eq!(format_timespan(t(-300, 0)), "-00:05:00");
    assert_eq!(format_timespan(t(1, 500_000_000)), "00:00:01.5000000");
    let d = at(17, 33, 9) + TimeDelta::milliseconds(788);
    assert_eq!(format_datetime(&d), "2026-12-04T17:33:09.788Z");
    assert_eq!(Value::Real(f64::NAN).to_json(), json!("NaN"));
    assert_eq!(Value::Dynamic(json!("s")).to_json(), json!("s"));
    assert_eq!(Ty::from_name("timespan"), Some(Ty::Timespan));
    assert_eq!(Ty::Guid.to_string(), "guid");
}

// -------------------------------------------------------------------------------- robustness (fuzzing)

const QUERIES: [&str; 14] = [
    "requests | where name contains 'score' | summarize avg(duration)",
    "requests | summarize percentiles(duration, 50, 95) by cloud_RoleName",
    "requests | summarize count() by bin(timestamp, 5m) | order by timestamp asc",
    "Perf | where CounterName == '% Processor Time' | summarize AggregatedValue = avg(CounterValue) by Computer",
    "ContainerLog | where TimeGenerated > ago(1h)",
    "requests | where timestamp between (datetime(2026-12-04T11:00:00Z) .. 5m) and name !in~ ('a', \"b\\n\")",
    "requests | extend x = iff(success, 1.5h * 2, -30s) | project-away name | top 3 by x asc nulls last",
    "requests | summarize (a, b) = percentiles(duration, 50, 95), r = round(100.0 * countif(success) / count(), 2)",
    "requests | where customDimensions.model == 'm1' or customDimensions['x'][0] == 1 | distinct *",
    "requests | project d = dynamic({\"a\": [1, 2]}), s = @'x''y', t = todatetime('2026-12-04') // c\n| render timechart with (title = 'x')",
    "requests | order by strlen(name) desc, timestamp asc | take 3 | count",
    "requests | project-rename n = name | summarize by n | extend l = substring(n, -3, 99)",
    "requests | where toint(resultCode) >= 400 | summarize min(timestamp), max(duration), dcount(name, 2) by success",
    "requests | where name has 'scores-summary' | project tolong(timestamp), bin(tolong(duration), 7), 9223372036854775807 + 1",
];

fn no_panic(q: &str) {
    let _ = run_with(q, "P1D", 5);
}

#[test]
fn fuzz_queries_run() {
    for q in QUERIES {
        assert_eq!(run_with(q, "P1D", 100).err(), None, "{q}");
    }
}

#[test]
fn fuzz_prefixes_deletions_and_insertions() {
    let noise = "| ( ) ' \" , .. - 1e ! [ ] // = @ é datetime( dynamic( \n";
    let noise: Vec<&str> = noise.split(' ').collect();
    let mut seed = 0x2545_f491_u64;
    for q in QUERIES {
        let cuts: Vec<usize> = q.char_indices().map(|(i, _)| i).chain([q.len()]).collect();
        for &i in &cuts {
            no_panic(&q[..i]);
            no_panic(&q[i..]);
        }
        for w in cuts.windows(2) {
            no_panic(&format!("{}{}", &q[..w[0]], &q[w[1]..]));
        }
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = cuts[(seed % cuts.len() as u64) as usize];
            let junk = noise[((seed >> 20) % noise.len() as u64) as usize];
            no_panic(&format!("{}{junk}{}", &q[..at], &q[at..]));
        }
    }
    no_panic(&"(".repeat(10_000));
    no_panic(&format!("requests | where {}", "(".repeat(10_000)));
    no_panic(&format!("requests | where {}1", "-".repeat(10_000)));
    no_panic(&format!("requests | where {}", "not(".repeat(5_000)));
    no_panic(&format!("requests | where {}1", "1 + ".repeat(100_000)));
    no_panic(&format!(
        "requests | where customDimensions{}",
        ".a".repeat(100_000)
    ));
    no_panic(&format!(
        "requests | where success{}",
        " or success".repeat(100_000)
    ));
}

#[test]
fn deep_but_legal_expressions_run() {
    let nested = format!(
        "requests | where {}success{}",
        "(".repeat(30),
        ")".repeat(30)
    );
    assert_eq!(count(&nested), 5);
    let chain = vec!["duration > 100"; 150].join(" or ");
    assert_eq!(count(&format!("requests | where {chain}")), 2);
    let sum = vec!["1"; 150].join(" + ");
    assert_eq!(
        data(&format!("requests | take 1 | project {sum}")),
        "[[150]]"
    );
    let e = error(&format!("requests | where {}1", "1 + ".repeat(1000)));
    assert!(e.message.contains("too deeply"), "{e}");
}

/// The deepest accepted expressions must run on a 1 MiB stack even in debug builds.
#[test]
fn worst_case_depth_fits_a_small_stack() {
    let queries = [
        format!(
            "requests | where {}success{}",
            "not(".repeat(31),
            ")".repeat(31)
        ),
        format!("requests | where {}1 > 0{}", "(".repeat(31), ")".repeat(31)),
        format!(
            "requests | extend x = {}1{}",
            "round(".repeat(31),
            ", 1)".repeat(31)
        ),
        format!(
            "requests | where {}",
            vec!["duration > 1"; 190].join(" or ")
        ),
        format!("requests | project x = {}", vec!["-1"; 199].join(" - ")),
        format!("requests | extend x = customDimensions{}", ".a".repeat(198)),
        format!("requests | project {}1", "-".repeat(31)),
        format!(
            "requests | where {}{} > 1{}",
            "(".repeat(25),
            vec!["duration"; 150].join(" + "),
            ")".repeat(25)
        ),
    ];
    let results = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            queries
                .iter()
                .map(|q| run_with(q, "P1D", 5).err())
                .collect::<Vec<_>>()
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
    assert!(results.iter().all(Option::is_none), "{results:?}");
}
