//! Pieces of `bench-dataplane`: the hand-built, lab-shaped comparison paths (shell
//! scripts over `ip`, all in namespaces named with the run's prefix), a TCP
//! request/response ("ping-pong") server and paired client, and statistics.
//!
//! The hand-built paths have exactly the shape of a podnet lab, so that the only
//! difference measured is what podnet adds (routes and rules, never a hop):
//! - `hb-bridge`: one node namespace with a bridge `cni0` (10.10.1.1/24) and two pods
//!   on veths, default route via the bridge;
//! - `hb-hostgw`: a switch namespace with bridge `br0`, two node namespaces with `eth0`
//!   on it (192.168.77.1/.2), a `cni0` bridge and a pod on each, and a route to the
//!   other node's pod /24 via its node IP;
//! - `hb-vxlan`: the same underlay, plus flannel's static VXLAN scheme (device
//!   `flannel.1`, VNI 1, port 8472, nolearning, MTU 1450, `10.244.k.0/32`, an onlink
//!   route, a permanent neighbour and an FDB entry per remote node), pods at MTU 1450.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Message size of the ping-pong (as the anchor script: 64 bytes).
pub const RR_SIZE: usize = 64;
/// Round trips before measuring.
pub const RR_WARMUP: usize = 500;

/// A measured path: the client and server namespaces and the server address.
#[derive(Debug, Clone)]
pub struct NetPath {
    pub name: String,
    pub client_ns: String,
    pub server_ns: String,
    pub dst: String,
}

/// The shell script that builds the three hand-built paths under `p` (a prefix such
/// as `pnbd123-`). `set -e`: the first failure stops it.
pub fn build_script(p: &str) -> String {
    format!(
        r#"set -e
mk() {{ ip netns add "$1"; ip -n "$1" link set lo up; }}
pod() {{ # node bridge pod addr/len gw mtu hostveth
  mk "$3"; ip -n "$1" link add "$7" mtu "$6" type veth peer name eth0 mtu "$6" netns "$3"
  ip -n "$1" link set "$7" master "$2"; ip -n "$1" link set "$7" up
  ip -n "$3" addr add "$4" dev eth0; ip -n "$3" link set eth0 up; ip -n "$3" route add default via "$5"
}}
# hb-bridge
mk {p}bn; ip -n {p}bn link add cni0 type bridge; ip -n {p}bn addr add 10.10.1.1/24 dev cni0; ip -n {p}bn link set cni0 up
pod {p}bn cni0 {p}b1 10.10.1.2/24 10.10.1.1 1500 veth1
pod {p}bn cni0 {p}b2 10.10.1.3/24 10.10.1.1 1500 veth2
# the underlay of hb-hostgw and hb-vxlan: a switch bridge and two nodes each
for t in h v; do
  mk {p}${{t}}sw; ip -n {p}${{t}}sw link add br0 type bridge; ip -n {p}${{t}}sw link set br0 up
  for k in 1 2; do
    N={p}${{t}}n$k; mk $N
    ip -n {p}${{t}}sw link add port$k type veth peer name eth0 netns $N
    ip -n {p}${{t}}sw link set port$k master br0; ip -n {p}${{t}}sw link set port$k up
    ip -n $N addr add 192.168.77.$k/24 dev eth0; ip -n $N link set eth0 up
    ip netns exec $N sysctl -qw net.ipv4.ip_forward=1
  done
done
# hb-hostgw
for k in 1 2; do
  N={p}hn$k; ip -n $N link add cni0 type bridge; ip -n $N addr add 10.244.$k.1/24 dev cni0; ip -n $N link set cni0 up
  pod $N cni0 {p}hp$k 10.244.$k.2/24 10.244.$k.1 1500 veth0
done
ip -n {p}hn1 route add 10.244.2.0/24 via 192.168.77.2
ip -n {p}hn2 route add 10.244.1.0/24 via 192.168.77.1
# hb-vxlan
for k in 1 2; do
  N={p}vn$k
  ip -n $N link add flannel.1 address 0e:50:00:00:00:0$k type vxlan id 1 local 192.168.77.$k dev eth0 dstport 8472 nolearning
  ip -n $N link set flannel.1 mtu 1450; ip -n $N addr add 10.244.$k.0/32 dev flannel.1; ip -n $N link set flannel.1 up
  ip -n $N link add cni0 mtu 1450 type bridge; ip -n $N addr add 10.244.$k.1/24 dev cni0; ip -n $N link set cni0 up
  pod $N cni0 {p}vp$k 10.244.$k.2/24 10.244.$k.1 1450 veth0
done
ip -n {p}vn1 route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink
ip -n {p}vn1 neigh add 10.244.2.0 lladdr 0e:50:00:00:00:02 dev flannel.1 nud permanent
bridge -n {p}vn1 fdb add 0e:50:00:00:00:02 dev flannel.1 dst 192.168.77.2 self permanent
ip -n {p}vn2 route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
ip -n {p}vn2 neigh add 10.244.1.0 lladdr 0e:50:00:00:00:01 dev flannel.1 nud permanent
bridge -n {p}vn2 fdb add 0e:50:00:00:00:01 dev flannel.1 dst 192.168.77.1 self permanent
"#
    )
}

/// The hand-built paths `build_script(p)` makes.
pub fn paths(p: &str) -> Vec<NetPath> {
    vec![
        NetPath {
            name: "hb-bridge".into(),
            client_ns: format!("{p}b1"),
            server_ns: format!("{p}b2"),
            dst: "10.10.1.3".into(),
        },
        NetPath {
            name: "hb-hostgw".into(),
            client_ns: format!("{p}hp1"),
            server_ns: format!("{p}hp2"),
            dst: "10.244.2.2".into(),
        },
        NetPath {
            name: "hb-vxlan".into(),
            client_ns: format!("{p}vp1"),
            server_ns: format!("{p}vp2"),
            dst: "10.244.2.2".into(),
        },
    ]
}

/// Serves one ping-pong connection: echoes until the client closes. Bounded: the
/// accept waits at most `accept_timeout`, reads at most 30 s each. Prints `listening`
/// once bound (the caller waits for it).
#[allow(clippy::print_stdout)]
pub fn pp_server(addr: SocketAddr, accept_timeout: Duration) -> std::io::Result<()> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    println!("listening");
    std::io::stdout().flush()?;
    let deadline = Instant::now() + accept_timeout;
    let (mut c, _) = loop {
        match l.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no client connected",
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    };
    c.set_nonblocking(false)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = [0u8; 65536];
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        c.write_all(&buf[..n])?;
    }
}

/// iperf3, one TCP stream for `dur` seconds, client on CPU 0 and server on CPU 1:
/// (Gbit/s received, retransmits). Bounded by `timeout`.
pub fn iperf(client_ns: &str, server_ns: &str, dst: &str, dur: u64) -> anyhow::Result<(f64, f64)> {
    let mut server = Command::new("timeout")
        .args([&(dur + 30).to_string(), "ip", "netns", "exec", server_ns])
        .args([
            "taskset", "-c", "1", "iperf3", "-s", "-1", "-B", dst, "-p", "5201",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    let o = Command::new("timeout")
        .args([&(dur + 25).to_string(), "ip", "netns", "exec", client_ns])
        .args([
            "taskset", "-c", "0", "iperf3", "-c", dst, "-p", "5201", "-t",
        ])
        .arg(dur.to_string())
        .arg("-J")
        .output()?;
    let _ = server.kill();
    let _ = server.wait();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).with_context(|| {
        format!(
            "iperf3 {client_ns} -> {dst}: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })?;
    let end = &j["end"];
    let bps = end["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("iperf3 {client_ns} -> {dst}: {j}"))?;
    Ok((
        bps / 1e9,
        end["sum_sent"]["retransmits"].as_f64().unwrap_or(0.0),
    ))
}

/// Round trips per batch of the paired ping-pong.
pub const PAIR_BATCH: usize = 250;

/// Starts a ping-pong server in `ns` on `addr` pinned to `cpu` and waits until it
/// listens (bounded by the server's own accept timeout and `timeout 200`).
pub fn start_pp_server(
    me: &std::path::Path,
    ns: &str,
    addr: &str,
    cpu: u8,
) -> anyhow::Result<Child> {
    let mut server = Command::new("timeout")
        .args(["200", "ip", "netns", "exec", ns, "taskset", "-c"])
        .arg(cpu.to_string())
        .arg(me)
        .args(["pp-server", addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(out) = server.stdout.as_mut() {
        let mut b = [0u8; 10];
        let _ = std::io::Read::read(out, &mut b);
    }
    Ok(server)
}

/// Paired ping-pong (`pp-pair`): podnet's path `p` and the hand-built path `h`
/// alternate batches over two connections held open side by side, client on CPU 0,
/// both servers on `server_cpu`. Returns the p50 of each, in microseconds.
pub fn rr_pair(
    me: &std::path::Path,
    p: &NetPath,
    h: &NetPath,
    n: usize,
    server_cpu: u8,
) -> anyhow::Result<(f64, f64)> {
    let (pa, ha) = (format!("{}:5301", p.dst), format!("{}:5302", h.dst));
    let mut servers = vec![
        start_pp_server(me, &p.server_ns, &pa, server_cpu)?,
        start_pp_server(me, &h.server_ns, &ha, server_cpu)?,
    ];
    let o = Command::new("timeout")
        .args(["180", "taskset", "-c", "0"])
        .arg(me)
        .args([
            "pp-pair",
            &p.client_ns,
            &pa,
            &h.client_ns,
            &ha,
            &n.to_string(),
        ])
        .output();
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    let o = o?;
    let text = String::from_utf8_lossy(&o.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() != 2 {
        bail!(
            "ping-pong {} / {}: {text} {}",
            p.name,
            h.name,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok((v[0], v[1]))
}

/// One path's figures in one round: iperf3 Gbit/s and retransmits (NaN when not
/// measured), ping-pong p50 in microseconds cross-CPU ("x") and same-CPU ("s").
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    pub gbps: f64,
    pub retr: f64,
    pub p50x: f64,
    pub p50s: f64,
}

/// One round of a pair: the measured path `p` and its twin `h`. iperf3 for `dur`
/// seconds on each, one after the other, `p` first when `p_first` (skipped when `dur`
/// is 0), then the paired ping-pong of `nrt` round trips in both pinning modes.
pub fn measure_pair(
    me: &std::path::Path,
    p: &NetPath,
    h: &NetPath,
    dur: u64,
    nrt: usize,
    p_first: bool,
) -> anyhow::Result<(Figures, Figures)> {
    let nan = Figures {
        gbps: f64::NAN,
        retr: f64::NAN,
        ..Figures::default()
    };
    let (mut fp, mut fh) = (nan, nan);
    if dur > 0 {
        let order = if p_first {
            [(p, &mut fp), (h, &mut fh)]
        } else {
            [(h, &mut fh), (p, &mut fp)]
        };
        for (path, f) in order {
            (f.gbps, f.retr) = iperf(&path.client_ns, &path.server_ns, &path.dst, dur)?;
        }
    }
    (fp.p50x, fh.p50x) = rr_pair(me, p, h, nrt, 1)?;
    (fp.p50s, fh.p50s) = rr_pair(me, p, h, nrt, 0)?;
    Ok((fp, fh))
}

/// Interleaved ping-pong over two connections (paired comparison): after a warm-up on
/// each, `batches` rounds of `batch` round trips on one connection then on the other,
/// alternating which goes first, so that both see the same moments of the machine
/// (on a VM, cross-CPU wake-ups are bimodal over seconds). The latencies in
/// microseconds, per connection. Stops early after 120 s.
pub fn pp_pair(
    conns: &mut [TcpStream; 2],
    batches: usize,
    batch: usize,
) -> std::io::Result<[Vec<f64>; 2]> {
    let msg = [b'x'; RR_SIZE];
    let mut buf = [0u8; RR_SIZE];
    let mut rt = |s: &mut TcpStream| -> std::io::Result<()> {
        s.write_all(&msg)?;
        s.read_exact(&mut buf)
    };
    for c in conns.iter_mut() {
        c.set_nodelay(true)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        for _ in 0..RR_WARMUP {
            rt(c)?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lat = [
        Vec::with_capacity(batches * batch),
        Vec::with_capacity(batches * batch),
    ];
    for b in 0..batches {
        let order = if b % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            for _ in 0..batch {
                let t0 = Instant::now();
                rt(&mut conns[i])?;
                lat[i].push(t0.elapsed().as_secs_f64() * 1e6);
            }
        }
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(lat)
}

/// The `p`th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of unsorted values.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_median() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn every_namespace_carries_the_prefix() {
        let s = build_script("pnbd9-");
        // Namespaces are made only by `mk`, always with the prefix.
        for line in s.lines().filter(|l| l.contains("mk ")) {
            if let Some(arg) = line.split("mk ").nth(1) {
                if !arg.starts_with('"') && !arg.starts_with('$') {
                    assert!(arg.starts_with("pnbd9-"), "{line}");
                }
            }
        }
        for p in paths("pnbd9-") {
            assert!(p.client_ns.starts_with("pnbd9-") && p.server_ns.starts_with("pnbd9-"));
        }
    }

    #[test]
    fn paired_ping_pong_alternates_over_both_connections() {
        let mut servers = Vec::new();
        let mut conns = Vec::new();
        for _ in 0..2 {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            drop(l);
            servers.push(std::thread::spawn(move || {
                pp_server(addr, Duration::from_secs(5))
            }));
            std::thread::sleep(Duration::from_millis(100));
            conns.push(TcpStream::connect(addr).unwrap());
        }
        let mut conns: [TcpStream; 2] = conns.try_into().unwrap();
        let lat = pp_pair(&mut conns, 3, 10).unwrap();
        assert_eq!((lat[0].len(), lat[1].len()), (30, 30));
        drop(conns);
        for s in servers {
            s.join().unwrap().unwrap();
        }
    }
}
