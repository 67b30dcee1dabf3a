//! The configuration file of a home, `kura.toml`, as one typed value: each section is its
//! owner's type ([`QueryConfig`] of kura-query, [`SynthDefaults`] of kura-synth,
//! [`StoreConfig`] of kura-store, [`LedgerConfig`] of kura-ledger) and `[server]`, the front
//! door's composition, is this crate's, with every default that a domain crate uses taken from
//! that crate. Unknown keys are refused everywhere. [`TEMPLATE`] is the commented file
//! `kura init` writes; a test holds it equal to the defaults.

use kura_accounts::Policy;
use kura_gate::{AutoBlockPolicy, GateConfig};
use kura_ledger::config::LedgerConfig;
use kura_query::config::QueryConfig;
use kura_server::front::FrontLimits;
use kura_store::config::StoreConfig;
use kura_synth::config::SynthDefaults;
use kura_workflows::ResearchConfig;
use serde::{Deserialize, Serialize};

/// `kura serve`: listeners, the store of record, who may connect, account rules.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The portal and API listener.
    pub listen: String,
    /// The operators' listener; empty = closed (the default).
    pub operator_listen: String,
    /// The store of record: empty = `sqlite://<home>/state.db`; or `postgres://…`.
    pub database: String,
    /// Names (DNS or IP) in the server certificate.
    pub server_names: Vec<String>,
    /// Countries whose addresses may connect (ISO 3166 codes).
    pub countries: Vec<String>,
    /// Internal ranges always allowed (CIDR).
    pub internal: Vec<String>,
    /// RIR statistics files (e.g. `delegated-apnic-latest`).
    pub geo_files: Vec<String>,
    /// Files of blocked addresses and ranges.
    pub ip_blocklists: Vec<String>,
    /// Files of blocked URLs and domains.
    pub domain_blocklists: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (CIDR).
    pub trusted_proxies: Vec<String>,
    /// Failures from one address that block it.
    pub autoblock_threshold: u32,
    /// The window those failures are counted in (seconds).
    pub autoblock_window_secs: u64,
    /// How long an automatic block lasts (seconds).
    pub autoblock_secs: u64,
    /// Session idle timeout (seconds; HIC-U2).
    pub idle_timeout_secs: u64,
    /// Session absolute timeout (seconds).
    pub absolute_timeout_secs: u64,
    /// Failed sign-ins that lock an account (HIC-U3).
    pub lockout_threshold: u32,
    /// Minutes a lock lasts; 0 = until an operator unlocks it.
    pub lock_minutes: u64,
    /// Seconds between reloads of lists and revocations.
    pub reload_secs: u64,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address (one /64 for IPv6).
    pub max_connections_per_address: usize,
}

impl Default for ServerConfig {
    /// Each value that a domain crate uses comes from that crate's own default (accounts'
    /// [`Policy`], the gate's [`GateConfig`] and [`AutoBlockPolicy`], the front door's
    /// [`FrontLimits`]); only the composition's own settings (listeners, database, names,
    /// reload) are set here.
    fn default() -> Self {
        let accounts = Policy::default();
        let autoblock = AutoBlockPolicy::default();
        let front = FrontLimits::default();
        let gate = GateConfig::default();
        Self {
            listen: "127.0.0.1:8443".into(),
            operator_listen: String::new(),
            database: String::new(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            countries: gate.countries.iter().map(|c| c.to_string()).collect(),
            internal: gate.internal.iter().map(|c| c.to_string()).collect(),
            geo_files: Vec::new(),
            ip_blocklists: Vec::new(),
            domain_blocklists: Vec::new(),
            trusted_proxies: Vec::new(),
            autoblock_threshold: autoblock.threshold,
            autoblock_window_secs: autoblock.window.as_secs(),
            autoblock_secs: autoblock.block_for.as_secs(),
            idle_timeout_secs: accounts.idle_timeout.as_secs(),
            absolute_timeout_secs: accounts.absolute_timeout.as_secs(),
            lockout_threshold: accounts.lockout_threshold,
            lock_minutes: accounts.lock_for.map_or(0, |d| d.as_secs() / 60),
            reload_secs: 5,
            max_connections: front.max_connections,
            max_connections_per_address: front.max_per_address,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KuraConfig {
    /// Format version.
    pub version: u32,
    /// SQL limits.
    pub query: QueryConfig,
    /// Synthetic data defaults.
    pub synth: SynthDefaults,
    /// Dataset writing.
    pub store: StoreConfig,
    /// The audit ledger.
    pub ledger: LedgerConfig,
    /// The server.
    pub server: ServerConfig,
    /// The research lifecycle: committee, deadlines, service target.
    pub research: ResearchConfig,
    /// The airlock: its disclosure policy.
    pub airlock: kura_workspace::airlock::AirlockConfig,
    /// The malware scanner of the airlock.
    pub scanner: kura_scan::ScannerConfig,
    /// The exchange between institutions: retention, size.
    pub exchange: kura_workflows::ExchangeConfig,
}

impl KuraConfig {
    /// The configuration of `home`, every section checked.
    pub fn of(home: &kura_store::Home) -> kura_store::Result<Self> {
        home.whole()
    }
}

/// The file written by `kura init`, with comments.
pub const TEMPLATE: &str = r#"# Kura（蔵）ホームの設定 / configuration of a Kura home
version = 1

[query]
# 1クエリが使えるメモリ（MiB、0 = 物理メモリの半分）。超えると一時ファイルへ退避するか、明確なエラーで止まる。
# Memory one query may use (MiB; 0 = half of physical memory); beyond it the query spills to disk or fails cleanly.
memory_limit_mb = 0
# 1文の制限時間（秒） / time limit of one statement (seconds)
timeout_secs = 600
# 退避ファイルの上限（MiB） / limit of spill files (MiB)
spill_limit_mb = 20480
# 並列度（0 = CPU数） / parallelism (0 = number of CPUs)
target_partitions = 0
# Kura独自の計画の書き換え（結果は同じで高速）/ Kura's own plan rewrites (same answers, faster)
rewrites = true
# 問い合わせ子プロセスの隔離（landlock・seccomp・network namespace・memory limit・cpu limit）のうち、
# カーネルに無くても起動してよいもの。既定は空 = すべて必須（無ければ起動しない）。
# Confinement mechanisms the query worker may run without where the kernel lacks them; empty = all required.
allow_without = []

[synth]
# `kura synth` の既定値 / defaults of `kura synth`
persons = 50000
seed = 20240401
start = 202404
months = 12

[store]
# Parquet の行グループの行数 / rows per Parquet row group
row_group_rows = 524288
# 書き込みスレッド数（0 = CPU数） / writer threads (0 = number of CPUs)
threads = 0

[ledger]
# 監査台帳のチェックポイント署名鍵の種類（作成時）/ checkpoint key type when the key is created: "ed25519" or "ecdsa-p256"
key_type = "ed25519"
# 台帳の名前（origin、空なら作成時に kura.local/<乱数>）/ the log's origin; empty = kura.local/<random> at creation
origin = ""
# 公開に必要な立会人の連署数（ノートPCなら0）/ witness cosignatures required to publish a checkpoint (0 on a laptop)
min_witnesses = 0
# 立会人（url を省くとファイルでやり取りするオフライン立会人）/ witnesses (omit url for an offline witness fed by files)
# [[ledger.witnesses]]
# key = "witness.example/w1+1234abcd+BASE64..."
# url = "http://10.0.0.5:7380"

[server]
# ポータルとAPIの待ち受け（クライアント証明書必須のTLS）/ the portal and API listener (TLS, client certificate required)
listen = "127.0.0.1:8443"
# 運用管理者用の待ち受け（空 = 閉じる）/ the operators' listener (empty = closed)
operator_listen = ""
# 記録用データベース（空 = <home>/state.db の SQLite、または postgres://…）/ store of record (empty = SQLite <home>/state.db, or postgres://…)
database = ""
# サーバー証明書に載せる名前 / names in the server certificate
server_names = ["localhost", "127.0.0.1"]
# 接続を許す国（HIC-S4）と内部アドレス / countries that may connect, and internal ranges always allowed
countries = ["JP"]
internal = ["127.0.0.1/32", "::1/128"]
# RIR統計ファイル（APNIC の delegated-apnic-latest など。無ければ内部アドレスのみ）/ RIR statistics files (none = internal ranges only)
geo_files = []
# ブロックリスト（IP・CIDR、URL・ドメイン）/ blocklists of addresses and of URLs/domains
ip_blocklists = []
domain_blocklists = []
# X-Forwarded-For を信頼するリバースプロキシ / reverse proxies whose X-Forwarded-For is believed
trusted_proxies = []
# 自動遮断：window 秒に threshold 回失敗したアドレスを secs 秒遮断 / automatic block
autoblock_threshold = 10
autoblock_window_secs = 600
autoblock_secs = 3600
# セッション：無操作 idle 秒、最長 absolute 秒（HIC-U2）/ sessions: idle and absolute timeouts (seconds)
idle_timeout_secs = 900
absolute_timeout_secs = 43200
# ロックアウト：失敗回数、ロック時間（分、0 = 運用管理者が解除するまで）/ lockout after N failures; minutes (0 = until unlocked)
lockout_threshold = 5
lock_minutes = 0
# リスト・失効情報の再読込間隔（秒）/ seconds between reloads of lists and revocations
reload_secs = 5
# 同時接続数の上限（全体、接続元ごと。IPv6 は /64 ごと）/ open connections at most (in all, per address; per /64 for IPv6)
max_connections = 4096
max_connections_per_address = 64

[research]
# 決定の前に必要な審査委員の投票数 / committee votes needed before a custodian decides
committee_size = 2
# 申請から提供までの目標日数（申請者の手元にある間は数えない）/ service target from submission to provisioning, in days (pauses left out)
service_target_days = 7
# 申請の締切日（日本時間の日付。月1回なら1つ、増やせば頻度が上がる）/ application deadlines: days of the month, Japan time
deadline_days = [10]
# 利用期間の既定と上限（日）/ period of use: default and longest (days)
default_period_days = 365
max_period_days = 1095
# 申請の添付（研究計画書の PDF）の上限（MiB）/ the largest attachment (protocol PDF) of an application, in MiB
attachment_max_mb = 10

[airlock]
# 持出し審査のポリシー：プリセット名（ndb・opensafely・acro・cms-vrdc）またはポリシーファイルのパス（ホームからの相対）。
# `kura policy check FILE` で確かめてから指定してください。
# The disclosure policy: a preset (ndb, opensafely, acro, cms-vrdc) or a policy file's path (relative to the home);
# check a file with `kura policy check FILE` first.
policy = "ndb"
# 24時間にマルウェアがこの件数検出された利用者の持込み・出力ファイル・申請の添付を止めます（0 で無効）。
# After this many malware detections in a user's files within 24 hours, that user's uploads
# (bring-in, output files, application attachments) are refused until the window has passed (0: off).
detections_per_day = 3

[scanner]
# ClamAV（clamd）のソケット。検査できないときは持込み・持出しを止めます（kura scanner status で確認）。
# clamd's Unix socket; without a working scanner bring-in and release are blocked (see kura scanner status).
# clamd.conf に AlertExceedsMax yes と AlertEncrypted yes が必要です（開けない圧縮ファイルを通さないため）。
# clamd.conf needs AlertExceedsMax yes and AlertEncrypted yes (archives it cannot open are never passed).
socket = "/run/clamav/clamd.ctl"
# 1回の検査の制限時間（秒）/ time limit of one scan (seconds)
timeout_secs = 120

[exchange]
# 機関間で送ったファイルの保存日数。過ぎると自動で削除し、削除も証跡と台帳に残します。
# Days a file sent between institutions stays; then it is deleted, and the deletion is in its trail and the ledger.
retention_days = 30
# 1ファイルの上限（MiB）。clamd.conf の StreamMaxLength 以下にしてください（既定は 100M）。
# The largest file, in MiB; keep it at or below clamd.conf's StreamMaxLength (100M by default).
max_mb = 64
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_owners_defaults() {
        let c: KuraConfig = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(c, KuraConfig { version: 1, ..KuraConfig::default() });
        // Spot checks that the defaults really are the owners'.
        assert_eq!(c.server.lockout_threshold, Policy::default().lockout_threshold);
        assert_eq!(c.server.max_connections, FrontLimits::default().max_connections);
        assert_eq!(c.server.autoblock_window_secs, AutoBlockPolicy::default().window.as_secs());
        assert_eq!(c.research, ResearchConfig::default());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<KuraConfig>("[query]\nmemory_limit = 3\n").is_err());
        assert!(toml::from_str::<KuraConfig>("[server]\nlockout = 3\n").is_err());
        assert!(toml::from_str::<KuraConfig>("[nothing]\n").is_err());
    }
}
