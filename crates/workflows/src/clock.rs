//! The service clock of an application (HIC-P1): how long it has been with the platform, and
//! the review round its submission falls into. Pure functions of the recorded events, so that
//! they can be checked on fixed dates.

use crate::state::AppState;
use serde::Serialize;
use time::{Date, Month, OffsetDateTime, UtcOffset};

/// Japan Standard Time: application deadlines are dates in Japan.
const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// One recorded change of state: when, and the state entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Unix seconds.
    pub at: i64,
    /// The state entered at that moment.
    pub state: AppState,
}

/// An application's clock at a moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClockReading {
    /// Seconds the application has been with the platform since its first submission, pauses
    /// (with the applicant) left out.
    pub running_secs: i64,
    /// The same in days (one decimal is meaningful).
    pub days: f64,
    /// Whether the clock is running now.
    pub running: bool,
    /// The service target in days.
    pub target_days: u32,
    /// Whether the clock is running (the application is with the platform) and past the target.
    pub overdue: bool,
    /// Submission to provisioning, for a provisioned application (seconds, pauses left out).
    pub provisioned_after_secs: Option<i64>,
}

/// Reads the clock from the marks (in time order) at `now`.
pub fn read(marks: &[Mark], now: i64, target_days: u32) -> ClockReading {
    let mut running_secs = 0i64;
    for (i, m) in marks.iter().enumerate() {
        let until = marks.get(i + 1).map_or(now, |next| next.at);
        if m.state.clock_runs() {
            running_secs = running_secs.saturating_add(until.saturating_sub(m.at).max(0));
        }
    }
    let state = marks.last().map_or(AppState::Draft, |m| m.state);
    let days = running_secs as f64 / 86_400.0;
    ClockReading {
        running_secs,
        days: (days * 10.0).floor() / 10.0,
        running: state.clock_runs(),
        target_days,
        overdue: state.clock_runs() && running_secs > i64::from(target_days) * 86_400,
        provisioned_after_secs: (state == AppState::Provisioned).then_some(running_secs),
    }
}

/// The review round of a submission at `at`: the first deadline on or after that day in
/// Japan. `deadline_days` are days of the month (1–31; a day past the month's end means its
/// last day); one day is a monthly deadline, more days make rounds more often.
pub fn round(deadline_days: &[u8], at: i64) -> Option<Date> {
    let day = OffsetDateTime::from_unix_timestamp(at).ok()?.to_offset(JST).date();
    let mut month_start = Date::from_calendar_date(day.year(), day.month(), 1).ok()?;
    // The deadline falls in this month or the next.
    for _ in 0..2 {
        let last = month_start.month().length(month_start.year());
        let mut candidates: Vec<Date> = deadline_days
            .iter()
            .filter(|d| **d >= 1)
            .filter_map(|d| Date::from_calendar_date(month_start.year(), month_start.month(), (*d).min(last)).ok())
            .filter(|d| *d >= day)
            .collect();
        candidates.sort();
        if let Some(first) = candidates.first() {
            return Some(*first);
        }
        month_start = next_month(month_start)?;
    }
    None
}

fn next_month(d: Date) -> Option<Date> {
    match d.month() {
        Month::December => Date::from_calendar_date(d.year() + 1, Month::January, 1).ok(),
        m => Date::from_calendar_date(d.year(), m.next(), 1).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppState as S;

    const DAY: i64 = 86_400;
    /// 2026-12-01T00:00:00Z.
    const T0: i64 = 1_796_083_200;

    fn mark(day: f64, state: AppState) -> Mark {
        Mark { at: T0 + (day * DAY as f64) as i64, state }
    }

    #[test]
    fn the_clock_pauses_with_the_applicant_and_stops_at_provisioning() {
        // Submitted on day 0, returned on day 2, resubmitted on day 5, to the committee on day 6,
        // approved on day 8 (waiting for the agreement until day 10), provisioned at once.
        let marks = [
            mark(-3.0, S::Draft),
            mark(0.0, S::Submitted),
            mark(2.0, S::Returned),
            mark(5.0, S::Submitted),
            mark(6.0, S::CommitteeReview),
            mark(8.0, S::Approved),
            mark(10.0, S::AgreementAccepted),
            mark(10.0, S::Provisioned),
        ];
        let r = read(&marks, T0 + 30 * DAY, 7);
        assert_eq!(r.running_secs, 5 * DAY, "2 days before the return + 3 days after it");
        assert_eq!(r.provisioned_after_secs, Some(5 * DAY));
        assert!(!r.running && !r.overdue);
        // The same application read on day 4 (returned): 2 days, paused.
        let r = read(&marks[..3], T0 + 4 * DAY, 7);
        assert_eq!((r.running_secs, r.running), (2 * DAY, false));
        // Read on day 13 had it still been in committee: 2 + 8 = 10 days, overdue.
        let r = read(&marks[..5], T0 + 13 * DAY, 7);
        assert_eq!((r.running_secs, r.running, r.overdue, r.days), (10 * DAY, true, true, 10.0));
        // A draft has no clock.
        assert_eq!(read(&marks[..1], T0 + 13 * DAY, 7).running_secs, 0);
    }

    #[test]
    fn rounds_close_on_the_deadline_days_in_japan() {
        let date = |y, m: u8, d| Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap();
        // 2026-12-01T00:00Z is 09:00 on 1 December in Japan: the 10 December round.
        assert_eq!(round(&[10], T0), Some(date(2026, 12, 10)));
        // 2026-12-10T15:00Z is already 11 December in Japan: the January round.
        assert_eq!(round(&[10], T0 + 9 * DAY + 15 * 3600), Some(date(2027, 1, 10)));
        // On the deadline day itself, that round.
        assert_eq!(round(&[10], T0 + 9 * DAY), Some(date(2026, 12, 10)));
        // Twice a month, and a 31st that February does not have.
        assert_eq!(round(&[25, 10], T0 + 11 * DAY), Some(date(2026, 12, 25)));
        let feb = T0 + 62 * DAY; // 2027-02-01
        assert_eq!(round(&[31], feb), Some(date(2027, 2, 28)));
        assert_eq!(round(&[], feb), None);
    }
}
