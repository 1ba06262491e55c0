//! A real deployment shape in Linux network namespaces, for the network-fault tests.
//!
//! ```text
//!  agent ns (A)                router ns (N)                        root ns (the test)
//!  10.B.S.2 ──veth── 10.B.S.1 │ ip_forward, MASQUERADE │ 10.B.S+1.1 ──veth── 10.B.S+1.2
//!  default via 10.B.S.1        nft faults, conntrack                 relay, target, proxy
//! ```
//!
//! The agent reaches the relay only outbound, through the router's NAT (an iptables
//! MASQUERADE out of the root-side interface); the root namespace has no route back to
//! the agent's subnet, so nothing can dial in. Faults are nft rules in N on one TCP port
//! (the relay's, or the delay proxy's), so the agent's traffic to its local service
//! passes untouched. Names and subnets are unique per process and per topology, so the
//! tests of one binary run in parallel; [`Net`]'s `Drop` removes everything, also when
//! an assertion failed.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Topologies built by this process so far (part of every name and subnet).
static BUILT: AtomicU32 = AtomicU32::new(0);

/// The nft table (in N) that holds the fault rules.
const FAULT_TABLE: &str = "hookrelay_faults";

/// One agent namespace behind one NAT router namespace.
pub struct Net {
    /// The agent's namespace.
    pub agent_ns: String,
    /// The router's namespace.
    pub router_ns: String,
    /// The root namespace's end of the router link.
    root_veth: String,
    /// The agent's interface (created in the root namespace, then moved).
    agent_veth: String,
    /// The router's interface towards the root namespace (the NAT's outside).
    pub router_wan: String,
    /// The router's interface towards the agent.
    pub router_lan: String,
    /// The agent's address.
    pub agent_ip: String,
    /// The router's outside address (what the relay sees as the agent's peer).
    pub router_wan_ip: String,
    /// The root namespace's address on the link: relay, target and proxy bind here.
    pub host_ip: String,
    /// `10.B.S+1`: the root side's /24, for extra host addresses.
    wan_prefix: String,
    /// `/etc/netns/<agent_ns>`, which `ip netns exec` bind-mounts over `/etc`.
    etc_dir: PathBuf,
}

/// Runs `args`, returning stdout, or stderr as the error. Panics when the program is not
/// installed, naming it and its Debian package (a missing tool is a failure, not a skip).
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}` ({e}): {}", args[0], install_hint(args)));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Like [`run`], failing the test on an error.
pub fn must(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Which package provides the tool `args` runs (possibly through `ip netns exec`).
fn install_hint(args: &[&str]) -> String {
    let tool = match args {
        ["ip", "netns", "exec", _, tool, ..] => tool,
        [tool, ..] => tool,
        [] => "?",
    };
    let package = match tool {
        "ip" | "tc" => "iproute2",
        "nft" => "nftables",
        "iptables" => "iptables",
        "conntrack" => "conntrack",
        "sysctl" => "procps",
        other => other,
    };
    format!("the network-fault tests need `{tool}`: apt-get install {package}")
}

/// Why this machine cannot build namespaces (the tests skip then), or None; probed
/// once per process.
fn unsupported() -> Option<String> {
    static PROBED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PROBED.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    let probe = format!("hrnf-probe-{}", std::process::id());
    match run(&["ip", "netns", "add", &probe]) {
        Ok(_) => {
            let _ = run(&["ip", "netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("network namespaces are not permitted here: {e}")),
    }
}

/// The second octet for this topology: one whose 10.B.x.0 routes are all unused here.
fn free_octet(slot: u32) -> u32 {
    let routes = must(&["ip", "-4", "route", "show", "table", "all"]);
    let start = 100 + std::process::id() % 100;
    (0..100)
        .map(|i| 100 + (start + i) % 100)
        .find(|b| {
            let taken = |s: u32| routes.contains(&format!("10.{b}.{s}."));
            !taken(2 * slot) && !taken(2 * slot + 1)
        })
        .expect("a free 10.B.x.0/24 pair")
}

impl Net {
    /// Builds the topology, or says why this machine cannot (the caller skips).
    pub fn build() -> Result<Net, String> {
        if let Some(why) = unsupported() {
            return Err(why);
        }
        for tool in [["nft", "--version"], ["iptables", "--version"]] {
            must(&tool);
        }
        must(&["conntrack", "--version"]);
        let slot = BUILT.fetch_add(1, Ordering::SeqCst);
        assert!(slot < 120, "too many topologies in one process");
        let b = free_octet(slot);
        let id = format!("{}x{slot}", std::process::id());
        let (lan, wan) = (
            format!("10.{b}.{}", 2 * slot),
            format!("10.{b}.{}", 2 * slot + 1),
        );
        let net = Net {
            agent_ns: format!("hrnf{id}-agent"),
            router_ns: format!("hrnf{id}-router"),
            root_veth: format!("hn{id}h"),
            agent_veth: format!("hn{id}a"),
            router_wan: format!("hn{id}w"),
            router_lan: format!("hn{id}l"),
            agent_ip: format!("{lan}.2"),
            router_wan_ip: format!("{wan}.1"),
            host_ip: format!("{wan}.2"),
            wan_prefix: wan,
            etc_dir: PathBuf::from(format!("/etc/netns/hrnf{id}-agent")),
        };
        // From here on, Drop cleans up whatever part was built.
        net.wire(&lan);
        Ok(net)
    }

    /// Creates namespaces, links, addresses, routes, forwarding, NAT and the fault table.
    fn wire(&self, lan: &str) {
        let (a, n) = (&self.agent_ns, &self.router_ns);
        let (av, rl, rw, hv) = (
            &self.agent_veth,
            &self.router_lan,
            &self.router_wan,
            &self.root_veth,
        );
        for line in [
            format!("ip netns add {a}"),
            format!("ip netns add {n}"),
            format!("ip link add {av} type veth peer name {rl}"),
            format!("ip link set {av} netns {a}"),
            format!("ip link set {rl} netns {n}"),
            format!("ip link add {hv} type veth peer name {rw}"),
            format!("ip link set {rw} netns {n}"),
            format!("ip -n {a} addr add {}/24 dev {av}", self.agent_ip),
            format!("ip -n {a} link set lo up"),
            format!("ip -n {a} link set {av} up"),
            format!("ip -n {a} route add default via {lan}.1"),
            format!("ip -n {n} addr add {lan}.1/24 dev {rl}"),
            format!("ip -n {n} addr add {}/24 dev {rw}", self.router_wan_ip),
            format!("ip -n {n} link set lo up"),
            format!("ip -n {n} link set {rl} up"),
            format!("ip -n {n} link set {rw} up"),
            format!("ip addr add {}/24 dev {hv}", self.host_ip),
            format!("ip link set {hv} up"),
            format!("ip netns exec {n} sysctl -qw net.ipv4.ip_forward=1"),
            // The NAT: everything leaving towards the root namespace takes the router's
            // address, as behind a home or office router.
            format!("ip netns exec {n} iptables -t nat -A POSTROUTING -o {rw} -j MASQUERADE"),
        ] {
            must(&line.split_whitespace().collect::<Vec<_>>());
        }
        self.nft(&format!(
            "add table inet {FAULT_TABLE}\n\
             add chain inet {FAULT_TABLE} forward {{ type filter hook forward priority 0; policy accept; }}\n\
             add chain inet {FAULT_TABLE} input {{ type filter hook input priority 0; policy accept; }}"
        ));
        std::fs::create_dir_all(&self.etc_dir).expect("create /etc/netns/<ns>");
    }

    /// Runs `args` inside the router namespace.
    pub fn in_router(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", self.router_ns.as_str()];
        full.extend_from_slice(args);
        must(&full)
    }

    /// Sets a (namespaced) sysctl in the router.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.in_router(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Applies an nft script in the router.
    fn nft(&self, script: &str) {
        self.in_router(&["nft", script]);
    }

    /// The command prefix that runs a program in the agent's namespace.
    pub fn agent_wrapper(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.agent_ns]
            .map(String::from)
            .to_vec()
    }

    /// A silent partition of TCP `port`: every packet to or from it is dropped in the
    /// router, both ways, so neither end gets a RST or a FIN.
    pub fn partition(&self, port: u16) {
        self.add_forward_rule(&format!("tcp dport {port} counter drop"));
        self.add_forward_rule(&format!("tcp sport {port} counter drop"));
    }

    /// Drops `percent` % of the packets to and from TCP `port`, at random, both ways.
    pub fn lose(&self, port: u16, percent: u32) {
        for dir in ["dport", "sport"] {
            self.add_forward_rule(&format!(
                "tcp {dir} {port} numgen random mod 100 < {percent} counter drop"
            ));
        }
    }

    /// Silently drops, both ways, every connection to `ip:port` the router tracks now
    /// (by the client's port, from its NAT mappings): their path vanished. New
    /// connections still pass, and get whatever `ip:port` answers now.
    pub fn blackhole_current(&self, ip: &str, port: u16) -> usize {
        let ports = self.mapped_client_ports(port);
        for client in &ports {
            self.add_forward_rule(&format!(
                "ip daddr {ip} tcp dport {port} tcp sport {client} counter drop"
            ));
            self.add_forward_rule(&format!(
                "ip saddr {ip} tcp sport {port} tcp dport {client} counter drop"
            ));
        }
        ports.len()
    }

    /// The client ports of the established connections to `port` (original direction).
    fn mapped_client_ports(&self, port: u16) -> Vec<u16> {
        let listing =
            self.in_router(&["conntrack", "-L", "-p", "tcp", "--dport", &port.to_string()]);
        listing
            .lines()
            .filter(|l| l.contains("ESTABLISHED"))
            .filter_map(|l| {
                let rest = l.split("sport=").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    /// A strict NAT: packets of a flow the router has no mapping for (after the mapping
    /// expired or was flushed) are dropped silently instead of being picked up again
    /// mid-stream (Linux's default, `nf_conntrack_tcp_loose=1`) or answered with a RST.
    /// Only for TCP `port`, so that other flows are unaffected.
    pub fn strict_nat(&self, port: u16) {
        self.sysctl("net.netfilter.nf_conntrack_tcp_loose", "0");
        self.add_forward_rule(&format!("ct state invalid tcp dport {port} counter drop"));
        self.nft(&format!(
            "add rule inet {FAULT_TABLE} input ct state invalid tcp sport {port} counter drop"
        ));
    }

    fn add_forward_rule(&self, rule: &str) {
        self.nft(&format!("add rule inet {FAULT_TABLE} forward {rule}"));
    }

    /// Removes every fault rule: the path is back.
    pub fn heal(&self) {
        self.nft(&format!(
            "flush chain inet {FAULT_TABLE} forward\nflush chain inet {FAULT_TABLE} input"
        ));
    }

    /// Packets dropped by the fault rules so far (their counters, summed).
    pub fn dropped_packets(&self) -> u64 {
        let listing = self.in_router(&["nft", "list", "table", "inet", FAULT_TABLE]);
        listing
            .split("counter packets ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// TCP segments the agent's namespace retransmitted (`RetransSegs` of its
    /// `/proc/net/snmp`; only the agent's connections live there).
    pub fn agent_retransmits(&self) -> u64 {
        let snmp = must(&[
            "ip",
            "netns",
            "exec",
            &self.agent_ns,
            "cat",
            "/proc/net/snmp",
        ]);
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
            panic!("no Tcp lines in /proc/net/snmp:\n{snmp}");
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "RetransSegs")
            .and_then(|(_, v)| v.parse().ok())
            .expect("RetransSegs")
    }

    /// The router's NAT mappings (conntrack entries) for TCP connections to `port`.
    pub fn mappings(&self, port: u16) -> usize {
        let port = port.to_string();
        let listing = self.in_router(&["conntrack", "-L", "-p", "tcp", "--dport", &port]);
        listing
            .lines()
            .filter(|l| l.contains("ESTABLISHED"))
            .count()
    }

    /// Forgets every NAT mapping of the router (what an expiry does to an idle one).
    pub fn flush_mappings(&self) {
        self.in_router(&["conntrack", "-F"]);
    }

    /// Adds `10.B.S+1.<last>` to the root namespace's side; returns it.
    pub fn add_host_address(&self, last: u8) -> String {
        let ip = format!("{}.{last}", self.wan_prefix);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            &self.root_veth,
        ]);
        ip
    }

    /// The agent namespace's `/etc/hosts` (what its resolver answers): `name` is at
    /// `ip`. Written in place, because `ip netns exec` bind-mounted this very file over
    /// the agent's `/etc/hosts` and a rename would leave the agent on the old inode.
    pub fn set_host(&self, name: &str, ip: &str) {
        let path = self.etc_dir.join("hosts");
        std::fs::write(&path, format!("127.0.0.1 localhost\n{ip} {name}\n")).expect("write hosts");
    }

    /// Tries to delay every packet to and from TCP `port` by `ms` with `tc netem` on
    /// both router interfaces (a prio qdisc whose third band is netem, and u32 filters
    /// steering the port into it). False when the kernel has no netem.
    pub fn try_netem_delay(&self, port: u16, ms: u32) -> Result<(), String> {
        let n = self.router_ns.as_str();
        // Does the kernel have netem at all? (Probed on the router's loopback.)
        run(&[
            "tc", "-n", n, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])?;
        run(&["tc", "-n", n, "qdisc", "del", "dev", "lo", "root"])?;
        let delay = format!("{ms}ms");
        for (dev, field) in [(&self.router_wan, "dport"), (&self.router_lan, "sport")] {
            run(&[
                "tc", "-n", n, "qdisc", "add", "dev", dev, "root", "handle", "1:", "prio",
            ])?;
            let netem = [
                "tc", "-n", n, "qdisc", "add", "dev", dev, "parent", "1:3", "handle", "30:",
            ];
            let mut args = netem.to_vec();
            args.extend_from_slice(&["netem", "delay", &delay]);
            if let Err(e) = run(&args) {
                let _ = run(&["tc", "-n", n, "qdisc", "del", "dev", dev, "root"]);
                return Err(e);
            }
            let port = port.to_string();
            run(&[
                "tc", "-n", n, "filter", "add", "dev", dev, "parent", "1:0", "protocol", "ip",
                "u32", "match", "ip", field, &port, "0xffff", "flowid", "1:3",
            ])?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting the root end removes its peer at once; namespace deletion is lazy
        // (the kernel tears a namespace down in the background), and a leftover veth in
        // the root namespace would keep its address and route.
        let _ = run(&["ip", "link", "del", &self.root_veth]);
        let _ = run(&["ip", "link", "del", &self.agent_veth]);
        let _ = run(&["ip", "netns", "del", &self.agent_ns]);
        let _ = run(&["ip", "netns", "del", &self.router_ns]);
        let _ = std::fs::remove_dir_all(&self.etc_dir);
    }
}
