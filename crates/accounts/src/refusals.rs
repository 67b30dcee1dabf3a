//! Refusals that anyone with a certificate can cause at will (a failed CSRF check, a route their
//! role may not use, a sign-in with an unknown login or on a locked account) are recorded in
//! the audit ledger without letting them flood it (HIC-S5, HIC-S9): the first of a kind is
//! written at once; repeats of the same kind by the same certificate within a window are
//! counted, and one summary entry says how many there were when the window closes.
//!
//! A kind is (action, object, certificate, user). Objects are route patterns and validated
//! logins, never text a client chose freely, so the number of kinds is bounded by what exists;
//! past [`MAX_KINDS`] further kinds share one overflow kind until the window closes.

use std::collections::HashMap;

/// Kinds tracked at once; beyond, refusals are counted under one overflow kind.
pub const MAX_KINDS: usize = 4096;

/// What a refusal is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kind {
    /// The audit action (`access.csrf`, `access.denied`, `auth.password`, …).
    pub action: String,
    /// Its object (a route pattern, a login).
    pub object: String,
    /// The client certificate (`sha256:…`).
    pub cert: String,
    /// The signed-in user, if any.
    pub user: String,
}

impl Kind {
    fn overflow() -> Kind {
        Kind { action: "access.refused".into(), object: "*".into(), cert: String::new(), user: String::new() }
    }
}

struct Window {
    opened: i64,
    repeats: u64,
}

/// The counting state (no I/O: the accounts service writes what it is told to).
#[derive(Default)]
pub struct Refusals {
    windows: HashMap<Kind, Window>,
}

/// A summary to write: `repeats` more refusals of `kind` since `since`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The kind.
    pub kind: Kind,
    /// Refusals not written one by one.
    pub repeats: u64,
    /// When the window opened (Unix seconds).
    pub since: i64,
}

impl Refusals {
    /// Notes one refusal at `now`; returns the kind to write at once (the first in its window),
    /// or `None` when it was only counted. A window older than `window_secs` is closed first
    /// and its summary returned.
    pub fn note(&mut self, kind: Kind, now: i64, window_secs: i64) -> (Option<Kind>, Option<Summary>) {
        let kind = if self.windows.contains_key(&kind) || self.windows.len() < MAX_KINDS { kind } else { Kind::overflow() };
        let mut closed = None;
        if self.windows.get(&kind).is_some_and(|w| now - w.opened >= window_secs)
            && let Some(w) = self.windows.remove(&kind)
            && w.repeats > 0
        {
            closed = Some(Summary { kind: kind.clone(), repeats: w.repeats, since: w.opened });
        }
        match self.windows.get_mut(&kind) {
            Some(w) => {
                w.repeats += 1;
                (None, closed)
            }
            None => {
                self.windows.insert(kind.clone(), Window { opened: now, repeats: 0 });
                (Some(kind), closed)
            }
        }
    }

    /// Closes the windows older than `window_secs` (all of them with `window_secs` = 0) and
    /// returns the summaries of those that counted repeats.
    pub fn close_due(&mut self, now: i64, window_secs: i64) -> Vec<Summary> {
        let due: Vec<Kind> = self.windows.iter().filter(|(_, w)| now - w.opened >= window_secs).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        for k in due {
            if let Some(w) = self.windows.remove(&k)
                && w.repeats > 0
            {
                out.push(Summary { kind: k, repeats: w.repeats, since: w.opened });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(object: &str) -> Kind {
        Kind { action: "access.csrf".into(), object: object.into(), cert: "sha256:aa".into(), user: String::new() }
    }

    #[test]
    fn first_written_repeats_counted_then_summarised() {
        let mut r = Refusals::default();
        assert_eq!(r.note(kind("/login"), 100, 60), (Some(kind("/login")), None));
        for t in 101..200 {
            let (write, closed) = r.note(kind("/login"), t.min(159), 60);
            assert!(write.is_none() && closed.is_none());
        }
        // The window closes: its summary comes with the next refusal, which opens a new one.
        let (write, closed) = r.note(kind("/login"), 160, 60);
        assert_eq!(write, Some(kind("/login")));
        assert_eq!(closed, Some(Summary { kind: kind("/login"), repeats: 99, since: 100 }));
        assert!(r.close_due(161, 60).is_empty(), "the new window is young and has no repeats");
        r.note(kind("/login"), 170, 60);
        assert_eq!(r.close_due(170, 0), vec![Summary { kind: kind("/login"), repeats: 1, since: 160 }]);
    }

    #[test]
    fn kinds_are_bounded() {
        let mut r = Refusals::default();
        let mut written = 0;
        for i in 0..(MAX_KINDS + 500) {
            if r.note(kind(&format!("/p{i}")), 1, 60).0.is_some() {
                written += 1;
            }
        }
        assert_eq!(written, MAX_KINDS + 1, "the tracked kinds and one overflow kind");
        let s = r.close_due(61, 60);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, Kind::overflow());
        assert_eq!(s[0].repeats, 499);
    }
}
