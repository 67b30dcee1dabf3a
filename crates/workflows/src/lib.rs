//! # kura-workflows — the research lifecycle
//!
//! 利用申請から提供・利用終了まで。申請の状態遷移はここだけで決まり、CLI・API・ポータルは同じ
//! 実装を呼ぶ。
//!
//! An application goes from a draft to a provisioned project through the explicit state
//! machine of [`state`] (WG-6, HIC-P1): the applicant submits it, a custodian checks it, a
//! committee of reviewers votes, a custodian decides (and may approve fewer columns than were
//! asked for), the applicant accepts the agreement and Kura provisions the project (HIC-P3). Each
//! step names the party that may take it; anyone else is refused with a clear message and the
//! refusal is recorded. Each accepted step changes the state **in the same transaction** as its
//! ledger entry (HIC-S5), whose `object_hash` is the SHA-256 of the application's content at
//! that moment, so the ledger proves what was filed and what was approved.
//!
//! The service clock ([`clock`]) runs while an application is with the platform and pauses
//! while it is with the applicant; custodians see open applications with their clock, overdue
//! ones first.
//!
//! Everything here is usable without HTTP: the CLI, the JSON API and the portal call
//! [`Research`].

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]
#![forbid(unsafe_code)]

pub mod bringin;
pub mod clock;
pub mod config;
pub mod exchange;
pub mod output_state;
mod outputs;
mod research;
pub mod state;

pub use bringin::{Bringin, Bringins, Detection, Found, InEvent, InState, InStep, NewBringin, check_upload};
pub use config::ResearchConfig;
pub use exchange::{ExchangeConfig, Exchanges, FileStore, Group, NewTransfer, Recipient, TrailEvent, Transfer, XState, XStep, utc};
pub use output_state::{OutParty, OutState, OutStep};
pub use outputs::{
    ConfirmLine, NewOutputFile, OutputEvent, OutputFile, OutputRequest, OutputSummary, Outputs, ReleaseGate, ReviewDecision, ReviewLine,
};
pub use research::{
    Application, AttachmentLine, Caller, Catalogue, ColumnLine, ColumnRequest, Decision, Event, MAX_ATTACHMENTS, NewApplication, Project,
    Research, Sample, Summary, Viewer, VoteLine, check_attachment,
};
pub use state::{AppState, Party, ProjectState, ProjectStep, Step};

/// Everything that can go wrong in the research lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// No application or project with that identifier (or none the caller may see).
    #[error("{what} '{id}' はありません / no {what_en} '{id}': check the identifier (`kura {cmd} list`)")]
    NotFound {
        /// 申請 or プロジェクト.
        what: &'static str,
        /// `application` or `project`.
        what_en: &'static str,
        /// The CLI noun that lists them.
        cmd: &'static str,
        /// The identifier asked for.
        id: String,
    },
    /// The step cannot be taken in the application's state.
    #[error(
        "申請 {id} は「{}」のため、{}はできません（今できる操作: {}）/ application {id} is {from}: cannot {} now (possible now: {})",
        from.label_ja(),
        step.label_ja(),
        possible_ja(*from),
        step.label_en(),
        possible_en(*from)
    )]
    WrongState {
        /// The application.
        id: String,
        /// Its state.
        from: AppState,
        /// The step asked for.
        step: Step,
    },
    /// The caller is not the party that may take the step.
    #[error("{}は{}だけができます（{why_ja}）/ only {} may {}: {why_en}", step.label_ja(), party.label_ja(), party.label_en(), step.label_en())]
    NotPermitted {
        /// The application.
        id: String,
        /// The step.
        step: Step,
        /// Who may.
        party: Party,
        /// Why this caller may not, in Japanese.
        why_ja: String,
        /// The same in English.
        why_en: String,
    },
    /// A project step that its state does not allow.
    #[error(
        "プロジェクト {id} は「{}」のため、{}はできません / project {id} is {from}: cannot {} now",
        from.label_ja(),
        step.label_ja(),
        step.label_en()
    )]
    ProjectWrongState {
        /// The project.
        id: String,
        /// Its state.
        from: ProjectState,
        /// The step asked for.
        step: ProjectStep,
    },
    /// The caller may not take a project step.
    #[error("{}は{}だけができます（{why_ja}）/ only {} may {}: {why_en}", step.label_ja(), step.party().label_ja(), step.party().label_en(), step.label_en())]
    ProjectNotPermitted {
        /// The project.
        id: String,
        /// The step.
        step: ProjectStep,
        /// Why, in Japanese.
        why_ja: String,
        /// The same in English.
        why_en: String,
    },
    /// An output request's step that its state does not allow (issue 17 §3).
    #[error(
        "出力依頼 {id} は「{}」のため、{}はできません（今できる操作: {}）/ output request {id} is {from}: cannot {} now (possible now: {})",
        from.label_ja(),
        step.label_ja(),
        out_possible_ja(*from),
        step.label_en(),
        out_possible_en(*from)
    )]
    OutputWrongState {
        /// The request.
        id: String,
        /// Its state.
        from: OutState,
        /// The step asked for.
        step: OutStep,
    },
    /// The caller may not take an output request's step.
    #[error("{}は{}だけができます（{why_ja}）/ only {} may {}: {why_en}", step.label_ja(), step.party().label_ja(), step.party().label_en(), step.label_en())]
    OutputNotPermitted {
        /// The request.
        id: String,
        /// The step.
        step: OutStep,
        /// Why, in Japanese.
        why_ja: String,
        /// The same in English.
        why_en: String,
    },
    /// The release gate refused an approved request (issue 17 §3, issue 22 §3–§4): nothing left.
    #[error("出力依頼 {id} は持ち出せません：{why_ja} / output request {id} cannot be released: {why_en}")]
    ReleaseBlocked {
        /// The request.
        id: String,
        /// Why, in Japanese.
        why_ja: String,
        /// The same in English, with what to do.
        why_en: String,
    },
    /// A bring-in request's step was refused: the wrong party or the wrong state (issue 17 §4).
    #[error("持込み依頼 {id}: {why_ja} / bring-in request {id}: {why_en}")]
    BringinRefused {
        /// The request.
        id: String,
        /// Why, in Japanese.
        why_ja: String,
        /// The same in English, with what to do.
        why_en: String,
    },
    /// An exchange step was refused: the wrong role, the wrong institution, a deleted file
    /// (HTTP 403; a transfer the caller may not see is [`WorkflowError::NotFound`]).
    #[error("送信ファイル {id}: {why_ja} / transfer {id}: {why_en}")]
    ExchangeRefused {
        /// The transfer (`-` before one exists).
        id: String,
        /// Why, in Japanese.
        why_ja: String,
        /// The same in English, with what to do.
        why_en: String,
    },
    /// The caller is not a member of the project whose workspace they asked for (HTTP 403).
    #[error(
        "プロジェクト {id} のメンバーではありません。作業環境はメンバーだけが使えます / you are not a member of project {id}: only its members may use its workspace"
    )]
    NotMember {
        /// The project.
        id: String,
    },
    /// The project has ended: its workspace is destroyed (HTTP 410).
    #[error(
        "プロジェクト {id} は利用終了しました（{ended}）。作業環境と保存した表は消去されています / project {id} ended on {ended}: its workspace and saved tables were destroyed"
    )]
    Ended {
        /// The project.
        id: String,
        /// When (UTC, `YYYY-MM-DD`).
        ended: String,
    },
    /// The project's approved period of use is over (HTTP 403): nobody works in it any more.
    #[error(
        "プロジェクト {id} の利用期間は {ends} に終わりました。データ管理者が利用終了の手続きをします / the period of use of project {id} ended on {ends}: a custodian ends the project (kura project end)"
    )]
    PeriodOver {
        /// The project.
        id: String,
        /// When the period ended (UTC, `YYYY-MM-DD`).
        ends: String,
    },
    /// A field of a request is invalid; says which and what is expected.
    #[error("{field} が不正です / invalid {field}: {detail}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what to do.
        detail: String,
    },
    /// From accounts (the acting user, members).
    #[error(transparent)]
    Accounts(#[from] kura_accounts::AccountsError),
    /// The store of record failed.
    #[error(transparent)]
    Db(#[from] kura_db::DbError),
    /// A statement failed.
    #[error("データベース / database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The audit ledger failed: nothing was changed.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// A stored value that cannot be read back (a bug or an altered database).
    #[error("内部エラー / internal error: {0}")]
    Internal(String),
}

impl WorkflowError {
    /// Whether the failure is Kura's rather than the request's (logged, answered generically).
    pub fn is_internal(&self) -> bool {
        match self {
            WorkflowError::Accounts(e) => e.is_internal(),
            WorkflowError::Db(_) | WorkflowError::Sql(_) | WorkflowError::Ledger(_) | WorkflowError::Internal(_) => true,
            _ => false,
        }
    }

    /// Whether a step was refused (an application the caller may not see, the wrong party, the
    /// wrong state); such refusals are recorded in the ledger.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            WorkflowError::NotFound { .. }
                | WorkflowError::NotPermitted { .. }
                | WorkflowError::WrongState { .. }
                | WorkflowError::ProjectWrongState { .. }
                | WorkflowError::ProjectNotPermitted { .. }
                | WorkflowError::OutputWrongState { .. }
                | WorkflowError::OutputNotPermitted { .. }
                | WorkflowError::ReleaseBlocked { .. }
                | WorkflowError::BringinRefused { .. }
                | WorkflowError::ExchangeRefused { .. }
                | WorkflowError::NotMember { .. }
                | WorkflowError::Ended { .. }
                | WorkflowError::PeriodOver { .. }
        )
    }
}

fn possible_ja(state: AppState) -> String {
    let steps: Vec<&str> = Step::possible_from(state).into_iter().map(Step::label_ja).collect();
    if steps.is_empty() { "なし".into() } else { steps.join("・") }
}

fn possible_en(state: AppState) -> String {
    let steps: Vec<&str> = Step::possible_from(state).into_iter().map(Step::as_str).collect();
    if steps.is_empty() { "nothing, it is closed".into() } else { steps.join(", ") }
}

fn out_possible_ja(state: OutState) -> String {
    let steps: Vec<&str> = OutStep::possible_from(state).into_iter().map(OutStep::label_ja).collect();
    if steps.is_empty() { "なし".into() } else { steps.join("・") }
}

fn out_possible_en(state: OutState) -> String {
    let steps: Vec<&str> = OutStep::possible_from(state).into_iter().map(OutStep::as_str).collect();
    if steps.is_empty() { "nothing, it is closed".into() } else { steps.join(", ") }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, WorkflowError>;
