//! The research section of a home's configuration (`kura.toml [research]`), with its defaults
//! here and nowhere else.

use serde::{Deserialize, Serialize};

/// Rules of the application flow (HIC-P1, WG-6).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchConfig {
    /// Committee votes needed before a custodian may decide.
    pub committee_size: u32,
    /// The service target from submission to provisioning, in days (pauses left out).
    pub service_target_days: u32,
    /// Application deadlines: days of the month (Japan time) on which a review round closes;
    /// one day is a monthly deadline, more days make rounds more often.
    pub deadline_days: Vec<u8>,
    /// Period of use when an application does not say (days).
    pub default_period_days: u32,
    /// The longest period of use that may be asked for (days).
    pub max_period_days: u32,
    /// The largest attachment (the protocol PDF) an application may carry, in MiB.
    pub attachment_max_mb: u32,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        Self {
            committee_size: 2,
            service_target_days: 7,
            deadline_days: vec![10],
            default_period_days: 365,
            max_period_days: 3 * 365,
            attachment_max_mb: 10,
        }
    }
}

impl ResearchConfig {
    /// Checks the values, naming the setting that is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.committee_size == 0 {
            return Err("committee_size は 1 以上にしてください / committee_size must be at least 1".into());
        }
        if self.deadline_days.is_empty() || self.deadline_days.iter().any(|d| !(1..=31).contains(d)) {
            return Err("deadline_days には 1〜31 の日付を一つ以上 / deadline_days must list days of the month between 1 and 31".into());
        }
        if self.default_period_days == 0 || self.default_period_days > self.max_period_days {
            return Err("default_period_days は 1〜max_period_days / default_period_days must be between 1 and max_period_days".into());
        }
        if !(1..=100).contains(&self.attachment_max_mb) {
            return Err("attachment_max_mb は 1〜100 / attachment_max_mb must be between 1 and 100".into());
        }
        Ok(())
    }
}
