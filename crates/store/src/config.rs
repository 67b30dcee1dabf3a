//! The home's configuration file, `kura.toml`.

use serde::{Deserialize, Serialize};

/// Limits and defaults of SQL execution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Memory a query may use before it spills or fails (MiB); 0 = half of physical memory.
    pub memory_limit_mb: u64,
    /// Wall-clock limit of one statement (seconds).
    pub timeout_secs: u64,
    /// Disk a query may use for spill files (MiB).
    pub spill_limit_mb: u64,
    /// Parallelism; 0 = number of CPUs.
    pub target_partitions: usize,
    /// Whether Kura's own plan rewrites (kura-query `rules`) are applied; they give the same
    /// answers faster, and can be switched off should one misbehave.
    pub rewrites: bool,
    /// Extra DataFusion settings (`datafusion.execution.…` = value) applied to every session;
    /// for operators tuning the engine. Researchers cannot change settings from SQL.
    pub datafusion: std::collections::BTreeMap<String, String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit_mb: 0,
            timeout_secs: 600,
            spill_limit_mb: 20_480,
            target_partitions: 0,
            rewrites: true,
            datafusion: std::collections::BTreeMap::new(),
        }
    }
}

/// Defaults of `kura synth`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SynthDefaults {
    /// Persons.
    pub persons: u64,
    /// Seed.
    pub seed: u64,
    /// First month, YYYYMM.
    pub start: i32,
    /// Months.
    pub months: u32,
}

impl Default for SynthDefaults {
    fn default() -> Self {
        Self { persons: 50_000, seed: 20_240_401, start: 202_404, months: 12 }
    }
}

/// How datasets are written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Writer threads; 0 = number of CPUs.
    pub threads: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { row_group_rows: 512 * 1024, threads: 0 }
    }
}

/// A witness of the audit ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its cosignature verifier key, `name+id+base64`.
    pub key: String,
    /// Its submission prefix (`http://host:port`); absent for an offline witness fed by files.
    pub url: Option<String>,
}

/// The audit ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Checkpoint key type: `ed25519` or `ecdsa-p256` (used when the key is created).
    pub key_type: String,
    /// The log's origin (its key's name); empty = `kura.local/<random>` chosen at creation.
    pub origin: String,
    /// Cosignatures required before a checkpoint is published.
    pub min_witnesses: usize,
    /// Witnesses asked to cosign.
    pub witnesses: Vec<WitnessConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { key_type: "ed25519".into(), origin: String::new(), min_witnesses: 0, witnesses: Vec::new() }
    }
}

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
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            operator_listen: String::new(),
            database: String::new(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            countries: vec!["JP".into()],
            internal: vec!["127.0.0.1/32".into(), "::1/128".into()],
            geo_files: Vec::new(),
            ip_blocklists: Vec::new(),
            domain_blocklists: Vec::new(),
            trusted_proxies: Vec::new(),
            autoblock_threshold: 10,
            autoblock_window_secs: 600,
            autoblock_secs: 3600,
            idle_timeout_secs: 900,
            absolute_timeout_secs: 43_200,
            lockout_threshold: 5,
            lock_minutes: 0,
            reload_secs: 5,
            max_connections: 4096,
            max_connections_per_address: 64,
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
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_defaults() {
        let c: KuraConfig = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(c, KuraConfig { version: 1, ..KuraConfig::default() });
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<KuraConfig>("[query]\nmemory_limit = 3\n").is_err());
    }
}
