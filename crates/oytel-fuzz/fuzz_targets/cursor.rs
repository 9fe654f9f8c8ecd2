//! libFuzzer entry point of [`oytel_fuzz::cursor`] (`cargo xtask fuzz cursor`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::cursor(data));
