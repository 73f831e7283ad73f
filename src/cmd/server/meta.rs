//! Redis 7.0.15's own command metadata: what `COMMAND INFO` and `COMMAND DOCS` say about each
//! command (ACL categories, tips, key specs, summaries, arguments), captured from a real server
//! by `src/cmd/server/gen_command_meta.py` into `commands.resp3`.
//!
//! The file is a RESP3 stream with LF line ends: one `[name, info entry, docs entry]` array
//! per top-level command. It is parsed once, lazily, into [`Reply`] trees whose maps and sets
//! keep their types, so the encoder shapes them for RESP2 or RESP3 like Redis does.
//! Commands kura has but the file lacks get entries synthesised from the command table.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::cmd::reply::Reply;

static DATA: &[u8] = include_bytes!("commands.resp3");

/// The metadata of one command or subcommand.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The `COMMAND INFO` entry without its subcommands (element 10 is left empty).
    pub info: Reply,
    /// The `COMMAND DOCS` map without its `subcommands` pair.
    pub docs: Vec<(Reply, Reply)>,
}

/// Every command's and subcommand's metadata, by lowercase full name (`config|get`).
pub fn all() -> &'static HashMap<String, Meta> {
    static META: OnceLock<HashMap<String, Meta>> = OnceLock::new();
    META.get_or_init(|| {
        let mut map = HashMap::new();
        let mut p = Parser { data: DATA, pos: 0 };
        while p.pos < p.data.len() {
            let Some(Reply::Array(item)) = p.parse() else {
                break;
            };
            let mut it = item.into_iter();
            let (Some(_), Some(info), Some(docs)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            add(&mut map, info, docs);
        }
        map
    })
}

/// Returns one command's metadata.
pub fn get(name: &str) -> Option<&'static Meta> {
    all().get(name)
}

/// Splits a command's entries into its own and its subcommands', recursively.
fn add(map: &mut HashMap<String, Meta>, info: Reply, docs: Reply) {
    let Reply::Array(mut info) = info else {
        return;
    };
    let Some(Reply::Bulk(name)) = info.first().cloned() else {
        return;
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    let sub_infos = match info.get_mut(9) {
        Some(Reply::Array(subs)) => std::mem::take(subs),
        _ => Vec::new(),
    };
    let mut docs = match docs {
        Reply::Map(pairs) => pairs,
        _ => Vec::new(),
    };
    let mut sub_docs = Vec::new();
    docs.retain(|(k, v)| {
        if key_is(k, "subcommands") {
            if let Reply::Map(pairs) = v {
                sub_docs = pairs.clone();
            }
            return false;
        }
        true
    });
    for sub in sub_infos {
        let sub_name = match &sub {
            Reply::Array(e) => match e.first() {
                Some(Reply::Bulk(n)) => n.clone(),
                _ => continue,
            },
            _ => continue,
        };
        let doc = sub_docs
            .iter()
            .find(|(k, _)| matches!(k, Reply::Bulk(b) if *b == sub_name))
            .map(|(_, v)| v.clone())
            .unwrap_or(Reply::Map(Vec::new()));
        add(map, sub, doc);
    }
    map.insert(
        name,
        Meta {
            info: Reply::Array(info),
            docs,
        },
    );
}

/// Reports whether a map key is the bulk string `name`.
pub fn key_is(k: &Reply, name: &str) -> bool {
    matches!(k, Reply::Bulk(b) if b.as_ref() == name.as_bytes())
}

/// A RESP3 reader over LF-terminated lines (the generator's output format).
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    /// Returns the next line without its line end (LF, or CRLF should a checkout convert
    /// the file).
    fn line(&mut self) -> Option<&[u8]> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|b| *b == b'\n')?;
        self.pos += end + 1;
        let line = &rest[..end];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    fn parse(&mut self) -> Option<Reply> {
        let line = self.line()?;
        let (&kind, rest) = line.split_first()?;
        let text = std::str::from_utf8(rest).ok()?;
        Some(match kind {
            b'+' => Reply::Simple(text.to_string()),
            b':' => Reply::Int(text.parse().ok()?),
            b'_' => Reply::Nil,
            b'$' => {
                let n: usize = text.parse().ok()?;
                let data = self.data.get(self.pos..self.pos + n)?;
                self.pos += n;
                if self.data.get(self.pos) == Some(&b'\r') {
                    self.pos += 1;
                }
                self.pos += 1;
                Reply::Bulk(Bytes::copy_from_slice(data))
            }
            b'*' | b'~' => {
                let n: usize = text.parse().ok()?;
                let items = (0..n).map(|_| self.parse()).collect::<Option<Vec<_>>>()?;
                if kind == b'~' {
                    Reply::Set(items)
                } else {
                    Reply::Array(items)
                }
            }
            b'%' => {
                let n: usize = text.parse().ok()?;
                let pairs = (0..n)
                    .map(|_| Some((self.parse()?, self.parse()?)))
                    .collect::<Option<Vec<_>>>()?;
                Reply::Map(pairs)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_line_ends_parse_too() {
        let mut p = Parser {
            data: b"*2\r\n$3\r\na\nb\r\n:5\r\n",
            pos: 0,
        };
        assert_eq!(
            p.parse(),
            Some(Reply::Array(vec![Reply::bulk("a\nb"), Reply::Int(5)]))
        );
    }

    #[test]
    fn the_data_file_parses_completely() {
        let mut p = Parser { data: DATA, pos: 0 };
        while p.pos < DATA.len() {
            assert!(p.parse().is_some(), "parse error near byte {}", p.pos);
        }
        let m = all();
        assert!(m.len() > 150, "only {} entries", m.len());
        let get = get("get").expect("get");
        let Reply::Array(e) = &get.info else {
            panic!("info is an array")
        };
        assert_eq!(e.len(), 10);
        assert_eq!(e[1], Reply::Int(2));
        assert!(get.docs.iter().any(|(k, _)| key_is(k, "summary")));
        let cfg = self::get("config|get").expect("config|get");
        let Reply::Array(e) = &cfg.info else {
            panic!("info is an array")
        };
        assert_eq!(e[1], Reply::Int(-3));
    }
}
