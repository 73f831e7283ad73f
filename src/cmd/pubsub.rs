//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
//! PUBLISH, SPUBLISH, PUBSUB (Redis 7.0 `pubsub.c`).
//!
//! Who gets what, and in which order:
//! - A command's own frames (SUBSCRIBE confirmations, a message a RESP3 client publishes to
//!   itself) are encoded by the handler into one `Reply::Raw`, in the client's protocol, so
//!   they sit exactly where Redis puts them: before the reply that follows, and inside an
//!   EXEC array when the command ran in a transaction. Under `CLIENT REPLY OFF|SKIP` they go
//!   through the client's own push channel instead, because Redis 7.0 still sends them
//!   (`CLIENT_PUSHING`) while it drops the command's normal reply.
//! - Messages for other clients go through their `push_tx` (`Reply::Push`, encoded by their
//!   connection in its protocol: `>` in RESP3, `*` in RESP2).
//! - PUBLISH walks the channel's subscriber list, then every pattern (Redis's
//!   `pubsubPublishMessage`): O(channel subscribers + patterns).
//!
//! A subscriber that does not read is cut off by the `client-output-buffer-limit pubsub`
//! class ([`OutputLimit::of_class`]), checked by the connection as pushes are queued.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::UnboundedSender;

use super::args::{own, text};
use super::exec::Ctx;
use super::glob::glob_match;
use super::reply::{c_str, CmdError, CmdResult, Reply};
use super::session::{ReplyMode, Session};
use super::table::flags::*;
use super::table::CommandSpec;
use super::Origin;
use crate::command;
use crate::resp::encode::encode;
use crate::state::ServerState;

/// Pub/Sub commands, with Redis 7.0's arity, flags and key specs (`COMMAND INFO`).
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        subscribe
    ),
    command!(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        unsubscribe
    ),
    command!(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        psubscribe
    ),
    command!(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        punsubscribe
    ),
    command!(
        "ssubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (1, -1, 1),
        "pubsub",
        ssubscribe
    ),
    command!(
        "sunsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (1, -1, 1),
        "pubsub",
        sunsubscribe
    ),
    command!(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        "pubsub",
        publish
    ),
    command!(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (1, 1, 1),
        "pubsub",
        spublish
    ),
    command!(
        "pubsub",
        -2,
        0,
        (0, 0, 0),
        "pubsub",
        pubsub,
        subs = &[
            "pubsub|channels",
            "pubsub|help",
            "pubsub|numpat",
            "pubsub|numsub",
            "pubsub|shardchannels",
            "pubsub|shardnumsub",
        ]
    ),
];

// ---- REGISTRY ----

/// One subscription of one client.
#[derive(Debug, Clone)]
struct Subscriber {
    /// Client id, to recognise the publisher itself.
    id: u64,
    /// Where its messages go (`None` for internal sessions, which receive nothing).
    tx: Option<UnboundedSender<Reply>>,
}

/// Channel, pattern and shard channel subscribers (Redis's `server.pubsub_channels`,
/// `server.pubsub_patterns`, `server.pubsubshard_channels`): name → clients in subscription
/// order. A name is present only while it has subscribers.
#[derive(Debug, Default)]
pub struct Registry {
    channels: HashMap<Bytes, Vec<Subscriber>>,
    patterns: HashMap<Bytes, Vec<Subscriber>>,
    shard_channels: HashMap<Bytes, Vec<Subscriber>>,
}

/// The three kinds of subscription; each has its own commands and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn subscribe_name(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribe_name(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

impl Registry {
    /// Returns the number of channels with subscribers (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Returns the number of distinct subscribed patterns (INFO `pubsub_patterns`,
    /// `PUBSUB NUMPAT`).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Returns the number of shard channels with subscribers (INFO `pubsubshard_channels`).
    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.len()
    }

    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<Subscriber>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    fn add(&mut self, kind: Kind, name: Bytes, sub: Subscriber) {
        self.map(kind).entry(name).or_default().push(sub);
    }

    fn remove(&mut self, kind: Kind, name: &[u8], id: u64) {
        let map = self.map(kind);
        if let Some(subs) = map.get_mut(name) {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `msg` to the subscribers of `channel` (and, unless `shard`, of every matching
    /// pattern); frames for the publisher itself (`from`) are appended to `own` instead.
    /// Returns the number of receivers, as PUBLISH replies.
    fn publish(
        &self,
        from: u64,
        channel: &Bytes,
        msg: &Bytes,
        shard: bool,
        own: &mut Vec<Reply>,
    ) -> i64 {
        let mut receivers = 0;
        let mut deliver = |sub: &Subscriber, frame: Reply| {
            receivers += 1;
            if sub.id == from {
                own.push(frame);
            } else if let Some(tx) = &sub.tx {
                // A closed receiver means the connection is going away; its cleanup
                // unregisters it. Redis counts it until then, too.
                tx.send(frame).ok();
            }
        };
        let (kind, map) = if shard {
            ("smessage", &self.shard_channels)
        } else {
            ("message", &self.channels)
        };
        if let Some(subs) = map.get(channel) {
            for sub in subs {
                let frame = Reply::Push(vec![
                    Reply::bulk(kind),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(msg.clone()),
                ]);
                deliver(sub, frame);
            }
        }
        if shard {
            return receivers;
        }
        for (pattern, subs) in &self.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for sub in subs {
                let frame = Reply::Push(vec![
                    Reply::bulk("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(msg.clone()),
                ]);
                deliver(sub, frame);
            }
        }
        receivers
    }
}

fn registry(srv: &ServerState) -> MutexGuard<'_, Registry> {
    // Registry updates are single inserts/removes; a panic elsewhere leaves it consistent.
    srv.pubsub.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- SESSION SIDE ----

fn sess_insert(sess: &mut Session, kind: Kind, name: &Bytes) -> bool {
    match kind {
        Kind::Channel => sess.channels.insert(name.clone()),
        Kind::Pattern => sess.patterns.insert(name.clone()),
        Kind::Shard => sess.shard_channels.insert(name.clone()),
    }
}

fn sess_remove(sess: &mut Session, kind: Kind, name: &[u8]) -> bool {
    match kind {
        Kind::Channel => sess.channels.remove(name),
        // Keep the subscription order of the rest (Redis's `listDelNode`).
        Kind::Pattern => sess.patterns.shift_remove(name),
        Kind::Shard => sess.shard_channels.remove(name),
    }
}

fn sess_names(sess: &Session, kind: Kind) -> Vec<Bytes> {
    match kind {
        Kind::Channel => sess.channels.iter().cloned().collect(),
        Kind::Pattern => sess.patterns.iter().cloned().collect(),
        Kind::Shard => sess.shard_channels.iter().cloned().collect(),
    }
}

/// The count a (un)subscribe confirmation carries: channels + patterns for the classic
/// kinds (`clientSubscriptionsCount`), shard channels for the shard kind.
fn reply_count(sess: &Session, kind: Kind) -> i64 {
    let n = match kind {
        Kind::Channel | Kind::Pattern => sess.channels.len() + sess.patterns.len(),
        Kind::Shard => sess.shard_channels.len(),
    };
    n as i64
}

/// Mirrors the session's subscriptions into CLIENT LIST (`sub=`, `psub=`, `ssub=`, flag `P`).
fn sync_info(sess: &Session) {
    if let Some(info) = &sess.info {
        info.sub.store(sess.channels.len(), Ordering::Relaxed);
        info.psub.store(sess.patterns.len(), Ordering::Relaxed);
        info.ssub
            .store(sess.shard_channels.len(), Ordering::Relaxed);
        info.set_flag('P', sess.subscription_count() > 0);
    }
}

/// Returns `frames` (then `tail`) to the calling client in order; see the module docs.
fn deliver_own(ctx: &mut Ctx<'_>, frames: Vec<Reply>, tail: Option<Reply>) -> Reply {
    if frames.is_empty() {
        return tail.unwrap_or(Reply::NoReply);
    }
    if ctx.sess.reply_mode != ReplyMode::On {
        if let Some(tx) = &ctx.sess.push_tx {
            for f in frames {
                tx.send(f).ok();
            }
            return tail.unwrap_or(Reply::NoReply);
        }
    }
    let mut out = BytesMut::new();
    for f in frames.iter().chain(tail.iter()) {
        encode(&mut out, f, ctx.sess.proto);
    }
    Reply::Raw(out.freeze())
}

/// Drops every subscription of the session without notifying it (RESET, disconnect:
/// Redis's `pubsubUnsubscribeAll*(c, 0)`).
pub fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    if ctx.sess.subscription_count() == 0 {
        return;
    }
    let id = ctx.sess.id;
    {
        let mut reg = registry(ctx.srv);
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in sess_names(ctx.sess, kind) {
                reg.remove(kind, &name, id);
            }
        }
    }
    ctx.sess.channels.clear();
    ctx.sess.patterns.clear();
    ctx.sess.shard_channels.clear();
    sync_info(ctx.sess);
}

// ---- COMMANDS ----

fn subscribe_kind(ctx: &mut Ctx<'_>, argv: &[Bytes], kind: Kind) -> CmdResult {
    let id = ctx.sess.id;
    let mut frames = Vec::with_capacity(argv.len() - 1);
    {
        let mut reg = registry(ctx.srv);
        for arg in &argv[1..] {
            let name = own(arg);
            if sess_insert(ctx.sess, kind, &name) {
                let sub = Subscriber {
                    id,
                    tx: ctx.sess.push_tx.clone(),
                };
                reg.add(kind, name.clone(), sub);
            }
            frames.push(Reply::Push(vec![
                Reply::bulk(kind.subscribe_name()),
                Reply::Bulk(name),
                Reply::Int(reply_count(ctx.sess, kind)),
            ]));
        }
    }
    sync_info(ctx.sess);
    Ok(deliver_own(ctx, frames, None))
}

fn unsubscribe_kind(ctx: &mut Ctx<'_>, argv: &[Bytes], kind: Kind) -> CmdResult {
    let id = ctx.sess.id;
    let names = if argv.len() == 1 {
        sess_names(ctx.sess, kind)
    } else {
        argv[1..].iter().map(own).collect()
    };
    let mut frames = Vec::with_capacity(names.len().max(1));
    {
        let mut reg = registry(ctx.srv);
        for name in names {
            if sess_remove(ctx.sess, kind, &name) {
                reg.remove(kind, &name, id);
            }
            frames.push(Reply::Push(vec![
                Reply::bulk(kind.unsubscribe_name()),
                Reply::Bulk(name),
                Reply::Int(reply_count(ctx.sess, kind)),
            ]));
        }
    }
    if frames.is_empty() {
        // Nothing to drop: Redis still confirms, with a null channel.
        frames.push(Reply::Push(vec![
            Reply::bulk(kind.unsubscribe_name()),
            Reply::Nil,
            Reply::Int(reply_count(ctx.sess, kind)),
        ]));
    }
    sync_info(ctx.sess);
    Ok(deliver_own(ctx, frames, None))
}

/// Reports whether the client cannot be put in a mode that sends unrequested frames:
/// Redis's `CLIENT_DENY_BLOCKING`, set while EXEC runs (and for scripts, which kura lacks).
fn deny_blocking(ctx: &Ctx<'_>) -> bool {
    ctx.sess.origin == Origin::Client && !ctx.may_block
}

fn subscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    // SUBSCRIBE and PSUBSCRIBE stay allowed inside MULTI for backward compatibility
    // (`subscribeCommand`); only scripts are refused, and kura has none.
    subscribe_kind(ctx, argv, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    subscribe_kind(ctx, argv, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if deny_blocking(ctx) {
        return Err(CmdError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_kind(ctx, argv, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    unsubscribe_kind(ctx, argv, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    unsubscribe_kind(ctx, argv, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    unsubscribe_kind(ctx, argv, Kind::Shard)
}

fn publish_kind(ctx: &mut Ctx<'_>, argv: &[Bytes], shard: bool) -> CmdResult {
    // One copy of each, shared by every queued frame: a slow subscriber must not pin the
    // publisher's read buffer.
    let channel = own(&argv[1]);
    let msg = own(&argv[2]);
    let mut own_frames = Vec::new();
    let n = registry(ctx.srv).publish(ctx.sess.id, &channel, &msg, shard, &mut own_frames);
    // Redis 7.0 also forces PUBLISH into the replication stream (not the AOF); kura's write
    // stream feeds both, so PUBLISH is not propagated.
    Ok(deliver_own(ctx, own_frames, Some(Reply::Int(n))))
}

fn publish(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    publish_kind(ctx, argv, false)
}

fn spublish(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    publish_kind(ctx, argv, true)
}

/// `PUBSUB HELP` text (`pubsubCommand`), one status line each.
const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// Returns the arity of a PUBSUB subcommand (lowercase), `None` when there is no such one.
fn subcommand_arity(sub: &[u8]) -> Option<i32> {
    match sub {
        b"channels" | b"numsub" | b"shardchannels" | b"shardnumsub" => Some(-2),
        b"numpat" | b"help" => Some(2),
        _ => None,
    }
}

/// Reports whether Redis would refuse this PUBSUB call before running it (unknown
/// subcommand or wrong subcommand arity): such calls are not shown to MONITOR.
pub(crate) fn refused_before_running(argv: &[Bytes]) -> bool {
    let Some(sub) = argv.get(1) else {
        return true;
    };
    match subcommand_arity(&sub.to_ascii_lowercase()) {
        Some(a) if a > 0 => argv.len() != a as usize,
        Some(a) => argv.len() < (-a) as usize,
        None => true,
    }
}

fn pubsub(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = argv[1].to_ascii_lowercase();
    let argc = argv.len();
    // Subcommand existence and arity (Redis checks them in processCommand, with the
    // `pubsub|x` name).
    if subcommand_arity(&sub).is_none() {
        return Err(CmdError::UnknownSubcommand {
            sub: argv[1].clone(),
            cmd: text(&argv[0]).to_ascii_uppercase(),
        });
    }
    if refused_before_running(argv) {
        return Err(CmdError::Arity(format!("pubsub|{}", text(&sub))));
    }
    // `addReplySubcommandSyntaxError`: the subcommand echoed raw, as `%.128s`.
    let syntax = || {
        CmdError::echo(
            "ERR unknown subcommand or wrong number of arguments for '",
            c_str(&argv[1], 128),
            &format!("'. Try {} HELP.", text(&argv[0]).to_ascii_uppercase()),
        )
    };
    let reg = registry(ctx.srv);
    match sub.as_slice() {
        b"help" => Ok(Reply::Array(
            HELP.iter().map(|l| Reply::Simple((*l).into())).collect(),
        )),
        b"channels" | b"shardchannels" => {
            if argc > 3 {
                return Err(syntax());
            }
            let map = if sub.as_slice() == b"channels" {
                &reg.channels
            } else {
                &reg.shard_channels
            };
            let pattern = argv.get(2);
            Ok(Reply::Array(
                map.keys()
                    .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
                    .map(|c| Reply::Bulk(c.clone()))
                    .collect(),
            ))
        }
        b"numsub" | b"shardnumsub" => {
            let map = if sub.as_slice() == b"numsub" {
                &reg.channels
            } else {
                &reg.shard_channels
            };
            let mut out = Vec::with_capacity((argc - 2) * 2);
            for ch in &argv[2..] {
                out.push(Reply::Bulk(own(ch)));
                out.push(Reply::Int(map.get(ch).map_or(0, |s| s.len()) as i64));
            }
            Ok(Reply::Array(out))
        }
        _ => Ok(Reply::Int(reg.pattern_count() as i64)),
    }
}

// ---- OUTPUT BUFFER LIMITS ----

/// One class of `client-output-buffer-limit`: hard bytes, soft bytes and the seconds the
/// soft limit may be exceeded (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Close as soon as this many bytes are queued.
    pub hard: usize,
    /// Close when this many bytes stay queued for longer than `soft_seconds`.
    pub soft: usize,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Returns one class of the configured limits (0 normal, 1 replica, 2 Pub/Sub).
    pub fn of_class(c: &crate::config::Config, class: usize) -> Self {
        let (hard, soft, soft_seconds) = c.client_output_buffer_limit[class];
        OutputLimit {
            hard: hard as usize,
            soft: soft as usize,
            soft_seconds,
        }
    }
}

/// When a client's output first went over its soft limit (`obuf_soft_limit_reached_time`).
#[derive(Debug, Default)]
pub struct OutputLimitState {
    soft_since: Option<Instant>,
}

impl OutputLimitState {
    /// Reports whether a client with `used` bytes queued must be closed
    /// (`checkClientOutputBufferLimits`): at the hard limit at once, over the soft limit only
    /// once it has stayed there longer than the soft seconds.
    pub fn exceeded(&mut self, limit: &OutputLimit, used: usize, now: Instant) -> bool {
        let hard = limit.hard > 0 && used >= limit.hard;
        let mut soft = limit.soft > 0 && used >= limit.soft;
        if soft {
            match self.soft_since {
                None => {
                    self.soft_since = Some(now);
                    soft = false;
                }
                Some(t) => {
                    if now.duration_since(t) <= Duration::from_secs(limit.soft_seconds) {
                        soft = false;
                    }
                }
            }
        } else {
            self.soft_since = None;
        }
        hard || soft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_needs_time() {
        let lim = OutputLimit {
            hard: 100,
            soft: 10,
            soft_seconds: 1,
        };
        let mut st = OutputLimitState::default();
        let t0 = Instant::now();
        assert!(!st.exceeded(&lim, 50, t0));
        assert!(!st.exceeded(&lim, 50, t0 + Duration::from_millis(900)));
        assert!(st.exceeded(&lim, 50, t0 + Duration::from_millis(1100)));
        assert!(!st.exceeded(&lim, 5, t0 + Duration::from_millis(1200)));
        assert!(st.exceeded(&lim, 100, t0 + Duration::from_millis(1300)));
    }
}
