//! Recordings as audio (design §10): a WAV header read from the first bytes streamed, the
//! truncation rule, which variant of a call's audio is sent (original or Contact Lens's redacted
//! copy), and how long an archived recording's restore is waited for.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::message::QueuedRecording;

/// How much shorter than expected a recording may be before it is truncated: `max(5 s, 2 %)`.
pub fn is_truncated(expected_seconds: f64, actual_seconds: f64) -> bool {
    let tolerance = (expected_seconds * 0.02).max(5.0);
    expected_seconds - actual_seconds > tolerance
}

/// The fields of a WAV header that give its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    pub channels: u16,
    pub sample_rate: u32,
    /// Bytes of audio per second (`fmt `'s byte rate).
    pub byte_rate: u32,
    /// Where the `data` chunk's bytes start.
    pub data_offset: u64,
    /// The `data` chunk's declared size; `None` when the writer left a placeholder (0 or
    /// `0xFFFFFFFF`, as a recorder that streams its output does).
    pub declared_data: Option<u32>,
}

impl WavHeader {
    /// The audio's duration in an object of `object_len` bytes: its data bytes (the declared
    /// size, unless the object ends before it) divided by the byte rate.
    pub fn duration_seconds(&self, object_len: u64) -> f64 {
        let present = object_len.saturating_sub(self.data_offset);
        let data = self
            .declared_data
            .map_or(present, |declared| u64::from(declared).min(present));
        data as f64 / f64::from(self.byte_rate)
    }
}

/// Why bytes are not a WAV recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("the recording is not RIFF/WAVE audio")]
    NotWav,
    #[error("the recording's WAV header has no usable fmt chunk")]
    NoFormat,
    #[error("the recording's WAV header has no data chunk in its first {WAV_HEADER_LIMIT} bytes")]
    NoData,
}

/// The most bytes read while looking for the `data` chunk (metadata chunks such as `LIST` come
/// before it; none is anywhere near this long in a call recording).
pub const WAV_HEADER_LIMIT: usize = 64 * 1024;

/// Reads a WAV header from the first bytes of a recording: `Ok(None)` until enough bytes are
/// there. Chunks are walked from `RIFF....WAVE` to `data`; `fmt ` must come before `data`.
pub fn parse_wav_header(bytes: &[u8]) -> Result<Option<WavHeader>, WavError> {
    if bytes.len() < 12 {
        let riff = b"RIFF";
        let wave = b"WAVE";
        let head_ok = bytes.iter().take(4).zip(riff).all(|(a, b)| a == b)
            && bytes.iter().skip(8).zip(wave).all(|(a, b)| a == b);
        return if head_ok {
            Ok(None)
        } else {
            Err(WavError::NotWav)
        };
    }
    if &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut format: Option<(u16, u32, u32)> = None;
    loop {
        let Some(head) = bytes.get(at..at + 8) else {
            return more(at);
        };
        let id = &head[0..4];
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let body = at + 8;
        if id == b"data" {
            let (channels, sample_rate, byte_rate) = format.ok_or(WavError::NoFormat)?;
            return Ok(Some(WavHeader {
                channels,
                sample_rate,
                byte_rate,
                data_offset: body as u64,
                declared_data: (size != 0 && size != u32::MAX).then_some(size),
            }));
        }
        if id == b"fmt " {
            let Some(fmt) = bytes.get(body..body + 16) else {
                return more(body + 16);
            };
            let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
            let sample_rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            let byte_rate = u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]);
            if size < 16 || channels == 0 || sample_rate == 0 || byte_rate == 0 {
                return Err(WavError::NoFormat);
            }
            format = Some((channels, sample_rate, byte_rate));
        }
        // Chunks are padded to an even size.
        at = body.saturating_add(size as usize + (size as usize & 1));
    }
}

fn more(needed: usize) -> Result<Option<WavHeader>, WavError> {
    if needed > WAV_HEADER_LIMIT {
        Err(WavError::NoData)
    } else {
        Ok(None)
    }
}

/// Which audio of a call is sent (`RECORDING_VARIANT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    /// The recordings the CTR lists.
    #[default]
    Original,
    /// Only Contact Lens's redacted audio; an original is never sent.
    Redacted,
    /// The redacted audio when there is one, else the recordings the CTR lists.
    RedactedElseOriginal,
}

impl Variant {
    pub const ALL: [Variant; 3] = [
        Variant::Original,
        Variant::Redacted,
        Variant::RedactedElseOriginal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Redacted => "redacted",
            Variant::RedactedElseOriginal => "redacted-else-original",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the redacted audio is looked for at all.
    pub fn wants_redacted(self) -> bool {
        self != Variant::Original
    }
}

/// How long after its disconnect a call may wait for its redacted audio (post-call analysis
/// takes minutes) before it is unrecoverable with [`NO_REDACTED`].
pub const REDACTED_WAIT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The ledger's and outcome's reason for a call whose redacted audio never came.
pub const NO_REDACTED: &str = "no redacted recording";

/// Where Contact Lens writes a day's redacted audio: `{prefix}YYYY/MM/DD/`.
pub fn redacted_day_prefix(prefix: &str, day: NaiveDate) -> String {
    format!("{prefix}{}/", day.format("%Y/%m/%d"))
}

/// The key prefix of one contact's redacted audio, in the day of its initiation.
pub fn redacted_contact_prefix(
    prefix: &str,
    initiation: DateTime<Utc>,
    contact_id: &str,
) -> String {
    format!(
        "{}{contact_id}_call_recording_redacted_",
        redacted_day_prefix(prefix, initiation.date_naive())
    )
}

/// The contact a redacted recording's key names (`…/{contactId}_call_recording_redacted_….wav`).
pub fn redacted_contact_of(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let (contact, _) = name.split_once("_call_recording_redacted_")?;
    (!contact.is_empty()).then_some(contact)
}

/// Whether a key is a redacted recording under `prefix`.
pub fn is_redacted_key(prefix: &str, key: &str) -> bool {
    key.starts_with(prefix) && redacted_contact_of(key).is_some()
}

/// What a call sends under a variant, given its original recordings and the keys of its
/// redacted audio (in key order; the last is the newest): `None` when `redacted` finds none.
/// The redacted audio keeps the expected length of a call with one recording (redaction
/// silences, it does not cut).
pub fn choose_audio(
    variant: Variant,
    originals: &[QueuedRecording],
    bucket: &str,
    redacted_keys: &[String],
) -> Option<Vec<QueuedRecording>> {
    if !variant.wants_redacted() {
        return Some(originals.to_vec());
    }
    match redacted_keys.last() {
        Some(key) => Some(vec![QueuedRecording {
            bucket: bucket.to_owned(),
            key: key.clone(),
            expected_seconds: match originals {
                [one] => one.expected_seconds,
                _ => None,
            },
        }]),
        None if variant == Variant::RedactedElseOriginal => Some(originals.to_vec()),
        None => None,
    }
}

/// The S3 restore tier of archived recordings (`RESTORE_TIER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreTier {
    Expedited,
    #[default]
    Standard,
    Bulk,
}

impl RestoreTier {
    pub const ALL: [RestoreTier; 3] = [
        RestoreTier::Expedited,
        RestoreTier::Standard,
        RestoreTier::Bulk,
    ];

    /// As S3's `RestoreObject` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// How long a restore typically takes (AWS's documentation: Glacier Flexible Retrieval
    /// 1–5 minutes expedited, 3–5 hours standard, 5–12 hours bulk; Deep Archive 12 hours
    /// standard, 48 hours bulk, no expedited), capped at SQS's longest visibility timeout.
    pub fn typical(self, deep_archive: bool) -> Duration {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let d = match (self, deep_archive) {
            (RestoreTier::Expedited, false) => Duration::from_secs(5 * 60),
            (RestoreTier::Standard, false) => hours(5),
            (RestoreTier::Bulk, false) => hours(12),
            (RestoreTier::Expedited | RestoreTier::Standard, true) => hours(12),
            (RestoreTier::Bulk, true) => hours(48),
        };
        d.min(hours(12))
    }
}

/// How long a message waits before its restore is looked at again, after `waits` earlier waits:
/// `first × 4^waits`, growing toward the tier's typical restore time and never past it.
pub fn restore_check_delay(
    tier: RestoreTier,
    deep_archive: bool,
    waits: u32,
    first: Duration,
) -> Duration {
    let grown = first.saturating_mul(4u32.saturating_pow(waits.min(16)));
    grown
        .min(tier.typical(deep_archive))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCM WAV header as recorders write it, with `extra` chunks before `data`.
    fn header(channels: u16, rate: u32, data: u32, extra: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let block = channels * 2;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&36u32.wrapping_add(data).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        for (id, body) in extra {
            out.extend_from_slice(*id);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(body);
            if body.len() % 2 == 1 {
                out.push(0);
            }
        }
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data.to_le_bytes());
        out
    }

    #[test]
    fn mono_and_stereo_8khz_pcm_give_their_duration() {
        // 10 s of mono 8 kHz 16-bit: 160,000 bytes at 16,000 bytes/s.
        let mono = header(1, 8000, 160_000, &[]);
        let h = parse_wav_header(&mono).expect("wav").expect("complete");
        assert_eq!((h.channels, h.sample_rate, h.byte_rate), (1, 8000, 16_000));
        assert_eq!(h.data_offset, 44);
        assert_eq!(h.duration_seconds(44 + 160_000), 10.0);
        // 10 s of stereo: 320,000 bytes at 32,000 bytes/s.
        let stereo = header(2, 8000, 320_000, &[]);
        let h = parse_wav_header(&stereo).expect("wav").expect("complete");
        assert_eq!(h.byte_rate, 32_000);
        assert_eq!(h.duration_seconds(44 + 320_000), 10.0);
    }

    #[test]
    fn an_object_shorter_than_its_header_says_is_as_long_as_its_bytes() {
        // The header claims 120 s of stereo; the object was cut after 3 s.
        let h = parse_wav_header(&header(2, 8000, 120 * 32_000, &[]))
            .expect("wav")
            .expect("complete");
        assert_eq!(h.duration_seconds(44 + 3 * 32_000), 3.0);
        // Trailing chunks after the data do not lengthen it.
        assert_eq!(h.duration_seconds(44 + 200 * 32_000), 120.0);
    }

    #[test]
    fn a_placeholder_data_size_is_read_as_the_bytes_present() {
        for placeholder in [0u32, u32::MAX] {
            let h = parse_wav_header(&header(1, 8000, placeholder, &[]))
                .expect("wav")
                .expect("complete");
            assert_eq!(h.declared_data, None);
            assert_eq!(h.duration_seconds(44 + 5 * 16_000), 5.0);
        }
    }

    #[test]
    fn metadata_chunks_before_the_data_are_skipped_and_bytes_may_come_one_at_a_time() {
        let bytes = header(2, 8000, 64_000, &[(b"LIST", b"INFOISFT\x05\0\0\0Lavf\0")]);
        for cut in 0..bytes.len() {
            assert_eq!(parse_wav_header(&bytes[..cut]), Ok(None), "{cut}");
        }
        let h = parse_wav_header(&bytes).expect("wav").expect("complete");
        assert_eq!(h.data_offset, bytes.len() as u64);
        assert_eq!(h.duration_seconds(h.data_offset + 64_000), 2.0);
    }

    #[test]
    fn what_is_not_a_wav_says_so() {
        assert_eq!(parse_wav_header(b"ID3\x04"), Err(WavError::NotWav));
        assert_eq!(
            parse_wav_header(b"<html><body>502 Bad Gateway</body></html>"),
            Err(WavError::NotWav)
        );
        assert_eq!(
            parse_wav_header(b"RIFF\0\0\0\0AVI LIST"),
            Err(WavError::NotWav)
        );
        // `data` before `fmt `.
        let mut no_fmt = b"RIFF\0\0\0\0WAVEdata".to_vec();
        no_fmt.extend_from_slice(&8u32.to_le_bytes());
        assert_eq!(parse_wav_header(&no_fmt), Err(WavError::NoFormat));
        // A chunk that claims to run past the header limit before any `data`.
        let mut huge = b"RIFF\0\0\0\0WAVEJUNK".to_vec();
        huge.extend_from_slice(&(1u32 << 20).to_le_bytes());
        assert_eq!(parse_wav_header(&huge), Err(WavError::NoData));
    }

    #[test]
    fn truncated_means_shorter_by_more_than_five_seconds_or_two_percent() {
        assert!(!is_truncated(60.0, 55.0));
        assert!(is_truncated(60.0, 54.9));
        // Two hours: 2 % is 144 s.
        assert!(!is_truncated(7200.0, 7100.0));
        assert!(is_truncated(7200.0, 7000.0));
        // Longer than expected is never truncated.
        assert!(!is_truncated(60.0, 90.0));
    }

    #[test]
    fn variants_and_tiers_parse_as_the_design_spells_them() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.as_str()), Some(v));
        }
        assert_eq!(Variant::parse("redacted_else_original"), None);
        assert_eq!(RestoreTier::parse("bulk"), Some(RestoreTier::Bulk));
        assert_eq!(RestoreTier::parse("Glacier"), None);
    }

    #[test]
    fn redacted_keys_name_their_contact_and_day() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T23:59:00Z")
            .expect("ts")
            .with_timezone(&Utc);
        let id = "2f0bfe2a-1d1c-4c5e-9a34-3f5b8c0d7e11";
        let prefix = redacted_contact_prefix("Analysis/Voice/Redacted/", at, id);
        assert_eq!(
            prefix,
            format!("Analysis/Voice/Redacted/2026/11/26/{id}_call_recording_redacted_")
        );
        let key = format!("{prefix}2026-11-27T00:04:10Z.wav");
        assert_eq!(redacted_contact_of(&key), Some(id));
        assert!(is_redacted_key("Analysis/Voice/Redacted/", &key));
        assert!(!is_redacted_key(
            "Analysis/Voice/Redacted/",
            "connect/acme/CallRecordings/2026/11/26/x_20261126T23:59_UTC.wav"
        ));
    }

    #[test]
    fn each_variant_chooses_its_audio_and_redacted_never_falls_back() {
        let original = vec![QueuedRecording {
            bucket: "rec".into(),
            key: "connect/acme/CallRecordings/2026/11/26/c_20261126T10:00_UTC.wav".into(),
            expected_seconds: Some(300.0),
        }];
        let redacted = vec![
            "Analysis/Voice/Redacted/2026/11/26/c_call_recording_redacted_2026-11-26T10:06:00Z.wav"
                .to_owned(),
            "Analysis/Voice/Redacted/2026/11/26/c_call_recording_redacted_2026-11-26T10:09:00Z.wav"
                .to_owned(),
        ];
        assert_eq!(
            choose_audio(Variant::Original, &original, "rec", &redacted),
            Some(original.clone())
        );
        let chosen = choose_audio(Variant::Redacted, &original, "rec", &redacted).expect("some");
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].key, redacted[1]);
        assert_eq!(chosen[0].expected_seconds, Some(300.0));
        assert_eq!(choose_audio(Variant::Redacted, &original, "rec", &[]), None);
        assert_eq!(
            choose_audio(Variant::RedactedElseOriginal, &original, "rec", &[]),
            Some(original)
        );
    }

    #[test]
    fn restore_checks_grow_toward_the_tiers_typical_time() {
        let first = Duration::from_secs(60);
        let delays: Vec<u64> = (0..6)
            .map(|n| restore_check_delay(RestoreTier::Standard, false, n, first).as_secs())
            .collect();
        assert_eq!(delays, [60, 240, 960, 3840, 15_360, 18_000]);
        assert_eq!(
            restore_check_delay(RestoreTier::Expedited, false, 9, first),
            Duration::from_secs(300)
        );
        // Deep Archive's bulk takes 48 h, but a message can wait 12 h at most.
        assert_eq!(
            restore_check_delay(RestoreTier::Bulk, true, 20, first),
            Duration::from_secs(12 * 3600)
        );
    }
}
