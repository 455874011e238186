//! The Resource Graph query subset the emulator evaluates: `Resources`, then `where` (`==`, `=~`, `!=`,
//! `!~`, `contains`, joined by `and`), `project` (with `alias = path.to.field`), `order by`, `take`/`limit`.
//! Anything else is refused with Resource Graph's error, never answered wrongly.

use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
enum Op {
    Eq,
    EqCi,
    Ne,
    NeCi,
    Contains,
}

#[derive(Debug, PartialEq)]
enum Stage {
    Where(Vec<(String, Op, String)>),
    Project(Vec<(String, String)>),
    OrderBy(String, bool),
    Take(usize),
}

/// A parse error: what was expected, and the token found.
#[derive(Debug, PartialEq)]
pub struct QueryError(pub String);

fn tokens(q: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut s = String::from("'");
            loop {
                match chars.next() {
                    Some(x) if x == c => break,
                    Some(x) => s.push(x),
                    None => return Err(QueryError("unterminated string literal".into())),
                }
            }
            out.push(s);
        } else if "|,=()".contains(c) || c == '!' {
            chars.next();
            let mut t = c.to_string();
            if let Some(&n) = chars.peek() {
                if (c == '=' || c == '!') && (n == '=' || n == '~') {
                    t.push(n);
                    chars.next();
                }
            }
            out.push(t);
        } else if c.is_alphanumeric() || "_.$[]-".contains(c) {
            let mut t = String::new();
            while let Some(&x) = chars.peek() {
                if x.is_alphanumeric() || "_.$[]-".contains(x) {
                    t.push(x);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(t);
        } else {
            return Err(QueryError(format!("unexpected character '{c}'")));
        }
    }
    Ok(out)
}

fn parse(q: &str) -> Result<Vec<Stage>, QueryError> {
    let toks = tokens(q)?;
    let mut parts = toks.split(|t| t == "|");
    let table = parts.next().unwrap_or_default();
    if table.len() != 1 || !table[0].eq_ignore_ascii_case("resources") {
        return Err(QueryError(format!(
            "the emulator's Resource Graph knows the table 'Resources' only, found '{}'",
            table.join(" ")
        )));
    }
    parts
        .map(|stage| {
            let (head, rest) = stage
                .split_first()
                .ok_or_else(|| QueryError("empty pipe stage".into()))?;
            match head.to_ascii_lowercase().as_str() {
                "where" => {
                    let mut conds = Vec::new();
                    for cond in rest.split(|t| t.eq_ignore_ascii_case("and")) {
                        let [col, op, lit] = cond else {
                            return Err(QueryError(format!(
                                "cannot read condition '{}'",
                                cond.join(" ")
                            )));
                        };
                        let op = match op.to_ascii_lowercase().as_str() {
                            "==" => Op::Eq,
                            "=~" => Op::EqCi,
                            "!=" => Op::Ne,
                            "!~" => Op::NeCi,
                            "contains" => Op::Contains,
                            other => {
                                return Err(QueryError(format!(
                                    "operator '{other}' is not supported"
                                )))
                            }
                        };
                        let lit = lit.strip_prefix('\'').ok_or_else(|| {
                            QueryError(format!("expected a string literal, found '{lit}'"))
                        })?;
                        conds.push((col.clone(), op, lit.to_string()));
                    }
                    Ok(Stage::Where(conds))
                }
                "project" => rest
                    .split(|t| t == ",")
                    .map(|col| match col {
                        [name] => Ok((
                            name.rsplit('.').next().unwrap_or(name).to_string(),
                            name.clone(),
                        )),
                        [alias, eq, path] if eq == "=" => Ok((alias.clone(), path.clone())),
                        other => Err(QueryError(format!(
                            "cannot read projection '{}'",
                            other.join(" ")
                        ))),
                    })
                    .collect::<Result<_, _>>()
                    .map(Stage::Project),
                "order" | "sort" => match rest {
                    [by, col] if by.eq_ignore_ascii_case("by") => {
                        Ok(Stage::OrderBy(col.clone(), false))
                    }
                    [by, col, dir] if by.eq_ignore_ascii_case("by") => Ok(Stage::OrderBy(
                        col.clone(),
                        dir.eq_ignore_ascii_case("desc"),
                    )),
                    _ => Err(QueryError("expected 'order by <column> [asc|desc]'".into())),
                },
                "take" | "limit" => match rest {
                    [n] => n
                        .parse()
                        .map(Stage::Take)
                        .map_err(|_| QueryError(format!("'{n}' is not a row count"))),
                    _ => Err(QueryError("expected 'take <n>'".into())),
                },
                other => Err(QueryError(format!(
                    "operator '{other}' is not supported by the emulator"
                ))),
            }
        })
        .collect()
}

/// `a.b.c` inside a row.
fn lookup<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(row, |v, key| v.get(key))
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The row Resource Graph holds for an ARM resource body.
pub fn row(body: &Value, tenant: &str) -> Value {
    let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
    let seg: Vec<&str> = id.split('/').collect();
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id.to_string()));
    for key in [
        "name",
        "kind",
        "location",
        "managedBy",
        "sku",
        "plan",
        "properties",
        "tags",
        "identity",
        "zones",
        "extendedLocation",
    ] {
        m.insert(key.into(), body.get(key).cloned().unwrap_or(Value::Null));
    }
    // Resource Graph lower-cases types and resource group names.
    let ty = body.get("type").and_then(Value::as_str).unwrap_or_default();
    m.insert("type".into(), Value::String(ty.to_ascii_lowercase()));
    m.insert("tenantId".into(), Value::String(tenant.into()));
    m.insert(
        "subscriptionId".into(),
        Value::String(seg.get(2).copied().unwrap_or_default().into()),
    );
    m.insert(
        "resourceGroup".into(),
        Value::String(seg.get(4).copied().unwrap_or_default().to_ascii_lowercase()),
    );
    Value::Object(m)
}

/// Runs `query` over `rows`.
pub fn run(query: &str, mut rows: Vec<Value>) -> Result<Vec<Value>, QueryError> {
    for stage in parse(query)? {
        match stage {
            Stage::Where(conds) => rows.retain(|r| {
                conds.iter().all(|(col, op, lit)| {
                    let v = text(lookup(r, col));
                    match op {
                        Op::Eq => v == *lit,
                        Op::EqCi => v.eq_ignore_ascii_case(lit),
                        Op::Ne => v != *lit,
                        Op::NeCi => !v.eq_ignore_ascii_case(lit),
                        Op::Contains => v.to_ascii_lowercase().contains(&lit.to_ascii_lowercase()),
                    }
                })
            }),
            Stage::Project(cols) => {
                rows = rows
                    .into_iter()
                    .map(|r| {
                        Value::Object(
                            cols.iter()
                                .map(|(alias, path)| {
                                    (
                                        alias.clone(),
                                        lookup(&r, path).cloned().unwrap_or(Value::Null),
                                    )
                                })
                                .collect(),
                        )
                    })
                    .collect()
            }
            Stage::OrderBy(col, desc) => {
                rows.sort_by_key(|r| text(lookup(r, &col)).to_ascii_lowercase());
                if desc {
                    rows.reverse();
                }
            }
            Stage::Take(n) => rows.truncate(n),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Value> {
        vec![
            row(
                &json!({"id": "/subscriptions/s/resourceGroups/RG/providers/A.B/c/x", "name": "x", "type": "A.B/c", "properties": {"provisioningState": "Succeeded"}}),
                "t",
            ),
            row(
                &json!({"id": "/subscriptions/s/resourceGroups/other/providers/A.B/c/y", "name": "y", "type": "A.B/c"}),
                "t",
            ),
        ]
    }

    #[test]
    fn filters_projects_and_orders() {
        let out = run(
            "Resources | where resourceGroup =~ 'rg' | project id, name, state = properties.provisioningState | order by name desc",
            rows(),
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["state"], "Succeeded");
        assert_eq!(out[0]["name"], "x");
        assert!(out[0].get("type").is_none());
    }

    #[test]
    fn lower_cases_type_and_group() {
        assert_eq!(rows()[0]["type"], "a.b/c");
        assert_eq!(rows()[0]["resourceGroup"], "rg");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(run("Resources | summarize count()", rows()).is_err());
        assert!(run("ResourceContainers", rows()).is_err());
        assert!(run("Resources | where name =~ 'x", rows()).is_err());
        assert!(run("Resources | where name in ('x')", rows()).is_err());
    }

    #[test]
    fn take_limits() {
        assert_eq!(run("Resources | take 1", rows()).unwrap().len(), 1);
    }
}
