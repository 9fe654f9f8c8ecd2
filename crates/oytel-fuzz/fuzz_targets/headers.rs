//! libFuzzer entry point of [`oytel_fuzz::headers`] (`cargo xtask fuzz headers`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::headers(data));
