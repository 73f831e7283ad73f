//! Server commands (Redis `server.c`, `config.c`, `networking.c`, `slowlog.c`, `latency.c`):
//! INFO, CONFIG, COMMAND, CLIENT, SLOWLOG, LATENCY, TIME, LASTSAVE, ROLE, SHUTDOWN, DEBUG,
//! FUNCTION, MEMORY, LOLWUT.
//!
//! Each large command has its own module below; this one holds the table, the small
//! commands, and what the containers share (subcommand dispatch, HELP replies).

pub mod client;
pub mod command;
pub mod config_cmd;
pub mod info;
pub mod meta;
pub mod slowlog;

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::{int, is};
use super::exec::Ctx;
use super::reply::{CmdError, CmdResult, Reply};
use super::table::flags::*;
use super::table::CommandSpec;
use crate::command;
use crate::config::ShutdownFlags;

pub use slowlog::{record_slowlog, SlowLog, Tracking};

/// Server commands.
pub static COMMANDS: &[CommandSpec] = &[
    command!(
        "command",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        command::command_cmd,
        subs = command::SUBS
    ),
    command!(
        "info",
        -1,
        LOADING | STALE,
        (0, 0, 0),
        "server",
        info::info_cmd
    ),
    command!(
        "config",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config_cmd::config_cmd,
        subs = config_cmd::SUBS
    ),
    command!(
        "client",
        -2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "connection",
        client::client_cmd,
        subs = client::SUBS
    ),
    command!(
        "slowlog",
        -2,
        ADMIN | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog::slowlog_cmd,
        subs = slowlog::SUBS
    ),
    command!(
        "latency",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog::latency_cmd,
        subs = slowlog::LATENCY_SUBS
    ),
    command!("time", 1, LOADING | STALE | FAST, (0, 0, 0), "server", time),
    command!(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        save
    ),
    command!("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), "server", bgsave),
    command!(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        "server",
        bgrewriteaof
    ),
    command!(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        lastsave
    ),
    command!(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        role
    ),
    command!(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI,
        (0, 0, 0),
        "server",
        shutdown
    ),
    command!(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        debug
    ),
    command!(
        "function",
        -2,
        NOSCRIPT,
        (0, 0, 0),
        "scripting",
        function,
        subs = FUNCTION_SUBS
    ),
    command!(
        "memory",
        -2,
        READONLY,
        (0, 0, 0),
        "server",
        memory,
        subs = MEMORY_SUBS
    ),
    command!("lolwut", -1, READONLY | FAST, (0, 0, 0), "server", lolwut),
];

// ---- SHARED BY THE CONTAINERS ----

/// Arities of subcommands Redis 7.0 lacks (CLIENT SETINFO and NO-TOUCH are 7.2's).
const EXTRA_ARITY: &[(&str, i32)] = &[("client|setinfo", 4), ("client|no-touch", 3)];

/// Returns a subcommand's Redis arity (from Redis's own metadata).
pub fn sub_arity(full: &str) -> Option<i32> {
    if let Some((_, a)) = EXTRA_ARITY.iter().find(|(n, _)| *n == full) {
        return Some(*a);
    }
    match &meta::get(full)?.info {
        Reply::Array(e) => match e.get(1) {
            Some(Reply::Int(n)) => Some(*n as i32),
            _ => None,
        },
        _ => None,
    }
}

/// Resolves `argv[1]` of container `name` to one of `subs` (`name|sub` names), with Redis's
/// unknown-subcommand and subcommand-arity errors; returns the lowercase subcommand.
pub fn subcommand(name: &str, argv: &[Bytes], subs: &[&str]) -> Result<String, CmdError> {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let full = format!("{name}|{sub}");
    if !subs.contains(&full.as_str()) {
        return Err(CmdError::UnknownSubcommand {
            sub: argv[1].clone(),
            cmd: name.to_ascii_uppercase(),
        });
    }
    if let Some(arity) = sub_arity(&full) {
        let argc = argv.len() as i32;
        if (arity > 0 && argc != arity) || argc < -arity {
            return Err(CmdError::Arity(full));
        }
    }
    Ok(sub)
}

/// Runs the checks Redis's `processCommand` makes right after the arity check, before
/// authentication and before a command is queued in MULTI: a container's subcommand must
/// exist and fit its arity (`commandCheckExistence`, `commandCheckArity`; containers that
/// list no subcommands in the table check for themselves), and protected commands are
/// refused (DEBUG, with `enable-debug-command no`, Redis 7.0's default).
pub fn precheck(
    spec: &CommandSpec,
    argv: &[Bytes],
    debug_allowed: impl FnOnce() -> bool,
) -> Result<(), CmdError> {
    if !spec.subcommands.is_empty() && argv.len() >= 2 {
        subcommand(spec.name, argv, spec.subcommands)?;
    }
    // Asked only for DEBUG: reading the setting is not free, and this runs per command.
    if spec.name == "debug" && !debug_allowed() {
        return Err(debug_disabled());
    }
    Ok(())
}

/// Returns a HELP reply: one simple string per line (Redis's `addReplyHelp`).
pub fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}

/// Returns the name Redis counts a call under: `config|get` for a known subcommand of a
/// container, the command's name otherwise (INFO commandstats, latencystats).
pub fn full_name(spec: &'static CommandSpec, argv: &[Bytes]) -> &'static str {
    if let Some(sub) = argv.get(1).filter(|_| !spec.subcommands.is_empty()) {
        // Compare in place: this runs after every command, so no allocation.
        let prefix = spec.name.len() + 1;
        if let Some(full) = spec.subcommands.iter().find(|s| {
            s.len() == prefix + sub.len() && s.as_bytes()[prefix..].eq_ignore_ascii_case(sub)
        }) {
            return full;
        }
    }
    spec.name
}

// ---- SMALL COMMANDS ----

/// `TIME`: [unix seconds, microseconds], as bulk strings.
fn time(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    let us = ctx.srv.clock.now_us();
    Ok(Reply::Array(vec![
        Reply::BulkStr((us / 1_000_000).to_string()),
        Reply::BulkStr((us % 1_000_000).to_string()),
    ]))
}

/// `LASTSAVE`: unix seconds of the last successful save (the start time until one).
/// `SAVE`: writes the dump now, blocking every client meanwhile, as Redis's does.
fn save(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    use crate::persist::save;
    if ctx
        .srv
        .save
        .bgsave_in_progress
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(CmdError::err("Background save already in progress"));
    }
    match save::save_locked(ctx.srv, ctx.st) {
        Ok(()) => Ok(Reply::Ok),
        Err(e) => {
            tracing::warn!(error = %e, "SAVE failed");
            // Redis answers a failed SAVE with a bare "-ERR".
            Err(CmdError::Raw(Bytes::from_static(b"ERR")))
        }
    }
}

/// `BGSAVE [SCHEDULE]`: snapshots now (a point in time, microseconds under the lock) and
/// writes it in the background.
fn bgsave(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    use crate::persist::save;
    // SCHEDULE only matters when another child could be running; kura has none besides
    // the BGSAVE itself, which SCHEDULE does not wait for either (spec §4.1).
    if let Some(a) = argv.get(1) {
        if argv.len() != 2 || !is(a, "schedule") {
            return Err(CmdError::Syntax);
        }
    }
    let status = &ctx.srv.save;
    if status
        .bgsave_in_progress
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(CmdError::err("Background save already in progress"));
    }
    // Redis runs one child at a time; kura's AOF rewrite stands in for that child.
    if ctx
        .srv
        .aof
        .shared
        .status
        .rewrite_in_progress
        .load(std::sync::atomic::Ordering::Acquire)
    {
        if argv.len() == 2 {
            status
                .scheduled
                .store(true, std::sync::atomic::Ordering::Release);
            return Ok(Reply::Simple("Background saving scheduled".into()));
        }
        return Err(CmdError::err(
            "Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
             SCHEDULE in order to schedule a BGSAVE whenever possible.",
        ));
    }
    if ctx.sess.multi.is_some() || ctx.st.stream.in_transaction() {
        // Inside MULTI/EXEC Redis only schedules it (for SCHEDULE or not, since 7.0).
        status
            .scheduled
            .store(true, std::sync::atomic::Ordering::Release);
        return Ok(Reply::Simple("Background saving scheduled".into()));
    }
    let Some(srv) = ctx.srv.arc() else {
        return Err(CmdError::Raw(Bytes::from_static(b"ERR")));
    };
    let point = save::save_point(ctx.srv, ctx.st);
    if save::start_bgsave(&srv, point) {
        Ok(Reply::Simple("Background saving started".into()))
    } else {
        Err(CmdError::Raw(Bytes::from_static(b"ERR")))
    }
}

/// `BGREWRITEAOF`: rewrites the AOF from a snapshot in the background (works with the AOF
/// off too, as in Redis: it then leaves just a base).
fn bgrewriteaof(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    use crate::persist::aof::rewrite::{bgrewriteaof, Started};
    let Some(srv) = ctx.srv.arc() else {
        return Err(CmdError::Raw(Bytes::from_static(b"ERR")));
    };
    let status = &ctx.srv.aof.shared.status;
    if (ctx.sess.multi.is_some() || ctx.st.stream.in_transaction())
        && !status
            .rewrite_in_progress
            .load(std::sync::atomic::Ordering::Acquire)
    {
        status
            .rewrite_scheduled
            .store(true, std::sync::atomic::Ordering::Release);
        return Ok(Reply::Simple(
            "Background append only file rewriting scheduled".into(),
        ));
    }
    match bgrewriteaof(&srv, ctx.st) {
        Started::Now => Ok(Reply::Simple(
            "Background append only file rewriting started".into(),
        )),
        Started::Scheduled => Ok(Reply::Simple(
            "Background append only file rewriting scheduled".into(),
        )),
        Started::AlreadyRunning => Err(CmdError::err(
            "Background append only file rewriting already in progress",
        )),
        Started::Failed => Err(CmdError::err(
            "Can't execute an AOF background rewriting. Please check the server logs for more information.",
        )),
    }
}

fn lastsave(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.srv.lastsave.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

/// `ROLE`: `["master", offset, [[ip, port, acked offset], …]]` listing online replicas, or a
/// replica's `["slave", host, port, state, offset]` (offset -1 before the first sync).
fn role(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    use crate::replication::state::ReplicaState;
    use std::sync::atomic::Ordering;
    let offset = ctx.st.stream.offset() as i64;
    Ok(match ctx.srv.repl.link() {
        Some(link) => Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::BulkStr(link.host),
            Reply::Int(link.port.into()),
            Reply::bulk(link.state.role_word()),
            // Redis: the master client's offset, -1 while there is none (not streaming).
            Reply::Int(if ctx.srv.repl.follower.lock().is_ok_and(|f| f.linked) {
                offset
            } else {
                -1
            }),
        ]),
        None => Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Int(offset),
            Reply::Array(
                ctx.srv
                    .repl
                    .replicas()
                    .iter()
                    .filter(|r| r.state() == ReplicaState::Online)
                    .map(|r| {
                        let ip = r.ip.lock().map(|ip| ip.to_string()).unwrap_or_default();
                        Reply::Array(vec![
                            Reply::BulkStr(ip),
                            Reply::BulkStr(r.listening_port.load(Ordering::Relaxed).to_string()),
                            Reply::BulkStr(r.ack_offset.load(Ordering::Relaxed).to_string()),
                        ])
                    })
                    .collect(),
            ),
        ]),
    })
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: stops the server. The connection is
/// closed without a reply, as Redis exits before answering; the server's shutdown path
/// finishes in-flight work and saves (rule 8 of STYLE.md).
fn shutdown(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let (mut flags, mut abort) = (ShutdownFlags::default(), false);
    for a in &argv[1..] {
        if is(a, "abort") {
            abort = true;
        } else if !flags.add(a) {
            return Err(CmdError::Syntax);
        }
    }
    if (flags.save && flags.nosave) || (abort && flags != ShutdownFlags::default()) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // kura's SHUTDOWN saves and closes at once, its wait for replicas comes after:
        // there is never a shutdown in progress to abort.
        return Err(CmdError::err("No shutdown in progress."));
    }
    tracing::warn!(client = ctx.sess.id, "user requested shutdown");
    if flags.saves(ctx.srv.with_config(|c| !c.save.is_empty())) {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        match crate::persist::save::save_locked(ctx.srv, ctx.st) {
            Ok(_) => {
                // The final save checks this: writes after it are saved again.
                ctx.srv.save.shutdown_saved_at.store(
                    i64::try_from(ctx.st.stream.offset()).unwrap_or(i64::MAX),
                    Ordering::Release,
                );
            }
            Err(e) if flags.force => {
                tracing::warn!(error = %e, "Error trying to save the DB. Exit anyway.");
            }
            Err(e) => {
                tracing::warn!(error = %e, "Error trying to save the DB, can't exit.");
                return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    ctx.srv
        .save
        .shutdown_now
        .store(flags.now, Ordering::Release);
    ctx.srv.save.shutdown_settled.store(true, Ordering::Release);
    ctx.sess.close_after_reply = true;
    ctx.srv.request_shutdown();
    Ok(Reply::NoReply)
}

/// `DEBUG RELOAD [NOSAVE]` (save the dump, then load it back in place of the dataset, as
/// Redis's test suite and operators use to check persistence) and `DEBUG HELP`. Reached only
/// when `enable-debug-command` admits the client (checked with the other protected-command
/// rules in `precheck`).
fn debug(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    use crate::persist::save;
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    match sub.as_str() {
        "help" => Ok(help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "RELOAD [NOSAVE]",
            "    Save the RDB on disk and reload it back to memory. NOSAVE: reload the",
            "    file already on disk without saving first.",
            "HELP",
            "    Print this help.",
        ])),
        "reload" => {
            let mut nosave = false;
            for a in &argv[2..] {
                if is(a, "nosave") {
                    nosave = true;
                } else {
                    // MERGE and NOFLUSH (load on top of the dataset) are not implemented.
                    return Err(CmdError::err(
                        "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                    ));
                }
            }
            if !nosave {
                if let Err(e) = save::save_locked(ctx.srv, ctx.st) {
                    tracing::warn!(error = %e, "DEBUG RELOAD could not save");
                    return Err(CmdError::err("Error trying to save the DB"));
                }
            }
            match save::load_file_locked(ctx.srv, ctx.st) {
                Ok(()) => {
                    tracing::info!("DB reloaded by DEBUG RELOAD");
                    Ok(Reply::Ok)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DEBUG RELOAD could not load");
                    Err(CmdError::err("Error trying to load the RDB dump"))
                }
            }
        }
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&argv[1])
        ))),
    }
}

fn debug_disabled() -> CmdError {
    CmdError::err(
        "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
    )
}

/// FUNCTION's subcommands kura answers (it has no functions).
const FUNCTION_SUBS: &[&str] = &["function|flush", "function|help", "function|list"];

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

/// `FUNCTION FLUSH [ASYNC|SYNC]`, `FUNCTION LIST [LIBRARYNAME p] [WITHCODE]`: kura has no
/// functions, so flushing succeeds and listing is empty; clients that reset a server
/// (test suites, `redis-cli --flushall`-style tools) keep working.
fn function(_ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("function", argv, FUNCTION_SUBS)?;
    match sub.as_str() {
        "help" => Ok(help(FUNCTION_HELP)),
        "flush" => match argv.len() {
            2 => Ok(Reply::Ok),
            3 if is(&argv[2], "async") || is(&argv[2], "sync") => Ok(Reply::Ok),
            3 => Err(CmdError::err(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            )),
            _ => Err(CmdError::err(
                "unknown subcommand or wrong number of arguments for 'FLUSH'. Try FUNCTION HELP.",
            )),
        },
        "list" => {
            let mut i = 2;
            while i < argv.len() {
                if is(&argv[i], "withcode") {
                    i += 1;
                } else if is(&argv[i], "libraryname") {
                    if i + 1 >= argv.len() {
                        return Err(CmdError::err("library name argument was not given"));
                    }
                    i += 2;
                } else {
                    return Err(CmdError::echo("ERR Unknown argument ", &argv[i], ""));
                }
            }
            Ok(Reply::Array(vec![]))
        }
        _ => Err(CmdError::Syntax),
    }
}

/// MEMORY's subcommands kura answers.
const MEMORY_SUBS: &[&str] = &["memory|help", "memory|usage"];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// `MEMORY USAGE key [SAMPLES n]`: an estimate of the bytes a key takes (kura's layout, so
/// not Redis's numbers), or nil for a missing key.
fn memory(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("memory", argv, MEMORY_SUBS)?;
    if sub == "help" {
        return Ok(help(MEMORY_HELP));
    }
    let mut i = 3;
    while i < argv.len() {
        if is(&argv[i], "samples") && i + 1 < argv.len() {
            let n = int(&argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = &argv[2];
    // `dictFind` on the keyspace, as Redis does: no expiry check, no hit counting, no touch.
    let Some(e) = ctx.db().get(key) else {
        return Ok(Reply::Nil);
    };
    // Key and entry headers, plus the value's own estimate.
    let value = e.value.approx_bytes();
    Ok(Reply::Int((key.len() + 56 + value) as i64))
}

/// `LOLWUT [VERSION v]`: Redis 7.0 answers every version without an artwork of its own with
/// its version line.
fn lolwut(_ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    if argv.len() >= 3 && is(&argv[1], "version") {
        int(&argv[2])?;
    }
    Ok(Reply::Verbatim(format!(
        "Redis ver. {}\n",
        crate::REDIS_VERSION
    )))
}
