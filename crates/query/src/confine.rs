//! The operating system's confinement of a query worker (HIC-S13): what the process running a
//! researcher's SQL can reach, whatever the SQL (or a bug in the engine) makes it do.
//!
//! [`confine_self`] is called by the worker before it reads its keys or any data, while it is
//! still one thread (Landlock and seccomp restrict the calling thread and the threads it starts
//! later; Landlock ABI 7 cannot reach threads that already exist):
//!
//! - **network namespace** — the worker moves into a network namespace of its own, which has
//!   no interface but a loopback that is down: no address of the host, loopback included, is
//!   reachable (`unshare(CLONE_NEWNET)`; as an unprivileged user, together with a user
//!   namespace); and into an IPC namespace of its own, so that no System V or POSIX shared
//!   memory or queue outlives it or reaches another process;
//! - **Landlock** — the filesystem shrinks to the paths given: the dataset read-only, the
//!   worker's own scratch directory read-write, nothing else, not even `/proc` or `/etc`; TCP
//!   connect and bind are refused; signals and abstract UNIX sockets outside the sandbox are
//!   out of reach;
//! - **seccomp** — a filter refuses what a worker never needs and an escape would: new sockets,
//!   connecting, binding or sending to an address (a socket pair stays usable for the runtime),
//!   new processes (`fork`, `vfork`, `clone` without `CLONE_THREAD`; `clone3` answers "not
//!   implemented" so that threads fall back to `clone`), changing owners, modes, extended
//!   attributes or times of files (Landlock does not cover them),
//!   device nodes, file handles, ptrace, other processes' memory, limits or scheduling, new
//!   namespaces, mounts, BPF, kernel keyrings, io_uring, userfaultfd, perf events, memfd,
//!   System V and POSIX IPC, module loading, clocks; and on x86_64 every x32 system call
//!   (numbered from 0x40000000, which the deny-list's x86_64 numbers would not catch);
//! - **memory, CPU and file limits** — `RLIMIT_DATA` (a failed allocation ends the worker, and
//!   the parent reports the memory limit, not the host's OOM killer), `RLIMIT_AS` as a backstop
//!   for shared and stack mappings, `RLIMIT_CPU`, and `RLIMIT_FSIZE` for what it writes;
//! - **no privileges** — a worker started by root becomes a user of its own
//!   ([`Confinement::user`]; each project's worker a different one) that keeps only
//!   `CAP_DAC_READ_SEARCH` to read the dataset it was given; every other capability is dropped
//!   from all sets and the bounding set, and `no_new_privs` is set. Started by anyone else, it
//!   is that unprivileged user with no capabilities.
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
    /// The hard CPU limit for a long-lived worker, which re-arms its soft limit before each
    /// request (0: `cpu_secs` plus 5 seconds).
    #[serde(default)]
    pub cpu_hard_secs: u64,
    /// Largest file the process may write, in bytes (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Mechanisms the operator allowed the worker to run without where the kernel lacks them.
    pub allow_without: Vec<Mechanism>,
    /// The user and group a worker started by root becomes (its own, per project): it keeps
    /// only `CAP_DAC_READ_SEARCH`, to read the dataset it was given (Landlock still limits
    /// what), and writes only where that user owns a directory. Ignored when not started as
    /// root (the worker is then the unprivileged caller).
    #[serde(default)]
    pub user: Option<(u32, u32)>,
    /// Whether that user keeps `CAP_DAC_READ_SEARCH` (Kura's workers do: the home's
    /// directories are root's alone, and Landlock limits what the worker reads); without it the
    /// user keeps no capability at all.
    #[serde(default)]
    pub read_search: bool,
}

/// Which mechanisms are on, and why one is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Each mechanism and whether it is on.
    pub on: BTreeMap<Mechanism, bool>,
    /// Why a mechanism is off or only partly on.
    pub notes: Vec<String>,
    /// Whom the worker runs as, and with which capabilities.
    #[serde(default)]
    pub user: String,
}

impl Report {
    /// One `mechanism: on|off` line each, in [`Mechanism::ALL`] order, then `user: …`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = Mechanism::ALL
            .iter()
            .map(|m| format!("{}: {}", m.name(), if self.on.get(m).copied().unwrap_or(false) { "on" } else { "off" }))
            .collect();
        if !self.user.is_empty() {
            lines.push(format!("user: {}", self.user));
        }
        lines
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
    "隔離の仕組み「{mechanism}」を有効にできません: {why}。設定で明示的に許可しない限り起動しません / cannot enable {mechanism}: {why}; the worker does not start without it unless the operator allows it ([query] allow_without in kura.toml)"
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
    report.set(
        Mechanism::MemoryLimit,
        limit(rustix::process::Resource::Data, c.memory_bytes, c.memory_bytes).and_then(|()| {
            let space = c.memory_bytes.saturating_add(ADDRESS_SPACE_MARGIN);
            limit(rustix::process::Resource::As, space, space)
        }),
    );
    if let Err(why) = limit(rustix::process::Resource::Fsize, c.file_bytes, c.file_bytes) {
        return Err(ConfineError { mechanism: "file size limit", why });
    }
    let hard = if c.cpu_hard_secs == 0 { c.cpu_secs.saturating_add(5) } else { c.cpu_hard_secs };
    report.set(Mechanism::CpuLimit, limit(rustix::process::Resource::Cpu, c.cpu_secs, hard));
    report.set(Mechanism::Landlock, landlock(c));
    report.set(Mechanism::Seccomp, seccomp());
    let root = rustix::process::geteuid().is_root();
    let keep = if c.user.is_some() && root && c.read_search {
        rustix::thread::CapabilitySet::DAC_READ_SEARCH
    } else {
        rustix::thread::CapabilitySet::empty()
    };
    // The bounding set first, while CAP_SETPCAP is still effective.
    narrow_bounding_set(keep);
    let keep = match c.user {
        Some((uid, gid)) if root => {
            if let Err(why) = become_user(uid, gid) {
                return Err(ConfineError { mechanism: "user", why });
            }
            if c.read_search {
                report.user = format!("uid {uid} gid {gid}, only CAP_DAC_READ_SEARCH");
                rustix::thread::CapabilitySet::DAC_READ_SEARCH
            } else {
                report.user = format!("uid {uid} gid {gid}, no capabilities");
                rustix::thread::CapabilitySet::empty()
            }
        }
        _ => {
            report.user = format!("uid {}, no capabilities", rustix::process::geteuid().as_raw());
            rustix::thread::CapabilitySet::empty()
        }
    };
    if let Err(why) = drop_privileges(keep) {
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

/// Address space beyond the data limit: thread stacks, the allocator's arenas and the program
/// itself are reserved, not used; shared or stack mappings past it are refused.
const ADDRESS_SPACE_MARGIN: u64 = 4 << 30;

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
    let root = rustix::thread::unshare(UnshareFlags::NEWNET | UnshareFlags::NEWIPC);
    #[allow(deprecated)]
    root.or_else(|_| rustix::thread::unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNET | UnshareFlags::NEWIPC))
        .map_err(|e| e.to_string())
}

fn landlock(c: &Confinement) -> std::result::Result<(), String> {
    use landlock::{ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules};
    let fs = ABI::V5;
    // Reading files and listing directories; no execution anywhere.
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    // Regular files and directories only: no devices, pipes, sockets or links.
    let write =
        AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::MakeDir | AccessFs::RemoveFile | AccessFs::RemoveDir | AccessFs::Truncate;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(fs))
        .and_then(|r| r.handle_access(AccessNet::from_all(ABI::V4)))
        .and_then(|r| r.scope(Scope::from_all(ABI::V6)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(&c.read_only, read)))
        .and_then(|r| r.add_rules(path_beneath_rules(&c.read_write, read | write)))
        .and_then(|r| r.restrict_self())
        .map_err(|e| e.to_string())?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        RulesetStatus::PartiallyEnforced => Err("only partly enforced: the kernel's Landlock is older than ABI 6".into()),
        RulesetStatus::NotEnforced => Err("the kernel has no Landlock".into()),
    }
}

/// System calls refused with `EPERM` whatever their arguments.
fn refused_syscalls() -> Vec<i64> {
    // Newer calls without a name in libc yet (the same number on every architecture).
    const SETXATTRAT: i64 = 463;
    const GETXATTRAT: i64 = 464;
    const LISTXATTRAT: i64 = 465;
    const REMOVEXATTRAT: i64 = 466;
    vec![
        // Network: new sockets; connecting, binding, listening, accepting; messages that
        // carry an address or descriptors.
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_sendmsg,
        libc::SYS_sendmmsg,
        // New processes (threads are `clone` with CLONE_THREAD, below).
        libc::SYS_fork,
        libc::SYS_vfork,
        // Files' owners, modes, attributes and times, device nodes, file handles.
        libc::SYS_chmod,
        libc::SYS_fchmod,
        libc::SYS_fchmodat,
        libc::SYS_fchmodat2,
        libc::SYS_chown,
        libc::SYS_fchown,
        libc::SYS_lchown,
        libc::SYS_fchownat,
        libc::SYS_setxattr,
        libc::SYS_lsetxattr,
        libc::SYS_fsetxattr,
        libc::SYS_getxattr,
        libc::SYS_lgetxattr,
        libc::SYS_fgetxattr,
        libc::SYS_listxattr,
        libc::SYS_llistxattr,
        libc::SYS_flistxattr,
        libc::SYS_removexattr,
        libc::SYS_lremovexattr,
        libc::SYS_fremovexattr,
        SETXATTRAT,
        GETXATTRAT,
        LISTXATTRAT,
        REMOVEXATTRAT,
        libc::SYS_utime,
        libc::SYS_utimes,
        libc::SYS_utimensat,
        libc::SYS_futimesat,
        libc::SYS_mknod,
        libc::SYS_mknodat,
        libc::SYS_name_to_handle_at,
        libc::SYS_open_by_handle_at,
        libc::SYS_memfd_create,
        // Other processes.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setattr,
        libc::SYS_setpriority,
        libc::SYS_ioprio_set,
        // IPC that could outlive the worker or reach another process.
        libc::SYS_shmget,
        libc::SYS_msgget,
        libc::SYS_semget,
        libc::SYS_mq_open,
        // The system.
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_fanotify_init,
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
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
    ]
}

/// System calls refused with `EPERM` only with some arguments: a process (not a thread), an
/// address to send to, another process's limits or CPUs.
fn refused_with() -> std::result::Result<Vec<(i64, Vec<seccompiler::SeccompRule>)>, seccompiler::BackendError> {
    use seccompiler::{SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as When, SeccompRule as Rule};
    let thread = libc::CLONE_THREAD as u64;
    Ok(vec![
        // clone(flags, …) without CLONE_THREAD makes a process.
        (libc::SYS_clone, vec![Rule::new(vec![When::new(0, Len::Qword, Op::MaskedEq(thread), 0)?])?]),
        // sendto(fd, buf, len, flags, addr, addrlen) with an address.
        (libc::SYS_sendto, vec![Rule::new(vec![When::new(4, Len::Qword, Op::Ne, 0)?])?]),
        // prlimit64(pid, …) and sched_setaffinity(pid, …) on another process.
        (libc::SYS_prlimit64, vec![Rule::new(vec![When::new(0, Len::Dword, Op::Ne, 0)?])?]),
        (libc::SYS_sched_setaffinity, vec![Rule::new(vec![When::new(0, Len::Dword, Op::Ne, 0)?])?]),
    ])
}

fn seccomp() -> std::result::Result<(), String> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        refused_syscalls().into_iter().map(|s| (s, Vec::new())).collect();
    rules.extend(refused_with().map_err(|e| e.to_string())?);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let program: BpfProgram =
        SeccompFilter::new(rules, SeccompAction::Allow, eperm, arch).and_then(BpfProgram::try_from).map_err(|e| e.to_string())?;
    // clone3 passes its flags in memory the filter cannot read: "not implemented" makes the C
    // library fall back to clone, whose flags the first filter checks.
    let clone3 = std::iter::once((libc::SYS_clone3, Vec::new())).collect();
    let fallback: BpfProgram = SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch)
        .and_then(BpfProgram::try_from)
        .map_err(|e| e.to_string())?;
    seccompiler::apply_filter_all_threads(&fallback).map_err(|e| e.to_string())?;
    #[cfg(target_arch = "x86_64")]
    seccompiler::apply_filter_all_threads(&x32_refused()).map_err(|e| e.to_string())?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())
}

/// The x32 ABI numbers its system calls from 0x40000000 under the same architecture as
/// x86_64, so the deny-list (by x86_64 numbers) would not see them: every number from there up
/// is refused. (Kernels without the x32 ABI answer ENOSYS to them anyway.)
#[cfg(target_arch = "x86_64")]
fn x32_refused() -> seccompiler::BpfProgram {
    use seccompiler::sock_filter;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    vec![
        // The system call's number (seccomp_data.nr, offset 0).
        sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 },
        sock_filter { code: JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT },
        sock_filter { code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | libc::EPERM as u32 },
        sock_filter { code: RET_K, jt: 0, jf: 0, k: RET_ALLOW },
    ]
}

/// Becomes `uid`/`gid` with no supplementary groups, keeping the permitted capabilities over
/// the change so that [`drop_privileges`] can keep the one a reader needs. Changing
/// credentials clears the parent-death signal and the dumpable flag: both are set again.
fn become_user(uid: u32, gid: u32) -> std::result::Result<(), String> {
    use rustix::process::{Gid, Uid};
    rustix::thread::set_keep_capabilities(true).map_err(|e| format!("keep capabilities: {e}"))?;
    rustix::thread::set_thread_groups(&[]).map_err(|e| format!("groups: {e}"))?;
    let (g, u) = (Gid::from_raw(gid), Uid::from_raw(uid));
    rustix::thread::set_thread_res_gid(g, g, g).map_err(|e| format!("gid {gid}: {e}"))?;
    rustix::thread::set_thread_res_uid(u, u, u).map_err(|e| format!("uid {uid}: {e}"))?;
    rustix::thread::set_keep_capabilities(false).map_err(|e| format!("keep capabilities: {e}"))?;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)).map_err(|e| format!("death signal: {e}"))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).map_err(|e| format!("dumpable: {e}"))?;
    if rustix::process::getuid().is_root() || rustix::process::geteuid().is_root() {
        return Err("still root after changing user".into());
    }
    Ok(())
}

/// Removes every capability but `keep` from the bounding set (it needs CAP_SETPCAP: call it
/// before the user changes, and again where that is kept).
fn narrow_bounding_set(keep: rustix::thread::CapabilitySet) {
    for cap in rustix::thread::CapabilitySet::all().iter() {
        if keep.contains(cap) {
            continue;
        }
        // A capability the kernel does not know, or one already gone: nothing to do.
        let _ = rustix::thread::remove_capability_from_bounding_set(cap);
    }
}

/// Drops every capability but `keep` (effective, permitted, inheritable, ambient and bounding)
/// and sets `no_new_privs`.
fn drop_privileges(keep: rustix::thread::CapabilitySet) -> std::result::Result<(), String> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
    let held = rustix::thread::capabilities(None).map_err(|e| format!("capabilities: {e}"))?;
    if held.permitted.is_empty() && held.effective.is_empty() {
        return Ok(());
    }
    narrow_bounding_set(keep);
    let _ = rustix::thread::clear_ambient_capability_set();
    let kept = keep & held.permitted;
    let sets = CapabilitySets { effective: kept, permitted: kept, inheritable: CapabilitySet::empty() };
    rustix::thread::set_capabilities(None, sets).map_err(|e| format!("capabilities: {e}"))?;
    let left = rustix::thread::capabilities(None).map_err(|e| format!("capabilities: {e}"))?;
    if !(left.permitted - keep).is_empty() || !(left.effective - keep).is_empty() {
        return Err("capabilities remain after dropping them".into());
    }
    Ok(())
}
