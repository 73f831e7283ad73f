use std::path::Path;

use super::*;
use crate::config::Config;
use crate::store::Value;

/// Encodes commands as the AOF holds them.
fn aof(cmds: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in cmds {
        out.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
        for a in *c {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    srv: ServerState,
}

impl Fixture {
    fn new(tweak: impl FnOnce(&mut Config)) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            dir: dir.path().to_path_buf(),
            appendonly: true,
            save: vec![],
            ..Config::default()
        };
        tweak(&mut cfg);
        Fixture {
            srv: ServerState::new(cfg),
            dir,
        }
    }

    fn aof_dir(&self) -> PathBuf {
        self.dir.path().join("appendonlydir")
    }

    /// Writes a manifest and the files it lists.
    fn files(&self, manifest: &str, files: &[(&str, &[u8])]) {
        std::fs::create_dir_all(self.aof_dir()).unwrap();
        std::fs::write(self.aof_dir().join("appendonly.aof.manifest"), manifest).unwrap();
        for (name, bytes) in files {
            std::fs::write(self.aof_dir().join(name), bytes).unwrap();
        }
    }

    fn load(&self) -> Result<Option<AofLoaded>, AofLoadError> {
        load_at_start(&self.srv)
    }

    /// Returns the dataset as sorted lines `db key type value [ttl]`.
    fn data(&self) -> Vec<String> {
        let st = self.srv.engine.lock();
        let mut out = Vec::new();
        for (i, db) in st.ks.dbs.iter().enumerate() {
            for (k, e) in db.iter() {
                let v = match &e.value {
                    Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    Value::List(l) => (0..l.len())
                        .map(|j| String::from_utf8_lossy(l.get(j).unwrap()).into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    Value::Hash(h) => {
                        let mut f: Vec<String> = h
                            .iter()
                            .map(|(f, v)| {
                                format!(
                                    "{}={}",
                                    String::from_utf8_lossy(f),
                                    String::from_utf8_lossy(v)
                                )
                            })
                            .collect();
                        f.sort();
                        f.join(",")
                    }
                };
                let ttl = e.expire_at().map(|t| format!(" @{t}")).unwrap_or_default();
                out.push(format!(
                    "{i} {} {} {v}{ttl}",
                    String::from_utf8_lossy(k),
                    e.value.type_name()
                ));
            }
        }
        out.sort();
        out
    }

    fn size(&self, name: &str) -> u64 {
        std::fs::metadata(self.aof_dir().join(name)).unwrap().len()
    }
}

/// A snapshot of every file under `dir`, to prove a failed load touched nothing.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

const ONE_INCR: &str = "file appendonly.aof.1.incr.aof seq 1 type i\n";

#[test]
fn no_aof_is_none() {
    let f = Fixture::new(|_| {});
    assert!(f.load().unwrap().is_none());
    // A manifest of comments only lists nothing.
    f.files("# nothing\n", &[]);
    assert!(f.load().unwrap().is_none());
}

#[test]
fn incr_with_select_multi_exec_and_annotations() {
    let f = Fixture::new(|_| {});
    let mut incr = b"#TS:1700000000\r\n".to_vec();
    incr.extend(aof(&[
        &["SELECT", "0"],
        &["set", "a", "1"],
        &["SELECT", "2"],
        &["MULTI"],
        &["rpush", "q", "x", "y"],
        &["hset", "h", "f", "v"],
        &["EXEC"],
        &["lpop", "q"],
        // An error reply is ignored, as Redis ignores it.
        &["incr", "h"],
        &["set", "b", "2"],
    ]));
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let loaded = f.load().unwrap().unwrap();
    assert_eq!(
        f.data(),
        ["0 a string 1", "2 b string 2", "2 h hash f=v", "2 q list y"]
    );
    assert_eq!(loaded.keys, 4);
    assert_eq!(loaded.total_size, incr.len() as u64);
    assert_eq!(loaded.base_size, 0);
    assert_eq!(
        loaded.manifest,
        Manifest::parse(ONE_INCR.as_bytes()).unwrap()
    );
    // Replays are not commands clients ran: no stats, no commandstats.
    let st = f.srv.engine.lock();
    assert_eq!(st.stats.total_commands_processed, 0);
    assert!(st.cmdstats.is_empty());
    assert!(st.errorstats.is_empty());
    // The changes count, as Redis counts them (rdb_changes_since_last_save).
    assert!(st.dirty >= 6);
}

#[test]
fn every_file_starts_in_db_0() {
    let f = Fixture::new(|_| {});
    f.files(
        "file appendonly.aof.1.base.aof seq 1 type b\n\
         file appendonly.aof.1.incr.aof seq 1 type i\n",
        &[
            (
                "appendonly.aof.1.base.aof",
                &aof(&[&["SELECT", "3"], &["set", "k", "base"]]),
            ),
            ("appendonly.aof.1.incr.aof", &aof(&[&["set", "k", "incr"]])),
        ],
    );
    let loaded = f.load().unwrap().unwrap();
    assert_eq!(f.data(), ["0 k string incr", "3 k string base"]);
    assert_eq!(loaded.base_size, f.size("appendonly.aof.1.base.aof"));
}

#[test]
fn nothing_expires_while_loading() {
    let f = Fixture::new(|_| {});
    // The key's time is past, yet the commands after it still see it (Redis keyIsExpired
    // answers 0 while loading); expiry removes it after the load.
    f.files(
        ONE_INCR,
        &[(
            "appendonly.aof.1.incr.aof",
            &aof(&[
                &["SET", "k", "v", "PXAT", "1000"],
                &["append", "k", "x"],
                &["PEXPIREAT", "gone", "1000"],
                &["rpush", "l", "a"],
                &["PEXPIREAT", "l", "2000"],
            ]),
        )],
    );
    f.load().unwrap();
    assert_eq!(f.data(), ["0 k string vx @1000", "0 l list a @2000"]);
}

#[test]
fn truncated_last_file_is_cut_to_its_last_command() {
    let f = Fixture::new(|_| {});
    let mut incr = aof(&[&["set", "a", "1"]]);
    incr.extend_from_slice(b"*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n");
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let loaded = f.load().unwrap().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
    assert_eq!(f.size("appendonly.aof.1.incr.aof"), 27);
    assert_eq!(loaded.total_size, 27);
    // A second load finds it clean.
    f.srv.engine.lock().ks = crate::store::Keyspace::new(16);
    f.load().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
}

#[test]
fn truncated_with_aof_load_truncated_no_fails_untouched() {
    let f = Fixture::new(|c| c.aof_load_truncated = false);
    let mut incr = aof(&[&["set", "a", "1"]]);
    incr.extend_from_slice(b"*3\r\n$3\r\nset");
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let before = tree(f.dir.path());
    let e = f.load().unwrap_err();
    assert!(matches!(e, AofLoadError::Truncated { .. }), "{e}");
    assert!(e.to_string().starts_with(
        "Unexpected end of file reading the append only file appendonly.aof.1.incr.aof. You can: 1)"
    ));
    assert_eq!(tree(f.dir.path()), before);
}

#[test]
fn unclosed_multi_is_reverted() {
    let f = Fixture::new(|_| {});
    let incr = aof(&[&["set", "a", "1"], &["MULTI"], &["set", "b", "2"]]);
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    f.load().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
    assert_eq!(f.size("appendonly.aof.1.incr.aof"), 27);
}

#[test]
fn truncation_before_the_last_file_is_fatal_and_touches_nothing() {
    let f = Fixture::new(|_| {});
    let mut first = aof(&[&["set", "a", "1"]]);
    first.extend_from_slice(b"*1\r\n");
    f.files(
        "file appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n",
        &[
            ("appendonly.aof.1.incr.aof", &first),
            ("appendonly.aof.2.incr.aof", &aof(&[&["set", "b", "1"]])),
        ],
    );
    let before = tree(f.dir.path());
    assert!(matches!(
        f.load().unwrap_err(),
        AofLoadError::TruncatedNotLast { .. }
    ));
    assert_eq!(tree(f.dir.path()), before);
}

#[test]
fn bad_format_unknown_command_and_missing_file_fail_untouched() {
    let f = Fixture::new(|_| {});
    let mut incr = aof(&[&["set", "a", "1"]]);
    incr.extend_from_slice(b"?3\r\n");
    incr.extend(aof(&[&["set", "b", "1"]]));
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let before = tree(f.dir.path());
    match f.load().unwrap_err() {
        AofLoadError::BadFormat { name, error } => {
            assert_eq!(name, "appendonly.aof.1.incr.aof");
            assert_eq!(error.offset, 27);
        }
        e => panic!("{e}"),
    }
    assert_eq!(tree(f.dir.path()), before);

    let f = Fixture::new(|_| {});
    let incr = aof(&[&["set", "a", "1"], &["nosuchcmd", "x"]]);
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let e = f.load().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Unknown command 'nosuchcmd' reading the append only file appendonly.aof.1.incr.aof"
    );

    let f = Fixture::new(|_| {});
    f.files(
        "file appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n",
        &[("appendonly.aof.1.incr.aof", &aof(&[&["set", "a", "1"]]))],
    );
    let before = tree(f.dir.path());
    let e = f.load().unwrap_err();
    assert!(e
        .to_string()
        .starts_with("Unable to obtain the AOF file appendonly.aof.2.incr.aof length. stat: "));
    assert_eq!(tree(f.dir.path()), before);
    // Nothing was loaded either: the sizes are checked before any replay.
    assert!(f.data().is_empty());
}

#[test]
fn empty_files_are_fine() {
    let f = Fixture::new(|_| {});
    f.files(
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
        &[("appendonly.aof.1.base.aof", b""), ("appendonly.aof.1.incr.aof", b"")],
    );
    let loaded = f.load().unwrap().unwrap();
    assert_eq!((loaded.keys, loaded.total_size), (0, 0));
    f.files(
        "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
        &[(
            "appendonly.aof.1.base.aof",
            &aof(&[&["set", "a", "1"]]),
        )],
    );
    f.load().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
}

/// An RDB of `srv`'s current dataset, as the base writer would make it.
fn rdb_of(srv: &ServerState) -> Vec<u8> {
    use crate::persist::rdb::encode::WriteOpts;
    use crate::persist::rdb::writer::{write_rdb, Aux};
    let snap = srv.engine.lock().ks.snapshot();
    let aux = Aux {
        redis_ver: "7.0.15".into(),
        ctime: 0,
        used_mem: 0,
        repl: None,
        aof_base: true,
    };
    let opts = srv.with_config(WriteOpts::from_config);
    write_rdb(Vec::new(), &snap, &aux, &opts, true).unwrap().0
}

#[test]
fn rdb_base_then_incr_and_an_old_style_preamble_upgraded() {
    // Build a dataset with a first server, save it as an RDB.
    let src = Fixture::new(|_| {});
    src.files(
        ONE_INCR,
        &[(
            "appendonly.aof.1.incr.aof",
            &aof(&[
                &["set", "s", "v"],
                &["rpush", "l", "a", "b"],
                &["SELECT", "5"],
                &["hset", "h", "f", "1"],
                &["SET", "old", "x", "PXAT", "1000"],
            ]),
        )],
    );
    src.load().unwrap();
    let rdb = rdb_of(&src.srv);
    let tail = aof(&[&["SELECT", "0"], &["rpush", "l", "c"], &["del", "s"]]);
    let expected = [
        "0 l list a,b,c",
        "5 h hash f=1",
        // RDBFLAGS_AOF_PREAMBLE: an expired key is kept at load; expiry removes it later.
        "5 old string x @1000",
    ];

    // 7.0 layout: .base.rdb + incr.
    let f = Fixture::new(|_| {});
    f.files(
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
        &[
            ("appendonly.aof.1.base.rdb", &rdb),
            ("appendonly.aof.1.incr.aof", &tail),
        ],
    );
    let loaded = f.load().unwrap().unwrap();
    assert_eq!(f.data(), expected);
    assert_eq!(loaded.base_size, rdb.len() as u64);
    assert_eq!(loaded.total_size, (rdb.len() + tail.len()) as u64);
    assert_eq!(
        f.srv
            .save
            .last_load_loaded
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );

    // 6.2 layout: <dir>/appendonly.aof = RDB preamble + command tail, no directory.
    let f = Fixture::new(|_| {});
    let mut old = rdb.clone();
    old.extend_from_slice(&tail);
    std::fs::write(f.dir.path().join("appendonly.aof"), &old).unwrap();
    let loaded = f.load().unwrap().unwrap();
    assert_eq!(f.data(), expected);
    assert!(!f.dir.path().join("appendonly.aof").try_exists().unwrap());
    assert_eq!(
        std::fs::read(f.aof_dir().join("appendonly.aof")).unwrap(),
        old
    );
    assert_eq!(
        std::fs::read(f.aof_dir().join("appendonly.aof.manifest")).unwrap(),
        b"file appendonly.aof seq 1 type b\n"
    );
    assert_eq!(loaded.manifest.curr_base_seq, 1);
    assert_eq!(loaded.base_size, old.len() as u64);

    // A truncated tail of the preamble file (the last file) is cut after the RDB at worst,
    // never into it (Redis would cut it to 0 bytes there).
    let f = Fixture::new(|_| {});
    let mut cut = rdb.clone();
    cut.extend_from_slice(b"*2\r\n$6\r\nSELECT");
    std::fs::write(f.dir.path().join("appendonly.aof"), &cut).unwrap();
    f.load().unwrap();
    assert_eq!(f.size("appendonly.aof"), rdb.len() as u64);

    // A corrupt RDB fails with Redis's words and touches nothing.
    let f = Fixture::new(|_| {});
    let mut bad = rdb.clone();
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    f.files(
        "file appendonly.aof.1.base.rdb seq 1 type b\n",
        &[("appendonly.aof.1.base.rdb", &bad)],
    );
    let e = f.load().unwrap_err();
    assert!(
        e.to_string().starts_with(
            "Error reading the RDB base file appendonly.aof.1.base.rdb, AOF loading aborted: "
        ),
        "{e}"
    );
}

#[test]
fn upgrade_cases() {
    // The directory exists with an empty manifest: upgrade too.
    let f = Fixture::new(|_| {});
    f.files("# empty\n", &[]);
    std::fs::write(
        f.dir.path().join("appendonly.aof"),
        aof(&[&["set", "a", "1"]]),
    )
    .unwrap();
    f.load().unwrap().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
    // A manifest with real files: the stray old file is left alone.
    let f = Fixture::new(|_| {});
    f.files(
        ONE_INCR,
        &[("appendonly.aof.1.incr.aof", &aof(&[&["set", "b", "1"]]))],
    );
    std::fs::write(
        f.dir.path().join("appendonly.aof"),
        aof(&[&["set", "a", "1"]]),
    )
    .unwrap();
    f.load().unwrap().unwrap();
    assert_eq!(f.data(), ["0 b string 1"]);
    assert!(f.dir.path().join("appendonly.aof").try_exists().unwrap());
    // A crash after the manifest was written but before the move: finished now.
    let f = Fixture::new(|_| {});
    f.files("file appendonly.aof seq 1 type b\n", &[]);
    std::fs::write(
        f.dir.path().join("appendonly.aof"),
        aof(&[&["set", "a", "1"]]),
    )
    .unwrap();
    f.load().unwrap().unwrap();
    assert_eq!(f.data(), ["0 a string 1"]);
    assert!(f.aof_dir().join("appendonly.aof").is_file());
}

#[test]
fn large_files_stream_in_chunks() {
    // More than two chunks, with one command larger than a chunk, and commands straddling
    // every chunk boundary.
    let f = Fixture::new(|_| {});
    let mut incr = Vec::new();
    let big = "x".repeat(CHUNK + 1000);
    let mut expected_len = 0usize;
    for i in 0..40_000 {
        incr.extend(aof(&[&[
            "rpush",
            "l",
            &format!("value-{i:05}-{}", "p".repeat(i % 300)),
        ]]));
        expected_len += 1;
        if i == 20_000 {
            incr.extend(aof(&[&["set", "big", &big]]));
        }
    }
    incr.extend_from_slice(b"#TS:1\r\n");
    assert!(incr.len() > 2 * CHUNK);
    f.files(ONE_INCR, &[("appendonly.aof.1.incr.aof", &incr)]);
    let loaded = f.load().unwrap().unwrap();
    let st = f.srv.engine.lock();
    let Some(Value::List(l)) = st.ks.dbs[0].get(b"l").map(|e| &e.value) else {
        panic!("list missing")
    };
    assert_eq!(l.len(), expected_len);
    assert_eq!(
        l.get(39_999).unwrap(),
        format!("value-39999-{}", "p".repeat(39_999 % 300)).as_bytes()
    );
    let Some(Value::Str(s)) = st.ks.dbs[0].get(b"big").map(|e| &e.value) else {
        panic!("big missing")
    };
    assert_eq!(s.len(), big.len());
    assert_eq!(loaded.total_size, incr.len() as u64);
}

#[test]
fn load_on_start_falls_back_to_the_dump() {
    let src = Fixture::new(|_| {});
    src.files(
        ONE_INCR,
        &[("appendonly.aof.1.incr.aof", &aof(&[&["set", "d", "1"]]))],
    );
    src.load().unwrap();
    let mut rdb = rdb_of(&src.srv);
    let f = Fixture::new(|_| {});
    std::fs::write(f.dir.path().join("dump.rdb"), &rdb).unwrap();
    assert!(load_on_start(&f.srv).unwrap().is_none());
    assert_eq!(f.data(), ["0 d string 1"]);
    // A broken dump fails the start.
    let n = rdb.len();
    rdb[n - 1] ^= 1;
    let f = Fixture::new(|_| {});
    std::fs::write(f.dir.path().join("dump.rdb"), &rdb).unwrap();
    assert!(matches!(load_on_start(&f.srv), Err(AofLoadError::Dump(_))));
}
