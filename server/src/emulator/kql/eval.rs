//! Type-checks each operator against its input schema, then runs it over the rows.

use super::parser::{BinOp, Expr, Item, Op, SortKey, StrOp};
use super::value::{compare, from_nanos, nanos, parse_datetime, tick_epoch, Key, Ty, Value};
use super::{Column, QueryError, Table, TimeRange, TYPE_MISMATCH, UNRESOLVED};
use chrono::{DateTime, TimeDelta, Utc};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

type Res<T> = Result<T, QueryError>;

/// A type-checked expression whose column references are indexes into the row it runs on.
#[derive(Clone, Debug)]
enum B {
    Lit(Value),
    Col(usize),
    Neg(Box<B>),
    Bin(BinOp, Box<B>, Box<B>),
    In {
        expr: Box<B>,
        list: Vec<B>,
        neg: bool,
        ci: bool,
    },
    Between {
        expr: Box<B>,
        lo: Box<B>,
        hi: Box<B>,
        neg: bool,
    },
    Call(&'static str, Vec<B>),
    Member(Box<B>, Value),
}

const SCALAR_FNS: &str = "ago now bin floor ceiling abs round tostring toint tolong todouble toreal tobool \
    toboolean todatetime todynamic parse_json strlen tolower toupper substring strcat iff iif coalesce isempty \
    isnotempty isnull isnotnull isnan not";

const AGG_FNS: &str = "count countif sum sumif avg min max dcount percentile percentiles";

fn is_agg(name: &str) -> bool {
    AGG_FNS.split_whitespace().any(|f| f == name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AggKind {
    Count,
    CountIf,
    Sum,
    Avg,
    Min,
    Max,
    DCount,
    Percentile,
}

/// One aggregation of a `summarize`, with its argument and optional predicate bound to the input rows.
#[derive(Debug)]
struct Agg {
    kind: AggKind,
    arg: Option<B>,
    pred: Option<B>,
    percent: f64,
    ty: Ty,
}

fn err(code: &str, op: &str, msg: impl std::fmt::Display) -> QueryError {
    QueryError::new(code, format!("'{op}' operator: {msg}"))
}

/// Kusto's implicit name for an expression: the column it refers to, `d_key` for `d.key`, and (when
/// `through_calls`) the name of a call's first argument, so `bin(TimeGenerated, 5m)` is `TimeGenerated`.
fn implicit_name(e: &Expr, through_calls: bool) -> Option<String> {
    match e {
        Expr::Col(c) => Some(c.clone()),
        Expr::Member(base, key) => {
            Some(format!("{}_{}", implicit_name(base, false)?, key.render()))
        }
        Expr::Call(_, args) if through_calls => implicit_name(args.first()?, true),
        _ => None,
    }
}

/// `base`, or `base1`, `base2`, ... whichever is not taken yet.
fn unique(cols: &[Column], base: String) -> String {
    let taken = |n: &str| cols.iter().any(|c| c.name == n);
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

fn column_index(cols: &[Column], name: &str, op: &str) -> Res<usize> {
    cols.iter().position(|c| c.name == name).ok_or_else(|| {
        err(
            UNRESOLVED,
            op,
            format!("Failed to resolve scalar expression named '{name}'"),
        )
    })
}

/// The common type of `a` and `b` for `iff`/`coalesce`, if any.
fn unify(a: Ty, b: Ty) -> Option<Ty> {
    match (a, b) {
        _ if a == b => Some(a),
        (Ty::Real, t) | (t, Ty::Real) if t.is_num() => Some(Ty::Real),
        (Ty::Int | Ty::Long, Ty::Int | Ty::Long) => Some(Ty::Long),
        _ if a.is_str() && b.is_str() => Some(Ty::String),
        _ => None,
    }
}

fn comparable(a: Ty, b: Ty) -> bool {
    a == b
        || a == Ty::Dynamic
        || b == Ty::Dynamic
        || (a.is_num() && b.is_num())
        || (a.is_str() && b.is_str())
}

fn arith_type(op: BinOp, a: Ty, b: Ty) -> Option<Ty> {
    use {BinOp::*, Ty::*};
    Some(match (op, a, b) {
        (_, Int, Int) => Int,
        (_, Real, x) | (_, x, Real) if x.is_num() => Real,
        (_, x, y) if x.is_num() && y.is_num() => Long,
        (Sub, Datetime, Datetime) => Timespan,
        (Add | Sub, Datetime, Timespan) | (Add, Timespan, Datetime) => Datetime,
        (Add | Sub | Mod, Timespan, Timespan) => Timespan,
        (Div, Timespan, Timespan) => Real,
        (Mul | Div, Timespan, x) | (Mul, x, Timespan) if x.is_num() => Timespan,
        _ => return None,
    })
}

struct Binder<'a> {
    cols: &'a [Column],
    op: &'static str,
    now: DateTime<Utc>,
    /// `Some` while binding a `summarize` aggregate: aggregations bind here and become `B::Col(slot)`.
    aggs: Option<&'a mut Vec<Agg>>,
}

impl Binder<'_> {
    fn row<'b>(&self, cols: &'b [Column]) -> Binder<'b> {
        Binder {
            cols,
            op: self.op,
            now: self.now,
            aggs: None,
        }
    }

    fn type_err(&self, msg: impl std::fmt::Display) -> QueryError {
        err(TYPE_MISMATCH, self.op, msg)
    }

    /// Binds `e`. This recursion is kept lean (type checks live in non-recursive helpers) so deep
    /// expression trees need little stack.
    fn bind(&mut self, e: &Expr) -> Res<(B, Ty)> {
        match e {
            Expr::Lit(v, ty) => Ok((B::Lit(v.clone()), *ty)),
            Expr::Col(name) => self.bind_col(name),
            Expr::Neg(inner) => {
                let x = self.bind(inner)?;
                self.check_neg(x)
            }
            Expr::Bin(op, l, r) => {
                let l = self.bind(l)?;
                let r = self.bind(r)?;
                self.check_bin(*op, l, r)
            }
            Expr::In {
                expr,
                list,
                neg,
                ci,
            } => {
                let x = self.bind(expr)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    items.push(self.bind(item)?);
                }
                self.check_in(x, items, *neg, *ci)
            }
            Expr::Between { expr, lo, hi, neg } => {
                let parts = [self.bind(expr)?, self.bind(lo)?, self.bind(hi)?];
                self.check_between(parts, *neg)
            }
            Expr::Member(base, key) => {
                let x = self.bind(base)?;
                self.check_member(x, key)
            }
            Expr::Call(name, args) if is_agg(name) => self.bind_agg(name, args),
            Expr::Call(name, args) => {
                let f = self.scalar_fn(name)?;
                let mut bound = Vec::with_capacity(args.len());
                for a in args {
                    bound.push(self.bind(a)?);
                }
                self.bind_call(f, bound)
            }
        }
    }

    fn bind_col(&self, name: &str) -> Res<(B, Ty)> {
        if self.aggs.is_some() {
            return Err(self.type_err(format!(
                "column '{name}' must be used inside an aggregation function such as max({name})"
            )));
        }
        let i = column_index(self.cols, name, self.op)?;
        let ty = self.cols.get(i).map_or(Ty::Dynamic, |c| c.ty);
        Ok((B::Col(i), ty))
    }

    fn scalar_fn(&self, name: &str) -> Res<&'static str> {
        let known = SCALAR_FNS.split_whitespace().find(|f| *f == name);
        let msg = || format!("Unknown function: '{name}' (not a function of this KQL subset)");
        known.ok_or_else(|| err(UNRESOLVED, self.op, msg()))
    }

    fn check_neg(&self, (b, ty): (B, Ty)) -> Res<(B, Ty)> {
        if !ty.is_num() && ty != Ty::Timespan {
            return Err(self.type_err(format!(
                "unary '-' cannot be applied to a value of type {ty}"
            )));
        }
        Ok((B::Neg(Box::new(b)), ty))
    }

    fn check_bin(&self, op: BinOp, (lb, lt): (B, Ty), (rb, rt): (B, Ty)) -> Res<(B, Ty)> {
        let stringish = |t: Ty| t.is_str() || t == Ty::Dynamic;
        let ty = match op {
            BinOp::And | BinOp::Or => {
                let ok = |t: Ty| matches!(t, Ty::Bool | Ty::Dynamic);
                if !ok(lt) || !ok(rt) {
                    return Err(self.type_err(format!(
                        "'{}' expects bool operands, got {lt} and {rt}",
                        op.text()
                    )));
                }
                Ty::Bool
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                arith_type(op, lt, rt).ok_or_else(|| {
                    self.type_err(format!(
                        "Operator '{}' cannot be applied to types {lt} and {rt}",
                        op.text()
                    ))
                })?
            }
            BinOp::EqCi | BinOp::NeCi if !stringish(lt) || !stringish(rt) => {
                return Err(self.type_err(format!(
                    "'{}' expects string operands, got {lt} and {rt}",
                    op.text()
                )));
            }
            BinOp::Str { .. } => Ty::Bool,
            _ if !comparable(lt, rt) => {
                return Err(self.type_err(format!(
                    "Cannot compare values of types {lt} and {rt}. Try adding explicit casts"
                )));
            }
            _ => Ty::Bool,
        };
        Ok((B::Bin(op, Box::new(lb), Box::new(rb)), ty))
    }

    fn check_in(&self, (b, ty): (B, Ty), items: Vec<(B, Ty)>, neg: bool, ci: bool) -> Res<(B, Ty)> {
        if let Some((_, it)) = items.iter().find(|(_, it)| !comparable(ty, *it)) {
            return Err(self.type_err(format!(
                "'in' list holds a {it} value but the tested value is {ty}"
            )));
        }
        let list = items.into_iter().map(|(b, _)| b).collect();
        Ok((
            B::In {
                expr: Box::new(b),
                list,
                neg,
                ci,
            },
            Ty::Bool,
        ))
    }

    fn check_between(&self, [(b, t), (lb, lt), (hb, ht)]: [(B, Ty); 3], neg: bool) -> Res<(B, Ty)> {
        let ok = comparable(t, lt)
            && (comparable(t, ht) || (t == Ty::Datetime && ht == Ty::Timespan))
            && (t.is_num() || matches!(t, Ty::Datetime | Ty::Timespan | Ty::Dynamic));
        if !ok {
            return Err(self.type_err(format!("'between' cannot test {t} against ({lt} .. {ht})")));
        }
        Ok((
            B::Between {
                expr: Box::new(b),
                lo: Box::new(lb),
                hi: Box::new(hb),
                neg,
            },
            Ty::Bool,
        ))
    }

    fn check_member(&self, (b, ty): (B, Ty), key: &Value) -> Res<(B, Ty)> {
        if ty != Ty::Dynamic {
            return Err(self.type_err(format!("property access needs a dynamic value, not {ty}")));
        }
        Ok((B::Member(Box::new(b), key.clone()), Ty::Dynamic))
    }

    fn bind_call(&self, f: &'static str, args: Vec<(B, Ty)>) -> Res<(B, Ty)> {
        use Ty::*;
        let tys: Vec<Ty> = args.iter().map(|a| a.1).collect();
        let numeric_result = |t: Ty| if t == Real { Real } else { Long };
        let ret = match (f, tys.as_slice()) {
            ("ago", [Timespan]) | ("now", [] | [Timespan]) => Datetime,
            ("bin" | "floor", [Datetime, Timespan]) => Datetime,
            ("bin" | "floor", [Timespan, Timespan]) => Timespan,
            ("bin" | "floor", [a, b]) if a.is_num() && b.is_num() => {
                numeric_result(unify(*a, *b).unwrap_or(Real))
            }
            ("floor" | "ceiling" | "abs", [a]) if a.is_num() => numeric_result(*a),
            ("round", [a] | [a, Int | Long]) if a.is_num() => numeric_result(*a),
            ("tostring", [_]) => String,
            ("toint", [_]) => Int,
            ("tolong", [_]) => Long,
            ("todouble" | "toreal", [_]) => Real,
            ("tobool" | "toboolean", [_]) => Bool,
            ("todatetime", [_]) => Datetime,
            ("todynamic" | "parse_json", [_]) => Dynamic,
            ("isnan", [Real]) => Bool,
            ("strlen", [a]) if a.is_str() || *a == Dynamic => Long,
            ("tolower" | "toupper", [a]) if a.is_str() || *a == Dynamic => String,
            ("substring", [a, Int | Long] | [a, Int | Long, Int | Long])
                if a.is_str() || *a == Dynamic =>
            {
                String
            }
            ("strcat", [_, ..]) if tys.len() <= 64 => String,
            ("isempty" | "isnotempty" | "isnull" | "isnotnull", [_]) => Bool,
            ("not", [Bool | Dynamic]) => Bool,
            ("iff" | "iif", [Bool | Dynamic, a, b]) => unify(*a, *b).ok_or_else(|| {
                self.type_err(format!(
                    "{f}(): the two branches have different types ({a} and {b})"
                ))
            })?,
            ("coalesce", [first, rest @ ..]) => rest
                .iter()
                .try_fold(*first, |acc, t| unify(acc, *t))
                .ok_or_else(|| {
                    self.type_err("coalesce(): arguments must all have the same type")
                })?,
            _ => {
                let list: Vec<&str> = tys.iter().map(|t| t.name()).collect();
                return Err(self.type_err(format!(
                    "function {f}() does not accept arguments of types ({})",
                    list.join(", ")
                )));
            }
        };
        // Branches of iff/coalesce are converted to the common type so every row has that type.
        let args = args
            .into_iter()
            .enumerate()
            .map(|(i, (b, t))| {
                let branch = matches!(f, "coalesce") || (matches!(f, "iff" | "iif") && i > 0);
                match (branch, ret, t) {
                    (true, Real, Int | Long) => B::Call("todouble", vec![b]),
                    _ => b,
                }
            })
            .collect();
        Ok((B::Call(f, args), ret))
    }

    fn bind_agg(&mut self, name: &str, args: &[Expr]) -> Res<(B, Ty)> {
        if self.aggs.is_none() {
            return Err(self.type_err(format!(
                "aggregation function {name}() can only be used in 'summarize'"
            )));
        }
        let mut row = self.row(self.cols);
        let mut bound = Vec::with_capacity(args.len());
        for a in args {
            bound.push(row.bind(a)?);
        }
        let percent = match (name, args) {
            ("percentile", [_, p]) => Some(percent_arg(p).ok_or_else(|| {
                self.type_err(
                    "percentile(): the percentage must be a number literal between 0 and 100",
                )
            })?),
            _ => None,
        };
        let mut bound = bound.into_iter();
        let (mut a, mut b) = (bound.next(), bound.next());
        let (ta, tb) = (a.as_ref().map(|x| x.1), b.as_ref().map(|x| x.1));
        use AggKind::*;
        let (kind, ty, pred) = match (name, ta, tb, args.len()) {
            ("count", None, _, 0) => (Count, Ty::Long, None),
            ("countif", Some(Ty::Bool | Ty::Dynamic), None, 1) => (CountIf, Ty::Long, a.take()),
            ("sum", Some(t), None, 1) if t.is_num() || t == Ty::Timespan => {
                (Sum, sum_type(t), None)
            }
            ("sumif", Some(t), Some(Ty::Bool | Ty::Dynamic), 2)
                if t.is_num() || t == Ty::Timespan =>
            {
                (Sum, sum_type(t), b.take())
            }
            ("avg", Some(t), None, 1) if t.is_num() => (Avg, Ty::Real, None),
            ("min" | "max", Some(t), None, 1) if t != Ty::Dynamic => {
                (if name == "min" { Min } else { Max }, t, None)
            }
            ("dcount", Some(_), _, 1 | 2) => (DCount, Ty::Long, None),
            ("percentile", Some(t), Some(_), 2)
                if t.is_num() || matches!(t, Ty::Datetime | Ty::Timespan) =>
            {
                (Percentile, t, None)
            }
            ("percentiles", ..) => {
                return Err(self.type_err(
                    "percentiles() must be a whole aggregation, not part of an expression",
                ));
            }
            _ => {
                let list: Vec<&str> = [ta, tb].into_iter().flatten().map(Ty::name).collect();
                return Err(self.type_err(format!(
                    "aggregation {name}() does not accept {} argument(s) of types ({})",
                    args.len(),
                    list.join(", ")
                )));
            }
        };
        let arg = if kind == Count || kind == CountIf {
            None
        } else {
            a.map(|x| x.0)
        };
        let op = self.op;
        let aggs = self
            .aggs
            .as_deref_mut()
            .ok_or_else(|| err(TYPE_MISMATCH, op, "no aggregation context"))?;
        aggs.push(Agg {
            kind,
            arg,
            pred: pred.map(|x| x.0),
            percent: percent.unwrap_or(0.0),
            ty,
        });
        Ok((B::Col(aggs.len() - 1), ty))
    }
}

fn sum_type(t: Ty) -> Ty {
    if t == Ty::Int {
        Ty::Long
    } else {
        t
    }
}

fn percent_arg(e: &Expr) -> Option<f64> {
    let p = match e {
        Expr::Lit(Value::Long(n), _) => *n as f64,
        Expr::Lit(Value::Real(f), _) => *f,
        _ => return None,
    };
    (0.0..=100.0).contains(&p).then_some(p)
}

// ------------------------------------------------------------------------------------------------ eval

fn truthy(v: &Value) -> Option<bool> {
    match &*v.scalar() {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Evaluates `b` on `row`. Like `bind`, this recursion stays lean; the work is in helpers.
fn eval(b: &B, row: &[Value], now: DateTime<Utc>) -> Value {
    match b {
        B::Lit(v) => v.clone(),
        B::Col(i) => row.get(*i).cloned().unwrap_or(Value::Null),
        B::Neg(x) => negate(eval(x, row, now)),
        B::Bin(BinOp::And, l, r) => match truthy(&eval(l, row, now)) {
            Some(false) => Value::Bool(false),
            l => logic(l, truthy(&eval(r, row, now)), false),
        },
        B::Bin(BinOp::Or, l, r) => match truthy(&eval(l, row, now)) {
            Some(true) => Value::Bool(true),
            l => logic(l, truthy(&eval(r, row, now)), true),
        },
        B::Bin(op, l, r) => binary(*op, eval(l, row, now), eval(r, row, now)),
        B::In {
            expr,
            list,
            neg,
            ci,
        } => {
            let v = eval(expr, row, now);
            in_list(&v, list.iter().map(|x| eval(x, row, now)), *neg, *ci)
        }
        B::Between { expr, lo, hi, neg } => between(
            eval(expr, row, now),
            eval(lo, row, now),
            eval(hi, row, now),
            *neg,
        ),
        B::Call(f, args) => call(f, args.iter().map(|x| eval(x, row, now)).collect(), now),
        B::Member(x, key) => member(eval(x, row, now), key),
    }
}

fn negate(v: Value) -> Value {
    match v {
        Value::Long(n) => Value::Long(n.wrapping_neg()),
        Value::Real(f) => Value::Real(-f),
        Value::Timespan(t) => Value::Timespan(-t),
        _ => Value::Null,
    }
}

/// Three-valued `and`/`or` once the left side did not decide: `absorbing` is `false` for `and`.
fn logic(l: Option<bool>, r: Option<bool>, absorbing: bool) -> Value {
    match (l, r) {
        (_, Some(r)) if r == absorbing => Value::Bool(absorbing),
        (Some(_), Some(_)) => Value::Bool(!absorbing),
        _ => Value::Null,
    }
}

fn in_list(v: &Value, items: impl Iterator<Item = Value>, neg: bool, ci: bool) -> Value {
    let mut items = items;
    let hit = items.any(|x| {
        if ci {
            v.render().to_lowercase() == x.render().to_lowercase()
        } else {
            compare(&empty_if_null(v, &x), &empty_if_null(&x, v)) == Some(Ordering::Equal)
        }
    });
    Value::Bool(hit != neg)
}

fn between(v: Value, lo: Value, hi: Value, neg: bool) -> Value {
    let hi = match (&lo, hi) {
        (Value::Datetime(d), Value::Timespan(t)) => {
            d.checked_add_signed(t).map_or(Value::Null, Value::Datetime)
        }
        (_, hi) => hi,
    };
    match (compare(&v, &lo), compare(&v, &hi)) {
        (Some(a), Some(b)) => Value::Bool((a.is_ge() && b.is_le()) != neg),
        _ => Value::Null,
    }
}

fn member(v: Value, key: &Value) -> Value {
    let Value::Dynamic(j) = v else {
        return Value::Null;
    };
    let found = match key {
        Value::Long(i) => j.as_array().and_then(|a| {
            let i = if *i < 0 {
                i.checked_add(i64::try_from(a.len()).ok()?)?
            } else {
                *i
            };
            a.get(usize::try_from(i).ok()?)
        }),
        k => j.get(k.render()),
    };
    found.map_or(Value::Null, |v| Value::Dynamic(v.clone()))
}

/// Strings are never null in Kusto: a null compared with a string acts as `""`.
fn empty_if_null(v: &Value, other: &Value) -> Value {
    match (v, &*other.scalar()) {
        (Value::Null, Value::String(_)) => Value::String(String::new()),
        _ => v.clone(),
    }
}

fn has_term(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let bounded = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let (first, last) = (needle.chars().next(), needle.chars().last());
    hay.match_indices(needle).any(|(i, m)| {
        let before = hay.get(..i).and_then(|s| s.chars().last());
        let after = hay.get(i + m.len()..).and_then(|s| s.chars().next());
        (bounded(first) || bounded(before)) && (bounded(last) || bounded(after))
    })
}

fn binary(op: BinOp, a: Value, b: Value) -> Value {
    use BinOp::*;
    let cmp = |want: fn(Ordering) -> bool| match compare(
        &empty_if_null(&a, &b),
        &empty_if_null(&b, &a),
    ) {
        Some(o) => Value::Bool(want(o)),
        None => Value::Null,
    };
    match op {
        Add | Sub | Mul | Div | Mod => arith(op, &a, &b),
        Eq => cmp(Ordering::is_eq),
        Ne => cmp(Ordering::is_ne),
        Lt => cmp(Ordering::is_lt),
        Le => cmp(Ordering::is_le),
        Gt => cmp(Ordering::is_gt),
        Ge => cmp(Ordering::is_ge),
        EqCi | NeCi => {
            Value::Bool((a.render().to_lowercase() == b.render().to_lowercase()) == (op == EqCi))
        }
        Str { op, neg, cs } => {
            let (mut h, mut n) = (a.render(), b.render());
            if !cs {
                (h, n) = (h.to_lowercase(), n.to_lowercase());
            }
            let hit = match op {
                StrOp::Contains => h.contains(&n),
                StrOp::Has => has_term(&h, &n),
                StrOp::StartsWith => h.starts_with(&n),
                StrOp::EndsWith => h.ends_with(&n),
            };
            Value::Bool(hit != neg)
        }
        And | Or => Value::Null,
    }
}

fn scale(t: TimeDelta, factor: f64) -> Value {
    let n = nanos(t) as f64 * factor;
    if !n.is_finite() || n.abs() > 9e27 {
        return Value::Null;
    }
    from_nanos(n.round() as i128).map_or(Value::Null, Value::Timespan)
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Value {
    use {BinOp::*, Value::*};
    let num = |v: &Value| match v {
        Long(n) => Some(*n as f64),
        Real(f) => Some(*f),
        _ => None,
    };
    match (op, a, b) {
        (_, Long(x), Long(y)) => match op {
            Add => Long(x.wrapping_add(*y)),
            Sub => Long(x.wrapping_sub(*y)),
            Mul => Long(x.wrapping_mul(*y)),
            Div => x.checked_div(*y).map_or(Null, Long),
            _ => x.checked_rem(*y).map_or(Null, Long),
        },
        (_, Long(_) | Real(_), Long(_) | Real(_)) => {
            let (x, y) = (num(a).unwrap_or(f64::NAN), num(b).unwrap_or(f64::NAN));
            Real(match op {
                Add => x + y,
                Sub => x - y,
                Mul => x * y,
                Div => x / y,
                _ => x % y,
            })
        }
        (Add, Datetime(d), Timespan(t)) | (Add, Timespan(t), Datetime(d)) => {
            d.checked_add_signed(*t).map_or(Null, Datetime)
        }
        (Sub, Datetime(d), Timespan(t)) => d.checked_sub_signed(*t).map_or(Null, Datetime),
        (Sub, Datetime(x), Datetime(y)) => Timespan(x.signed_duration_since(*y)),
        (Add, Timespan(x), Timespan(y)) => x.checked_add(y).map_or(Null, Timespan),
        (Sub, Timespan(x), Timespan(y)) => x.checked_sub(y).map_or(Null, Timespan),
        (Mod, Timespan(x), Timespan(y)) => nanos(*x)
            .checked_rem(nanos(*y))
            .and_then(from_nanos)
            .map_or(Null, Timespan),
        (Div, Timespan(x), Timespan(y)) if nanos(*y) != 0 => {
            Real(nanos(*x) as f64 / nanos(*y) as f64)
        }
        (Mul, Timespan(t), n) | (Mul, n, Timespan(t)) => num(n).map_or(Null, |f| scale(*t, f)),
        (Div, Timespan(t), n) => num(n)
            .filter(|f| *f != 0.0)
            .map_or(Null, |f| scale(*t, 1.0 / f)),
        _ => Null,
    }
}

fn bin(x: &Value, size: &Value) -> Value {
    use Value::*;
    let floor_to = |n: i128, s: i128| (s > 0).then(|| n.div_euclid(s) * s);
    match (x, size) {
        (Datetime(d), Timespan(s)) => {
            let epoch = tick_epoch();
            floor_to(nanos(d.signed_duration_since(epoch)), nanos(*s))
                .and_then(from_nanos)
                .and_then(|t| epoch.checked_add_signed(t))
                .map_or(Null, Datetime)
        }
        (Timespan(t), Timespan(s)) => floor_to(nanos(*t), nanos(*s))
            .and_then(from_nanos)
            .map_or(Null, Timespan),
        (Long(n), Long(s)) => floor_to(i128::from(*n), i128::from(*s))
            .and_then(|v| i64::try_from(v).ok())
            .map_or(Null, Long),
        (Long(_) | Real(_), Long(_) | Real(_)) => match (to_real(x), to_real(size)) {
            (Real(v), Real(s)) if s > 0.0 => Real((v / s).floor() * s),
            _ => Null,
        },
        _ => Null,
    }
}

fn to_long(v: &Value) -> Value {
    use Value::*;
    match &*v.scalar() {
        Long(n) => Long(*n),
        Real(f) if f.is_finite() && f.abs() < 9.2e18 => Long(f.trunc() as i64),
        Bool(b) => Long(i64::from(*b)),
        String(s) => s.trim().parse().map_or(Null, Long),
        Datetime(d) => {
            i64::try_from(nanos(d.signed_duration_since(tick_epoch())) / 100).map_or(Null, Long)
        }
        Timespan(t) => i64::try_from(nanos(*t) / 100).map_or(Null, Long),
        _ => Null,
    }
}

fn to_real(v: &Value) -> Value {
    use Value::*;
    match &*v.scalar() {
        Real(f) => Real(*f),
        String(s) => s.trim().parse().map_or(Null, Real),
        other => match to_long(other) {
            Long(n) => Real(n as f64),
            _ => Null,
        },
    }
}

fn round(x: &Value, digits: i64) -> Value {
    match x {
        Value::Real(f) => {
            let p = 10f64.powi(i32::try_from(digits.clamp(-300, 300)).unwrap_or(0));
            Value::Real((f * p).round() / p)
        }
        Value::Long(n) if digits < 0 => {
            let p = 10i128.checked_pow(u32::try_from(-digits).unwrap_or(u32::MAX).min(38));
            let (n, p) = (i128::from(*n), p.unwrap_or(i128::MAX));
            let r = (n.abs() + p / 2) / p * p * n.signum();
            i64::try_from(r).map_or(Value::Null, Value::Long)
        }
        v => v.clone(),
    }
}

fn call(f: &str, a: Vec<Value>, now: DateTime<Utc>) -> Value {
    use Value::*;
    let s = |i: usize| a.get(i).map(Value::render).unwrap_or_default();
    match (f, a.as_slice()) {
        ("now", []) => Datetime(now),
        ("now", [Timespan(t)]) => now.checked_add_signed(*t).map_or(Null, Datetime),
        ("ago", [Timespan(t)]) => now.checked_sub_signed(*t).map_or(Null, Datetime),
        ("bin" | "floor", [x, size]) => bin(x, size),
        ("floor", [Real(x)]) => Real(x.floor()),
        ("ceiling", [Real(x)]) => Real(x.ceil()),
        ("abs", [Real(x)]) => Real(x.abs()),
        ("abs", [Long(x)]) => Long(x.wrapping_abs()),
        ("floor" | "ceiling", [Long(x)]) => Long(*x),
        ("round", [x]) => round(x, 0),
        ("round", [x, Long(d)]) => round(x, *d),
        ("tostring", [_]) => String(s(0)),
        ("tolong", [v]) => to_long(v),
        ("toint", [v]) => match to_long(v) {
            Long(n) if i32::try_from(n).is_ok() => Long(n),
            _ => Null,
        },
        ("todouble" | "toreal", [v]) => to_real(v),
        ("tobool" | "toboolean", [v]) => match &*v.scalar() {
            Bool(b) => Bool(*b),
            Long(n) => Bool(*n != 0),
            Real(f) => Bool(*f != 0.0),
            String(t) if t.trim().eq_ignore_ascii_case("true") => Bool(true),
            String(t) if t.trim().eq_ignore_ascii_case("false") => Bool(false),
            _ => Null,
        },
        ("todatetime", [v]) => match &*v.scalar() {
            Datetime(d) => Datetime(*d),
            String(t) => parse_datetime(t).map_or(Null, Datetime),
            _ => Null,
        },
        ("todynamic" | "parse_json", [v]) => match v {
            String(t) => {
                serde_json::from_str(t).map_or_else(|_| Dynamic(t.clone().into()), Dynamic)
            }
            Null | Dynamic(_) => v.clone(),
            other => other.clone().coerce(super::Ty::Dynamic),
        },
        ("isnan", [Real(x)]) => Bool(x.is_nan()),
        ("strlen", [_]) => Long(i64::try_from(s(0).chars().count()).unwrap_or(i64::MAX)),
        ("tolower", [_]) => String(s(0).to_lowercase()),
        ("toupper", [_]) => String(s(0).to_uppercase()),
        ("substring", [_, start, rest @ ..]) => {
            let chars: Vec<char> = s(0).chars().collect();
            let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
            let Long(start) = start else { return Null };
            let from = (*start).clamp(0, len);
            let to = match rest {
                [Long(n)] => from.saturating_add((*n).max(0)).min(len),
                [] => len,
                _ => return Null,
            };
            let range = usize::try_from(from).unwrap_or(0)..usize::try_from(to).unwrap_or(0);
            String(chars.get(range).unwrap_or_default().iter().collect())
        }
        ("strcat", _) => String(a.iter().map(Value::render).collect()),
        ("iff" | "iif", [c, x, y]) => {
            if truthy(c) == Some(true) {
                x.clone()
            } else {
                y.clone()
            }
        }
        ("coalesce", _) => a
            .iter()
            .find(|v| !v.is_null() && !matches!(v, String(t) if t.is_empty()))
            .cloned()
            .unwrap_or_else(|| a.last().cloned().unwrap_or(Null)),
        ("isempty", [v]) => Bool(v.is_null() || matches!(&*v.scalar(), String(t) if t.is_empty())),
        ("isnotempty", [v]) => {
            Bool(!v.is_null() && !matches!(&*v.scalar(), String(t) if t.is_empty()))
        }
        ("isnull", [v]) => Bool(v.is_null()),
        ("isnotnull", [v]) => Bool(!v.is_null()),
        ("not", [v]) => truthy(v).map_or(Null, |b| Bool(!b)),
        _ => Null,
    }
}

// ------------------------------------------------------------------------------------------- aggregates

impl Agg {
    fn compute(&self, rows: &[&[Value]], now: DateTime<Utc>) -> Value {
        let keep = |r: &&&[Value]| {
            self.pred
                .as_ref()
                .is_none_or(|p| truthy(&eval(p, r, now)) == Some(true))
        };
        let values = || -> Vec<Value> {
            let Some(arg) = &self.arg else {
                return Vec::new();
            };
            rows.iter()
                .filter(keep)
                .map(|r| eval(arg, r, now))
                .filter(|v| !v.is_null())
                .collect()
        };
        match self.kind {
            AggKind::Count => Value::Long(i64::try_from(rows.len()).unwrap_or(i64::MAX)),
            AggKind::CountIf => {
                Value::Long(i64::try_from(rows.iter().filter(keep).count()).unwrap_or(i64::MAX))
            }
            AggKind::DCount => {
                let distinct: HashSet<Key> = values().iter().map(Value::key).collect();
                Value::Long(i64::try_from(distinct.len()).unwrap_or(i64::MAX))
            }
            AggKind::Sum => {
                let vals = values();
                match self.ty {
                    Ty::Real => Value::Real(vals.iter().filter_map(num).fold(0.0, |a, b| a + b)),
                    Ty::Timespan => vals
                        .iter()
                        .try_fold(TimeDelta::zero(), |acc, v| match v {
                            Value::Timespan(t) => acc.checked_add(t),
                            _ => Some(acc),
                        })
                        .map_or(Value::Null, Value::Timespan),
                    _ => Value::Long(vals.iter().fold(0i64, |acc, v| match v {
                        Value::Long(n) => acc.wrapping_add(*n),
                        _ => acc,
                    })),
                }
            }
            AggKind::Avg => {
                let vals: Vec<f64> = values().iter().filter_map(num).collect();
                if vals.is_empty() {
                    Value::Null
                } else {
                    Value::Real(vals.iter().fold(0.0, |a, b| a + b) / vals.len() as f64)
                }
            }
            AggKind::Min | AggKind::Max => {
                let vals = values();
                let best = if self.kind == AggKind::Min {
                    vals.into_iter().min_by_key(Value::key)
                } else {
                    vals.into_iter().max_by_key(Value::key)
                };
                best.unwrap_or(Value::Null)
            }
            AggKind::Percentile => {
                let mut vals = values();
                vals.sort_by_cached_key(Value::key);
                // Nearest rank: the smallest value with at least p% of the values at or below it.
                let rank = (self.percent / 100.0 * vals.len() as f64).ceil() as usize;
                vals.get(rank.max(1) - 1).cloned().unwrap_or(Value::Null)
            }
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Long(n) => Some(*n as f64),
        Value::Real(f) => Some(*f),
        _ => None,
    }
}

// -------------------------------------------------------------------------------------------- operators

struct Exec {
    now: DateTime<Utc>,
}

impl Exec {
    fn binder<'a>(&self, cols: &'a [Column], op: &'static str) -> Binder<'a> {
        Binder {
            cols,
            op,
            now: self.now,
            aggs: None,
        }
    }

    fn project(&self, t: Table, items: &[Item]) -> Res<Table> {
        let mut columns: Vec<Column> = Vec::new();
        let mut exprs = Vec::new();
        for item in items {
            let (b, ty) = self.binder(&t.columns, "project").bind(&item.expr)?;
            let name = match item
                .names
                .first()
                .cloned()
                .or_else(|| implicit_name(&item.expr, false))
            {
                Some(n) if columns.iter().any(|c| c.name == n) => {
                    return Err(err(
                        TYPE_MISMATCH,
                        "project",
                        format!("column '{n}' is projected more than once"),
                    ));
                }
                Some(n) => n,
                None => unique(&columns, format!("Column{}", columns.len() + 1)),
            };
            columns.push(Column { name, ty });
            exprs.push(b);
        }
        let rows = t
            .rows
            .iter()
            .map(|r| exprs.iter().map(|b| eval(b, r, self.now)).collect())
            .collect();
        Ok(Table {
            name: t.name,
            columns,
            rows,
        })
    }

    fn extend(&self, mut t: Table, items: &[Item]) -> Res<Table> {
        for (n, item) in items.iter().enumerate() {
            let (b, ty) = self.binder(&t.columns, "extend").bind(&item.expr)?;
            let name = item
                .names
                .first()
                .cloned()
                .or_else(|| implicit_name(&item.expr, false))
                .unwrap_or_else(|| unique(&t.columns, format!("Column{}", n + 1)));
            let values: Vec<Value> = t.rows.iter().map(|r| eval(&b, r, self.now)).collect();
            let at = t.columns.iter().position(|c| c.name == name);
            match at.and_then(|i| t.columns.get_mut(i)) {
                Some(c) => c.ty = ty,
                None => t.columns.push(Column { name, ty }),
            }
            for (row, v) in t.rows.iter_mut().zip(values) {
                match at.and_then(|i| row.get_mut(i)) {
                    Some(slot) => *slot = v,
                    None => row.push(v),
                }
            }
        }
        Ok(t)
    }

    fn summarize(&self, t: Table, aggs: &[Item], by: &[Item]) -> Res<Table> {
        const OP: &str = "summarize";
        let mut columns = Vec::new();
        let mut keys = Vec::new();
        for item in by {
            let (b, ty) = self.binder(&t.columns, OP).bind(&item.expr)?;
            let name = item
                .names
                .first()
                .cloned()
                .or_else(|| implicit_name(&item.expr, true));
            let name = unique(
                &columns,
                name.unwrap_or_else(|| format!("Column{}", columns.len() + 1)),
            );
            columns.push(Column { name, ty });
            keys.push(b);
        }
        let mut specs: Vec<Agg> = Vec::new();
        let mut outputs = Vec::new();
        for item in aggs {
            let named = |i: usize, default: String| item.names.get(i).cloned().unwrap_or(default);
            if let Some(args) = match &item.expr {
                Expr::Call(f, args) if f == "percentiles" => Some(args),
                _ => None,
            } {
                let [x, ps @ ..] = args.as_slice() else {
                    return Err(err(
                        TYPE_MISMATCH,
                        OP,
                        "percentiles() needs a value and at least one percentage",
                    ));
                };
                if ps.is_empty() || (item.names.len() > 1 && item.names.len() != ps.len()) {
                    return Err(err(
                        TYPE_MISMATCH,
                        OP,
                        "percentiles() needs one name per percentage",
                    ));
                }
                let base = implicit_name(x, true).unwrap_or_default();
                for (i, p) in ps.iter().enumerate() {
                    let call = Expr::Call("percentile".into(), vec![x.clone(), p.clone()]);
                    let mut b = Binder {
                        cols: &t.columns,
                        op: OP,
                        now: self.now,
                        aggs: Some(&mut specs),
                    };
                    let (slot, ty) = b.bind(&call)?;
                    let p = percent_arg(p)
                        .unwrap_or_default()
                        .to_string()
                        .replace('.', "_");
                    let name = match item.names.as_slice() {
                        [one] => format!("{one}_{p}"),
                        _ => named(i, format!("percentile_{base}_{p}")),
                    };
                    columns.push(Column {
                        name: unique(&columns, name),
                        ty,
                    });
                    outputs.push(slot);
                }
                continue;
            }
            if item.names.len() > 1 {
                return Err(err(
                    TYPE_MISMATCH,
                    OP,
                    "only percentiles() produces several columns",
                ));
            }
            let mut b = Binder {
                cols: &t.columns,
                op: OP,
                now: self.now,
                aggs: Some(&mut specs),
            };
            let (out, ty) = b.bind(&item.expr)?;
            let default = match &item.expr {
                Expr::Call(f, args) if f == "percentile" => format!(
                    "percentile_{}_{}",
                    args.first()
                        .and_then(|x| implicit_name(x, true))
                        .unwrap_or_default(),
                    args.get(1)
                        .and_then(percent_arg)
                        .unwrap_or_default()
                        .to_string()
                        .replace('.', "_")
                ),
                Expr::Call(f, args) if is_agg(f) => {
                    let arg = match f.as_str() {
                        "count" | "countif" => None,
                        _ => args.first().and_then(|x| implicit_name(x, true)),
                    };
                    format!("{f}_{}", arg.unwrap_or_default())
                }
                _ => format!("Column{}", columns.len() + 1),
            };
            columns.push(Column {
                name: unique(&columns, named(0, default)),
                ty,
            });
            outputs.push(out);
        }

        let mut index: HashMap<Vec<Key>, usize> = HashMap::new();
        let mut groups: Vec<(Vec<Value>, Vec<&[Value]>)> = Vec::new();
        for row in &t.rows {
            let values: Vec<Value> = keys.iter().map(|k| eval(k, row, self.now)).collect();
            let slot = *index
                .entry(values.iter().map(Value::key).collect())
                .or_insert_with(|| {
                    groups.push((values, Vec::new()));
                    groups.len() - 1
                });
            if let Some(g) = groups.get_mut(slot) {
                g.1.push(row);
            }
        }
        if by.is_empty() && groups.is_empty() {
            groups.push((Vec::new(), Vec::new()));
        }
        let rows = groups
            .into_iter()
            .map(|(mut row, members)| {
                let slots: Vec<Value> = specs
                    .iter()
                    .map(|s| s.compute(&members, self.now))
                    .collect();
                row.extend(outputs.iter().map(|o| eval(o, &slots, self.now)));
                row
            })
            .collect();
        Ok(Table {
            name: t.name,
            columns,
            rows,
        })
    }

    fn sort(&self, mut t: Table, keys: &[SortKey], op: &'static str) -> Res<Table> {
        let mut bound = Vec::new();
        for k in keys {
            bound.push((
                self.binder(&t.columns, op).bind(&k.expr)?.0,
                k.desc,
                k.nulls_first,
            ));
        }
        let mut keyed: Vec<(Vec<Key>, Vec<Value>)> = t
            .rows
            .into_iter()
            .map(|r| {
                (
                    bound
                        .iter()
                        .map(|(b, ..)| eval(b, &r, self.now).key())
                        .collect(),
                    r,
                )
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            a.iter()
                .zip(b)
                .zip(&bound)
                .map(
                    |((x, y), (_, desc, nulls_first))| match (x == &Key::Null, y == &Key::Null) {
                        (true, true) => Ordering::Equal,
                        (true, false) => {
                            if *nulls_first {
                                Ordering::Less
                            } else {
                                Ordering::Greater
                            }
                        }
                        (false, true) => {
                            if *nulls_first {
                                Ordering::Greater
                            } else {
                                Ordering::Less
                            }
                        }
                        _ if *desc => y.cmp(x),
                        _ => x.cmp(y),
                    },
                )
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        t.rows = keyed.into_iter().map(|(_, r)| r).collect();
        Ok(t)
    }

    fn distinct(&self, t: Table, names: &Option<Vec<String>>) -> Res<Table> {
        let idx: Vec<usize> = match names {
            None => (0..t.columns.len()).collect(),
            Some(ns) => ns
                .iter()
                .map(|n| column_index(&t.columns, n, "distinct"))
                .collect::<Res<_>>()?,
        };
        let mut seen = HashSet::new();
        let rows = t
            .rows
            .iter()
            .map(|r| {
                idx.iter()
                    .map(|&i| r.get(i).cloned().unwrap_or(Value::Null))
                    .collect::<Vec<_>>()
            })
            .filter(|r| seen.insert(r.iter().map(Value::key).collect::<Vec<_>>()))
            .collect();
        let columns = idx
            .iter()
            .filter_map(|&i| t.columns.get(i).cloned())
            .collect();
        Ok(Table {
            name: t.name,
            columns,
            rows,
        })
    }

    fn apply(&self, t: Table, op: &Op) -> Res<Table> {
        Ok(match op {
            Op::Where(e) => {
                let (b, ty) = self.binder(&t.columns, "where").bind(e)?;
                if !matches!(ty, Ty::Bool | Ty::Dynamic) {
                    return Err(err(
                        TYPE_MISMATCH,
                        "where",
                        format!("the filter must be a bool expression, not {ty}"),
                    ));
                }
                let mut t = t;
                t.rows
                    .retain(|r| truthy(&eval(&b, r, self.now)) == Some(true));
                t
            }
            Op::Project(items) => self.project(t, items)?,
            Op::ProjectAway(names) => {
                let drop = names
                    .iter()
                    .map(|n| column_index(&t.columns, n, "project-away"))
                    .collect::<Res<Vec<_>>>()?;
                let keep: Vec<usize> = (0..t.columns.len()).filter(|i| !drop.contains(i)).collect();
                let rows = t
                    .rows
                    .iter()
                    .map(|r| keep.iter().filter_map(|&i| r.get(i).cloned()).collect())
                    .collect();
                let columns = keep
                    .iter()
                    .filter_map(|&i| t.columns.get(i).cloned())
                    .collect();
                Table {
                    name: t.name,
                    columns,
                    rows,
                }
            }
            Op::ProjectRename(pairs) => {
                let mut t = t;
                for (new, old) in pairs {
                    let i = column_index(&t.columns, old, "project-rename")?;
                    if let Some(c) = t.columns.get_mut(i) {
                        c.name = new.clone();
                    }
                }
                t
            }
            Op::Extend(items) => self.extend(t, items)?,
            Op::Summarize { aggs, by } => self.summarize(t, aggs, by)?,
            Op::Sort(keys) => self.sort(t, keys, "order")?,
            Op::Top(n, key) => {
                let mut t = self.sort(t, std::slice::from_ref(key), "top")?;
                t.rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
                t
            }
            Op::Take(n) => {
                let mut t = t;
                t.rows.truncate(usize::try_from(*n).unwrap_or(usize::MAX));
                t
            }
            Op::Count => Table {
                name: t.name,
                columns: vec![Column {
                    name: "Count".into(),
                    ty: Ty::Long,
                }],
                rows: vec![vec![Value::Long(
                    i64::try_from(t.rows.len()).unwrap_or(i64::MAX),
                )]],
            },
            Op::Distinct(names) => self.distinct(t, names)?,
            Op::Render(_) => t,
        })
    }
}

/// Coerces the catalog's rows to their column types, applies the time window, then runs `ops`.
pub(super) fn execute(
    ops: &[Op],
    mut t: Table,
    range: &TimeRange,
    now: DateTime<Utc>,
) -> Res<(Table, Option<String>)> {
    let width = t.columns.len();
    for row in &mut t.rows {
        row.resize(width, Value::Null);
        for (v, c) in row.iter_mut().zip(&t.columns) {
            *v = std::mem::replace(v, Value::Null).coerce(c.ty);
        }
    }
    let time_col = ["TimeGenerated", "timestamp"].iter().find_map(|n| {
        t.columns
            .iter()
            .position(|c| c.name == *n && c.ty == Ty::Datetime)
    });
    if let Some(i) = time_col {
        t.rows
            .retain(|r| matches!(r.get(i), Some(Value::Datetime(d)) if range.contains(*d)));
    }
    let exec = Exec { now };
    let mut render = None;
    for op in ops {
        if let Op::Render(chart) = op {
            render = Some(chart.clone());
        }
        t = exec.apply(t, op)?;
    }
    Ok((t, render))
}
