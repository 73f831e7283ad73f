//! kura-bench: the project's load generator (issue 3, "Performance").
//!
//! `kura-bench forward` measures how fast a Fluent Forward server takes in records the way
//! fluentd's `out_forward` delivers them: each connection sends PackedForward chunks with
//! exactly fluentd's bytes (`shared/spec/fluent.md` §2b.2: `0x93`, the tag, the entries as
//! str32, then `{"size", "compressed", "chunk"}`), optionally gzip-compressed as several
//! concatenated members (§1.2) and optionally after the shared-key handshake (§1.6).
//!
//! It reports records per second, MB/s of record payload (the uncompressed msgpack entries,
//! 1 MB = 10^6 bytes), the number of chunks, and with `--ack` the latency from the start of
//! a chunk's write to the arrival of its ack (p50/p99/max). With `--ack` only acked chunks
//! count, each ack is checked byte for byte and in order, and at most `--window` chunks are
//! in flight per connection; without it the generator writes as fast as the socket takes.
//!
//! Chunks are built once up front so the time goes to sockets, not encoding; each send
//! patches a unique chunk id into its fixed-length field (servers dedup chunk ids, §1.4).
//!
//! `--rate N` paces the run to N records per second in total (0, the default, sends as fast
//! as the server takes them): the connections take turns on one schedule of whole chunks,
//! so a steady source can be held below saturation while something else is measured (the
//! replica lag of `benches/repl-lag.sh`). A chunk that falls behind its slot goes out at
//! once; the report then shows an achieved rate below the target.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use flate2::{write::GzEncoder, Compression};
use kura::forward::handshake;
use kura::forward::msgpack::{self, Reader, Scan, Scanner, Value};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

const USAGE: &str = "usage: kura-bench forward [--addr 127.0.0.1:24224] [--conns 2] \
[--batch 1000] [--ack] [--gzip] [--gzip-members K] [--duration SECS] [--record-size 150] \
[--window 4] [--rate RECORDS_PER_S] [--tag bench.access] [--shared-key K] [--hostname H] \
[--username U] [--password P] [--json]";

/// How long to wait for one ack before calling the run failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The command line of `kura-bench forward`.
#[derive(Debug, Clone)]
struct Opts {
    addr: String,
    conns: usize,
    batch: usize,
    ack: bool,
    gzip_members: usize, // 0 = no compression
    duration: Duration,
    record_size: usize,
    window: usize,
    rate: u64, // records per second over all connections; 0 = unpaced
    tag: String,
    shared_key: Option<String>,
    hostname: String,
    username: String,
    password: String,
    json: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Opts> {
    if args.next().as_deref() != Some("forward") {
        bail!("{USAGE}");
    }
    let mut o = Opts {
        addr: "127.0.0.1:24224".into(),
        conns: 2,
        batch: 1000,
        ack: false,
        gzip_members: 0,
        duration: Duration::from_secs(10),
        record_size: 150,
        window: 4,
        rate: 0,
        tag: "bench.access".into(),
        shared_key: None,
        hostname: "kura-bench".into(),
        username: String::new(),
        password: String::new(),
        json: false,
    };
    let mut gzip = false;
    let mut members = 1;
    while let Some(flag) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
        };
        let num = |s: String| s.parse::<usize>().with_context(|| format!("{flag}: {s:?}"));
        match flag.as_str() {
            "--addr" => o.addr = val()?,
            "--conns" => o.conns = num(val()?)?.max(1),
            "--batch" => o.batch = num(val()?)?.max(1),
            "--ack" => o.ack = true,
            "--gzip" => gzip = true,
            "--gzip-members" => members = num(val()?)?.max(1),
            "--duration" => o.duration = Duration::from_secs_f64(val()?.parse()?),
            "--record-size" => o.record_size = num(val()?)?,
            "--window" => o.window = num(val()?)?.max(1),
            "--rate" => o.rate = num(val()?)? as u64,
            "--tag" => o.tag = val()?,
            "--shared-key" => o.shared_key = Some(val()?),
            "--hostname" => o.hostname = val()?,
            "--username" => o.username = val()?,
            "--password" => o.password = val()?,
            "--json" => o.json = true,
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    if gzip {
        o.gzip_members = members.min(o.batch); // every member holds at least one record
    }
    Ok(o)
}

// ---- CHUNKS ----

/// One pre-built PackedForward frame.
#[derive(Debug, Clone)]
struct Chunk {
    bytes: Vec<u8>,
    records: u64,
    /// Bytes of uncompressed entries (the record payload).
    payload: u64,
    /// Where the 24 base64 characters of the chunk id start, when acks are on.
    id_at: Option<usize>,
}

const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 ",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 ",
    "curl/8.5.0 ",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0 ",
];
const PATHS: [&str; 5] = [
    "/api/v1/items/",
    "/static/js/app.",
    "/login?next=/home/",
    "/",
    "/search?q=",
];

/// Appends one access-log record (fluentd's apache2 parser fields) of about `size` bytes;
/// the agent string is cut or stretched to reach the size.
fn put_record(out: &mut Vec<u8>, rng: &mut SmallRng, size: usize) {
    let start = out.len();
    msgpack::put_map_len(out, 8);
    let kv = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
        msgpack::put_str(out, k.as_bytes());
        msgpack::put_str(out, v);
    };
    let host = format!(
        "10.{}.{}.{}",
        rng.gen::<u8>(),
        rng.gen::<u8>(),
        rng.gen_range(1..255)
    );
    kv(out, "host", host.as_bytes());
    kv(
        out,
        "user",
        if rng.gen_ratio(1, 10) { b"alice" } else { b"-" },
    );
    let method = ["GET", "GET", "GET", "POST", "PUT", "DELETE"][rng.gen_range(0..6)];
    kv(out, "method", method.as_bytes());
    let path = format!(
        "{}{}",
        PATHS[rng.gen_range(0..PATHS.len())],
        rng.gen_range(0..100_000)
    );
    kv(out, "path", path.as_bytes());
    msgpack::put_str(out, b"code");
    msgpack::put_uint(
        out,
        [200, 200, 200, 201, 204, 304, 404, 500][rng.gen_range(0..8)],
    );
    msgpack::put_str(out, b"size");
    msgpack::put_uint(out, rng.gen_range(0..200_000));
    kv(
        out,
        "referer",
        if rng.gen() {
            b"-"
        } else {
            b"https://example.com/"
        },
    );
    msgpack::put_str(out, b"agent");
    let used = out.len() - start + 2; // + the agent's str header (str8 at most here)
    let agent = AGENTS[rng.gen_range(0..AGENTS.len())].bytes().cycle();
    let agent: Vec<u8> = agent.take(size.saturating_sub(used).max(4)).collect();
    msgpack::put_str(out, &agent);
}

/// Builds one chunk of `batch` records, deterministic for a given `seed` and `secs`.
fn build_chunk(o: &Opts, seed: u64, secs: u32) -> anyhow::Result<Chunk> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut entries = Vec::with_capacity(o.batch * (o.record_size + 16));
    // Entry boundaries, to split the gzip members between records as fluentd's appends do.
    let mut bounds = Vec::with_capacity(o.batch);
    for i in 0..o.batch {
        msgpack::put_array_len(&mut entries, 2);
        msgpack::put_event_time(
            &mut entries,
            secs,
            (i as u32).wrapping_mul(997) % 1_000_000_000,
        );
        put_record(&mut entries, &mut rng, o.record_size);
        bounds.push(entries.len());
    }
    let body = if o.gzip_members == 0 {
        entries.clone()
    } else {
        let mut body = Vec::new();
        let mut from = 0;
        for m in 1..=o.gzip_members {
            // Members end on record edges (members <= batch, so each holds a record).
            let to = match m == o.gzip_members {
                true => entries.len(),
                false => bounds[o.batch * m / o.gzip_members - 1],
            };
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(&entries[from..to])?;
            body.extend_from_slice(&gz.finish()?);
            from = to;
        }
        body
    };
    let mut out = Vec::with_capacity(body.len() + o.tag.len() + 64);
    out.push(0x93);
    msgpack::put_str(&mut out, o.tag.as_bytes());
    // fluentd always writes the entries as str32, even gzip data (§2b.2 step 4).
    out.push(0xdb);
    out.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
    out.extend_from_slice(&body);
    msgpack::put_map_len(&mut out, if o.ack { 3 } else { 2 });
    msgpack::put_str(&mut out, b"size");
    msgpack::put_uint(&mut out, o.batch as u64);
    msgpack::put_str(&mut out, b"compressed");
    msgpack::put_str(&mut out, if o.gzip_members > 0 { b"gzip" } else { b"text" });
    let mut id_at = None;
    if o.ack {
        // Ruby's Base64.encode64 of 16 bytes: 24 characters and a newline, str8 fixstr B9.
        msgpack::put_str(&mut out, b"chunk");
        out.push(0xb9);
        id_at = Some(out.len());
        out.extend_from_slice(&[b'A'; 24]);
        out.push(b'\n');
    }
    Ok(Chunk {
        bytes: out,
        records: o.batch as u64,
        payload: entries.len() as u64,
        id_at,
    })
}

/// Encodes standard base64 with padding (RFC 4648 §4) into `dst`, which must hold
/// `4 * ceil(src.len() / 3)` bytes.
fn base64_into(src: &[u8], dst: &mut [u8]) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (i, c) in src.chunks(3).enumerate() {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        let d = &mut dst[4 * i..4 * i + 4];
        for (j, slot) in d.iter_mut().enumerate() {
            *slot = if j <= c.len() {
                ABC[(n >> (18 - 6 * j) & 63) as usize]
            } else {
                b'='
            };
        }
    }
}

/// Writes a chunk id unique to this run, connection and send into the chunk's id field and
/// returns the ack the server must send back: `{"ack": <the 25 bytes>}` (§1.5).
fn patch_id(chunk: &mut Chunk, run: [u8; 6], conn: u16, counter: u64) -> Option<Vec<u8>> {
    let at = chunk.id_at?;
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&run);
    id[6..8].copy_from_slice(&conn.to_be_bytes());
    id[8..].copy_from_slice(&counter.to_be_bytes());
    base64_into(&id, &mut chunk.bytes[at..at + 24]);
    let mut ack = vec![0x81];
    msgpack::put_str(&mut ack, b"ack");
    msgpack::put_str(&mut ack, &chunk.bytes[at..at + 25]);
    Some(ack)
}

// ---- PACING ----

/// Returns when chunk `k` of connection `idx` is due, counted from the start of the run, or
/// `None` when the run is unpaced (`rate` 0).
///
/// The connections take turns: chunk `k` of connection `idx` is chunk `k * conns + idx` of
/// one schedule on which every chunk is worth `batch / rate` seconds, so the total rate is
/// `rate` whatever the number of connections and the sends are spread evenly between them.
/// The slot is computed from the start rather than from the previous send, so timer slack
/// does not accumulate into a lower rate.
fn due(k: u64, idx: usize, conns: usize, batch: usize, rate: u64) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let slot = k as u128 * conns as u128 + idx as u128;
    let nanos = slot * batch as u128 * 1_000_000_000 / rate as u128;
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Waits for chunk `k`'s slot; returns false when the slot falls at or after the deadline,
/// so a paced run sends no chunk late and takes in `rate * duration` records. A paced run
/// then idles until the deadline, so its achieved rate is over the whole run even when a
/// low rate leaves the last slot long before the end.
async fn wait_slot(o: &Opts, idx: u16, k: u64, start: Instant, deadline: Instant) -> bool {
    match due(k, idx as usize, o.conns, o.batch, o.rate) {
        Some(at) if start + at >= deadline => {
            tokio::time::sleep_until(deadline.into()).await;
            false
        }
        Some(at) => {
            tokio::time::sleep_until((start + at).into()).await;
            true
        }
        None => Instant::now() < deadline,
    }
}

// ---- CONNECTIONS ----

/// Reads one complete msgpack value, keeping any bytes after it in `buf`.
async fn read_value<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let mut scan = Scanner::new();
    loop {
        if !buf.is_empty() {
            if let Scan::Complete(n) = scan.scan(buf)? {
                return Ok(buf.drain(..n).collect());
            }
        }
        if r.read_buf(buf).await? == 0 {
            bail!("connection closed by the server");
        }
    }
}

/// The client side of the handshake, as fluentd's `out_forward` does it (§1.6).
async fn handshake(s: &mut TcpStream, o: &Opts, key: &str) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let helo_bytes = read_value(s, &mut buf).await?;
    let helo = handshake::parse_helo(&helo_bytes)?;
    // SecureRandom.hex(16): a 32-character lowercase hex salt.
    let salt: String = rand::thread_rng()
        .gen::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (host, key) = (o.hostname.as_bytes(), key.as_bytes());
    let ping = handshake::ping(
        &helo,
        host,
        salt.as_bytes(),
        key,
        o.username.as_bytes(),
        o.password.as_bytes(),
    );
    s.write_all(&ping).await?;
    let pong = read_value(s, &mut buf).await?;
    handshake::check_pong(&pong, &helo, host, salt.as_bytes(), key)?;
    Ok(())
}

/// What one connection achieved.
#[derive(Debug, Default)]
struct Stats {
    records: u64,
    payload: u64,
    wire: u64,
    chunks: u64,
    latencies_us: Vec<u64>,
    end: Option<Instant>,
}

/// A chunk written and not yet acked.
struct Pending {
    ack: Vec<u8>,
    sent: Instant,
    records: u64,
    payload: u64,
    wire: u64,
}

async fn run_conn(
    idx: u16,
    o: Arc<Opts>,
    mut chunks: Vec<Chunk>,
    run: [u8; 6],
    start: Instant,
    deadline: Instant,
) -> anyhow::Result<Stats> {
    let mut s = TcpStream::connect(&o.addr)
        .await
        .with_context(|| format!("connect {}", o.addr))?;
    s.set_nodelay(true)?;
    if let Some(key) = &o.shared_key {
        handshake(&mut s, &o, key).await.context("handshake")?;
    }
    let mut st = Stats::default();
    if !o.ack {
        for (k, c) in chunks.iter().cycle().enumerate() {
            if !wait_slot(&o, idx, k as u64, start, deadline).await {
                break;
            }
            s.write_all(&c.bytes).await?;
            st.records += c.records;
            st.payload += c.payload;
            st.wire += c.bytes.len() as u64;
            st.chunks += 1;
        }
        st.end = Some(Instant::now());
        s.shutdown().await?; // close_write, as out_forward does after a chunk
        return Ok(st);
    }
    let (mut rd, mut wr) = s.into_split();
    let window = Arc::new(Semaphore::new(o.window));
    let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
    let permits = window.clone();
    let writer = tokio::spawn(async move {
        let mut counter = 0u64;
        for i in (0..chunks.len()).cycle() {
            permits.acquire().await?.forget();
            if !wait_slot(&o, idx, counter, start, deadline).await {
                break;
            }
            counter += 1;
            let c = &mut chunks[i];
            let ack =
                patch_id(c, run, idx, counter).ok_or_else(|| anyhow!("chunk has no id field"))?;
            let p = Pending {
                ack,
                sent: Instant::now(),
                records: c.records,
                payload: c.payload,
                wire: c.bytes.len() as u64,
            };
            // Queued before the write, so an early ack always finds its entry.
            tx.send(p).map_err(|_| anyhow!("ack reader gone"))?;
            wr.write_all(&c.bytes).await?;
        }
        anyhow::Ok(wr)
    });
    let mut buf = Vec::with_capacity(4096);
    while let Some(p) = rx.recv().await {
        let got = tokio::time::timeout(ACK_TIMEOUT, read_value(&mut rd, &mut buf))
            .await
            .context("ack timeout")??;
        st.latencies_us.push(p.sent.elapsed().as_micros() as u64);
        if got != p.ack {
            bail!(
                "ack mismatch: expected {:?}, got {}",
                String::from_utf8_lossy(&p.ack[6..]),
                describe_ack(&got)
            );
        }
        window.add_permits(1);
        st.records += p.records;
        st.payload += p.payload;
        st.wire += p.wire;
        st.chunks += 1;
    }
    st.end = Some(Instant::now());
    let wr = writer.await??;
    drop(wr);
    Ok(st)
}

/// Says what an unexpected ack held, decoded with the project's msgpack reader.
fn describe_ack(got: &[u8]) -> String {
    let mut r = Reader::new(got);
    match (r.next(), r.next(), r.next()) {
        (Ok(Value::Map(1)), Ok(Value::Str(b"ack")), Ok(v)) => match v.bytes() {
            Some(id) => format!(
                "{{\"ack\": {:?}}} ({} bytes)",
                String::from_utf8_lossy(id),
                got.len()
            ),
            None => format!("{{\"ack\": {v:?}}}"),
        },
        _ => format!("{got:02x?}"),
    }
}

// ---- REPORT ----

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn report(o: &Opts, all: &[Stats], start: Instant) {
    let sum = |f: fn(&Stats) -> u64| all.iter().map(f).sum::<u64>() as f64;
    let (records, chunks) = (sum(|s| s.records), sum(|s| s.chunks));
    let (payload_mb, wire_mb) = (sum(|s| s.payload) / 1e6, sum(|s| s.wire) / 1e6);
    let end = all.iter().filter_map(|s| s.end).max().unwrap_or(start);
    let secs = end.duration_since(start).as_secs_f64().max(1e-9);
    let mut lat: Vec<u64> = all.iter().flat_map(|s| s.latencies_us.clone()).collect();
    lat.sort_unstable();
    let ms = |p: f64| percentile(&lat, p);
    let compressed = match o.gzip_members {
        0 => "text".to_string(),
        k => format!("gzip x{k}"),
    };
    if o.json {
        let num = |v: f64, prec: usize| match v.is_finite() {
            true => format!("{v:.prec$}"),
            false => "null".to_string(),
        };
        let fields = [
            ("addr", format!("{:?}", o.addr)),
            ("conns", o.conns.to_string()),
            ("batch", o.batch.to_string()),
            ("record_size", o.record_size.to_string()),
            ("ack", o.ack.to_string()),
            ("window", o.window.to_string()),
            ("rate_target", o.rate.to_string()),
            ("compressed", format!("{compressed:?}")),
            ("seconds", num(secs, 3)),
            ("records", num(records, 0)),
            ("records_per_s", num(records / secs, 0)),
            ("payload_mb", num(payload_mb, 3)),
            ("payload_mb_per_s", num(payload_mb / secs, 3)),
            ("wire_mb_per_s", num(wire_mb / secs, 3)),
            ("chunks", num(chunks, 0)),
            ("ack_p50_ms", num(ms(50.0), 3)),
            ("ack_p99_ms", num(ms(99.0), 3)),
            ("ack_max_ms", num(ms(100.0), 3)),
        ];
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        println!("{{{}}}", body.join(","));
        return;
    }
    let ack = match o.ack {
        true => format!(", ack window {}", o.window),
        false => String::new(),
    };
    let paced = match o.rate {
        0 => String::new(),
        r => format!(", paced to {r} records/s"),
    };
    println!(
        "kura-bench forward {}: {} conns, batch {} of ~{} B records, {compressed}{ack}{paced}, \
         {secs:.2} s",
        o.addr, o.conns, o.batch, o.record_size
    );
    println!("  {:<11}{:>14}{:>14}", "", "total", "per second");
    for (name, total, prec) in [
        ("records", records, 0),
        ("payload MB", payload_mb, 1),
        ("wire MB", wire_mb, 1),
        ("chunks", chunks, 0),
    ] {
        println!("  {name:<11}{total:>14.prec$}{:>14.prec$}", total / secs);
    }
    if o.rate > 0 {
        let achieved = records / secs;
        let pct = 100.0 * achieved / o.rate as f64;
        println!(
            "  rate: target {} records/s, achieved {achieved:.0} ({pct:.1} %)",
            o.rate
        );
    }
    if o.ack {
        let (p50, p99, max) = (ms(50.0), ms(99.0), ms(100.0));
        println!("  ack latency ms: p50 {p50:.2}  p99 {p99:.2}  max {max:.2}");
    }
}

fn main() -> anyhow::Result<()> {
    let o = Arc::new(parse_args(std::env::args().skip(1))?);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as u32;
    // A few dozen distinct chunks, within about 64 MiB.
    let approx = o.batch * (o.record_size + 12);
    let n = (64 << 20) / approx.max(1);
    let chunks = (0..n.clamp(2, 32) as u64)
        .map(|i| build_chunk(&o, i, secs))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run: [u8; 6] = rand::thread_rng().gen();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let start = Instant::now();
        let deadline = start + o.duration;
        let tasks: Vec<_> = (0..o.conns)
            .map(|i| {
                let conn = run_conn(i as u16, o.clone(), chunks.clone(), run, start, deadline);
                tokio::spawn(conn)
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await??);
        }
        report(&o, &all, start);
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn opts(ack: bool, gzip_members: usize) -> Opts {
        let args = ["forward", "--batch", "50", "--record-size", "150"].map(String::from);
        let mut o = parse_args(args.into_iter()).unwrap();
        o.ack = ack;
        o.gzip_members = gzip_members;
        o
    }

    type Decoded = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

    /// Decodes a chunk into (tag, entries bytes, option pairs as raw values).
    fn decode(c: &Chunk) -> Decoded {
        let mut r = Reader::new(&c.bytes);
        assert_eq!(r.next().unwrap(), Value::Array(3));
        let Value::Str(tag) = r.next().unwrap() else {
            panic!("tag")
        };
        let at = r.position();
        assert_eq!(c.bytes[at], 0xdb, "entries are str32 as in fluentd");
        let Value::Str(entries) = r.next().unwrap() else {
            panic!("entries")
        };
        let Value::Map(n) = r.next().unwrap() else {
            panic!("option")
        };
        let opts = (0..n)
            .map(|_| {
                (
                    r.next().unwrap().bytes().unwrap().to_vec(),
                    r.skip().unwrap().to_vec(),
                )
            })
            .collect();
        assert!(r.is_empty());
        (tag.to_vec(), entries.to_vec(), opts)
    }

    fn check_entries(entries: &[u8], batch: usize, size: usize) {
        let mut r = Reader::new(entries);
        for _ in 0..batch {
            assert_eq!(r.next().unwrap(), Value::Array(2));
            assert!(matches!(r.next().unwrap(), Value::Ext(0, t) if t.len() == 8));
            let rec = r.skip().unwrap();
            assert_eq!(rec[0], 0x88);
            assert!(
                rec.len().abs_diff(size) <= 4,
                "record of {} bytes",
                rec.len()
            );
        }
        assert!(r.is_empty());
    }

    #[test]
    fn base64_matches_ruby() {
        // python3: base64.encodebytes(bytes(range(16))) == b'AAECAwQFBgcICQoLDA0ODw==\n'
        let mut d = [0u8; 24];
        base64_into(&(0..16).collect::<Vec<u8>>(), &mut d);
        assert_eq!(&d, b"AAECAwQFBgcICQoLDA0ODw==");
        let mut d = [0u8; 8];
        base64_into(&[255, 254, 253, 0, 1], &mut d);
        assert_eq!(&d, b"//79AAE=");
    }

    #[test]
    fn plain_chunk_has_fluentds_layout_and_unique_ids() {
        let o = opts(true, 0);
        let mut c = build_chunk(&o, 1, 1_700_000_000).unwrap();
        let (tag, entries, opt) = decode(&c);
        assert_eq!(tag, b"bench.access");
        check_entries(&entries, 50, 150);
        assert_eq!(c.payload, entries.len() as u64);
        let keys: Vec<&[u8]> = opt.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, [b"size".as_slice(), b"compressed", b"chunk"]);
        assert_eq!(opt[0].1, [50]);
        assert_eq!(opt[1].1, b"\xa4text");
        let ack1 = patch_id(&mut c, [1; 6], 2, 3).unwrap();
        let (_, _, opt1) = decode(&c);
        let id1 = opt1[2].1.clone();
        assert_eq!((id1[0], id1.len(), id1[25]), (0xb9, 26, b'\n'));
        assert_eq!(ack1, [&b"\x81\xa3ack"[..], &id1].concat());
        patch_id(&mut c, [1; 6], 2, 4).unwrap();
        assert_ne!(decode(&c).2[2].1, id1);
        assert!(c.bytes.ends_with(b"==\n"));
        // Without acks there is no chunk key and nothing to patch.
        let mut plain = build_chunk(&opts(false, 0), 1, 1_700_000_000).unwrap();
        assert_eq!(decode(&plain).2.len(), 2);
        assert!(patch_id(&mut plain, [0; 6], 0, 1).is_none());
    }

    #[test]
    fn gzip_members_round_trip() {
        let plain = build_chunk(&opts(false, 0), 9, 1_700_000_000).unwrap();
        let (_, entries, _) = decode(&plain);
        let gz = build_chunk(&opts(true, 3), 9, 1_700_000_000).unwrap();
        let (_, body, opt) = decode(&gz);
        assert_eq!(opt[1].1, b"\xa4gzip");
        assert_eq!(gz.payload, entries.len() as u64);
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..])
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, entries);
        // Three members: a single-member decoder stops after the first, at a record edge.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut first)
            .unwrap();
        assert!(first.len() < entries.len());
        check_entries(&first, 16, 150);
    }

    #[test]
    fn pacing_spreads_the_total_rate_over_the_connections() {
        assert_eq!(due(7, 1, 2, 1000, 0), None, "rate 0 is unpaced");
        let at = |k, idx| due(k, idx, 2, 1000, 500_000).unwrap();
        // 500k records/s in chunks of 1000 is a chunk every 2 ms in total; two
        // connections alternate, each sending every 4 ms.
        assert_eq!(at(0, 0), Duration::ZERO);
        assert_eq!(at(0, 1), Duration::from_millis(2));
        assert_eq!(at(1, 0), Duration::from_millis(4));
        assert_eq!(at(1, 1), Duration::from_millis(6));
        assert_eq!(at(250, 0), Duration::from_secs(1));
        // In any one second exactly rate/batch chunks are due, for any connection count.
        for conns in [1usize, 2, 3, 7] {
            let in_first_second: u64 = (0..conns)
                .map(|idx| {
                    (0..10_000u64)
                        .take_while(|&k| {
                            due(k, idx, conns, 1000, 500_000).unwrap() < Duration::from_secs(1)
                        })
                        .count() as u64
                })
                .sum();
            assert_eq!(in_first_second * 1000, 500_000, "{conns} connections");
        }
        // Slots that are not whole nanoseconds round down without drifting.
        assert_eq!(
            due(1, 0, 1, 1, 3).unwrap(),
            Duration::from_nanos(333_333_333)
        );
        assert_eq!(due(3, 0, 1, 1, 3).unwrap(), Duration::from_secs(1));
        // Far slots do not overflow.
        assert_eq!(
            due(u64::MAX / 2, 0, 1, 1, 1).unwrap(),
            Duration::from_nanos(u64::MAX)
        );
        let o = parse_args("forward --rate 500000".split(' ').map(String::from)).unwrap();
        assert_eq!(o.rate, 500_000);
        assert_eq!(opts(false, 0).rate, 0, "unpaced by default");
    }

    #[test]
    fn args_parse() {
        let a = "forward --addr 1.2.3.4:5 --conns 3 --ack --gzip --gzip-members 4 --duration 2.5 --json";
        let o = parse_args(a.split(' ').map(String::from)).unwrap();
        assert_eq!(
            (o.addr.as_str(), o.conns, o.ack, o.gzip_members, o.json),
            ("1.2.3.4:5", 3, true, 4, true)
        );
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert!(parse_args(["forward", "--bogus"].map(String::from).into_iter()).is_err());
        assert!(parse_args(["redis"].map(String::from).into_iter()).is_err());
    }
}
