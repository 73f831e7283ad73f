//! fluentd's tag match patterns, for `[[forward.route]] match` (fluentd docs, "Config File
//! Syntax", "How match patterns work"; `lib/fluent/match.rb`).
//!
//! - `*` matches one tag part (`a.*` matches `a.b`, not `a` or `a.b.c`); inside a part it
//!   is a glob (`a*` matches `ab`, not `a.b`).
//! - `**` matches zero or more parts: `a.**` matches `a`, `a.b`, `a.b.c`; `**.a` matches
//!   `a` and `x.y.a`.
//! - `{X,Y,Z}` matches any of its items, which may themselves be patterns (`a.{b.**,c}`).
//! - Whitespace separates alternative patterns: `a.** b.*`.
//! - `\` makes the next character literal.
//!
//! fluentd turns a pattern into a Ruby regular expression; this module builds the same
//! expression as a small tree, compiles it to an instruction list and runs it as a Thompson
//! NFA over bytes (linear in the tag length, no backtracking, no UTF-8 assumption).
//! fluentd's `/regex/` patterns (v1.11.2+) need a regex engine kura does not carry and are
//! refused.

/// Why a match pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// No pattern at all.
    #[error("empty match pattern")]
    Empty,
    /// A `/regex/` pattern.
    #[error("regular-expression patterns (/.../) are not supported; use *, ** and {{a,b}}")]
    Regex,
}

/// One element of the expression fluentd builds (its regex fragment in the comments).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// A literal byte.
    Lit(u8),
    /// `*` → `[^.]*`.
    Part,
    /// `**` → `.*`.
    Any,
    /// A `.` before `**` → `(?![^.])`: the end of the tag or a dot follows.
    EndOrDot,
    /// `**.` → `(?:.*\.|\A)`: the start of the tag, or anything up to a dot.
    StartOrAnyDot,
    /// `{X,Y}` → `(?:X|Y)`.
    Alt(Vec<Vec<Node>>),
}

/// One instruction of the compiled matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    Byte(u8),
    NotDot,
    AnyByte,
    Split(usize, usize),
    Jmp(usize),
    AssertStart,
    AssertEndOrDot,
    Match,
}

/// A compiled tag pattern: one or more alternatives, any of which may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern {
    /// `None` for the bare `**`, which matches everything (fluentd's `AllMatchPattern`).
    prog: Option<Vec<Inst>>,
}

impl TagPattern {
    /// Parses a pattern with fluentd's syntax: patterns separated by whitespace, each with
    /// `*`, `**`, `{a,b}` and `\` escapes.
    pub fn parse(text: &str) -> Result<TagPattern, PatternError> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        if words.is_empty() {
            return Err(PatternError::Empty);
        }
        if words.contains(&"**") {
            return Ok(TagPattern { prog: None });
        }
        let mut alts = Vec::with_capacity(words.len());
        for w in words {
            if w.len() > 1 && w.starts_with('/') && w.ends_with('/') {
                return Err(PatternError::Regex);
            }
            alts.push(build(w.as_bytes()));
        }
        let mut prog = Vec::new();
        emit_alt(&alts, &mut prog);
        prog.push(Inst::Match);
        Ok(TagPattern { prog: Some(prog) })
    }

    /// Reports whether `tag` matches (the whole tag, as fluentd's `\A…\Z`).
    pub fn matches(&self, tag: &[u8]) -> bool {
        let Some(prog) = &self.prog else {
            return true;
        };
        let mut cur = Threads::new(prog.len());
        let mut next = Threads::new(prog.len());
        cur.add(prog, 0, tag, 0);
        for (pos, &b) in tag.iter().enumerate() {
            if cur.list.is_empty() {
                return false;
            }
            next.clear();
            for &pc in &cur.list {
                let step = match prog[pc] {
                    Inst::Byte(c) => c == b,
                    Inst::NotDot => b != b'.',
                    Inst::AnyByte => true,
                    _ => false,
                };
                if step {
                    next.add(prog, pc + 1, tag, pos + 1);
                }
            }
            std::mem::swap(&mut cur, &mut next);
        }
        cur.list.iter().any(|&pc| prog[pc] == Inst::Match)
    }
}

/// Builds the expression tree of one pattern, following `GlobMatchPattern#initialize`
/// step by step: a `.` is held back until the next character shows whether it belongs to
/// `.**`; a trailing `.` or `\` is dropped, and unclosed braces are closed at the end.
fn build(pat: &[u8]) -> Vec<Node> {
    // `seqs` is fluentd's `regex` stack, `stack` the alternatives of each open brace.
    let mut seqs: Vec<Vec<Node>> = vec![Vec::new()];
    let mut stack: Vec<Vec<Vec<Node>>> = Vec::new();
    let (mut escape, mut dot) = (false, false);
    let mut i = 0;
    while i < pat.len() {
        let c = pat[i];
        let last = seqs.last_mut().expect("seqs is never empty");
        if escape {
            last.push(Node::Lit(c));
            escape = false;
            i += 1;
            continue;
        }
        if pat[i..].starts_with(b"**") {
            if dot {
                last.push(Node::EndOrDot);
                dot = false;
            }
            if pat.get(i + 2) == Some(&b'.') {
                last.push(Node::StartOrAnyDot);
                i += 3;
            } else {
                last.push(Node::Any);
                i += 2;
            }
            continue;
        }
        if dot {
            last.push(Node::Lit(b'.'));
            dot = false;
        }
        match c {
            b'\\' => escape = true,
            b'.' => dot = true,
            b'*' => last.push(Node::Part),
            b'{' => {
                stack.push(Vec::new());
                seqs.push(Vec::new());
            }
            b'}' if !stack.is_empty() => close_brace(&mut seqs, &mut stack),
            b',' if !stack.is_empty() => {
                let done = seqs.pop().unwrap_or_default();
                if let Some(alts) = stack.last_mut() {
                    alts.push(done);
                }
                seqs.push(Vec::new());
            }
            _ => last.push(Node::Lit(c)),
        }
        i += 1;
    }
    while !stack.is_empty() {
        close_brace(&mut seqs, &mut stack);
    }
    seqs.pop().unwrap_or_default()
}

fn close_brace(seqs: &mut Vec<Vec<Node>>, stack: &mut Vec<Vec<Vec<Node>>>) {
    let done = seqs.pop().unwrap_or_default();
    let mut alts = stack.pop().unwrap_or_default();
    alts.push(done);
    if let Some(last) = seqs.last_mut() {
        last.push(Node::Alt(alts));
    }
}

// ---- COMPILER AND MATCHER ----

fn emit_seq(seq: &[Node], prog: &mut Vec<Inst>) {
    for node in seq {
        match node {
            Node::Lit(c) => prog.push(Inst::Byte(*c)),
            Node::Part => emit_star(Inst::NotDot, prog),
            Node::Any => emit_star(Inst::AnyByte, prog),
            Node::EndOrDot => prog.push(Inst::AssertEndOrDot),
            Node::StartOrAnyDot => {
                // Split(L1, L2); L1: .* '.' Jmp(end); L2: AssertStart; end:
                let split = prog.len();
                prog.push(Inst::Split(split + 1, 0));
                emit_star(Inst::AnyByte, prog);
                prog.push(Inst::Byte(b'.'));
                let jmp = prog.len();
                prog.push(Inst::Jmp(0));
                prog[split] = Inst::Split(split + 1, prog.len());
                prog.push(Inst::AssertStart);
                prog[jmp] = Inst::Jmp(prog.len());
            }
            Node::Alt(alts) => emit_alt(alts, prog),
        }
    }
}

/// `x*`: L: Split(L+1, end); x; Jmp(L); end:
fn emit_star(step: Inst, prog: &mut Vec<Inst>) {
    let l = prog.len();
    prog.push(Inst::Split(l + 1, l + 3));
    prog.push(step);
    prog.push(Inst::Jmp(l));
}

/// `A|B|C`: Split(A, next); A; Jmp(end); next: Split(B, next2); B; Jmp(end); … C; end:
fn emit_alt(alts: &[Vec<Node>], prog: &mut Vec<Inst>) {
    let mut jumps = Vec::new();
    for (k, alt) in alts.iter().enumerate() {
        if k + 1 == alts.len() {
            emit_seq(alt, prog);
            break;
        }
        let split = prog.len();
        prog.push(Inst::Split(split + 1, 0));
        emit_seq(alt, prog);
        jumps.push(prog.len());
        prog.push(Inst::Jmp(0));
        prog[split] = Inst::Split(split + 1, prog.len());
    }
    let end = prog.len();
    for j in jumps {
        prog[j] = Inst::Jmp(end);
    }
}

/// The NFA's states at one position: the instructions that consume a byte (or match), in
/// insertion order.
struct Threads {
    /// Instructions visited at this position (consuming or not), to add each once.
    on: Vec<bool>,
    visited: Vec<usize>,
    list: Vec<usize>,
    stack: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Threads {
        Threads {
            on: vec![false; n],
            visited: Vec::with_capacity(n),
            list: Vec::with_capacity(n),
            stack: Vec::new(),
        }
    }

    fn clear(&mut self) {
        for &pc in &self.visited {
            self.on[pc] = false;
        }
        self.visited.clear();
        self.list.clear();
    }

    /// Adds `pc` and everything reachable from it without consuming a byte at `pos`.
    fn add(&mut self, prog: &[Inst], pc: usize, tag: &[u8], pos: usize) {
        self.stack.push(pc);
        while let Some(pc) = self.stack.pop() {
            if self.on[pc] {
                continue;
            }
            self.on[pc] = true;
            self.visited.push(pc);
            match prog[pc] {
                Inst::Jmp(t) => self.stack.push(t),
                Inst::Split(a, b) => {
                    self.stack.push(b);
                    self.stack.push(a);
                }
                Inst::AssertStart => {
                    if pos == 0 {
                        self.stack.push(pc + 1);
                    }
                }
                Inst::AssertEndOrDot => {
                    if tag.get(pos).is_none_or(|&c| c == b'.') {
                        self.stack.push(pc + 1);
                    }
                }
                Inst::Byte(_) | Inst::NotDot | Inst::AnyByte | Inst::Match => self.list.push(pc),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, tag: &str) -> bool {
        TagPattern::parse(pat).unwrap().matches(tag.as_bytes())
    }

    /// fluentd's `test/test_match.rb` and the docs' examples: (pattern, tag, matches).
    const CASES: &[(&str, &str, bool)] = &[
        // simple
        ("a", "a", true),
        ("a.b", "a.b", true),
        ("a", "b", false),
        ("a.b", "aab", false),
        ("a", "ab", false),
        // wildcard
        ("a*", "a", true),
        ("a*", "ab", true),
        ("a*", "abc", true),
        ("*a", "a", true),
        ("*a", "ba", true),
        ("*a", "cba", true),
        ("*a*", "a", true),
        ("*a*", "ba", true),
        ("*a*", "ac", true),
        ("*a*", "bac", true),
        ("a*", "a.b", false),
        ("a*", "ab.c", false),
        ("a*", "ba", false),
        ("*a", "ab", false),
        ("a.*", "a.b", true),
        ("a.*", "a.c", true),
        ("a.*", "ab", false),
        ("a.*", "a", false),
        ("a.*", "a.b.c", false),
        ("a.*.c", "a.b.c", true),
        ("a.*.c", "a.c.c", true),
        ("a.*.c", "a.c", false),
        // recursive wildcard
        ("a.**", "a", true),
        ("a.**", "ab", false),
        ("a.**", "abc", false),
        ("a.**", "a.b", true),
        ("a.**", "a.b.c", true),
        ("a.**", "ab.c", false),
        ("a.**", "ab.d.e", false),
        ("a**", "a", true),
        ("a**", "ab", true),
        ("a**", "abc", true),
        ("a**", "a.b", true),
        ("a**", "ab.c", true),
        ("a**", "ab.d.e", true),
        ("**.a", "a", true),
        ("**.a", "ba", false),
        ("**.a", "c.ba", false),
        ("**.a", "b.a", true),
        ("**.a", "cb.a", true),
        ("**.a", "d.e.a", true),
        ("**a", "a", true),
        ("**a", "ba", true),
        ("**a", "c.ba", true),
        ("**a", "b.a", true),
        ("**a", "cb.a", true),
        ("**a", "d.e.a", true),
        ("**", "", true),
        ("**", "any.thing", true),
        ("a.**.z", "a.z", true),
        ("a.**.z", "a.b.c.z", true),
        ("a.**.z", "a.bz", false),
        // or
        ("{a,b}", "a", true),
        ("{a,b}", "b", true),
        ("{a,b}", "c", false),
        ("a.{b,c}", "a.b", true),
        ("a.{b,c}", "a.c", true),
        ("a.{b,c}", "a.d", false),
        ("a.{b,c}.**", "a.b", true),
        ("a.{b,c}.**", "a.c", true),
        ("a.{b,c}.**", "a.c.d", true),
        ("a.{b,c}.**", "a.d", false),
        ("a.{b,c}.**", "a.cd", false),
        ("a.{b.**,c}", "a.b", true),
        ("a.{b.**,c}", "a.b.c", true),
        ("a.{b.**,c}", "a.c", true),
        ("a.{b.**,c}", "a.c.d", false),
        ("a.{b,c}.*", "a.b.x", true),
        ("{a.{b,c},d}", "a.c", true),
        ("{a.{b,c},d}", "d", true),
        ("{a.{b,c},d}", "a.d", false),
        // unclosed braces close at the end; stray ones are literal
        ("{a,b", "b", true),
        ("a}", "a}", true),
        ("a,b", "a,b", true),
        // whitespace-separated alternatives
        ("a b", "a", true),
        ("a b", "b", true),
        ("a b", "c", false),
        ("a.** b.*", "a", true),
        ("a.** b.*", "a.b.c", true),
        ("a.** b.*", "b.d", true),
        ("a.** b.*", "b.d.e", false),
        ("a\tb\n c", "c", true),
        // escapes and other punctuation are literal
        ("a\\*", "a*", true),
        ("a\\*", "ab", false),
        ("a\\.b", "a.b", true),
        ("a-b+c", "a-b+c", true),
        ("a?", "a?", true),
        ("a?", "ab", false),
        // a trailing dot is dropped, as fluentd does
        ("a.", "a", true),
    ];

    #[test]
    fn fluentd_match_examples() {
        for &(pat, tag, want) in CASES {
            assert_eq!(m(pat, tag), want, "pattern {pat:?} tag {tag:?}");
        }
    }

    #[test]
    fn bytes_not_utf8() {
        let p = TagPattern::parse("app.*").unwrap();
        assert!(p.matches(b"app.\xff\xfe"));
        assert!(!p.matches(b"app.\xff.x"));
        assert!(TagPattern::parse("ü.**").unwrap().matches("ü.x".as_bytes()));
    }

    #[test]
    fn errors() {
        assert_eq!(TagPattern::parse(""), Err(PatternError::Empty));
        assert_eq!(TagPattern::parse("  "), Err(PatternError::Empty));
        assert_eq!(TagPattern::parse("/a.*/"), Err(PatternError::Regex));
        // A lone slash is just a character.
        assert!(m("/", "/"));
    }

    #[test]
    fn many_stars_stay_linear() {
        let p = TagPattern::parse("**.**.**.**.**.**.**.**.x").unwrap();
        let tag = "a.".repeat(5000);
        assert!(!p.matches(tag.as_bytes()));
        assert!(p.matches(format!("{tag}x").as_bytes()));
    }
}
