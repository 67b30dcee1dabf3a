//! The benchmark program's command line, directly and through `kura bench` (the contract name).

use std::process::Command;

#[test]
fn kura_bench_lists_the_benchmarks_and_kura_bench_reaches_it() {
    let direct = Command::new(env!("CARGO_BIN_EXE_kura-bench")).arg("--help").output().unwrap();
    assert!(direct.status.success());
    let text = String::from_utf8_lossy(&direct.stdout);
    for what in ["query", "ledger", "server", "目標", "target"] {
        assert!(text.contains(what), "--help lacks {what}: {text}");
    }
    // `kura bench …` (the name other checks use) runs the program beside `kura`.
    let kura = std::path::Path::new(env!("CARGO_BIN_EXE_kura-bench")).with_file_name(format!("kura{}", std::env::consts::EXE_SUFFIX));
    assert!(kura.is_file(), "the workspace build puts kura beside kura-bench: {}", kura.display());
    let via = Command::new(&kura).args(["bench", "query", "--help"]).output().unwrap();
    assert!(via.status.success(), "{}", String::from_utf8_lossy(&via.stderr));
    assert!(String::from_utf8_lossy(&via.stdout).contains("--persons"));
    // A wrong option is refused by kura-bench, and the exit status passed on.
    let bad = Command::new(&kura).args(["bench", "query", "--no-such-option"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
}
