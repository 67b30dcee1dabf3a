//! The operating system's confinement of a query worker (HIC-S13): what the process running a
//! researcher's SQL can reach, whatever the SQL (or a bug in the engine) makes it do.
//!
//! [`confine_self`] is called by the worker before it reads its keys or any data, while it is
//! still one thread (Landlock and seccomp restrict the calling thread and the threads it starts
//! later; Landlock ABI 7 cannot reach threads that already exist):
//!
//! - **network namespace** — the worker moves into a network namespace of its own, which has
//!   no interface but a loopback that is down: no address of the host, loopback included, is
//!   reachable (`unshare(CLONE_NEWNET)`; as an unprivileged user, together with a user namespace);
//! - **Landlock** — the filesystem shrinks to the paths given: the dataset read-only, the
//!   worker's own scratch directory read-write, nothing else, not even `/proc` or `/etc`; TCP
//!   connect and bind are refused; signals and abstract UNIX sockets outside the sandbox are
//!   out of reach;
//! - **seccomp** — a filter refuses new sockets of any kind and the system calls a worker never
//!   needs and an escape would (ptrace, other processes' memory, namespaces, mounts, BPF, kernel
//!   keyrings, io_uring, userfaultfd, perf events, module loading);
//! - **memory and CPU limits** — `RLIMIT_DATA` (a failed allocation ends the worker, and the
//!   parent reports the memory limit, not the host's OOM killer) and `RLIMIT_CPU`;
//! - **no privileges** — every capability is dropped from all sets and the bounding set, and
//!   `no_new_privs` is set, so a worker started by root keeps root's file ownership (it can
//!   read the home it was given) but none of root's powers.
//!
//! A mechanism the kernel lacks makes [`confine_self`] fail unless the caller allowed running
//! without it ([`Confinement::allow_without`]); the [`Report`] says which mechanisms are on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One confinement mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Filesystem (and TCP) restriction by Landlock.
    Landlock,
    /// The seccomp system-call filter.
    Seccomp,
    /// A network namespace of the worker's own.
    NetworkNamespace,
    /// The memory limit.
    MemoryLimit,
    /// The CPU limit.
    CpuLimit,
}

impl Mechanism {
    /// Every mechanism, in the order a status report lists them.
    pub const ALL: [Mechanism; 5] =
        [Mechanism::Landlock, Mechanism::Seccomp, Mechanism::NetworkNamespace, Mechanism::MemoryLimit, Mechanism::CpuLimit];

    /// The name in status reports and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Landlock => "landlock",
            Mechanism::Seccomp => "seccomp",
            Mechanism::NetworkNamespace => "network namespace",
            Mechanism::MemoryLimit => "memory limit",
            Mechanism::CpuLimit => "cpu limit",
        }
    }

    /// The mechanism named `s` (as [`Mechanism::name`] writes it).
    pub fn parse(s: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// What a worker may reach.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Confinement {
    /// Paths readable (and their contents), nothing writable.
    pub read_only: Vec<PathBuf>,
    /// Paths readable and writable (the worker's scratch directory).
    pub read_write: Vec<PathBuf>,
    /// Writable memory of the process in bytes (`RLIMIT_DATA`).
    pub memory_bytes: u64,
    /// CPU seconds of the process (`RLIMIT_CPU`; the soft limit signals, the hard one kills).
    pub cpu_secs: u64,
    /// Mechanisms the operator allowed the worker to run without where the kernel lacks them.
    pub allow_without: Vec<Mechanism>,
}

/// Which mechanisms are on, and why one is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Each mechanism and whether it is on.
    pub on: BTreeMap<Mechanism, bool>,
    /// Why a mechanism is off or only partly on.
    pub notes: Vec<String>,
}

impl Report {
    /// One `mechanism: on|off` line each, in [`Mechanism::ALL`] order.
    pub fn lines(&self) -> Vec<String> {
        Mechanism::ALL
            .iter()
            .map(|m| format!("{}: {}", m.name(), if self.on.get(m).copied().unwrap_or(false) { "on" } else { "off" }))
            .collect()
    }

    fn set(&mut self, m: Mechanism, result: std::result::Result<(), String>) {
        match result {
            Ok(()) => {
                self.on.insert(m, true);
            }
            Err(why) => {
                self.on.insert(m, false);
                self.notes.push(format!("{}: {why}", m.name()));
            }
        }
    }
}

/// A mechanism could not be put in place and was not allowed to be missing.
#[derive(Debug, thiserror::Error)]
#[error(
    "隔離の仕組み「{mechanism}」を有効にできません: {why}。設定で明示的に許可しない限り起動しません / cannot enable {mechanism}: {why}; the worker does not start without it unless the operator allows it ([workspace] allow_without)"
)]
pub struct ConfineError {
    /// The mechanism.
    pub mechanism: &'static str,
    /// What the kernel said.
    pub why: String,
}

/// Confines the calling process (see the module documentation). Call it while the process is
/// one thread, before it holds keys or data.
pub fn confine_self(c: &Confinement) -> std::result::Result<Report, ConfineError> {
    let mut report = Report::default();
    // The order matters: the namespace and the limits need privileges that the last steps
    // give up; Landlock and seccomp come after everything that opens files or sockets.
    report.set(Mechanism::NetworkNamespace, own_network());
    report.set(Mechanism::MemoryLimit, limit(rustix::process::Resource::Data, c.memory_bytes, c.memory_bytes));
    report.set(Mechanism::CpuLimit, limit(rustix::process::Resource::Cpu, c.cpu_secs, c.cpu_secs.saturating_add(5)));
    report.set(Mechanism::Landlock, landlock(c));
    report.set(Mechanism::Seccomp, seccomp());
    if let Err(why) = drop_privileges() {
        return Err(ConfineError { mechanism: "capabilities", why });
    }
    for m in Mechanism::ALL {
        if !report.on.get(&m).copied().unwrap_or(false) && !c.allow_without.contains(&m) {
            let why = report.notes.iter().find(|n| n.starts_with(m.name())).cloned().unwrap_or_default();
            return Err(ConfineError { mechanism: m.name(), why });
        }
    }
    Ok(report)
}

fn limit(resource: rustix::process::Resource, soft: u64, hard: u64) -> std::result::Result<(), String> {
    if soft == 0 {
        return Err("no limit was given".into());
    }
    rustix::process::setrlimit(resource, rustix::process::Rlimit { current: Some(soft), maximum: Some(hard.max(soft)) })
        .map_err(|e| e.to_string())
}

/// A network namespace of the process's own (no interface but a loopback that is down).
fn own_network() -> std::result::Result<(), String> {
    use rustix::thread::UnshareFlags;
    // `unshare` is deprecated in rustix because sharing changes (files, fs) can break a
    // multi-threaded process's assumptions; a new network namespace changes none of them, and
    // the worker is still one thread here.
    #[allow(deprecated)]
    let root = rustix::thread::unshare(UnshareFlags::NEWNET);
    #[allow(deprecated)]
    root.or_else(|_| rustix::thread::unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNET)).map_err(|e| e.to_string())
}

fn landlock(c: &Confinement) -> std::result::Result<(), String> {
    use landlock::{ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules};
    let fs = ABI::V5;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(fs))
        .and_then(|r| r.handle_access(AccessNet::from_all(ABI::V4)))
        .and_then(|r| r.scope(Scope::from_all(ABI::V6)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(&c.read_only, AccessFs::from_read(fs))))
        .and_then(|r| r.add_rules(path_beneath_rules(&c.read_write, AccessFs::from_all(fs))))
        .and_then(|r| r.restrict_self())
        .map_err(|e| e.to_string())?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        RulesetStatus::PartiallyEnforced => Err("only partly enforced: the kernel's Landlock is older than ABI 6".into()),
        RulesetStatus::NotEnforced => Err("the kernel has no Landlock".into()),
    }
}

/// System calls refused with `EPERM` (all arguments): new sockets, and what only an escape
/// would use.
fn refused_syscalls() -> Vec<i64> {
    vec![
        libc::SYS_socket,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_userfaultfd,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
    ]
}

fn seccomp() -> std::result::Result<(), String> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let rules = refused_syscalls().into_iter().map(|s| (s, Vec::new())).collect();
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch).map_err(|e| e.to_string())?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())
}

/// Drops every capability (effective, permitted, inheritable, ambient and bounding) and sets
/// `no_new_privs`: a worker started by root keeps its file ownership, not its powers.
fn drop_privileges() -> std::result::Result<(), String> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
    let held = rustix::thread::capabilities(None).map_err(|e| format!("capabilities: {e}"))?;
    if held.permitted.is_empty() && held.effective.is_empty() {
        return Ok(());
    }
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes last.
    for cap in CapabilitySet::all().iter() {
        // A capability the kernel does not know is not in the set either.
        let _ = rustix::thread::remove_capability_from_bounding_set(cap);
    }
    let _ = rustix::thread::clear_ambient_capability_set();
    let none = CapabilitySets { effective: CapabilitySet::empty(), permitted: CapabilitySet::empty(), inheritable: CapabilitySet::empty() };
    rustix::thread::set_capabilities(None, none).map_err(|e| format!("capabilities: {e}"))?;
    let left = rustix::thread::capabilities(None).map_err(|e| format!("capabilities: {e}"))?;
    if !left.permitted.is_empty() || !left.effective.is_empty() {
        return Err("capabilities remain after dropping them".into());
    }
    Ok(())
}
