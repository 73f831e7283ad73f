//! TEMPORARY stub (the aofload branch replaces this file).
#![allow(missing_docs)]

/// What loading found.
#[derive(Debug)]
pub struct AofLoaded {
    pub manifest: super::manifest::Manifest,
    pub keys: u64,
    pub base_size: u64,
    pub total_size: u64,
}
