//! The query worker's confinement proven from inside a confined process (HIC-S13): a probe
//! confined exactly as the worker confines itself ([`kura_query::confine::confine_self`]) tries
//! to read a file outside its paths, write into its read-only data, connect to a port listening
//! on the host's loopback, open any socket, and allocate past its memory limit.
//!
//! This test has its own `main` (`harness = false`): each probe is this same program started
//! again with `probe KIND DIR`, so that it is one thread when it confines itself, as the
//! worker is.

use kura_query::confine::{Confinement, Mechanism, confine_self};
use std::path::Path;
use std::process::{Command, Output};

const MEMORY: u64 = 256 << 20;

fn confinement(dir: &Path) -> Confinement {
    Confinement {
        read_only: vec![dir.join("data")],
        read_write: vec![dir.join("scratch")],
        memory_bytes: MEMORY,
        cpu_secs: 60,
        cpu_hard_secs: 0,
        file_bytes: 1 << 20,
        allow_without: Vec::new(),
        user: None,
        read_search: false,
    }
}

/// The user the "user" probe becomes when started by root.
const PROBE_UID: u32 = kura_query::worker::WORKER_UID_BASE + 77;

/// The child: confine, then try one thing and print what happened.
fn probe(kind: &str, dir: &Path, port: &str) -> i32 {
    let mut c = confinement(dir);
    if kind == "user" {
        c.read_write.push(dir.join("own"));
        c.user = Some((PROBE_UID, PROBE_UID));
        c.read_search = true;
    }
    let report = match confine_self(&c) {
        Ok(r) => r,
        Err(e) => {
            println!("not confined: {e}");
            return 3;
        }
    };
    for line in report.lines() {
        println!("{line}");
    }
    let outcome = |what: &str, r: std::io::Result<()>| match r {
        Ok(()) => println!("{what}: allowed"),
        Err(e) => println!("{what}: refused ({})", e.kind()),
    };
    match kind {
        "files" => {
            outcome("read data", std::fs::read(dir.join("data/part.parquet")).map(drop));
            outcome("read outside", std::fs::read(dir.join("secret.key")).map(drop));
            outcome("read /etc/passwd", std::fs::read("/etc/passwd").map(drop));
            outcome("read /proc/self/environ", std::fs::read("/proc/self/environ").map(drop));
            outcome("write data", std::fs::write(dir.join("data/part.parquet"), b"x"));
            outcome("create in data", std::fs::write(dir.join("data/new"), b"x"));
            outcome("write scratch", std::fs::write(dir.join("scratch/tmp"), b"x"));
            outcome("list outside", std::fs::read_dir(dir).map(drop));
            // Landlock does not cover modes and owners; the worker keeps uid 0: seccomp does.
            use std::os::unix::fs::PermissionsExt;
            outcome("chmod outside", std::fs::set_permissions(dir.join("secret.key"), std::fs::Permissions::from_mode(0o4755)));
            outcome("chown outside", std::os::unix::fs::chown(dir.join("secret.key"), Some(0), Some(0)));
            outcome("start a process", std::process::Command::new("/bin/true").status().map(drop));
        }
        "network" => {
            outcome("connect loopback", std::net::TcpStream::connect(format!("127.0.0.1:{port}")).map(drop));
            outcome("udp socket", std::net::UdpSocket::bind("127.0.0.1:0").map(drop));
            outcome("listen", std::net::TcpListener::bind("127.0.0.1:0").map(drop));
            // A socket pair is allowed (the runtime uses one), sending from it to a path is not.
            let host = dir.join("host.sock");
            outcome(
                "datagram to a host socket",
                std::os::unix::net::UnixDatagram::pair().and_then(|(a, _)| a.send_to(b"row 42", &host).map(drop)),
            );
        }
        "user" => {
            // (/proc is out of reach under Landlock: the system calls say it.)
            println!("uid {} euid {}", rustix::process::getuid().as_raw(), rustix::process::geteuid().as_raw());
            let caps = rustix::thread::capabilities(None).map(|c| (c.effective.bits(), c.permitted.bits())).unwrap_or((u64::MAX, u64::MAX));
            println!("capabilities effective {:#x} permitted {:#x}", caps.0, caps.1);
            outcome("read data", std::fs::read(dir.join("data/part.parquet")).map(drop));
            outcome("write own", std::fs::write(dir.join("own/x"), b"x"));
            // The scratch directory is root's: the worker's user may not write there.
            outcome("write root's", std::fs::write(dir.join("scratch/y"), b"x"));
        }
        "memory" => {
            // Four times the limit, touched so that it is really used.
            let mut v: Vec<u8> = Vec::with_capacity((MEMORY * 4) as usize);
            v.resize((MEMORY * 4) as usize, 1);
            println!("allocated {}", v.len());
        }
        _ => return 2,
    }
    0
}

fn run_probe(kind: &str, dir: &Path, port: u16) -> (Output, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["probe", kind, &dir.display().to_string(), &port.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        std::process::exit(probe(&args[2], Path::new(&args[3]), &args[4]));
    }
    // `cargo test` passes its own flags; a filter that names another test skips this one.
    if args.iter().skip(1).any(|a| !a.starts_with('-') && !"confine".contains(a.as_str())) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("scratch")).unwrap();
    std::fs::write(dir.path().join("data/part.parquet"), b"PAR1 encrypted").unwrap();
    std::fs::write(dir.path().join("secret.key"), b"master key").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();

    // Every mechanism is on (the report is what `kura workspace status` prints).
    let (out, text) = run_probe("files", dir.path(), port);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for m in Mechanism::ALL {
        assert!(text.contains(&format!("{}: on", m.name())), "{} is not on:\n{text}", m.name());
    }
    // Files: the data read-only, the scratch directory writable, nothing else reachable.
    for (what, verdict) in [
        ("read data", "allowed"),
        ("read outside", "refused"),
        ("read /etc/passwd", "refused"),
        ("read /proc/self/environ", "refused"),
        ("write data", "refused"),
        ("create in data", "refused"),
        ("write scratch", "allowed"),
        ("list outside", "refused"),
        ("chmod outside", "refused"),
        ("chown outside", "refused"),
        ("start a process", "refused"),
    ] {
        assert!(text.contains(&format!("{what}: {verdict}")), "{what} must be {verdict}:\n{text}");
    }
    assert_eq!(std::fs::read(dir.path().join("data/part.parquet")).unwrap(), b"PAR1 encrypted", "the data is unchanged");

    // Network: a port listening on the host's loopback cannot be reached, no socket opens.
    let (out, text) = run_probe("network", dir.path(), port);
    assert!(out.status.success(), "{text}");
    let host = std::os::unix::net::UnixDatagram::bind(dir.path().join("host.sock")).unwrap();
    host.set_nonblocking(true).unwrap();
    for what in ["connect loopback", "udp socket", "listen", "datagram to a host socket"] {
        assert!(text.contains(&format!("{what}: refused")), "{what} must be refused:\n{text}");
    }
    assert!(listener.accept().is_err(), "nothing connected to the host's port");
    assert!(host.recv(&mut [0u8; 64]).is_err(), "nothing reached the host's socket");

    // The user (issue 16): started by root, the worker becomes a user of its own with only
    // CAP_DAC_READ_SEARCH; it reads its data, writes where that user owns a directory, and
    // not where root does. Started by anyone else, it stays that user with no capability.
    std::fs::create_dir(dir.path().join("own")).unwrap();
    let root = std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:\t0\t"));
    if root {
        std::os::unix::fs::chown(dir.path().join("own"), Some(PROBE_UID), Some(PROBE_UID)).unwrap();
    }
    let (out, text) = run_probe("user", dir.path(), port);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    if root {
        assert!(text.contains(&format!("uid {PROBE_UID} euid {PROBE_UID}")), "{text}");
        assert!(text.contains("capabilities effective 0x4 permitted 0x4"), "{text}");
        assert!(text.contains(&format!("user: uid {PROBE_UID} gid {PROBE_UID}, only CAP_DAC_READ_SEARCH")), "{text}");
        for (what, verdict) in [("read data", "allowed"), ("write own", "allowed"), ("write root's", "refused")] {
            assert!(text.contains(&format!("{what}: {verdict}")), "{what} must be {verdict}:\n{text}");
        }
    } else {
        assert!(text.contains("capabilities effective 0x0 permitted 0x0") && text.contains(", no capabilities"), "{text}");
    }

    // Memory: stopped at its limit by a failed allocation (SIGABRT with Rust's message, which
    // the worker's parent reports as the memory limit), never by the kernel's OOM killer.
    let (out, text) = run_probe("memory", dir.path(), port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(6), "{text}\n{stderr}");
    assert!(stderr.contains("memory allocation of"), "{stderr}");
    assert!(!text.contains("allocated"), "{text}");
    println!("confine: files, network, user and memory probes behaved as required");
}
