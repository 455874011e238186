//! Fault injection over HTTP (`/_emulator/faults`): for a path pattern, answer 429 with `Retry-After`,
//! 500/503, or add latency — N times or with a probability — until cleared.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Path pattern; `*` matches any run of characters (e.g. `/subscriptions/*/resources`).
    pub path: String,
    /// Only this method (GET, POST, …); any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Answer with this status (429, 500, 503, …) instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with the status (429 and 503 default to 1).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Apply this many times, then stop; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// Chance (0..=1) that a matching request is affected.
    #[serde(default)]
    pub probability: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// How many more times it applies (absent: forever).
    pub remaining: Option<u32>,
    /// How many requests it has affected.
    pub hits: u64,
}

/// What a matching fault does to one request.
#[derive(Debug, Default, PartialEq)]
pub struct Effect {
    pub latency: Option<Duration>,
    pub status: Option<(u16, Option<u64>)>,
}

#[derive(Default)]
pub struct Faults {
    inner: Mutex<(u64, Vec<Fault>)>,
}

impl FaultSpec {
    pub fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') && self.path != "*" {
            return Err("path must start with '/' (or be '*')".into());
        }
        if self.status.is_none() && self.latency_ms.is_none() {
            return Err("give a status, a latency_ms, or both".into());
        }
        if let Some(s) = self.status {
            if !(400..=599).contains(&s) {
                return Err(format!("status {s} is not an error status (400-599)"));
            }
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err("probability must be between 0 and 1".into());
            }
        }
        if self.latency_ms.is_some_and(|l| l > 120_000) {
            return Err("latency_ms is at most 120000".into());
        }
        Ok(())
    }
}

/// `*` matches any run of characters, everything else literally; ARM paths compare case-insensitively.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.to_ascii_lowercase(), path.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == s;
    }
    let mut rest = s.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) -> Fault {
        let mut inner = self.inner.lock().expect("faults lock");
        inner.0 += 1;
        let fault = Fault {
            id: inner.0,
            remaining: spec.times,
            spec,
            hits: 0,
        };
        inner.1.push(fault.clone());
        fault
    }

    pub fn list(&self) -> Vec<Fault> {
        self.inner.lock().expect("faults lock").1.clone()
    }

    pub fn clear(&self) {
        self.inner.lock().expect("faults lock").1.clear();
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().expect("faults lock");
        let before = inner.1.len();
        inner.1.retain(|f| f.id != id);
        inner.1.len() != before
    }

    /// The first live fault matching the request decides; a used-up fault is dropped.
    pub fn check(&self, method: &str, path: &str) -> Effect {
        let mut inner = self.inner.lock().expect("faults lock");
        let mut effect = Effect::default();
        let mut rng = rand::thread_rng();
        let mut used_up = None;
        for fault in inner.1.iter_mut() {
            let s = &fault.spec;
            if !glob_match(&s.path, path)
                || s.method
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(method))
                || s.probability.is_some_and(|p| rng.gen::<f64>() >= p)
            {
                continue;
            }
            effect.latency = s.latency_ms.map(Duration::from_millis);
            effect.status = s.status.map(|code| {
                let default_after = matches!(code, 429 | 503).then_some(1);
                (code, s.retry_after.or(default_after))
            });
            fault.hits += 1;
            if let Some(n) = fault.remaining.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    used_up = Some(fault.id);
                }
            }
            break;
        }
        if let Some(id) = used_up {
            inner.1.retain(|f| f.id != id);
        }
        effect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> FaultSpec {
        FaultSpec {
            path: path.into(),
            method: None,
            status: Some(429),
            retry_after: None,
            latency_ms: None,
            times: Some(2),
            probability: None,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "/subscriptions/*/resources",
            "/subscriptions/s/resourceGroups/rg/resources"
        ));
        assert!(glob_match("*", "/anything"));
        assert!(glob_match("/a", "/A"));
        assert!(!glob_match(
            "/subscriptions/*/resources",
            "/subscriptions/s/other"
        ));
        assert!(glob_match("/x/*/y/*", "/x/1/y/2"));
    }

    #[test]
    fn applies_n_times_then_clears() {
        let f = Faults::default();
        f.add(spec("/subscriptions/*"));
        assert_eq!(
            f.check("GET", "/subscriptions/s").status,
            Some((429, Some(1)))
        );
        assert_eq!(
            f.check("GET", "/subscriptions/s").status,
            Some((429, Some(1)))
        );
        assert_eq!(f.check("GET", "/subscriptions/s"), Effect::default());
        assert!(f.list().is_empty());
    }

    #[test]
    fn probability_zero_never_fires_and_method_filters() {
        let f = Faults::default();
        f.add(FaultSpec {
            probability: Some(0.0),
            times: None,
            ..spec("*")
        });
        f.add(FaultSpec {
            method: Some("POST".into()),
            times: None,
            ..spec("*")
        });
        assert_eq!(f.check("GET", "/x"), Effect::default());
        assert!(f.check("POST", "/x").status.is_some());
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(FaultSpec {
            status: Some(200),
            ..spec("/x")
        }
        .validate()
        .is_err());
        assert!(FaultSpec {
            status: None,
            ..spec("/x")
        }
        .validate()
        .is_err());
        assert!(FaultSpec {
            probability: Some(2.0),
            ..spec("/x")
        }
        .validate()
        .is_err());
        assert!(spec("/x").validate().is_ok());
    }
}
