//! Arbitrary bytes as a flag file: parse, and compile and evaluate whatever is accepted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wavegate_fuzz::flag_yaml(data);
});
