//! Recordings' audio: 8 kHz 16-bit PCM WAV files of a given size, stereo (as Amazon Connect
//! records) or mono, whole or cut short (a header that claims more audio than the file holds,
//! as a write interrupted by a disconnect leaves it).

use super::*;

/// Samples per second of every generated recording.
pub const SAMPLE_RATE: u32 = 8000;

/// The size of the canonical `RIFF`/`WAVE`/`fmt `/`data` header written here.
pub const WAV_HEADER_BYTES: u64 = 44;

/// Bytes per second of 8 kHz 16-bit PCM: 32000 in stereo, 16000 in mono.
pub fn byte_rate(channels: u16) -> u32 {
    SAMPLE_RATE * 2 * u32::from(channels)
}

/// The audio (`data` chunk) bytes of a WAV of `total` bytes, header included, rounded down to
/// whole frames (at least one frame).
pub(super) fn data_len(total: u64, channels: u16) -> u64 {
    let block = 2 * u64::from(channels);
    (total.max(WAV_HEADER_BYTES + block) - WAV_HEADER_BYTES) / block * block
}

/// The duration of `data` audio bytes in whole seconds (rounded to the nearest), as a CTR's
/// `StopTimestamp − StartTimestamp` states it.
pub(super) fn seconds_of(data: u64, channels: u16) -> i64 {
    let rate = u64::from(byte_rate(channels));
    i64::try_from((data + rate / 2) / rate).unwrap_or(i64::MAX)
}

/// A stereo 8 kHz 16-bit PCM WAV of `total` bytes (44-byte header included, rounded down to
/// whole frames), with deterministic noise-and-tone content.
pub fn wav(rng: &mut impl Rng, total: u64) -> Vec<u8> {
    wav_of(rng, total, 2)
}

/// [`wav`] with 1 (mono) or 2 (stereo) channels.
pub fn wav_of(rng: &mut impl Rng, total: u64, channels: u16) -> Vec<u8> {
    let data = data_len(total, channels);
    let mut out = header(channels, data);
    samples(rng, channels, data, &mut out);
    out
}

/// A WAV cut short: its header claims `claimed_data` bytes of audio (the whole recording) but
/// the file ends after `total` bytes, as a write interrupted mid-recording leaves it. Draws
/// from `rng` exactly as [`wav_of`] does for the same `total`.
pub fn wav_cut_short(rng: &mut impl Rng, total: u64, channels: u16, claimed_data: u64) -> Vec<u8> {
    let data = data_len(total, channels);
    let mut out = header(channels, claimed_data.max(data));
    samples(rng, channels, data, &mut out);
    out
}

fn header(channels: u16, data_len: u64) -> Vec<u8> {
    let data32 = u32::try_from(data_len).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(WAV_HEADER_BYTES as usize + data_len.min(1 << 20) as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&byte_rate(channels).to_le_bytes());
    out.extend_from_slice(&(2 * channels).to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data32.to_le_bytes());
    out
}

fn samples(rng: &mut impl Rng, channels: u16, data_len: u64, out: &mut Vec<u8>) {
    let mut x: u32 = rng.random::<u32>() | 1;
    let period = rng.random_range(8..40u32);
    let frames = data_len / (2 * u64::from(channels));
    for i in 0..frames as u32 {
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
        if channels == 2 {
            out.extend_from_slice(&(noise / 2).to_le_bytes());
        }
    }
}
