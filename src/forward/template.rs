//! Key templates of `[[forward.route]] key`: where a record is stored, from its tag and
//! event time (DESIGN.md "Forward -> store mapping"; `shared/spec/fluent.md` §5.1).
//!
//! Placeholders follow fluentd's `record_transformer` (`${tag}`, `${tag_parts[N]}`,
//! `${tag_prefix[N]}`, `${tag_suffix[N]}`, Ruby array indexing: negative N counts from the
//! end, out of range renders nothing) plus the output plugins' `${tag[N]}` (the same as
//! `tag_parts`). The text around them may hold `strftime` conversions of the event time
//! (`logs:${tag}:%Y%m%d`); `%%` is a literal `%`. Tags are bytes and stay bytes.

use super::strftime::{Strftime, StrftimeError};

/// Why a key template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is empty: every record would go to the empty key.
    #[error("key template is empty")]
    Empty,
    /// A `${` without its `}`.
    #[error("'${{' without a closing '}}' in key template")]
    Unclosed,
    /// A `${...}` kura does not know.
    #[error(
        "unknown placeholder '{0}' (known: ${{tag}}, ${{tag_parts[N]}}, ${{tag_prefix[N]}}, \
         ${{tag_suffix[N]}}, ${{tag[N]}})"
    )]
    Unknown(String),
    /// A bad strftime conversion in the literal text.
    #[error(transparent)]
    Time(#[from] StrftimeError),
}

/// Which derived piece of the tag a placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagRef {
    /// `${tag}`.
    Whole,
    /// `${tag_parts[N]}` / `${tag[N]}`: one part.
    Part(i64),
    /// `${tag_prefix[N]}`: parts 0..=N joined with dots.
    Prefix(i64),
    /// `${tag_suffix[N]}`: parts N.. joined with dots.
    Suffix(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Lit(Vec<u8>),
    Time(Strftime),
    Tag(TagRef),
}

/// A parsed key template, rendered once per record (or once per tag when it has no time
/// part) by the forward mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    segments: Vec<Segment>,
    /// Offset east of UTC at which the date parts are rendered (the route's `timezone`).
    utc_offset_secs: i32,
}

impl KeyTemplate {
    /// Parses a template; unknown placeholders and bad conversions are errors so a typo
    /// fails at start instead of scattering records over wrong keys. Dates render in UTC
    /// until [`KeyTemplate::with_utc_offset`] says otherwise.
    pub fn parse(text: &str) -> Result<KeyTemplate, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut segments = Vec::new();
        let mut rest = text;
        loop {
            let (before, after) = match rest.find("${") {
                Some(at) => (&rest[..at], Some(&rest[at + 2..])),
                None => (rest, None),
            };
            if !before.is_empty() {
                let time = Strftime::parse(before)?;
                if time.uses_time() {
                    segments.push(Segment::Time(time));
                } else {
                    // Rendering once gives the literal with `%%` resolved.
                    let mut lit = Vec::new();
                    time.render(0, 0, 0, &mut lit);
                    segments.push(Segment::Lit(lit));
                }
            }
            let Some(after) = after else { break };
            let end = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..end];
            let tag = parse_placeholder(name)
                .ok_or_else(|| TemplateError::Unknown(format!("${{{name}}}")))?;
            segments.push(Segment::Tag(tag));
            rest = &after[end + 1..];
        }
        Ok(KeyTemplate {
            segments,
            utc_offset_secs: 0,
        })
    }

    /// Returns the template rendering its date parts at `secs` east of UTC (a route's
    /// `timezone`, so daily keys roll over at local midnight).
    pub fn with_utc_offset(mut self, utc_offset_secs: i32) -> KeyTemplate {
        self.utc_offset_secs = utc_offset_secs;
        self
    }

    /// Reports whether the key depends on the event time: without a time part, every
    /// record of a tag goes to one key and the mapping renders it once per chunk.
    pub fn has_time(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Time(_)))
    }

    /// Appends the key for a record with this tag and event time (seconds since the epoch).
    pub fn render(&self, tag: &[u8], secs: i64, out: &mut Vec<u8>) {
        for seg in &self.segments {
            match seg {
                Segment::Lit(b) => out.extend_from_slice(b),
                Segment::Time(t) => t.render(secs, 0, self.utc_offset_secs, out),
                Segment::Tag(r) => render_tag(*r, tag, out),
            }
        }
    }
}

fn parse_placeholder(name: &str) -> Option<TagRef> {
    if name == "tag" {
        return Some(TagRef::Whole);
    }
    let (kind, rest) = name.split_once('[')?;
    let index = rest.strip_suffix(']')?;
    let digits = index.strip_prefix('-').unwrap_or(index);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = index.parse().ok()?;
    match kind {
        "tag_parts" | "tag" => Some(TagRef::Part(n)),
        "tag_prefix" => Some(TagRef::Prefix(n)),
        "tag_suffix" => Some(TagRef::Suffix(n)),
        _ => None,
    }
}

/// Resolves a Ruby array index (negative counts from the end) against `len`.
fn ruby_index(n: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if n < 0 { n.checked_add(len)? } else { n };
    (0..len).contains(&i).then_some(i as usize)
}

/// Appends the tag piece `r` names. The parts are Ruby's `tag.split('.')`: empty parts
/// kept, trailing ones dropped, so the parts are those of the tag without its trailing
/// dots, and a prefix or suffix (parts joined with dots) is a slice of it: no allocation.
fn render_tag(r: TagRef, tag: &[u8], out: &mut Vec<u8>) {
    let n = match r {
        TagRef::Whole => {
            out.extend_from_slice(tag);
            return;
        }
        TagRef::Part(n) | TagRef::Prefix(n) | TagRef::Suffix(n) => n,
    };
    let end = tag.iter().rposition(|&c| c != b'.').map_or(0, |p| p + 1);
    let t = &tag[..end];
    if t.is_empty() {
        return;
    }
    let count = t.iter().filter(|&&c| c == b'.').count() + 1;
    let Some(i) = ruby_index(n, count) else {
        return;
    };
    // Byte bounds of part `i`.
    let mut start = 0;
    for part in t.split(|&c| c == b'.').take(i) {
        start += part.len() + 1;
    }
    let stop = t[start..]
        .iter()
        .position(|&c| c == b'.')
        .map_or(t.len(), |p| start + p);
    out.extend_from_slice(match r {
        TagRef::Prefix(_) => &t[..stop],
        TagRef::Suffix(_) => &t[start..],
        _ => &t[start..stop],
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(tpl: &str, tag: &[u8], secs: i64) -> Vec<u8> {
        let mut out = Vec::new();
        KeyTemplate::parse(tpl).unwrap().render(tag, secs, &mut out);
        out
    }

    fn r(tpl: &str, tag: &str) -> String {
        String::from_utf8(render(tpl, tag.as_bytes(), 1_441_588_984)).unwrap()
    }

    #[test]
    fn tag_placeholders() {
        // record_transformer's documented example tag.
        let tag = "prefix.test.tag.suffix";
        assert_eq!(r("${tag}", tag), tag);
        assert_eq!(r("${tag_parts[0]}", tag), "prefix");
        assert_eq!(r("${tag_parts[1]}", tag), "test");
        assert_eq!(r("${tag_parts[-1]}", tag), "suffix");
        assert_eq!(r("${tag_parts[-4]}", tag), "prefix");
        assert_eq!(r("${tag[2]}", tag), "tag");
        assert_eq!(r("${tag_prefix[0]}", tag), "prefix");
        assert_eq!(r("${tag_prefix[1]}", tag), "prefix.test");
        assert_eq!(r("${tag_prefix[-1]}", tag), "prefix.test.tag.suffix");
        assert_eq!(r("${tag_prefix[-2]}", tag), "prefix.test.tag");
        assert_eq!(r("${tag_suffix[0]}", tag), "prefix.test.tag.suffix");
        assert_eq!(r("${tag_suffix[1]}", tag), "test.tag.suffix");
        assert_eq!(r("${tag_suffix[-1]}", tag), "suffix");
        assert_eq!(r("${tag_suffix[-2]}", tag), "tag.suffix");
        // Out of range renders nothing.
        for tpl in [
            "${tag_parts[4]}",
            "${tag_parts[-5]}",
            "${tag_prefix[9]}",
            "${tag_suffix[-9]}",
            "${tag_parts[-9223372036854775808]}",
        ] {
            assert_eq!(r(&format!("<{tpl}>"), tag), "<>", "{tpl}");
        }
        // Ruby's split: inner empty parts kept, trailing ones dropped.
        assert_eq!(r("${tag_parts[1]}|${tag_parts[-1]}", "a..b."), "|b");
        assert_eq!(r("${tag_parts[0]}|${tag_suffix[0]}", ""), "|");
        assert_eq!(r("${tag_parts[0]}|${tag_prefix[-1]}", "..."), "|");
        assert_eq!(
            r(
                "${tag_prefix[1]}|${tag_suffix[1]}|${tag_parts[-2]}",
                "a..b.c."
            ),
            "a.|.b.c|b"
        );
    }

    #[test]
    fn time_parts_and_literals() {
        assert_eq!(r("logs:${tag}:%Y%m%d", "app.web"), "logs:app.web:20150907");
        assert_eq!(r("${tag}.%s", "app"), "app.1441588984");
        assert_eq!(r("100%%:${tag}", "a"), "100%:a");
        assert_eq!(r("$tag {x} $", "a"), "$tag {x} $");
        assert!(KeyTemplate::parse("logs:${tag}:%Y%m%d").unwrap().has_time());
        assert!(!KeyTemplate::parse("logs:${tag}:100%%").unwrap().has_time());
        assert!(!KeyTemplate::parse("${tag}").unwrap().has_time());
        // The route's timezone moves the day boundary.
        let t = KeyTemplate::parse("d:%Y%m%d%H")
            .unwrap()
            .with_utc_offset(9 * 3600);
        let mut out = Vec::new();
        t.render(b"x", 1_441_638_000, &mut out); // 2015-09-07T15:00:00Z
        assert_eq!(out, b"d:2015090800");
    }

    #[test]
    fn bytes_pass_through() {
        assert_eq!(
            render("k:${tag_parts[1]}:${tag}", b"a.\xff\x00.c", 0),
            b"k:\xff\x00:a.\xff\x00.c"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(KeyTemplate::parse(""), Err(TemplateError::Empty));
        assert_eq!(KeyTemplate::parse("a${tag"), Err(TemplateError::Unclosed));
        for bad in [
            "${host}",
            "${tag_parts}",
            "${tag_parts[]}",
            "${tag_parts[x]}",
            "${tag_parts[1}",
            "${ tag }",
            "${tag_part[0]}",
            "${tag_parts[99999999999999999999]}",
        ] {
            assert!(
                matches!(KeyTemplate::parse(bad), Err(TemplateError::Unknown(_))),
                "{bad}"
            );
        }
        assert_eq!(
            KeyTemplate::parse("${host}").unwrap_err().to_string(),
            "unknown placeholder '${host}' (known: ${tag}, ${tag_parts[N]}, ${tag_prefix[N]}, \
             ${tag_suffix[N]}, ${tag[N]})"
        );
        assert_eq!(
            KeyTemplate::parse("${tag}:%Q"),
            Err(TemplateError::Time(StrftimeError::Unsupported("%Q".into())))
        );
    }
}
