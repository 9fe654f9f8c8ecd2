//! libFuzzer entry point of [`oytel_fuzz::es2plus`] (`cargo xtask fuzz es2plus`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oytel_fuzz::es2plus(data));
