//! libFuzzer entry point of [`oytel_fuzz::inventory`] (`cargo xtask fuzz inventory`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::inventory(data));
