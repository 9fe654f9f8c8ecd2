//! libFuzzer entry point of [`oytel_fuzz::webhook`] (`cargo xtask fuzz webhook`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::webhook(data));
