//! A small YAML reader for the shipped YAML files (deploy/*.yml, deploy/twemproxy/,
//! fluentd/fluent-bit.yaml, dashboards/provisioning/), so their tests need no YAML crate.
//!
//! It reads the block subset those files use: mappings, sequences (`- item`, `- key: v`),
//! flow collections (`[a, "b"]`, `{k: v}`), quoted and plain scalars, comments, and resolves
//! plain scalars as PyYAML's `safe_load` does (YAML 1.1: `on`/`yes` are booleans, `0750` is
//! octal). Anything else (anchors, block scalars, sexagesimal numbers like `22:22`,
//! multi-line plain scalars) panics with the line: keep the files in the subset, or quote.
//!
//! When python3 with PyYAML is installed, [`load`] also parses the file with PyYAML and
//! asserts both readings agree, so the subset reader is checked against a real YAML parser.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, Number, Value};

/// One content line: its indentation and its text without comment or trailing spaces.
#[derive(Debug, Clone)]
struct Line {
    no: usize,
    indent: usize,
    text: String,
}

/// Parses `text` (one document) into JSON values, as PyYAML's `safe_load` would.
pub fn parse(text: &str) -> Value {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        assert!(
            !raw.contains('\t'),
            "line {}: tabs are not YAML indentation",
            n + 1
        );
        let body = strip_comment(raw);
        let trimmed = body.trim_end();
        if trimmed.trim().is_empty() || trimmed == "---" {
            continue;
        }
        let indent = trimmed.len() - trimmed.trim_start().len();
        lines.push(Line {
            no: n + 1,
            indent,
            text: trimmed.trim_start().to_string(),
        });
    }
    if lines.is_empty() {
        return Value::Null;
    }
    let mut i = 0;
    let indent = lines[0].indent;
    let v = node(&mut lines, &mut i, indent);
    if let Some(l) = lines.get(i) {
        panic!("line {}: unexpected {:?}", l.no, l.text);
    }
    v
}

/// Reads `path`, parses it, and cross-checks with PyYAML when it is installed.
pub fn load(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let v = parse(&text);
    if let Some(py) = pyyaml(path) {
        assert_eq!(v, py, "{path:?}: the subset reader and PyYAML disagree");
    }
    v
}

/// PyYAML's reading of `path` as JSON, or `None` when python3 or PyYAML is missing (the
/// subset reader alone is then the check; PyYAML is optional, even under CI).
fn pyyaml(path: &std::path::Path) -> Option<Value> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
        ])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A YAML error is a finding; a missing module is not.
        assert!(
            err.contains("ModuleNotFoundError") || err.contains("No module named"),
            "{path:?}: PyYAML refuses it: {err}"
        );
        eprintln!("note: PyYAML not installed; {path:?} checked by the subset reader only");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Cuts a `#` comment (at the line start or after a space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && matches!(prev, ' ' | '[' | '{' | ',' | ':') => {
                quote = Some(c)
            }
            None if c == '#' && (prev == ' ' || i == 0) => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// Whether a line is a sequence item.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Splits `key: value` (or `key:`) outside quotes and flow brackets; `None` for a scalar.
fn split_key(text: &str) -> Option<(String, &str)> {
    let mut quote = None;
    let mut depth = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if i == 0 => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                ':' if depth == 0 && (i + 1 == text.len() || bytes[i + 1] == b' ') => {
                    let key = match scalar(text[..i].trim()) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    return Some((key, text[i + 1..].trim()));
                }
                _ => {}
            },
        }
    }
    None
}

/// A node starting at line `i`, whose lines are indented `indent`.
fn node(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
    let l = lines[*i].clone();
    assert_eq!(l.indent, indent, "line {}: bad indentation", l.no);
    if is_item(&l.text) {
        sequence(lines, i, indent)
    } else if split_key(&l.text).is_some() {
        mapping(lines, i, indent)
    } else {
        *i += 1;
        inline(&l.text, l.no)
    }
}

fn sequence(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
    let mut items = Vec::new();
    while *i < lines.len() && lines[*i].indent == indent && is_item(&lines[*i].text) {
        let l = lines[*i].clone();
        let rest = l.text[1..].trim_start();
        if rest.is_empty() {
            *i += 1;
            items.push(nested(lines, i, indent));
            continue;
        }
        // `- key: v` starts a mapping whose keys line up with `key`.
        let col = indent + (l.text.len() - rest.len());
        lines[*i] = Line {
            no: l.no,
            indent: col,
            text: rest.to_string(),
        };
        items.push(node(lines, i, col));
    }
    Value::Array(items)
}

fn mapping(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
    let mut map = Map::new();
    while *i < lines.len() && lines[*i].indent == indent && !is_item(&lines[*i].text) {
        let l = lines[*i].clone();
        let Some((key, value)) = split_key(&l.text) else {
            panic!("line {}: expected `key: value`, got {:?}", l.no, l.text);
        };
        *i += 1;
        let v = if value.is_empty() {
            // A sequence may sit at the key's own indentation.
            if *i < lines.len() && lines[*i].indent == indent && is_item(&lines[*i].text) {
                sequence(lines, i, indent)
            } else {
                nested(lines, i, indent)
            }
        } else {
            inline(value, l.no)
        };
        assert!(
            map.insert(key.clone(), v).is_none(),
            "line {}: duplicate key {key}",
            l.no
        );
    }
    if let Some(l) = lines.get(*i) {
        assert!(l.indent <= indent, "line {}: bad indentation", l.no);
    }
    Value::Object(map)
}

/// The block under a `key:` or `-` line: deeper lines, or null when there are none.
fn nested(lines: &mut [Line], i: &mut usize, indent: usize) -> Value {
    match lines.get(*i) {
        Some(next) if next.indent > indent => {
            let deeper = next.indent;
            node(lines, i, deeper)
        }
        _ => Value::Null,
    }
}

/// A value on one line: a flow collection or a scalar.
fn inline(text: &str, no: usize) -> Value {
    assert!(
        !text.starts_with(['&', '*', '!', '|', '>', '%', '@', '`']),
        "line {no}: {text:?} is outside the subset this reader knows (quote it)"
    );
    if text.starts_with('[') || text.starts_with('{') {
        let mut pos = 0;
        let v = flow(text.as_bytes(), &mut pos, no);
        assert_eq!(text[pos..].trim(), "", "line {no}: text after a flow value");
        v
    } else {
        scalar(text)
    }
}

fn skip_spaces(b: &[u8], pos: &mut usize) {
    while *pos < b.len() && b[*pos] == b' ' {
        *pos += 1;
    }
}

/// A flow collection or scalar starting at `pos`.
fn flow(b: &[u8], pos: &mut usize, no: usize) -> Value {
    skip_spaces(b, pos);
    let close = match b.get(*pos) {
        Some(b'[') => b']',
        Some(b'{') => b'}',
        _ => {
            // A scalar up to `,` `]` `}` (or `:` in a mapping), outside quotes.
            let start = *pos;
            let mut quote = None;
            while *pos < b.len() {
                let c = b[*pos];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if (c == b'"' || c == b'\'') && *pos == start => quote = Some(c),
                    None if c == b',' || c == b']' || c == b'}' => break,
                    None if c == b':'
                        && b.get(*pos + 1).is_none_or(|n| *n == b' ' || *n == b',') =>
                    {
                        break
                    }
                    None => {}
                }
                *pos += 1;
            }
            let text = std::str::from_utf8(&b[start..*pos]).unwrap().trim();
            return scalar(text);
        }
    };
    *pos += 1;
    let mut items = Vec::new();
    let mut map = Map::new();
    loop {
        skip_spaces(b, pos);
        if b.get(*pos) == Some(&close) {
            *pos += 1;
            break;
        }
        let v = flow(b, pos, no);
        skip_spaces(b, pos);
        if close == b'}' {
            assert_eq!(
                b.get(*pos),
                Some(&b':'),
                "line {no}: `key: value` in a flow map"
            );
            *pos += 1;
            let key = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = flow(b, pos, no);
            map.insert(key, value);
        } else {
            items.push(v);
        }
        skip_spaces(b, pos);
        match b.get(*pos) {
            Some(b',') => *pos += 1,
            Some(c) if *c == close => {}
            other => panic!(
                "line {no}: unexpected {:?} in a flow collection",
                other.map(|c| *c as char)
            ),
        }
    }
    if close == b']' {
        Value::Array(items)
    } else {
        Value::Object(map)
    }
}

/// A scalar: quoted, or plain resolved by YAML 1.1's rules as PyYAML applies them.
fn scalar(text: &str) -> Value {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('/') => out.push('/'),
                other => panic!("unsupported escape \\{other:?} in {text}"),
            }
        }
        return Value::String(out);
    }
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Value::String(inner.replace("''", "'"));
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => (-1i64, d),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let plain = digits.replace('_', "");
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(&plain) && !digits.starts_with('_') {
        let n = if plain.len() > 1 && plain.starts_with('0') {
            assert!(
                plain.bytes().all(|b| (b'0'..=b'7').contains(&b)),
                "{text:?}: not an octal number; quote it"
            );
            i64::from_str_radix(&plain, 8).unwrap()
        } else {
            plain.parse::<i64>().unwrap()
        };
        return Value::Number(Number::from(sign * n));
    }
    // YAML 1.1 sexagesimal integers (`[1-9][0-9_]*(:[0-5]?[0-9])+`: `22:22` is 1342)
    // surprise everyone: refuse them.
    let mut parts = digits.split(':');
    let first = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    let sexagesimal = !rest.is_empty()
        && first.starts_with(|c: char| ('1'..='9').contains(&c))
        && first.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len()) && all_digits(p) && p.parse::<u32>().is_ok_and(|n| n < 60)
        });
    assert!(
        !sexagesimal,
        "{text:?} reads as a base-60 number in YAML 1.1; quote it"
    );
    // Floats: digits '.' digits, optional exponent with a sign.
    let (mantissa, exp) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (digits, None),
    };
    if let Some((int, frac)) = mantissa.split_once('.') {
        let int_ok = int.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        let frac_ok = frac.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        let exp_ok = exp.is_none_or(|e| {
            e.starts_with(['+', '-']) && e.len() > 1 && e[1..].bytes().all(|b| b.is_ascii_digit())
        });
        if int_ok && frac_ok && exp_ok && !int.is_empty() {
            let f: f64 = text.replace('_', "").parse().unwrap();
            return Value::Number(Number::from_f64(f).unwrap());
        }
    }
    Value::String(text.to_string())
}

#[test]
fn the_subset_reads_as_pyyaml_would() {
    let text = r#"
# a comment
a: 1
b: "x # not a comment"
c: 'it''s'
d: [1, "two", three]
e: {k: v, n: 2}
f:
- x
- y: 1
  z: on
g:
  h:
    - [a, b]
  i: ~
j: 127.0.0.1:6379:1 name
k: 0750
l: 1.5
m: -3
n: no_limits
o: ""
"#;
    let v = parse(text);
    let want = serde_json::json!({
        "a": 1, "b": "x # not a comment", "c": "it's", "d": [1, "two", "three"],
        "e": {"k": "v", "n": 2}, "f": ["x", {"y": 1, "z": true}],
        "g": {"h": [["a", "b"]], "i": null}, "j": "127.0.0.1:6379:1 name", "k": 488,
        "l": 1.5, "m": -3, "n": "no_limits", "o": ""
    });
    assert_eq!(v, want);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yml");
    std::fs::write(&path, text).unwrap();
    // With PyYAML installed, this is the cross-check itself.
    assert_eq!(load(&path), want);
}

#[test]
#[should_panic(expected = "base-60")]
fn unquoted_port_pairs_are_refused() {
    // PyYAML reads this as the integer 1342; docker compose wants "22:22".
    parse("ports:\n  - 22:22\n");
}
