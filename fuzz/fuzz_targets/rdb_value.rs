//! The RDB value reader behind RESTORE (`persist::rdb::read_value`, Redis `rdbLoadObject`)
//! on arbitrary bytes: a DUMP payload's body (type byte, then the value), as `cmd::dump`
//! hands it over once the footer checks out. The CRC is not fuzzed: it only gates.
//!
//! What reads must also write back: a value read is dumped, read again, and dumped again
//! to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

use kura::persist::rdb::payload::FOOTER;
use kura::persist::rdb::{dump_payload, read_value, verify_payload, WriteOpts};

fuzz_target!(|data: &[u8]| {
    let Ok((value, used)) = read_value(data) else {
        return;
    };
    assert!(used <= data.len());
    for opts in [
        WriteOpts::default(),
        WriteOpts {
            compress: false,
            list_fill: 3,
        },
    ] {
        let dump = dump_payload(&value, &opts);
        assert!(verify_payload(&dump), "kura's own DUMP fails its check");
        let (again, used) = read_value(&dump).expect("kura reads what it writes");
        assert_eq!(used, dump.len() - FOOTER);
        assert_eq!(
            dump_payload(&again, &opts),
            dump,
            "a DUMP round trip changed the value"
        );
    }
});
