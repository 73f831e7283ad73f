//! Routes: which tags go where, and how (`[[forward.route]]`; DESIGN.md "Forward -> store
//! mapping"; issue 3 point 6).
//!
//! A [`Route`] is the configuration as written; [`Router::new`] compiles every route once
//! (pattern, key template, time format, time zone) so a bad one fails at start with its
//! position named, and [`Router::find`] picks the first route whose `match` accepts a tag,
//! in file order, as fluentd picks the first matching `<match>`. The TOML form of routes
//! and users (read by `Config::apply_toml`, written back by `CONFIG REWRITE`) lives here
//! too, so `config.rs` only dispatches to it.

use super::pattern::{PatternError, TagPattern};
use super::strftime::{parse_utc_offset, Strftime, StrftimeError};
use super::template::{KeyTemplate, TemplateError};
use crate::config::ConfigError;

/// How a route stores records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// `RPUSH <key> <record>`: the log-store layout, read with LRANGE/BLPOP.
    List,
    /// One hash per record, fluent-plugin-redis's layout (`HSET <key>… field value …`),
    /// so data written by either door look alike.
    Hash,
}

/// How a record is serialised into a list element (or a published message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// A JSON object: readable by every consumer (Logstash, Vector, redis-cli).
    Json,
    /// The record's MessagePack map, as received plus the time field: compact and lossless.
    Msgpack,
}

/// One `[[forward.route]]` table as configured (see `deploy/kura.toml` for each key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `match`: fluentd tag patterns, whitespace separated.
    pub pattern: String,
    /// `mode`.
    pub mode: RouteMode,
    /// `key`: the key template; when not given, `${tag}` for lists and `${tag}.%s` for
    /// hashes (fluent-plugin-redis's `insert_key_prefix` + `strftime_format`).
    pub key: String,
    /// `format`.
    pub format: RecordFormat,
    /// `time_key`: record field the event time is added under; empty adds none.
    pub time_key: String,
    /// `time_format`: strftime of the added time; empty writes float epoch seconds (fluentd
    /// `<inject>`'s default `time_type float`).
    pub time_format: String,
    /// `timezone`: fixed UTC offset for `time_format` and the key's date parts; empty = UTC.
    pub timezone: String,
    /// `maxlen`: LTRIM lists to this many newest elements; 0 = unbounded. Lists only. At
    /// most `i64::MAX`, so `-maxlen` is an LTRIM index.
    pub maxlen: u64,
    /// `ttl`: seconds after the last write at which the key expires; 0 = never. At most
    /// `i32::MAX`, so the absolute expiry in milliseconds cannot overflow.
    pub ttl: u64,
    /// `publish`: also PUBLISH each record on a channel named after its key.
    pub publish: bool,
    /// `db`: the database the keys live in.
    pub db: usize,
}

/// The default key templates per mode.
const LIST_KEY: &str = "${tag}";
const HASH_KEY: &str = "${tag}.%s";

impl Default for Route {
    /// The default route of issue 3: every tag to a list named after it, JSON records with
    /// the event time under `time`.
    fn default() -> Self {
        Route {
            pattern: "**".into(),
            mode: RouteMode::List,
            key: LIST_KEY.into(),
            format: RecordFormat::Json,
            time_key: "time".into(),
            time_format: String::new(),
            timezone: String::new(),
            maxlen: 0,
            ttl: 0,
            publish: false,
            db: 0,
        }
    }
}

/// One `[[forward.user]]`: a username and password for the handshake's user auth
/// (`shared/spec/fluent.md` §1.6, fluentd's `<security><user>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardUser {
    /// The username clients send in PING.
    pub username: String,
    /// The password whose salted digest clients send.
    pub password: String,
}

/// Why a route cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteErrorKind {
    /// A bad `match`.
    #[error("match {0:?}: {1}")]
    Pattern(String, PatternError),
    /// A bad `key`.
    #[error("key {0:?}: {1}")]
    Key(String, TemplateError),
    /// A bad `time_format`.
    #[error("time_format {0:?}: {1}")]
    TimeFormat(String, StrftimeError),
    /// A `timezone` that is not a fixed offset.
    #[error(
        "timezone {0:?}: expected \"UTC\", \"Z\" or a fixed offset such as \"+09:00\" or \
         \"-0500\" (named zones are not supported)"
    )]
    Timezone(String),
    /// `maxlen` on a hash route.
    #[error("maxlen applies to list routes only (a hash route writes one hash per record)")]
    MaxlenInHash,
}

/// A route that cannot be compiled, with its position (1-based, in file order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forward.route[{position}]: {kind}")]
pub struct RouteError {
    /// Which `[[forward.route]]`, counting from 1.
    pub position: usize,
    /// What is wrong with it.
    pub kind: RouteErrorKind,
}

/// A route ready for the mapping: everything parsed once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRoute {
    /// Which tags it takes.
    pub pattern: TagPattern,
    /// List or hash.
    pub mode: RouteMode,
    /// Record serialisation.
    pub format: RecordFormat,
    /// The key template, rendering dates at the route's offset.
    pub key: KeyTemplate,
    /// Field the event time is added under; empty adds none.
    pub time_key: Vec<u8>,
    /// Format of the added time; `None` adds float epoch seconds.
    pub time_format: Option<Strftime>,
    /// The route's time zone, seconds east of UTC.
    pub utc_offset_secs: i32,
    /// LTRIM length; 0 = none.
    pub maxlen: u64,
    /// Expiry in seconds after the write; 0 = none.
    pub ttl: u64,
    /// PUBLISH each record on a channel named after its key.
    pub publish: bool,
    /// Database index.
    pub db: usize,
}

impl CompiledRoute {
    /// Compiles one route.
    pub fn new(route: &Route) -> Result<CompiledRoute, RouteErrorKind> {
        let pattern = TagPattern::parse(&route.pattern)
            .map_err(|e| RouteErrorKind::Pattern(route.pattern.clone(), e))?;
        let utc_offset_secs = parse_utc_offset(&route.timezone)
            .ok_or_else(|| RouteErrorKind::Timezone(route.timezone.clone()))?;
        let key = KeyTemplate::parse(&route.key)
            .map_err(|e| RouteErrorKind::Key(route.key.clone(), e))?
            .with_utc_offset(utc_offset_secs);
        let time_format = match route.time_format.as_str() {
            "" => None,
            f => {
                Some(Strftime::parse(f).map_err(|e| RouteErrorKind::TimeFormat(f.to_string(), e))?)
            }
        };
        if route.mode == RouteMode::Hash && route.maxlen > 0 {
            return Err(RouteErrorKind::MaxlenInHash);
        }
        Ok(CompiledRoute {
            pattern,
            mode: route.mode,
            format: route.format,
            key,
            time_key: route.time_key.as_bytes().to_vec(),
            time_format,
            utc_offset_secs,
            maxlen: route.maxlen,
            ttl: route.ttl,
            publish: route.publish,
            db: route.db,
        })
    }
}

/// The compiled routes, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    routes: Vec<CompiledRoute>,
}

impl Router {
    /// Compiles every route; the first bad one is reported with its position.
    pub fn new(routes: &[Route]) -> Result<Router, RouteError> {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                CompiledRoute::new(r).map_err(|kind| RouteError {
                    position: i + 1,
                    kind,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Router { routes })
    }

    /// Returns the first route whose pattern matches `tag`, or `None` when no route takes
    /// it (fluentd's "no patterns matched": the records are dropped and counted).
    pub fn find(&self, tag: &[u8]) -> Option<&CompiledRoute> {
        self.routes.iter().find(|r| r.pattern.matches(tag))
    }

    /// Returns the routes in order.
    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }
}

// ---- TOML ----

/// The keys a `[[forward.route]]` table accepts.
pub const ROUTE_KEYS: &[&str] = &[
    "match",
    "mode",
    "key",
    "format",
    "time_key",
    "time_format",
    "timezone",
    "maxlen",
    "ttl",
    "publish",
    "db",
];

/// Returns the tables of `forward.<what>`, which must be an array of tables.
fn tables<'a>(what: &str, v: &'a toml::Value) -> Result<Vec<&'a toml::Table>, ConfigError> {
    let name = format!("forward.{what}");
    let toml::Value::Array(items) = v else {
        return Err(invalid(
            &name,
            format!("expected [[forward.{what}]] tables"),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_table()
                .ok_or_else(|| invalid(&format!("{name}[{}]", i + 1), "expected a table"))
        })
        .collect()
}

/// A bad value for the dotted setting `name` (`forward.route[2].mode`).
fn invalid(name: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn string(name: &str, v: &toml::Value) -> Result<String, ConfigError> {
    v.as_str()
        .map(String::from)
        .ok_or_else(|| invalid(name, "expected a string"))
}

/// Reads an integer in `0..=max`, given as a TOML integer or a string of digits. The
/// bounds keep the mapping's arithmetic safe: `LTRIM key -maxlen -1` needs a signed
/// `maxlen`, and `ttl` seconds become absolute milliseconds.
fn count(name: &str, v: &toml::Value, max: u64) -> Result<u64, ConfigError> {
    let n = match v {
        toml::Value::Integer(i) => u64::try_from(*i).ok(),
        toml::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.filter(|n| *n <= max)
        .ok_or_else(|| invalid(name, format!("expected an integer from 0 to {max}")))
}

/// Reads a boolean, given as TOML `true`/`false` or Redis's `"yes"`/`"no"`.
fn boolean(name: &str, v: &toml::Value) -> Result<bool, ConfigError> {
    match v {
        toml::Value::Boolean(b) => Ok(*b),
        toml::Value::String(s) if s.eq_ignore_ascii_case("yes") => Ok(true),
        toml::Value::String(s) if s.eq_ignore_ascii_case("no") => Ok(false),
        _ => Err(invalid(name, "expected true or false")),
    }
}

/// Reads `forward.route` (an array of tables) into routes, filling defaults per mode.
pub fn routes_from_toml(v: &toml::Value) -> Result<Vec<Route>, ConfigError> {
    let mut routes = Vec::new();
    for (i, t) in tables("route", v)?.into_iter().enumerate() {
        let base = format!("forward.route[{}]", i + 1);
        let mut r = Route::default();
        let mut key = None;
        for (k, v) in t {
            let name = format!("{base}.{k}");
            match k.as_str() {
                // `match = ["a.**", "b.*"]` reads as the whitespace-separated list.
                "match" => {
                    r.pattern = match v {
                        toml::Value::Array(items) => items
                            .iter()
                            .map(|p| string(&name, p))
                            .collect::<Result<Vec<_>, _>>()?
                            .join(" "),
                        _ => string(&name, v)?,
                    }
                }
                "mode" => {
                    r.mode = match string(&name, v)?.as_str() {
                        "list" => RouteMode::List,
                        "hash" => RouteMode::Hash,
                        _ => return Err(invalid(&name, "must be one of: list, hash")),
                    }
                }
                "key" => key = Some(string(&name, v)?),
                "format" => {
                    r.format = match string(&name, v)?.as_str() {
                        "json" => RecordFormat::Json,
                        "msgpack" => RecordFormat::Msgpack,
                        _ => return Err(invalid(&name, "must be one of: json, msgpack")),
                    }
                }
                "time_key" => r.time_key = string(&name, v)?,
                "time_format" => r.time_format = string(&name, v)?,
                "timezone" => r.timezone = string(&name, v)?,
                "maxlen" => r.maxlen = count(&name, v, i64::MAX as u64)?,
                "ttl" => r.ttl = count(&name, v, i32::MAX as u64)?,
                "publish" => r.publish = boolean(&name, v)?,
                "db" => {
                    r.db = usize::try_from(count(&name, v, i32::MAX as u64)?)
                        .map_err(|_| invalid(&name, "out of range"))?
                }
                _ => return Err(ConfigError::Unknown(name)),
            }
        }
        r.key = key.unwrap_or_else(|| {
            match r.mode {
                RouteMode::List => LIST_KEY,
                RouteMode::Hash => HASH_KEY,
            }
            .into()
        });
        routes.push(r);
    }
    Ok(routes)
}

/// Reads `forward.user` (an array of tables with `username` and `password`).
pub fn users_from_toml(v: &toml::Value) -> Result<Vec<ForwardUser>, ConfigError> {
    let mut users = Vec::new();
    for (i, t) in tables("user", v)?.into_iter().enumerate() {
        let base = format!("forward.user[{}]", i + 1);
        let (mut username, mut password) = (None, None);
        for (k, v) in t {
            let name = format!("{base}.{k}");
            match k.as_str() {
                "username" => username = Some(string(&name, v)?),
                "password" => password = Some(string(&name, v)?),
                _ => return Err(ConfigError::Unknown(name)),
            }
        }
        let missing = |k: &str| invalid(&format!("{base}.{k}"), "missing");
        users.push(ForwardUser {
            username: username.ok_or_else(|| missing("username"))?,
            password: password.ok_or_else(|| missing("password"))?,
        });
    }
    Ok(users)
}

/// Renders routes as `[[forward.route]]` tables (every key written out, so the text reads
/// back to the same values whatever the defaults become), for `CONFIG REWRITE`.
pub fn routes_to_toml(routes: &[Route]) -> Vec<String> {
    let s = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut out = Vec::new();
    for r in routes {
        out.push(String::new());
        out.push("[[forward.route]]".into());
        out.push(format!("match = {}", s(&r.pattern)));
        let mode = match r.mode {
            RouteMode::List => "list",
            RouteMode::Hash => "hash",
        };
        out.push(format!("mode = {}", s(mode)));
        out.push(format!("key = {}", s(&r.key)));
        let format = match r.format {
            RecordFormat::Json => "json",
            RecordFormat::Msgpack => "msgpack",
        };
        out.push(format!("format = {}", s(format)));
        out.push(format!("time_key = {}", s(&r.time_key)));
        out.push(format!("time_format = {}", s(&r.time_format)));
        out.push(format!("timezone = {}", s(&r.timezone)));
        out.push(format!("maxlen = {}", r.maxlen));
        out.push(format!("ttl = {}", r.ttl));
        out.push(format!("publish = {}", r.publish));
        out.push(format!("db = {}", r.db));
    }
    out
}

/// Renders users as `[[forward.user]]` tables, for `CONFIG REWRITE`.
pub fn users_to_toml(users: &[ForwardUser]) -> Vec<String> {
    let s = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut out = Vec::new();
    for u in users {
        out.push(String::new());
        out.push("[[forward.user]]".into());
        out.push(format!("username = {}", s(&u.username)));
        out.push(format!("password = {}", s(&u.password)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Route>, ConfigError> {
        let t: toml::Table = text.parse().unwrap();
        routes_from_toml(&t["forward"]["route"])
    }

    #[test]
    fn defaults_per_mode() {
        let r = parse("[[forward.route]]\n[[forward.route]]\nmode = \"hash\"\n").unwrap();
        assert_eq!(r[0], Route::default());
        assert_eq!(r[1].key, "${tag}.%s");
        assert_eq!(r[1].mode, RouteMode::Hash);
        let r = parse("[[forward.route]]\nmode = \"hash\"\nkey = \"h:${tag}\"\n").unwrap();
        assert_eq!(r[0].key, "h:${tag}");
    }

    #[test]
    fn every_key_reads() {
        let r = parse(
            "[[forward.route]]\nmatch = [\"a.**\", \"b.*\"]\nmode = \"list\"\nkey = \"k\"\n\
             format = \"msgpack\"\ntime_key = \"@t\"\ntime_format = \"%F\"\n\
             timezone = \"+09:00\"\nmaxlen = 5\nttl = \"60\"\npublish = \"yes\"\ndb = 3\n",
        )
        .unwrap();
        assert_eq!(
            r[0],
            Route {
                pattern: "a.** b.*".into(),
                mode: RouteMode::List,
                key: "k".into(),
                format: RecordFormat::Msgpack,
                time_key: "@t".into(),
                time_format: "%F".into(),
                timezone: "+09:00".into(),
                maxlen: 5,
                ttl: 60,
                publish: true,
                db: 3,
            }
        );
        assert_eq!(ROUTE_KEYS.len(), 11);
    }

    #[test]
    fn bad_tables_are_named() {
        let err = |text: &str| parse(text).unwrap_err();
        let name = |text: &str| match parse(text).unwrap_err() {
            ConfigError::Invalid { name, .. } => name,
            e => panic!("{e}"),
        };
        assert_eq!(
            err("[[forward.route]]\n[[forward.route]]\nmtch = \"a\"\n"),
            ConfigError::Unknown("forward.route[2].mtch".into())
        );
        assert_eq!(
            err("[[forward.route]]\nmode = \"set\"\n").to_string(),
            "invalid value for 'forward.route[1].mode': must be one of: list, hash"
        );
        assert_eq!(
            name("[[forward.route]]\nmaxlen = -1\n"),
            "forward.route[1].maxlen"
        );
        assert_eq!(
            name("[[forward.route]]\npublish = 1\n"),
            "forward.route[1].publish"
        );
        assert_eq!(name("[forward.route]\nmatch = \"a\"\n"), "forward.route");
        assert_eq!(name("[forward]\nroute = [1]\n"), "forward.route[1]");
        let t: toml::Table = "[[forward.user]]\nusername = \"u\"\n".parse().unwrap();
        assert_eq!(
            users_from_toml(&t["forward"]["user"]).unwrap_err(),
            ConfigError::Invalid {
                name: "forward.user[1].password".into(),
                reason: "missing".into()
            }
        );
    }

    #[test]
    fn toml_round_trip() {
        let routes = vec![
            Route::default(),
            Route {
                pattern: "{a,b}.** \"q\"".into(),
                mode: RouteMode::Hash,
                key: "h:${tag}\\%s".into(),
                maxlen: 0,
                ttl: 9,
                publish: true,
                db: 2,
                ..Route::default()
            },
        ];
        let users = vec![ForwardUser {
            username: "a\"b".into(),
            password: "p\nq".into(),
        }];
        let mut text = routes_to_toml(&routes).join("\n");
        text.push('\n');
        text.push_str(&users_to_toml(&users).join("\n"));
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(routes_from_toml(&t["forward"]["route"]).unwrap(), routes);
        assert_eq!(users_from_toml(&t["forward"]["user"]).unwrap(), users);
    }

    #[test]
    fn router_takes_the_first_match() {
        let routes = vec![
            Route {
                pattern: "app.{web,api}.**".into(),
                key: "logs:${tag}:%Y%m%d".into(),
                ..Route::default()
            },
            Route {
                pattern: "metrics.*".into(),
                mode: RouteMode::Hash,
                key: HASH_KEY.into(),
                ..Route::default()
            },
            Route::default(),
        ];
        let router = Router::new(&routes).unwrap();
        let key = |tag: &[u8]| {
            let r = router.find(tag).unwrap();
            let mut out = Vec::new();
            r.key.render(tag, 1_441_588_984, &mut out);
            (r.mode, String::from_utf8(out).unwrap())
        };
        assert_eq!(
            key(b"app.web"),
            (RouteMode::List, "logs:app.web:20150907".into())
        );
        assert_eq!(
            key(b"app.api.x"),
            (RouteMode::List, "logs:app.api.x:20150907".into())
        );
        assert_eq!(
            key(b"metrics.cpu"),
            (RouteMode::Hash, "metrics.cpu.1441588984".into())
        );
        assert_eq!(key(b"app.db"), (RouteMode::List, "app.db".into()));
        assert_eq!(router.routes().len(), 3);
        let only = Router::new(&routes[..1]).unwrap();
        assert!(only.find(b"other").is_none());
    }

    #[test]
    fn compile_errors_name_the_route() {
        let bad = |r: Route| Router::new(&[Route::default(), r]).unwrap_err();
        let e = bad(Route {
            timezone: "Asia/Tokyo".into(),
            ..Route::default()
        });
        assert_eq!(e.position, 2);
        assert!(e
            .to_string()
            .starts_with("forward.route[2]: timezone \"Asia/Tokyo\""));
        let e = bad(Route {
            mode: RouteMode::Hash,
            maxlen: 10,
            ..Route::default()
        });
        assert_eq!(e.kind, RouteErrorKind::MaxlenInHash);
        let e = bad(Route {
            key: "${nope}".into(),
            ..Route::default()
        });
        assert!(matches!(e.kind, RouteErrorKind::Key(..)), "{e}");
        let e = bad(Route {
            time_format: "%Q".into(),
            ..Route::default()
        });
        assert_eq!(
            e.to_string(),
            "forward.route[2]: time_format \"%Q\": unsupported strftime conversion '%Q' \
             (write %% for a literal '%')"
        );
        let e = bad(Route {
            pattern: " ".into(),
            ..Route::default()
        });
        assert!(matches!(e.kind, RouteErrorKind::Pattern(..)), "{e}");
    }

    #[test]
    fn compiled_fields() {
        let r = CompiledRoute::new(&Route {
            time_key: "ts".into(),
            time_format: "%FT%T%:z".into(),
            timezone: "-0500".into(),
            ttl: 60,
            ..Route::default()
        })
        .unwrap();
        assert_eq!(r.time_key, b"ts");
        assert_eq!(r.utc_offset_secs, -18_000);
        let mut out = Vec::new();
        if let Some(f) = &r.time_format {
            f.render(1_441_588_984, 0, r.utc_offset_secs, &mut out);
        }
        assert_eq!(out, b"2015-09-06T20:23:04-05:00");
        assert!(CompiledRoute::new(&Route::default())
            .unwrap()
            .time_format
            .is_none());
    }
}
