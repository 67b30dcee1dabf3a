//! The application's state machine (WG-6, HIC-P1): every state, every step, which party may
//! take a step and where it leads. Nothing else in Kura decides a transition; the service
//! ([`crate::Research`]) asks [`Step::target`] and [`Step::party`] before it writes anything.
//!
//! ```text
//!  draft ──submit──▶ submitted ──check: accept──▶ committee_review ──decide: approve──▶ approved ─┐
//!    ▲                  │                          │  ▲ vote (each reviewer once)      (or approved │
//!    │                  │ check: return            │  │                                with       │
//!    └──── returned ◀───┴──────── decide: return ──┘  └─ decide: reject ─▶ rejected    conditions)│
//!            │ submit                                                                             │
//!            ▼                                                       provisioned ◀─ agreement ◀───┘
//!        submitted                                                                  accepted
//!  withdraw: from every state before provisioned except rejected ─▶ withdrawn
//! ```

use serde::Serialize;

/// Where an application is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// Being written by the applicant; nobody else sees it.
    Draft,
    /// Filed; waiting for the custodian's intake check (completeness, ethics approval).
    Submitted,
    /// Passed the intake check; the committee is voting.
    CommitteeReview,
    /// Approved as requested; waiting for the applicant to accept the agreement.
    Approved,
    /// Approved with fewer columns than requested or with conditions; waiting for the agreement.
    ApprovedWithConditions,
    /// Sent back to the applicant for changes; the clock is paused.
    Returned,
    /// Refused for good.
    Rejected,
    /// The applicant accepted the agreement (利用規約・誓約); provisioning follows at once.
    AgreementAccepted,
    /// A project and its workspace exist.
    Provisioned,
    /// Withdrawn by the applicant.
    Withdrawn,
}

impl AppState {
    /// Every state, in the order of the flow.
    pub const ALL: [AppState; 10] = [
        AppState::Draft,
        AppState::Submitted,
        AppState::CommitteeReview,
        AppState::Approved,
        AppState::ApprovedWithConditions,
        AppState::Returned,
        AppState::Rejected,
        AppState::AgreementAccepted,
        AppState::Provisioned,
        AppState::Withdrawn,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Draft => "draft",
            AppState::Submitted => "submitted",
            AppState::CommitteeReview => "committee_review",
            AppState::Approved => "approved",
            AppState::ApprovedWithConditions => "approved_with_conditions",
            AppState::Returned => "returned",
            AppState::Rejected => "rejected",
            AppState::AgreementAccepted => "agreement_accepted",
            AppState::Provisioned => "provisioned",
            AppState::Withdrawn => "withdrawn",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            AppState::Draft => "下書き",
            AppState::Submitted => "受付（形式審査待ち）",
            AppState::CommitteeReview => "審査会で審査中",
            AppState::Approved => "承認",
            AppState::ApprovedWithConditions => "条件付き承認",
            AppState::Returned => "差し戻し",
            AppState::Rejected => "不承認",
            AppState::AgreementAccepted => "利用規約に同意済み",
            AppState::Provisioned => "提供済み",
            AppState::Withdrawn => "取り下げ",
        }
    }

    /// The state with stored name `s`.
    pub fn parse(s: &str) -> Option<AppState> {
        AppState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether the application still waits for someone (not provisioned, rejected or withdrawn).
    pub fn is_open(self) -> bool {
        !matches!(self, AppState::Provisioned | AppState::Rejected | AppState::Withdrawn)
    }

    /// Whether the service clock runs in this state (HIC-P1): it runs while the application is
    /// with the platform (intake check, committee, provisioning) and is paused while it is with
    /// the applicant (a draft, returned for changes, an approval waiting for the agreement).
    pub fn clock_runs(self) -> bool {
        matches!(self, AppState::Submitted | AppState::CommitteeReview | AppState::AgreementAccepted)
    }
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may take a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The researcher who filed the application (the principal investigator).
    Applicant,
    /// A data custodian (role `custodian`) outside the applying team.
    Custodian,
    /// A committee member (role `reviewer`) outside the applying team.
    Reviewer,
    /// A co-investigator the application names (not the applicant).
    Member,
    /// Kura itself, as the consequence of another step (provisioning after the agreement).
    System,
}

impl Party {
    /// The Japanese name, for messages.
    pub fn label_ja(self) -> &'static str {
        match self {
            Party::Applicant => "申請者",
            Party::Custodian => "データ管理者",
            Party::Reviewer => "審査委員",
            Party::Member => "共同研究者",
            Party::System => "システム",
        }
    }

    /// The English name, for messages.
    pub fn label_en(self) -> &'static str {
        match self {
            Party::Applicant => "the applicant",
            Party::Custodian => "a custodian",
            Party::Reviewer => "a committee reviewer",
            Party::Member => "a co-investigator it names",
            Party::System => "Kura itself",
        }
    }
}

/// A step of the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A researcher files a new draft (the application's first step; it leaves no state).
    Create,
    /// The applicant changes the content of a draft or of a returned application.
    Edit,
    /// The applicant files it (again, after a return).
    Submit,
    /// The custodian's intake check passes it to the committee.
    PassCheck,
    /// The custodian sends it back for changes (at the intake check or after the committee).
    Return,
    /// A committee member votes (the state stays).
    Vote,
    /// The custodian approves it, possibly with fewer columns or with conditions.
    Approve,
    /// The custodian refuses it.
    Reject,
    /// The applicant accepts the agreement.
    AcceptAgreement,
    /// Kura creates the project and its workspace.
    Provision,
    /// The applicant withdraws it.
    Withdraw,
    /// A co-investigator confirms being a member (the state stays). Nobody is on a team —
    /// and so, by the conflict-of-interest rule, keeps a reviewer of their institution out —
    /// without saying so; an application is submitted only once every member has.
    Join,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 12] = [
        Step::Create,
        Step::Edit,
        Step::Submit,
        Step::PassCheck,
        Step::Return,
        Step::Vote,
        Step::Approve,
        Step::Reject,
        Step::AcceptAgreement,
        Step::Provision,
        Step::Withdraw,
        Step::Join,
    ];

    /// The verb, as recorded in the ledger (`application.<verb>`) and the event history.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Edit => "edit",
            Step::Submit => "submit",
            Step::PassCheck => "check_accept",
            Step::Return => "return",
            Step::Vote => "vote",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::AcceptAgreement => "accept_agreement",
            Step::Provision => "provision",
            Step::Withdraw => "withdraw",
            Step::Join => "join",
        }
    }

    /// The Japanese name, for messages.
    pub fn label_ja(self) -> &'static str {
        match self {
            Step::Create => "作成",
            Step::Edit => "編集",
            Step::Submit => "提出",
            Step::PassCheck => "形式審査の受理",
            Step::Return => "差し戻し",
            Step::Vote => "投票",
            Step::Approve => "承認",
            Step::Reject => "不承認",
            Step::AcceptAgreement => "利用規約への同意",
            Step::Provision => "提供（プロジェクト作成）",
            Step::Withdraw => "取り下げ",
            Step::Join => "メンバーとしての参加確認",
        }
    }

    /// The English verb phrase, for messages.
    pub fn label_en(self) -> &'static str {
        match self {
            Step::Create => "create an application",
            Step::Edit => "edit it",
            Step::Submit => "submit it",
            Step::PassCheck => "pass it to the committee",
            Step::Return => "return it for changes",
            Step::Vote => "vote on it",
            Step::Approve => "approve it",
            Step::Reject => "reject it",
            Step::AcceptAgreement => "accept the agreement",
            Step::Provision => "provision it",
            Step::Withdraw => "withdraw it",
            Step::Join => "confirm being a member",
        }
    }

    /// The steps that can be taken from `state` (for messages that say what is possible).
    pub fn possible_from(state: AppState) -> Vec<Step> {
        Step::ALL.into_iter().filter(|s| s.target(state).is_some() && *s != Step::Provision).collect()
    }

    /// Who may take this step.
    pub fn party(self) -> Party {
        match self {
            Step::Create | Step::Edit | Step::Submit | Step::AcceptAgreement | Step::Withdraw => Party::Applicant,
            Step::PassCheck | Step::Return | Step::Approve | Step::Reject => Party::Custodian,
            Step::Vote => Party::Reviewer,
            Step::Provision => Party::System,
            Step::Join => Party::Member,
        }
    }

    /// Where this step leads from `from`, or `None` if it cannot be taken there (creation
    /// starts an application and is taken from no state). Approval
    /// leads to [`AppState::Approved`]; the service turns it into
    /// [`AppState::ApprovedWithConditions`] when fewer columns are approved than requested or
    /// conditions are set.
    pub fn target(self, from: AppState) -> Option<AppState> {
        use AppState as S;
        match (self, from) {
            (Step::Edit | Step::Join, S::Draft | S::Returned) => Some(from),
            (Step::Submit, S::Draft | S::Returned) => Some(S::Submitted),
            (Step::PassCheck, S::Submitted) => Some(S::CommitteeReview),
            (Step::Return, S::Submitted | S::CommitteeReview) => Some(S::Returned),
            (Step::Vote, S::CommitteeReview) => Some(S::CommitteeReview),
            (Step::Approve, S::CommitteeReview) => Some(S::Approved),
            (Step::Reject, S::CommitteeReview) => Some(S::Rejected),
            (Step::AcceptAgreement, S::Approved | S::ApprovedWithConditions) => Some(S::AgreementAccepted),
            (Step::Provision, S::AgreementAccepted) => Some(S::Provisioned),
            (
                Step::Withdraw,
                S::Draft | S::Submitted | S::CommitteeReview | S::Returned | S::Approved | S::ApprovedWithConditions | S::AgreementAccepted,
            ) => Some(S::Withdrawn),
            _ => None,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a project is (HIC-P3, HIC-IO3).
///
/// ```text
///  active ──notice (applicant)──▶ notice_given ──end (custodian)──▶ ended
///    └──────────────────────────end (custodian: period over, or revoked)──▶ ended
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectState {
    /// The workspace is open to its members.
    Active,
    /// The applicant gave notice of the end of use; members still work until the custodian
    /// closes the workspace.
    NoticeGiven,
    /// Closed: the worker stopped, the workspace key destroyed, its files deleted, a deletion
    /// certificate in the ledger.
    Ended,
}

impl ProjectState {
    /// Every state.
    pub const ALL: [ProjectState; 3] = [ProjectState::Active, ProjectState::NoticeGiven, ProjectState::Ended];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Active => "active",
            ProjectState::NoticeGiven => "notice_given",
            ProjectState::Ended => "ended",
        }
    }

    /// The Japanese name shown to users.
    pub fn label_ja(self) -> &'static str {
        match self {
            ProjectState::Active => "利用中",
            ProjectState::NoticeGiven => "利用終了の届出済み",
            ProjectState::Ended => "利用終了",
        }
    }

    /// The state with stored name `s`.
    pub fn parse(s: &str) -> Option<ProjectState> {
        ProjectState::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether members may work in the workspace.
    pub fn is_open(self) -> bool {
        self != ProjectState::Ended
    }
}

impl std::fmt::Display for ProjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of a project's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStep {
    /// The applicant gives notice of the end of use (利用終了届).
    Notice,
    /// A custodian closes the workspace and destroys it (crypto-shredding).
    End,
}

impl ProjectStep {
    /// Every step.
    pub const ALL: [ProjectStep; 2] = [ProjectStep::Notice, ProjectStep::End];

    /// The verb, as recorded in the ledger (`project.<verb>`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStep::Notice => "notice",
            ProjectStep::End => "end",
        }
    }

    /// The Japanese name, for messages.
    pub fn label_ja(self) -> &'static str {
        match self {
            ProjectStep::Notice => "利用終了の届出",
            ProjectStep::End => "利用終了（作業環境の消去）",
        }
    }

    /// The English verb phrase, for messages.
    pub fn label_en(self) -> &'static str {
        match self {
            ProjectStep::Notice => "give notice of the end of use",
            ProjectStep::End => "end the project and destroy its workspace",
        }
    }

    /// Who may take this step.
    pub fn party(self) -> Party {
        match self {
            ProjectStep::Notice => Party::Applicant,
            ProjectStep::End => Party::Custodian,
        }
    }

    /// Where this step leads from `from`, or `None` if it cannot be taken there.
    pub fn target(self, from: ProjectState) -> Option<ProjectState> {
        match (self, from) {
            (ProjectStep::Notice, ProjectState::Active) => Some(ProjectState::NoticeGiven),
            (ProjectStep::End, ProjectState::Active | ProjectState::NoticeGiven) => Some(ProjectState::Ended),
            _ => None,
        }
    }
}

impl std::fmt::Display for ProjectStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_ends_once_and_only_a_custodian_ends_it() {
        for s in ProjectState::ALL {
            assert_eq!(ProjectState::parse(s.as_str()), Some(s));
        }
        assert!(ProjectStep::ALL.iter().all(|step| step.target(ProjectState::Ended).is_none()));
        assert_eq!(ProjectStep::End.target(ProjectState::Active), Some(ProjectState::Ended));
        assert_eq!(ProjectStep::End.target(ProjectState::NoticeGiven), Some(ProjectState::Ended));
        assert_eq!(ProjectStep::Notice.target(ProjectState::NoticeGiven), None);
        assert_eq!(ProjectStep::End.party(), Party::Custodian);
        assert_eq!(ProjectStep::Notice.party(), Party::Applicant);
    }

    #[test]
    fn names_round_trip_and_terminal_states_have_no_way_out() {
        for s in AppState::ALL {
            assert_eq!(AppState::parse(s.as_str()), Some(s));
        }
        for s in [AppState::Provisioned, AppState::Rejected, AppState::Withdrawn] {
            assert!(!s.is_open());
            assert!(Step::ALL.iter().all(|step| step.target(s).is_none()), "{s} must be final");
        }
        // Every open state can be left by some step, and every state but draft can be reached.
        for s in AppState::ALL.into_iter().filter(|s| s.is_open()) {
            assert!(Step::ALL.iter().any(|step| step.target(s).is_some_and(|t| t != s)), "{s} is a dead end");
        }
        for s in AppState::ALL.into_iter().filter(|s| *s != AppState::Draft && *s != AppState::ApprovedWithConditions) {
            assert!(AppState::ALL.iter().any(|from| Step::ALL.iter().any(|step| step.target(*from) == Some(s))), "{s} unreachable");
        }
    }
}
