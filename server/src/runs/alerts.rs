//! Changing an alert's state (acknowledge, close, reopen) is an action like any other: a run, with the
//! comment as its reason.

use super::{internal, Runs};
use crate::db::runs as q;
use app::cost::{AlertStateChange, AlertView, ALERT_STATES};
use app::error::AppError;
use serde_json::json;
use uuid::Uuid;

pub const ALERT_STATE: &str = "alert-state";

/// The state as Azure spells it, or the reason it is refused.
pub fn checked_state(change: &AlertStateChange) -> Result<&'static str, AppError> {
    if change.comment.len() > 2000 {
        return Err(AppError::Invalid("comment: at most 2000 characters".into()));
    }
    ALERT_STATES
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(change.state.trim()))
        .ok_or_else(|| {
            AppError::Invalid(format!(
                "state: '{}' is not one of {}",
                change.state,
                ALERT_STATES.join(", ")
            ))
        })
}

impl Runs {
    /// Sets `alert`'s state in Azure with the comment, as a run that ends with Azure's answer.
    pub async fn change_alert_state(
        &self,
        alert: &AlertView,
        change: &AlertStateChange,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let state = checked_state(change)?;
        let parameters = json!({"alert": alert.id, "name": alert.name, "target": alert.target, "from": alert.state, "state": state});
        let comment = Some(change.comment.trim()).filter(|c| !c.is_empty());
        let (id, new) = self
            .new_run(
                ALERT_STATE,
                &format!("{}/{}", alert.name, alert.id),
                &parameters,
                comment,
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        q::log(
            &self.db,
            id,
            &format!("{} → {state}: {}", alert.state, alert.name),
        )
        .await
        .map_err(internal)?;
        let result = self
            .client
            .change_alert_state(&alert.azure_id, state, change.comment.trim())
            .await
            .map(|v| {
                let now = v["properties"]["essentials"]["alertState"]
                    .as_str()
                    .unwrap_or(state)
                    .to_string();
                (alert.azure_id.clone(), format!("Alert is now {now}"))
            });
        self.finish_now(id, result, "Azure refused the state change")
            .await?;
        Ok((id, true))
    }
}
