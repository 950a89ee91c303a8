//! Feeds arbitrary UTF-8 through parse → lower → check → graph
//! (`certplan::pipeline::compile`). Any outcome is fine except a panic, an
//! abort, a hang or running out of memory.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let _ = certplan::pipeline::compile(source);
    }
});
