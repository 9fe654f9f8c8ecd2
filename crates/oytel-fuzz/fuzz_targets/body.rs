//! libFuzzer entry point of [`oytel_fuzz::body`] (`cargo xtask fuzz body`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::body(data));
