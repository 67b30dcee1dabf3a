//! The output request's state machine (issue 17 §3, HIC-IO2): every state, every step, which
//! party may take it and where it leads. The airlock's service asks [`OutStep::target`] and
//! [`OutStep::party`] before it writes anything.
//!
//! ```text
//!  draft ──submit──▶ submitted ──review (1st)──▶ partially_reviewed ──review (2nd)──▶ reviewed
//!    ▲                                                                                  │ decide
//!    │ (edit: add, exception)            ┌──── both approve ─────────────────────────────┤
//!    └──── returned ◀── a "changes" ─────┼──── a reject ──▶ rejected                     │
//!             │ submit                   ▼                                               │
//!             ▼                       approved ──release (custodian)──▶ released ◀───────┘
//!         submitted
//!  withdraw (the author): from draft, submitted, partially_reviewed, returned, approved
//! ```

use serde::Serialize;

/// Where an output request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutState {
    /// Being built by its author: tables and files added, checked at once.
    Draft,
    /// Waiting for two reviewers.
    Submitted,
    /// One reviewer has voted; the second cannot see that vote.
    PartiallyReviewed,
    /// Both have voted (the decision follows in the same transaction).
    Reviewed,
    /// Both approved; waiting for a custodian's release.
    Approved,
    /// Released: the package can be downloaded.
    Released,
    /// A reviewer asked for changes; back with the author.
    Returned,
    /// A reviewer rejected it.
    Rejected,
    /// Withdrawn by its author.
    Withdrawn,
}

impl OutState {
    /// Every state, in the order of the flow.
    pub const ALL: [OutState; 9] = [
        OutState::Draft,
        OutState::Submitted,
        OutState::PartiallyReviewed,
        OutState::Reviewed,
        OutState::Approved,
        OutState::Released,
        OutState::Returned,
        OutState::Rejected,
        OutState::Withdrawn,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutState::Draft => "draft",
            OutState::Submitted => "submitted",
            OutState::PartiallyReviewed => "partially_reviewed",
            OutState::Reviewed => "reviewed",
            OutState::Approved => "approved",
            OutState::Released => "released",
            OutState::Returned => "returned",
            OutState::Rejected => "rejected",
            OutState::Withdrawn => "withdrawn",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            OutState::Draft => "作成中",
            OutState::Submitted => "審査待ち",
            OutState::PartiallyReviewed => "審査中（1人目済み）",
            OutState::Reviewed => "審査済み",
            OutState::Approved => "承認（持ち出し待ち）",
            OutState::Released => "持ち出し済み",
            OutState::Returned => "修正依頼",
            OutState::Rejected => "不承認",
            OutState::Withdrawn => "取り下げ",
        }
    }

    /// The state with stored name `s`.
    pub fn parse(s: &str) -> Option<OutState> {
        OutState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether its author may still change it (add files, ask for an exception).
    pub fn is_editable(self) -> bool {
        matches!(self, OutState::Draft | OutState::Returned)
    }

    /// Whether it waits for a reviewer's vote.
    pub fn in_review(self) -> bool {
        matches!(self, OutState::Submitted | OutState::PartiallyReviewed)
    }
}

impl std::fmt::Display for OutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may take a step of an output request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutParty {
    /// The researcher who made the request (a member of its project).
    Author,
    /// An output reviewer (role `reviewer`) who is not a member of the project.
    Reviewer,
    /// A custodian (role `custodian`) who is not a member of the project.
    Custodian,
    /// Kura itself, as the consequence of the second vote.
    System,
}

impl OutParty {
    /// The Japanese name, for messages.
    pub fn label_ja(self) -> &'static str {
        match self {
            OutParty::Author => "依頼者",
            OutParty::Reviewer => "審査者（プロジェクト外）",
            OutParty::Custodian => "データ管理者（プロジェクト外）",
            OutParty::System => "システム",
        }
    }

    /// The English name, for messages.
    pub fn label_en(self) -> &'static str {
        match self {
            OutParty::Author => "the request's author",
            OutParty::Reviewer => "an output reviewer outside the project",
            OutParty::Custodian => "a custodian outside the project",
            OutParty::System => "Kura itself",
        }
    }
}

/// A step of an output request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutStep {
    /// A project member starts a request (it leaves no state).
    Create,
    /// The author adds a table (from a query) or a file.
    Add,
    /// The author asks for an exception for failing cells, with a reason (issue 22 §3).
    Exception,
    /// The author submits it for review.
    Submit,
    /// A reviewer votes (approve, changes, reject).
    Review,
    /// A reviewer confirms a file no Kura query produced, or approves the exception.
    Confirm,
    /// Kura decides once both have voted.
    Decide,
    /// A custodian releases it through the release gate.
    Release,
    /// The author withdraws it.
    Withdraw,
}

impl OutStep {
    /// Every step.
    pub const ALL: [OutStep; 9] = [
        OutStep::Create,
        OutStep::Add,
        OutStep::Exception,
        OutStep::Submit,
        OutStep::Review,
        OutStep::Confirm,
        OutStep::Decide,
        OutStep::Release,
        OutStep::Withdraw,
    ];

    /// The verb, as recorded in the ledger (`output.<verb>`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutStep::Create => "create",
            OutStep::Add => "add",
            OutStep::Exception => "exception",
            OutStep::Submit => "submit",
            OutStep::Review => "review",
            OutStep::Confirm => "confirm",
            OutStep::Decide => "decide",
            OutStep::Release => "release",
            OutStep::Withdraw => "withdraw",
        }
    }

    /// The Japanese name, for messages.
    pub fn label_ja(self) -> &'static str {
        match self {
            OutStep::Create => "作成",
            OutStep::Add => "ファイルの追加",
            OutStep::Exception => "例外の申請",
            OutStep::Submit => "提出",
            OutStep::Review => "審査",
            OutStep::Confirm => "確認",
            OutStep::Decide => "判定",
            OutStep::Release => "持ち出しの許可",
            OutStep::Withdraw => "取り下げ",
        }
    }

    /// The English verb phrase, for messages.
    pub fn label_en(self) -> &'static str {
        match self {
            OutStep::Create => "start an output request",
            OutStep::Add => "add to it",
            OutStep::Exception => "ask for an exception",
            OutStep::Submit => "submit it",
            OutStep::Review => "review it",
            OutStep::Confirm => "confirm a file or the exception",
            OutStep::Decide => "decide it",
            OutStep::Release => "release it",
            OutStep::Withdraw => "withdraw it",
        }
    }

    /// Who may take this step.
    pub fn party(self) -> OutParty {
        match self {
            OutStep::Create | OutStep::Add | OutStep::Exception | OutStep::Submit | OutStep::Withdraw => OutParty::Author,
            OutStep::Review | OutStep::Confirm => OutParty::Reviewer,
            OutStep::Decide => OutParty::System,
            OutStep::Release => OutParty::Custodian,
        }
    }

    /// Where this step leads from `from`, or `None` where it cannot be taken. The first
    /// review leads to [`OutState::PartiallyReviewed`], the second to [`OutState::Reviewed`];
    /// the decision to [`OutState::Approved`] (the service turns it into
    /// [`OutState::Returned`] or [`OutState::Rejected`] by the votes).
    pub fn target(self, from: OutState) -> Option<OutState> {
        use OutState as S;
        match (self, from) {
            (OutStep::Add | OutStep::Exception, S::Draft | S::Returned) => Some(from),
            (OutStep::Submit, S::Draft | S::Returned) => Some(S::Submitted),
            (OutStep::Review, S::Submitted) => Some(S::PartiallyReviewed),
            (OutStep::Review, S::PartiallyReviewed) => Some(S::Reviewed),
            (OutStep::Confirm, S::Submitted | S::PartiallyReviewed | S::Approved) => Some(from),
            (OutStep::Decide, S::Reviewed) => Some(S::Approved),
            (OutStep::Release, S::Approved) => Some(S::Released),
            (OutStep::Withdraw, S::Draft | S::Submitted | S::PartiallyReviewed | S::Returned | S::Approved) => Some(S::Withdrawn),
            _ => None,
        }
    }

    /// The steps a person could take from `state` (for messages).
    pub fn possible_from(state: OutState) -> Vec<OutStep> {
        OutStep::ALL.into_iter().filter(|s| *s != OutStep::Decide && s.target(state).is_some()).collect()
    }
}

impl std::fmt::Display for OutStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_final_states_have_no_way_out() {
        for s in OutState::ALL {
            assert_eq!(OutState::parse(s.as_str()), Some(s));
        }
        for s in [OutState::Released, OutState::Rejected, OutState::Withdrawn] {
            assert!(OutStep::ALL.iter().all(|step| step.target(s).is_none()), "{s} must be final");
        }
        for s in OutState::ALL.into_iter().filter(|s| !matches!(s, OutState::Released | OutState::Rejected | OutState::Withdrawn)) {
            assert!(OutStep::ALL.iter().any(|step| step.target(s).is_some_and(|t| t != s)), "{s} is a dead end");
        }
        // Released only from approved, approved only by the decision, which follows two votes.
        for s in OutState::ALL {
            assert_eq!(OutStep::Release.target(s).is_some(), s == OutState::Approved);
            assert_eq!(OutStep::Decide.target(s).is_some(), s == OutState::Reviewed);
        }
        assert_eq!(OutStep::Review.target(OutState::Submitted), Some(OutState::PartiallyReviewed));
        assert_eq!(OutStep::Review.target(OutState::PartiallyReviewed), Some(OutState::Reviewed));
        assert_eq!(OutStep::Release.party(), OutParty::Custodian);
        assert_eq!(OutStep::Review.party(), OutParty::Reviewer);
        // Nothing changes a request once it is under review but the reviewers and a withdrawal.
        for step in [OutStep::Add, OutStep::Exception, OutStep::Submit] {
            assert!(step.target(OutState::Submitted).is_none() && step.target(OutState::Approved).is_none());
        }
    }
}
