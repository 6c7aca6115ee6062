//! Fuzzes `decode` with the default limits: any input must give an image or
//! an `ImageError`, never a panic, an abort or an allocation past the limits
//! (libFuzzer's `-rss_limit_mb` turns the last into a crash).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veriface_vision::decode::{decode, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(decoded) = decode(data, &limits) {
        let (w, h) = decoded.image.dimensions();
        assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
    }
});
