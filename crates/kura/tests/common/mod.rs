//! Helpers shared by the tests that drive the real `kura` binary.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Sets `key = value` in `home`'s kura.toml (the line `kura init` wrote for that key; `value`
/// as TOML: quote strings). Panics where there is no such line.
pub fn set_config(home: &Path, key: &str, value: &str) {
    let path = home.join("kura.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{key} = ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {key} in kura.toml")).to_string();
    std::fs::write(&path, text.replace(&line, &format!("{prefix}{value}"))).unwrap();
}

/// Points `home`'s malware scanner at `socket` (`[scanner] socket`).
pub fn use_scanner(home: &Path, socket: &Path) {
    set_config(home, "socket", &format!("\"{}\"", socket.display()));
}

/// Runs `kura --home HOME ARGS…` with nothing on stdin.
pub fn kura(home: &Path, args: &[&str]) -> Output {
    kura_with_input(home, args, None)
}

/// `kura --home HOME ARGS…`, as the tests run it: Argon2 at its cheap test cost.
fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kura"));
    c.arg("--home").arg(home).args(args).env("USER", "tester").env("KURA_TEST_FAST_HASH", "1");
    c
}

/// Runs `kura --home HOME ARGS…`, writing `stdin` to it.
pub fn kura_with_input(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = command(home, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The password the tests give their users.
pub const PASSWORD: &str = "kaki-no-tane umbrella 83 orbit";

/// Adds each `(login, role, institution)` as a user with [`PASSWORD`].
pub fn add_users(home: &Path, users: &[(&str, &str, &str)]) {
    for (login, role, inst) in users {
        ok(&kura_with_input(
            home,
            &["user", "add", "--login", login, "--role", role, "--institution", inst, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        ));
    }
}

/// The last line of a command's output, trimmed (where the contract commands print an id or
/// a path).
pub fn last_line(out: &str) -> String {
    out.lines().last().unwrap_or_default().trim().to_string()
}

/// Asserts success; returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A benchmark's output (run through `kura bench`, which starts `kura-bench`): it either met
/// every target, or exited non-zero saying which targets it missed and nothing else went
/// wrong. Tests run the debug build with tiny settings, where targets are not expected to hold.
pub fn bench_ran(o: &Output) -> String {
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    if !o.status.success() {
        assert_eq!(o.status.code(), Some(3), "a missed target exits with 3, anything else is a failure: {out}\n{err}");
        assert!(err.contains("missed target(s):"), "stdout: {out}\nstderr: {err}");
        assert!(out.contains('✗'), "a missed target is marked in the table: {out}");
    }
    out
}

/// Asserts failure; returns stdout and stderr together.
pub fn fails(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure, got: {}", String::from_utf8_lossy(&o.stdout));
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A long-running `kura` child (a server), killed when dropped.
pub struct Served {
    child: Child,
    /// The word that followed `marker` in its output: the address it serves on.
    pub addr: String,
}

impl Served {
    /// Starts `kura --home HOME ARGS…` and reads its stdout until a line contains `marker`;
    /// the word after it is the address. The rest of the output is drained, as a terminal would.
    pub fn start(home: &Path, args: &[&str], marker: &str) -> Served {
        let mut child = command(home, args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.split_once(marker).map(|(_, r)| r) {
                addr = rest.split_whitespace().next().map(str::to_string);
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!("`kura {}` ended without printing {marker:?}", args.join(" "));
        };
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
