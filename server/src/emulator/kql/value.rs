//! Column types, cell values, their ordering and their text forms.

use super::TimeRange;
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// A column type, spelled as Azure spells it in query responses (`"bool"`, `"datetime"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    Datetime,
    Dynamic,
    Int,
    Long,
    Real,
    String,
    Timespan,
    Guid,
}

impl Ty {
    const ALL: [Ty; 9] = [
        Ty::Bool,
        Ty::Datetime,
        Ty::Dynamic,
        Ty::Int,
        Ty::Long,
        Ty::Real,
        Ty::String,
        Ty::Timespan,
        Ty::Guid,
    ];

    /// The Azure column type name.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Datetime => "datetime",
            Ty::Dynamic => "dynamic",
            Ty::Int => "int",
            Ty::Long => "long",
            Ty::Real => "real",
            Ty::String => "string",
            Ty::Timespan => "timespan",
            Ty::Guid => "guid",
        }
    }

    /// The type with Azure name `name`.
    pub fn from_name(name: &str) -> Option<Ty> {
        Ty::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(super) fn is_num(self) -> bool {
        matches!(self, Ty::Int | Ty::Long | Ty::Real)
    }

    pub(super) fn is_str(self) -> bool {
        matches!(self, Ty::String | Ty::Guid)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cell value. `int` columns hold [`Value::Long`]; `guid` columns hold [`Value::String`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    String(String),
    Datetime(DateTime<Utc>),
    Timespan(TimeDelta),
    Dynamic(Json),
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Long(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Datetime(v)
    }
}
impl From<TimeDelta> for Value {
    fn from(v: TimeDelta) -> Self {
        Value::Timespan(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A totally ordered, hashable image of a value, used to sort, group and deduplicate.
/// Numbers compare numerically (ties: reals before longs); dynamic scalars behave as plain values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Key {
    Null,
    Bool(bool),
    Num(u64, Option<i64>),
    Datetime(DateTime<Utc>),
    Timespan(TimeDelta),
    Str(String),
    Json(String),
}

/// Maps an `f64` onto a `u64` whose order is `f64::total_cmp`'s (with -0 folded into 0, NaNs into one).
fn ordered_bits(f: f64) -> u64 {
    let f = if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

impl Value {
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::Dynamic(Json::Null))
    }

    /// The value as Azure's JSON response carries it.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null | Value::Dynamic(Json::Null) => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Long(n) => Json::from(*n),
            Value::Real(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Json::String(real_text(*f)), Json::Number),
            Value::String(s) => Json::String(s.clone()),
            Value::Datetime(_) | Value::Timespan(_) | Value::Dynamic(_) => {
                Json::String(self.render())
            }
        }
    }

    /// Kusto's `tostring`: null is `""`, dynamic strings lose their quotes, other dynamics are JSON text.
    pub(super) fn render(&self) -> String {
        match self {
            Value::Null | Value::Dynamic(Json::Null) => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Long(n) => n.to_string(),
            Value::Real(f) => real_text(*f),
            Value::String(s) | Value::Dynamic(Json::String(s)) => s.clone(),
            Value::Datetime(d) => format_datetime(d),
            Value::Timespan(t) => format_timespan(*t),
            Value::Dynamic(j) => j.to_string(),
        }
    }

    /// A dynamic scalar as the plain value it holds; arrays, objects and non-dynamics unchanged.
    pub(super) fn scalar(&self) -> Cow<'_, Value> {
        let Value::Dynamic(j) = self else {
            return Cow::Borrowed(self);
        };
        Cow::Owned(match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => n
                .as_i64()
                .map_or_else(|| Value::Real(n.as_f64().unwrap_or(f64::NAN)), Value::Long),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(_) | Json::Object(_) => return Cow::Borrowed(self),
        })
    }

    pub(super) fn key(&self) -> Key {
        match &*self.scalar() {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Long(n) => Key::Num(ordered_bits(*n as f64), Some(*n)),
            Value::Real(f) => Key::Num(ordered_bits(*f), None),
            Value::String(s) => Key::Str(s.clone()),
            Value::Datetime(d) => Key::Datetime(*d),
            Value::Timespan(t) => Key::Timespan(*t),
            Value::Dynamic(j) => Key::Json(j.to_string()),
        }
    }

    /// Converts a catalog value into the representation of column type `ty` (null if impossible).
    pub(super) fn coerce(self, ty: Ty) -> Value {
        match (ty, self) {
            (_, Value::Null) => Value::Null,
            (Ty::Dynamic, Value::Dynamic(j)) => Value::Dynamic(j),
            (Ty::Dynamic, v) => Value::Dynamic(match v {
                Value::Bool(b) => Json::Bool(b),
                Value::Long(n) => Json::from(n),
                Value::Real(f) => Json::from(f),
                v => Json::String(v.render()),
            }),
            (Ty::Bool, v @ Value::Bool(_)) => v,
            (Ty::Int | Ty::Long, v @ Value::Long(_)) => v,
            (Ty::Int | Ty::Long, Value::Real(f)) if f.is_finite() => Value::Long(f as i64),
            (Ty::Real, v @ Value::Real(_)) => v,
            (Ty::Real, Value::Long(n)) => Value::Real(n as f64),
            (Ty::String | Ty::Guid, v) => Value::String(v.render()),
            (Ty::Datetime, v @ Value::Datetime(_)) => v,
            (Ty::Datetime, Value::String(s)) => {
                parse_datetime(&s).map_or(Value::Null, Value::Datetime)
            }
            (Ty::Timespan, v @ Value::Timespan(_)) => v,
            _ => Value::Null,
        }
    }
}

/// Kusto comparison: `None` when either side is null or the values are incomparable (or NaN).
pub(super) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    match (&*a.scalar(), &*b.scalar()) {
        (Long(x), Long(y)) => Some(x.cmp(y)),
        (Long(x), Real(y)) => (*x as f64).partial_cmp(y),
        (Real(x), Long(y)) => x.partial_cmp(&(*y as f64)),
        (Real(x), Real(y)) => x.partial_cmp(y),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (String(x), String(y)) => Some(x.cmp(y)),
        (Datetime(x), Datetime(y)) => Some(x.cmp(y)),
        (Timespan(x), Timespan(y)) => Some(x.cmp(y)),
        (Dynamic(x), Dynamic(y)) => (x == y).then_some(Ordering::Equal),
        _ => None,
    }
}

fn real_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

/// `2026-12-04T10:00:00Z`, or with 1 to 7 fractional digits (100 ns ticks, trailing zeros dropped).
pub(super) fn format_datetime(d: &DateTime<Utc>) -> String {
    let base = d.format("%Y-%m-%dT%H:%M:%S");
    match d.timestamp_subsec_nanos() / 100 {
        0 => format!("{base}Z"),
        ticks => format!("{base}.{}Z", format!("{ticks:07}").trim_end_matches('0')),
    }
}

/// .NET's constant timespan format: `[-][d.]hh:mm:ss[.fffffff]`.
pub(super) fn format_timespan(t: TimeDelta) -> String {
    let sign = if t < TimeDelta::zero() { "-" } else { "" };
    let a = t.abs();
    let secs = a.num_seconds();
    let days = match secs / 86_400 {
        0 => String::new(),
        d => format!("{d}."),
    };
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let frac = match a.subsec_nanos() / 100 {
        0 => String::new(),
        ticks => format!(".{ticks:07}"),
    };
    format!("{sign}{days}{h:02}:{m:02}:{s:02}{frac}")
}

/// RFC 3339, or a zone-less `date[Thh:mm[:ss[.f]]]` / `date hh:mm[:ss[.f]]` taken as UTC.
pub(super) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// Kusto's epoch for datetime ticks and bins: 0001-01-01T00:00:00Z.
pub(super) fn tick_epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or_default()
}

pub(super) fn nanos(t: TimeDelta) -> i128 {
    i128::from(t.num_seconds()) * 1_000_000_000 + i128::from(t.subsec_nanos())
}

pub(super) fn from_nanos(n: i128) -> Option<TimeDelta> {
    let secs = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
    TimeDelta::new(secs, u32::try_from(n.rem_euclid(1_000_000_000)).ok()?)
}

/// An ISO 8601 duration: calendar months plus an exact part.
struct Duration {
    months: u32,
    exact: TimeDelta,
}

impl Duration {
    fn before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        t.checked_sub_months(Months::new(self.months))?
            .checked_sub_signed(self.exact)
    }
    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        t.checked_add_months(Months::new(self.months))?
            .checked_add_signed(self.exact)
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim().to_ascii_uppercase();
    let body = s.strip_prefix('P')?;
    let (date, time) = body.split_once('T').unwrap_or((body, ""));
    if body.is_empty() || body.ends_with('T') {
        return None;
    }
    let mut d = Duration {
        months: 0,
        exact: TimeDelta::zero(),
    };
    for (part, units) in [(date, "YMWD"), (time, "HMS")] {
        let mut num = String::new();
        let mut seen = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let idx = units.find(c).filter(|&i| i >= seen && !num.is_empty())?;
            seen = idx + 1;
            let n: f64 = num.parse().ok()?;
            num.clear();
            let secs = match (units, c) {
                ("YMWD", 'Y' | 'M') if n.fract() == 0.0 && n < 100_000.0 => {
                    d.months = d
                        .months
                        .checked_add(n as u32 * if c == 'Y' { 12 } else { 1 })?;
                    continue;
                }
                ("YMWD", 'W') => n * 604_800.0,
                ("YMWD", 'D') => n * 86_400.0,
                ("HMS", 'H') => n * 3600.0,
                ("HMS", 'M') => n * 60.0,
                ("HMS", 'S') => n,
                _ => return None,
            };
            let ns = secs * 1e9;
            if !ns.is_finite() || ns.abs() > 9e18 {
                return None;
            }
            d.exact = d
                .exact
                .checked_add(&TimeDelta::nanoseconds(ns.round() as i64))?;
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some(d)
}

pub(super) fn parse_timespan(s: &str, now: DateTime<Utc>) -> Option<TimeRange> {
    let s = s.trim();
    let (start, end) = match s.split_once('/') {
        None => (parse_duration(s)?.before(now)?, now),
        Some((a, b)) => match (parse_datetime(a), parse_datetime(b)) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, parse_duration(b)?.after(a)?),
            (None, Some(b)) => (parse_duration(a)?.before(b)?, b),
            (None, None) => return None,
        },
    };
    (start <= end).then_some(TimeRange { start, end })
}
