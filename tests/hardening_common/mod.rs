//! Helpers for the hardening tests (connections that misbehave on purpose): relays
//! with small limits, a relay under a low open-file limit, a private CA for TLS, and
//! raw sockets that wait for the relay to close them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::common::{bin, drain, wait_for_line, RelayProc};

/// The channel every hardening relay has: unsigned, so tests post plain bodies.
pub const CHANNELS: &str = "[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"t\"]\n";

/// A relay with `[server]` lines `extra` and channel `c`.
pub fn relay(dir: &Path, extra: &str) -> RelayProc {
    RelayProc::start(dir, extra, CHANNELS)
}

/// Like [`relay`], with the open-file limit set to `soft`/`hard` before exec.
pub fn relay_with_nofile(dir: &Path, extra: &str, soft: u64, hard: u64) -> RelayProc {
    let config_path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{extra}\n\n{CHANNELS}\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&config_path, text).expect("write config");
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("HOOKRELAY_LOG", "hookrelay=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn relay");
    let stderr = Arc::new(Mutex::new(String::new()));
    drain(child.stderr.take().expect("stderr"), stderr.clone());
    let base = wait_for_line(
        child.stdout.take().expect("stdout"),
        "hookrelay listening on ",
    )
    .unwrap_or_else(|| panic!("relay did not start: {}", stderr.lock().expect("lock")));
    let addr = base.trim_start_matches("http://").parse().expect("address");
    RelayProc {
        child,
        addr,
        base,
        dir: dir.to_path_buf(),
        config_path,
        stderr,
    }
}

/// User plus system CPU time of a process, from `/proc/PID/stat`.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz.max(1))
}

/// Open descriptors of a process.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Reads until the peer closes (EOF or reset) or `within` passes. Returns what was
/// read, and how long after `since` the close came (None: still open at the end).
pub fn read_until_closed(
    s: &mut impl Read,
    since: Instant,
    within: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while since.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return (out, Some(since.elapsed())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return (out, Some(since.elapsed())),
        }
    }
    (out, None)
}

/// A TCP connection with a short read timeout, so reads can be bounded by a deadline.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    s
}

/// Writes and ignores failures (the relay may already have closed).
pub fn send(s: &mut impl Write, bytes: &[u8]) {
    let _ = s.write_all(bytes);
    let _ = s.flush();
}

/// A CA and a leaf for `127.0.0.1`, written as PEM files into `dir`.
pub struct Pki {
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hardening CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("leaf params");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    let pki = Pki {
        ca_pem: ca_cert.pem(),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&pki.cert, leaf_cert.pem()).expect("write cert");
    std::fs::write(&pki.key, leaf_key.serialize_pem()).expect("write key");
    pki
}

/// `[server.tls]` lines for `pki`, to append to a `[server]` section (must come last).
pub fn tls_section(pki: &Pki) -> String {
    format!(
        "\n[server.tls]\ncert = {:?}\nkey = {:?}\n",
        pki.cert.display().to_string(),
        pki.key.display().to_string()
    )
}

/// A blocking TLS client connection to `addr`, trusting only the test CA, handshake
/// done (HTTP/1.1, no ALPN).
pub fn tls_connect(
    addr: SocketAddr,
    pki: &Pki,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut tcp = connect(addr);
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("TLS handshake");
    }
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, tcp)
}
