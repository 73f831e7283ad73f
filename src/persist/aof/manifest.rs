//! TEMPORARY minimal manifest (the aofload branch replaces this file).
#![allow(missing_docs)]

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofFileType {
    Base,
    History,
    Incr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: AofFileType,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub incrs: Vec<AofFile>,
    pub history: Vec<AofFile>,
    pub curr_base_seq: u64,
    pub curr_incr_seq: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Manifest {
    pub fn parse(_text: &[u8]) -> Result<Manifest, ManifestError> {
        Err(ManifestError::Invalid("unimplemented".into()))
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let line = |f: &AofFile, c: char| format!("file {} seq {} type {}\n", f.name, f.seq, c);
        if let Some(b) = &self.base {
            out.push_str(&line(b, 'b'));
        }
        for h in &self.history {
            out.push_str(&line(h, 'h'));
        }
        for i in &self.incrs {
            out.push_str(&line(i, 'i'));
        }
        out.into_bytes()
    }
    pub fn new_base(&mut self, prefix: &str, rdb_preamble: bool) -> String {
        self.curr_base_seq += 1;
        let ext = if rdb_preamble { "rdb" } else { "aof" };
        let name = format!("{prefix}.{}.base.{ext}", self.curr_base_seq);
        if let Some(mut old) = self.base.take() {
            old.kind = AofFileType::History;
            self.history.push(old);
        }
        self.base = Some(AofFile {
            name: name.clone(),
            seq: self.curr_base_seq,
            kind: AofFileType::Base,
        });
        name
    }
    pub fn new_incr(&mut self, prefix: &str) -> String {
        self.curr_incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.curr_incr_seq);
        self.incrs.push(AofFile {
            name: name.clone(),
            seq: self.curr_incr_seq,
            kind: AofFileType::Incr,
        });
        name
    }
    pub fn mark_rewritten_incrs_history(&mut self) {
        let keep = self.incrs.pop();
        for mut f in self.incrs.drain(..) {
            f.kind = AofFileType::History;
            self.history.push(f);
        }
        self.incrs.extend(keep);
    }
}

pub fn load_manifest(_dir: &Path, _name: &str) -> Result<Option<Manifest>, ManifestError> {
    Ok(None)
}

pub fn persist_manifest(dir: &Path, name: &str, m: &Manifest) -> std::io::Result<()> {
    use std::io::Write as _;
    let temp = dir.join(format!("temp-{name}.manifest"));
    let mut f = std::fs::File::create(&temp)?;
    f.write_all(&m.to_bytes())?;
    f.sync_all()?;
    std::fs::rename(&temp, dir.join(format!("{name}.manifest")))?;
    std::fs::File::open(dir)?.sync_all()
}
