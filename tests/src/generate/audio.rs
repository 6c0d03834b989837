//! Recordings' audio: WAV files of a given size.

use super::*;

/// A stereo 8 kHz 16-bit PCM WAV of `total` bytes (44-byte header included, rounded down to
/// whole frames), with deterministic noise-and-tone content.
pub fn wav(rng: &mut impl Rng, total: u64) -> Vec<u8> {
    let data_len = (total.max(48) - 44) / 4 * 4;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&2u16.to_le_bytes()); // stereo
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&32000u32.to_le_bytes()); // byte rate
    out.extend_from_slice(&4u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    let mut x: u32 = rng.random::<u32>() | 1;
    let period = rng.random_range(8..40u32);
    for i in 0..(data_len / 4) as u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let tone = if (i / period) % 2 == 0 {
            3000i16
        } else {
            -3000
        };
        let noise = (x & 0x3ff) as i16 - 512;
        out.extend_from_slice(&(tone + noise).to_le_bytes());
        out.extend_from_slice(&(noise / 2).to_le_bytes());
    }
    out
}
