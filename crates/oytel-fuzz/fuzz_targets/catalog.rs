//! libFuzzer entry point of [`oytel_fuzz::catalog`] (`cargo xtask fuzz catalog`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::catalog(data));
