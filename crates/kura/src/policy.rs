//! `kura policy …`: the disclosure policy (公表基準, HIC-IO2) — show the shipped presets and
//! check a policy file before an operator installs it. The rules are `kura-disclosure`'s.

use crate::{CliError, Result};
use clap::{Args, Subcommand};
use kura_disclosure::LoadedPolicy;
use std::path::PathBuf;

/// `kura policy`
#[derive(Debug, Args)]
#[command(after_help = "\
例 / examples:
  kura policy show                       既定（NDB の公表基準）/ the default: the NDB publication rules
  kura policy show --preset opensafely   比較用のプリセット / a preset for calibration (opensafely, acro, cms-vrdc)
  kura policy show --preset ndb --file > my-policy.toml
  kura policy check my-policy.toml       形式と値を確認し、版とハッシュを表示 / validate; print version and hash

持出しの自動判定・審査・公開はすべて同じポリシーを使い、公開ごとに版と SHA-256 を記録します。
The automatic checks, the review and the release gate apply one policy; every release records its
version and SHA-256.")]
pub struct PolicyArgs {
    #[command(subcommand)]
    what: PolicyCmd,
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// 規則を日英で表示 / print the rules in words (Japanese, then English)
    Show {
        /// プリセット（ndb, opensafely, acro, cms-vrdc）/ a preset
        #[arg(long, default_value = "ndb", value_name = "NAME")]
        preset: String,
        /// ポリシーファイルそのものを出力（編集の出発点）/ print the policy file itself (a starting point to edit)
        #[arg(long)]
        file: bool,
        /// JSON で出力 / print JSON
        #[arg(long, conflicts_with = "file")]
        json: bool,
    },
    /// ポリシーファイルを検査（誤りは行と項目を示す）/ validate a policy file (errors name the line and field)
    Check {
        /// ポリシーファイル（TOML）/ the policy file (TOML)
        file: PathBuf,
        /// JSON で出力 / print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Runs `kura policy …`.
pub fn policy(a: PolicyArgs) -> Result<()> {
    match a.what {
        PolicyCmd::Show { preset, file, json } => {
            let p = LoadedPolicy::preset(&preset).map_err(|e| CliError::Usage(e.to_string()))?;
            if file {
                print!("{}", p.text);
            } else {
                print_policy(&p, json)?;
            }
            Ok(())
        }
        PolicyCmd::Check { file, json } => {
            let text = std::fs::read_to_string(&file).map_err(|e| CliError::Io { path: file.display().to_string(), source: e })?;
            let p = LoadedPolicy::parse(&file.display().to_string(), &text).map_err(|e| CliError::Check(e.to_string()))?;
            print_policy(&p, json)?;
            if !json {
                println!("OK: 有効なポリシーです / a valid policy");
            }
            Ok(())
        }
    }
}

fn print_policy(p: &LoadedPolicy, json: bool) -> Result<()> {
    if json {
        let v = serde_json::json!({
            "name": p.policy.name,
            "version": p.policy.version,
            "sha256": p.sha256,
            "policy": p.policy,
            "rules": p.policy.explain(),
        });
        println!("{v:#}");
        return Ok(());
    }
    println!("{} / {}", p.policy.title_ja, p.policy.title_en);
    println!("ポリシー / policy: {} 版 version {}", p.policy.name, p.policy.version);
    println!("sha256: {}", p.sha256);
    for line in p.policy.explain() {
        println!("- {line}");
    }
    Ok(())
}
