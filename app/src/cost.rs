//! Cost and alerts as the pages and the API show them, and the forecast arithmetic.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Spend by one resource or service this month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub name: String,
    /// The resource id (by resource) or empty (by service).
    pub id: String,
    /// The resource type or service name beside it.
    pub detail: String,
    pub amount: f64,
}

/// A budget notification and whether spend (or the forecast) is past it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub percent: f64,
    pub amount: f64,
    pub crossed: bool,
    pub forecast_crosses: bool,
    pub contacts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub amount: f64,
    pub daily_average: f64,
    pub complete_days: u32,
    pub days_in_month: u32,
    /// How it was worked out, in words.
    pub method: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonthCost {
    /// `2026-11`.
    pub month: String,
    pub amount: f64,
    pub percent_of_budget: f64,
}

/// `GET /api/v1/cost`: month to date against the budget, the forecast, the breakdowns, past months.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostView {
    pub as_of: DateTime<Utc>,
    /// Why the last refresh failed, when the data shown is older than it should be.
    pub stale_reason: Option<String>,
    pub currency: String,
    pub budget_name: String,
    pub budget: f64,
    pub month_to_date: f64,
    pub forecast: Forecast,
    pub daily: Vec<(NaiveDate, f64)>,
    pub by_resource: Vec<Breakdown>,
    pub by_service: Vec<Breakdown>,
    pub thresholds: Vec<Threshold>,
    pub months: Vec<MonthCost>,
}

impl CostView {
    pub fn percent_used(&self) -> f64 {
        if self.budget > 0.0 {
            self.month_to_date / self.budget * 100.0
        } else {
            0.0
        }
    }
}

/// What the overview shows: spend against the budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostSummary {
    pub as_of: DateTime<Utc>,
    pub month_to_date: f64,
    pub budget: f64,
    pub forecast: f64,
    pub currency: String,
}

pub fn days_in_month(d: NaiveDate) -> u32 {
    let (y, m) = (d.year(), d.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
        .map(|last| last.day())
        .unwrap_or(30)
}

/// A linear forecast to month end from this month's daily costs: the complete days' average, times
/// the days left (today counted whole), plus what the complete days cost. On the first of the month,
/// today's partial cost scaled to a whole day stands in for the average.
pub fn forecast(daily: &[(NaiveDate, f64)], today: NaiveDate, day_fraction: f64) -> Forecast {
    let total_days = days_in_month(today);
    let this_month = |d: &NaiveDate| d.year() == today.year() && d.month() == today.month();
    let complete: Vec<f64> = daily
        .iter()
        .filter(|(d, _)| this_month(d) && *d < today)
        .map(|(_, c)| *c)
        .collect();
    let spent: f64 = complete.iter().sum();
    let n = complete.len() as u32;
    let (average, method) = if n > 0 {
        let avg = spent / n as f64;
        (
            avg,
            format!(
                "Linear: the {n} complete day{} so far averaged ${avg:.2}; that rate for the {} remaining day{} (today included) is added to what they cost.",
                if n == 1 { "" } else { "s" },
                total_days - n,
                if total_days - n == 1 { "" } else { "s" }
            ),
        )
    } else {
        let today_cost: f64 = daily
            .iter()
            .filter(|(d, _)| *d == today)
            .map(|(_, c)| c)
            .sum();
        let avg = today_cost / day_fraction.clamp(0.01, 1.0);
        (
            avg,
            format!("Linear: today's cost so far, scaled to a whole day (${avg:.2}), for each of the {total_days} days of the month."),
        )
    };
    Forecast {
        amount: spent + average * (total_days - n) as f64,
        daily_average: average,
        complete_days: n,
        days_in_month: total_days,
        method,
    }
}

/// A fired alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// The alert's GUID (the last segment of its id).
    pub id: String,
    pub azure_id: String,
    pub name: String,
    pub severity: String,
    pub state: String,
    pub condition: String,
    pub target: String,
    pub target_type: String,
    pub rule: String,
    pub since: Option<DateTime<Utc>>,
    pub description: String,
    pub last_modified_by: String,
    /// From the underutilization rule: the runbook is its remedy.
    pub underutilization: bool,
}

impl AlertView {
    pub fn is_open(&self) -> bool {
        self.state != "Closed" && self.condition == "Fired"
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleView {
    pub name: String,
    pub description: String,
    pub severity: i64,
    pub enabled: bool,
    pub query: String,
    pub condition: String,
    pub frequency: String,
    pub window: String,
    pub action_groups: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionGroupView {
    pub name: String,
    pub short_name: String,
    pub enabled: bool,
    pub emails: Vec<String>,
    pub runbooks: Vec<String>,
}

/// `GET /api/v1/alerts` and the alerts page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    pub alerts: Vec<AlertView>,
    pub rules: Vec<RuleView>,
    pub action_groups: Vec<ActionGroupView>,
    pub runbook: String,
}

/// Open alerts by severity, for the overview.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertCounts {
    /// `(Sev0, n)` … in severity order, only those with open alerts.
    pub open: Vec<(String, usize)>,
    pub as_of: Option<DateTime<Utc>>,
}

/// The states an alert can be set to.
pub const ALERT_STATES: [&str; 3] = ["New", "Acknowledged", "Closed"];

/// `POST /api/v1/alerts/{id}/state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertStateChange {
    pub state: String,
    #[serde(default)]
    pub comment: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_forecast_extends_the_complete_days_average_to_month_end() {
        let daily = vec![
            (d("2026-11-30"), 99.0),
            (d("2026-12-01"), 2.0),
            (d("2026-12-02"), 3.0),
            (d("2026-12-03"), 4.0),
            (d("2026-12-04"), 1.0),
        ];
        let f = forecast(&daily, d("2026-12-04"), 0.5);
        assert_eq!((f.complete_days, f.days_in_month), (3, 31));
        assert!((f.daily_average - 3.0).abs() < 1e-9);
        // 9 spent in three days, then 28 more days at 3 a day.
        assert!((f.amount - (9.0 + 28.0 * 3.0)).abs() < 1e-9, "{f:?}");
        assert!(f.method.contains("3 complete days") && f.method.contains("$3.00"));
    }

    #[test]
    fn on_the_first_today_is_scaled_to_a_day() {
        let f = forecast(&[(d("2027-02-01"), 0.5)], d("2027-02-01"), 0.25);
        assert_eq!((f.complete_days, f.days_in_month), (0, 28));
        assert!((f.amount - 2.0 * 28.0).abs() < 1e-9, "{f:?}");
        assert_eq!(days_in_month(d("2028-02-10")), 29);
        assert_eq!(days_in_month(d("2026-12-31")), 31);
    }
}
