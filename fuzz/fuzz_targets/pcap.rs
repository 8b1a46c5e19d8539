//! Fuzz target: the classic pcap reader that replays captures into the
//! stack. Reading never panics, records stay inside the input, and a
//! truncated record ends the iteration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_wire::pcap::{PcapReader, GLOBAL_HEADER_LEN, RECORD_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = PcapReader::new(data) else {
        return;
    };
    let _ = (reader.link_type(), reader.snaplen(), reader.is_nanosecond());
    let _ = (reader.is_big_endian(), reader.version_minor());
    let mut consumed = GLOBAL_HEADER_LEN;
    let mut saw_error = false;
    for record in reader {
        assert!(!saw_error, "nothing follows an error");
        match record {
            Ok(r) => {
                let _ = (r.ts_sec, r.ts_frac, r.orig_len);
                consumed += RECORD_HEADER_LEN + r.data.len();
                assert!(consumed <= data.len());
            }
            Err(_) => saw_error = true,
        }
    }
    assert!(saw_error || consumed == data.len());
});
