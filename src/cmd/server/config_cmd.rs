//! CONFIG GET/SET/RESETSTAT/REWRITE over the one parameter table ([`crate::config::PARAMS`]),
//! with Redis 7.0's semantics (`config.c` `configGetCommand`, `configSetCommand`,
//! `rewriteConfig`): several patterns or pairs per call, atomic SET, Redis's error texts.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{help, subcommand};
use crate::cmd::args::text;
use crate::cmd::exec::{Ctx, EngineStats};
use crate::cmd::glob::glob_match;
use crate::cmd::reply::{CmdError, CmdResult, Reply};
use crate::config::{find_param, Config, Mode, ALIASES, PARAMS};

/// CONFIG's subcommands.
pub const SUBS: &[&str] = &[
    "config|get",
    "config|help",
    "config|resetstat",
    "config|rewrite",
    "config|set",
];

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// `CONFIG <subcommand> ...`.
pub fn config_cmd(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> CmdResult {
    let sub = subcommand("config", argv, SUBS)?;
    match sub.as_str() {
        "help" => Ok(help(HELP)),
        "get" => Ok(get(ctx, &argv[2..])),
        "set" => set(ctx, &argv[2..]),
        "resetstat" => {
            reset_stats(ctx);
            Ok(Reply::Ok)
        }
        "rewrite" => rewrite(ctx),
        _ => Err(CmdError::Syntax),
    }
}

/// `CONFIG GET pattern [pattern ...]`: a map of every matching setting, each once. A
/// pattern without glob characters is looked up directly and answered under the name as
/// given (Redis echoes `MaxMemory`); aliases match like names.
fn get(ctx: &Ctx<'_>, patterns: &[Bytes]) -> Reply {
    let cfg = ctx.srv.config();
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let names = PARAMS
        .iter()
        .map(|p| p.name)
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let names: Vec<&str> = names.collect();
    for pat in patterns {
        let pat_text = text(pat);
        if !pat.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            if seen.contains(&pat_text.to_ascii_lowercase()) {
                continue;
            }
            if let Some(p) = find_param(&pat_text) {
                seen.insert(pat_text.to_ascii_lowercase());
                out.push((Reply::BulkStr(pat_text), Reply::BulkStr((p.get)(&cfg))));
            }
            continue;
        }
        for name in &names {
            if seen.contains(*name) || !glob_match(pat, name.as_bytes(), true) {
                continue;
            }
            if let Some(p) = find_param(name) {
                seen.insert(name.to_string());
                out.push((Reply::bulk(name), Reply::BulkStr((p.get)(&cfg))));
            }
        }
    }
    Reply::Map(out)
}

fn set_failed(name: &str, reason: &str) -> CmdError {
    CmdError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// `CONFIG SET name value [name value ...]`: every name is checked first, then the values
/// are applied to a copy of the configuration, which replaces the running one only if all
/// of them were accepted (Redis 7.0 restores the old values on failure; same effect).
fn set(ctx: &mut Ctx<'_>, pairs: &[Bytes]) -> CmdResult {
    if !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // Every name is checked before any value; the first bad name decides the error (an
    // alias and its name count as different settings, as in Redis).
    let mut params = Vec::new();
    for pair in pairs.chunks(2) {
        let name = text(&pair[0]);
        let Some(p) = find_param(&name) else {
            return Err(CmdError::echo(
                "ERR Unknown option or number of arguments for CONFIG SET - '",
                &pair[0],
                "'",
            ));
        };
        let lower = name.to_ascii_lowercase();
        match p.mode {
            Mode::Immutable => return Err(set_failed(&name, "can't set immutable config")),
            Mode::Protected => return Err(set_failed(&name, "can't set protected config")),
            Mode::Mutable => {}
        }
        if params.iter().any(|(_, n, _): &(_, String, _)| *n == lower) {
            return Err(set_failed(&name, "duplicate parameter"));
        }
        params.push((p, lower, text(&pair[1])));
    }
    let mut cfg = ctx.srv.config();
    for (pair, (p, _, value)) in pairs.chunks(2).zip(&params) {
        (p.set)(&mut cfg, value).map_err(|reason| set_failed(&text(&pair[0]), &reason))?;
    }
    apply(ctx, &cfg)?;
    if let Ok(mut c) = ctx.srv.config.write() {
        *c = cfg;
    }
    ctx.srv.refresh_hot();
    Ok(Reply::Ok)
}

/// Makes new values take effect where something holds a copy of them. Everything else
/// (maxclients, timeout, requirepass, maxmemory, hz, slowlog-*, …) is read from the
/// configuration where it is used.
fn apply(ctx: &mut Ctx<'_>, cfg: &Config) -> Result<(), CmdError> {
    if cfg.repl_backlog_size as usize != ctx.st.stream.capacity() {
        ctx.st.stream.set_capacity(cfg.repl_backlog_size as usize);
    }
    if cfg.forward.ack_after == crate::config::AckAfter::Fsynced
        && cfg.appendfsync == crate::config::AppendFsync::No
    {
        return Err(set_failed(
            "appendfsync",
            "forward.ack_after is \"fsynced\": appendfsync no would never fsync",
        ));
    }
    let aof = &ctx.srv.aof;
    aof.set_policy(cfg.appendfsync);
    aof.shared.no_fsync_on_rewrite.store(
        cfg.no_appendfsync_on_rewrite,
        std::sync::atomic::Ordering::Relaxed,
    );
    if cfg.appendonly != aof.is_on() {
        apply_appendonly(ctx, cfg)?;
    }
    Ok(())
}

/// `CONFIG SET appendonly yes|no`: starts the AOF with a rewrite, or stops it after a final
/// fsync (Redis's `startAppendOnly` / `stopAppendOnly`).
fn apply_appendonly(ctx: &mut Ctx<'_>, cfg: &Config) -> Result<(), CmdError> {
    use crate::config::AckAfter;
    use crate::persist::aof::rewrite;
    if !cfg.appendonly {
        if cfg.forward.ack_after == AckAfter::Fsynced {
            return Err(set_failed(
                "appendonly",
                "forward.ack_after is \"fsynced\": the AOF must stay on",
            ));
        }
        rewrite::disable(ctx.srv, ctx.st);
        return Ok(());
    }
    let Some(srv) = ctx.srv.arc() else {
        return Err(set_failed(
            "appendonly",
            "Unable to turn on AOF. Check server logs.",
        ));
    };
    rewrite::enable(&srv, ctx.st, cfg).map_err(|e| {
        tracing::warn!(error = %e, "Unable to turn on AOF");
        rewrite::disable(ctx.srv, ctx.st);
        set_failed("appendonly", "Unable to turn on AOF. Check server logs.")
    })
}

/// Clears what `INFO` counts (Redis `resetServerStats` and `resetCommandTableStats`).
pub fn reset_stats(ctx: &mut Ctx<'_>) {
    ctx.st.stats = EngineStats::default();
    ctx.st.cmdstats.clear();
    ctx.st.errorstats.clear();
    let net = &ctx.srv.net;
    for c in [
        &net.total_connections_received,
        &net.rejected_connections,
        &net.net_input_bytes,
        &net.net_output_bytes,
        &net.reads_processed,
        &net.writes_processed,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    // Redis zeroes the peak too; the next sample sets it to the current use.
    ctx.srv.used_memory_peak.store(
        ctx.srv.used_memory.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    ctx.st.tracking.reset();
}

/// `CONFIG REWRITE`: writes the running configuration back to the TOML file it came from,
/// keeping its comments and layout (see [`Config::rewrite_toml`]). The new text goes to a
/// temporary file that is then renamed over the old one, so a crash leaves either file.
fn rewrite(ctx: &Ctx<'_>) -> CmdResult {
    let path = ctx
        .srv
        .config_file
        .lock()
        .ok()
        .and_then(|p| p.clone())
        .ok_or_else(|| CmdError::err("The server is running without a config file"))?;
    let fail = |e: std::io::Error| CmdError::err(format!("Rewriting config file: {e}"));
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(fail(e)),
    };
    let new = ctx.srv.config().rewrite_toml(&old);
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, new).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(Reply::Ok)
}
