//! Arbitrary bytes as an OFREP context (JSON), evaluated against fixed flags.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wavegate_fuzz::eval_context(data);
});
