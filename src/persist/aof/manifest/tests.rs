use super::*;

/// Written by redis-server 7.0.15 with `--appendfilename 'my "x".aof'` and
/// `--aof-disable-auto-gc yes` after two BGREWRITEAOFs.
const REAL_QUOTED: &[u8] = b"file \"my \\\"x\\\".aof.3.base.rdb\" seq 3 type b\n\
file \"my \\\"x\\\".aof.2.incr.aof\" seq 2 type h\n\
file \"my \\\"x\\\".aof.2.base.rdb\" seq 2 type h\n\
file \"my \\\"x\\\".aof.1.incr.aof\" seq 1 type h\n\
file \"my \\\"x\\\".aof.1.base.rdb\" seq 1 type h\n\
file \"my \\\"x\\\".aof.3.incr.aof\" seq 3 type i\n";

/// Written by redis-server 7.0.15 after `--appendonly yes` on an empty server.
const REAL_PLAIN: &[u8] =
    b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";

fn reason_of(text: &[u8]) -> (&'static str, usize, Option<String>) {
    match Manifest::parse(text) {
        Err(ManifestError::Invalid { reason, line, text }) => (reason, line, text),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn real_manifests_round_trip() {
    for real in [REAL_PLAIN, REAL_QUOTED] {
        let m = Manifest::parse(real).unwrap();
        assert_eq!(m.to_bytes(), real);
    }
    let m = Manifest::parse(REAL_QUOTED).unwrap();
    assert_eq!(m.base.as_ref().unwrap().name, "my \"x\".aof.3.base.rdb");
    assert_eq!(m.curr_base_seq, 3);
    assert_eq!(m.curr_incr_seq, 3);
    assert_eq!(m.history.len(), 4);
    assert_eq!(m.incrs[0].name, "my \"x\".aof.3.incr.aof");
    assert!(m.history.iter().all(|f| f.kind == AofFileType::History));
}

#[test]
fn rewrites_replay_redis_history_order() {
    // The same two rewrites as REAL_QUOTED, done through the API in the lead's order:
    // open incr, then at rewrite start a new incr, at rewrite end a new base + mark.
    let p = "my \"x\".aof";
    let mut m = Manifest::default();
    m.new_base(p, true);
    m.new_incr(p);
    for _ in 0..2 {
        m.new_incr(p);
        m.new_base(p, true);
        m.mark_rewritten_incrs_history();
    }
    assert_eq!(m.to_bytes(), REAL_QUOTED);
    assert_eq!(m.new_base("x", false), "x.4.base.aof");
    assert_eq!(m.new_incr("x"), "x.4.incr.aof");
    m.mark_all_incrs_history();
    assert!(m.incrs.is_empty());
    assert_eq!(m.history[0].name, "my \"x\".aof.3.incr.aof");
    assert_eq!(m.history[1].name, "x.4.incr.aof");
}

#[test]
fn quoting_of_names() {
    let mut m = Manifest::default();
    for name in [
        "with space",
        "tab\there",
        "quote'single",
        "nl\nx",
        "bin\x01\u{7f}",
        "é",
    ] {
        m.incrs.push(AofFile {
            name: name.to_string(),
            seq: m.incrs.len() as u64 + 1,
            kind: AofFileType::Incr,
        });
    }
    m.curr_incr_seq = m.incrs.len() as u64;
    let text = m.to_bytes();
    let shown = String::from_utf8_lossy(&text).into_owned();
    assert!(
        shown.starts_with("file \"with space\" seq 1 type i\n"),
        "{shown}"
    );
    assert!(shown.contains("file \"tab\\there\" seq 2"), "{shown}");
    assert!(shown.contains("file \"quote'single\" seq 3"), "{shown}");
    assert!(shown.contains("file \"nl\\nx\" seq 4"), "{shown}");
    assert!(shown.contains("file \"bin\\x01\\x7f\" seq 5"), "{shown}");
    assert!(shown.contains("file \"\\xc3\\xa9\" seq 6"), "{shown}");
    assert_eq!(Manifest::parse(&text).unwrap(), m);
}

#[test]
fn keys_in_any_order_unknown_keys_and_comments() {
    let m = Manifest::parse(
        b"# a comment\nTYPE ixyz SEQ 7 FILE a.aof extra 1\n  seq 2 type b file 'b c'  \r\n",
    )
    .unwrap();
    assert_eq!(m.incrs[0].name, "a.aof");
    assert_eq!(m.incrs[0].seq, 7);
    assert_eq!(m.base.as_ref().unwrap().name, "b c");
    assert_eq!(m.curr_base_seq, 2);
    // A manifest of comments only is valid and empty.
    assert!(Manifest::parse(b"# nothing\n").unwrap().is_empty());
    // atoll: leading digits count.
    assert_eq!(
        Manifest::parse(b"file x seq 12abc type i\n").unwrap().incrs[0].seq,
        12
    );
}

#[test]
fn every_error_of_redis() {
    assert_eq!(reason_of(b"").0, reason::EMPTY);
    // A last line without a newline is "too long" to Redis too (fgets finds no '\n').
    assert_eq!(reason_of(b"file x seq 1 type i").0, reason::TOO_LONG);
    let long = format!("file {} seq 1 type i\n", "x".repeat(1100));
    assert_eq!(reason_of(long.as_bytes()).0, reason::TOO_LONG);
    assert_eq!(reason_of(b"\n"), (reason::INVALID, 1, Some(String::new())));
    assert_eq!(
        reason_of(b"file x seq 1\n"),
        (reason::INVALID, 1, Some("file x seq 1".into()))
    );
    assert_eq!(reason_of(b"file x seq 1 type i extra\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file x seq 0 type i\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file x seq abc type i\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file x seq -1 type b\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file x seq 1 type ''\n").0, reason::INVALID);
    assert_eq!(reason_of(b"fil x seq 1 type i\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file \"x seq 1 type i\n").0, reason::INVALID);
    assert_eq!(reason_of(b"file \"x\"y seq 1 type i\n").0, reason::INVALID);
    // A comment must start the line; after blanks it is a token.
    assert_eq!(
        reason_of(b"  # x\n"),
        (reason::INVALID, 1, Some("# x".into()))
    );
    assert_eq!(
        reason_of(b"file a/b seq 1 type i\n"),
        (reason::PATH, 1, Some("file a/b seq 1 type i".into()))
    );
    assert_eq!(reason_of(b"file a\\b seq 1 type i\n").0, reason::PATH);
    assert_eq!(reason_of(b"file \"a\\\\b\" seq 1 type i\n").0, reason::PATH);
    assert_eq!(
        reason_of(b"# c\nfile a seq 1 type b\nfile a seq 1 type b\n"),
        (
            reason::DUPLICATE_BASE,
            3,
            Some("file a seq 1 type b".into())
        )
    );
    assert_eq!(
        reason_of(b"file a seq 2 type i\nfile b seq 1 type i\n").1,
        2
    );
    assert_eq!(
        reason_of(b"file a seq 2 type i\nfile b seq 2 type i\n").0,
        reason::NON_MONOTONIC
    );
    assert_eq!(reason_of(b"file a seq 1 type x\n").0, reason::UNKNOWN_TYPE);
    // Display carries the reason and the line.
    let e = Manifest::parse(b"file a seq 1 type x\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown AOF file type (manifest line 1: 'file a seq 1 type x')"
    );
}

#[test]
fn split_args_like_sdssplitargs() {
    let s = |t: &[u8]| {
        split_args(t).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        s(b"a  b\tc"),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        s(b"\"a\\x41\\n\" 'it\\'s'"),
        Some(vec!["aA\n".into(), "it's".into()])
    );
    assert_eq!(s(b"ab\"cd\" x"), Some(vec!["abcd".into(), "x".into()]));
    assert_eq!(s(b"\"\""), Some(vec![String::new()]));
    assert_eq!(s(b"\"a\"b"), None);
    assert_eq!(s(b"'a"), None);
    assert_eq!(s(b"\"a\\"), None);
    assert_eq!(s(b""), Some(vec![]));
}

#[test]
fn persist_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let aof = dir.path().join("appendonlydir");
    assert!(load_manifest(&aof, "appendonly.aof").unwrap().is_none());
    std::fs::create_dir(&aof).unwrap();
    assert!(load_manifest(&aof, "appendonly.aof").unwrap().is_none());
    let m = Manifest::parse(REAL_PLAIN).unwrap();
    persist_manifest(&aof, "appendonly.aof", &m).unwrap();
    assert_eq!(
        std::fs::read(aof.join("appendonly.aof.manifest")).unwrap(),
        REAL_PLAIN
    );
    assert!(!aof
        .join("temp-appendonly.aof.manifest")
        .try_exists()
        .unwrap());
    assert_eq!(load_manifest(&aof, "appendonly.aof").unwrap(), Some(m));
    std::fs::write(aof.join("appendonly.aof.manifest"), b"bad\n").unwrap();
    assert!(matches!(
        load_manifest(&aof, "appendonly.aof"),
        Err(ManifestError::Invalid { .. })
    ));
}

#[test]
fn helpers() {
    let m = Manifest::parse(REAL_QUOTED).unwrap();
    assert_eq!(m.file_names().len(), 6);
    assert_eq!(m.load_order().count(), 2);
    assert_eq!(m.last_incr().unwrap().seq, 3);
    assert!(!m.is_empty());
    assert!(Manifest::default().is_empty());
}
