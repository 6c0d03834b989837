//! The audio as it streams (design §10): each recording's WAV header is read from the bytes
//! already on their way to Verint (no second read, nothing buffered beyond the header), a
//! recording that is not RIFF/WAVE stops its upload, and a complete one is measured against the
//! length its CTR gave.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::domain::message::QueuedRecording;
use crate::domain::recording::{
    WAV_HEADER_LIMIT, WavError, WavHeader, is_truncated, parse_wav_header,
};
use crate::ports::verint::BodyStream;

/// What the first bytes of one recording said.
#[derive(Debug, Default)]
pub(super) struct WavProbe {
    /// The bytes seen while the header is not complete (at most [`WAV_HEADER_LIMIT`] and a
    /// chunk); emptied once it is.
    head: Vec<u8>,
    verdict: Option<Result<WavHeader, WavError>>,
}

impl WavProbe {
    /// Looks at the next chunk; an error stops the upload.
    fn feed(&mut self, chunk: &[u8]) -> Option<WavError> {
        if self.verdict.is_some() {
            return None;
        }
        let room = (WAV_HEADER_LIMIT + 8).saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        match parse_wav_header(&self.head) {
            Ok(None) => None,
            Ok(Some(header)) => {
                self.verdict = Some(Ok(header));
                self.head = Vec::new();
                None
            }
            Err(e) => {
                self.verdict = Some(Err(e));
                self.head = Vec::new();
                Some(e)
            }
        }
    }

    /// At the end of the body: one too short for a header is not a WAV.
    fn end(&mut self) -> Option<WavError> {
        if self.verdict.is_none() {
            self.verdict = Some(Err(WavError::NotWav));
            return Some(WavError::NotWav);
        }
        None
    }
}

/// The probes of one upload's recordings, in order.
#[derive(Debug, Default)]
pub(super) struct Probes(Vec<Arc<Mutex<WavProbe>>>);

/// A recording shorter than its CTR says: the shortest one's durations, and how many.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Truncation {
    pub key: String,
    pub expected_seconds: f64,
    pub actual_seconds: f64,
    pub recordings: u32,
}

impl Probes {
    /// `body` watched by a new probe: its bytes pass unchanged, unless they are not a WAV.
    pub(super) fn watch(&mut self, body: BodyStream) -> BodyStream {
        let probe = Arc::new(Mutex::new(WavProbe::default()));
        self.0.push(Arc::clone(&probe));
        let at_end = Arc::clone(&probe);
        body.map(move |item| {
            let bytes: Bytes = item?;
            let stop = probe
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .feed(&bytes);
            match stop {
                Some(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
                None => Ok(bytes),
            }
        })
        .chain(
            stream::once(
                async move { at_end.lock().unwrap_or_else(PoisonError::into_inner).end() },
            )
            .filter_map(|e| {
                futures::future::ready(
                    e.map(|e| Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
                )
            }),
        )
        .boxed()
    }

    /// The first recording found not to be a WAV, with its key.
    pub(super) fn not_wav<'q>(&self, queued: &'q [QueuedRecording]) -> Option<(&'q str, WavError)> {
        self.0.iter().zip(queued).find_map(|(p, q)| {
            match p.lock().unwrap_or_else(PoisonError::into_inner).verdict {
                Some(Err(e)) => Some((q.key.as_str(), e)),
                _ => None,
            }
        })
    }

    /// The recordings shorter than their CTR says, measured on objects of `lens` bytes.
    pub(super) fn truncation(
        &self,
        queued: &[QueuedRecording],
        lens: &[u64],
    ) -> Option<Truncation> {
        let mut found: Option<Truncation> = None;
        let mut count = 0u32;
        for ((p, q), len) in self.0.iter().zip(queued).zip(lens) {
            let Some(Ok(header)) = p.lock().unwrap_or_else(PoisonError::into_inner).verdict else {
                continue;
            };
            let Some(expected) = q.expected_seconds else {
                continue;
            };
            let actual = (header.duration_seconds(*len) * 100.0).round() / 100.0;
            if !is_truncated(expected, actual) {
                continue;
            }
            count += 1;
            let shorter = found
                .as_ref()
                .is_none_or(|f| actual / expected < f.actual_seconds / f.expected_seconds);
            if shorter {
                found = Some(Truncation {
                    key: q.key.clone(),
                    expected_seconds: expected,
                    actual_seconds: actual,
                    recordings: 0,
                });
            }
        }
        found.map(|f| Truncation {
            recordings: count,
            ..f
        })
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;

    use super::*;
    use crate::ports::recordings::fake::{silent_wav, wav_declaring};

    fn body(bytes: Vec<u8>, chunk: usize) -> BodyStream {
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(chunks).boxed()
    }

    fn queued(key: &str, expected: Option<f64>) -> QueuedRecording {
        QueuedRecording {
            bucket: "b".into(),
            key: key.into(),
            expected_seconds: expected,
        }
    }

    #[tokio::test]
    async fn a_wav_passes_unchanged_and_is_measured() {
        // 10 s of mono 8 kHz (16,000 bytes/s), in chunks smaller than its header.
        let wav = silent_wav(44 + 160_000);
        let mut probes = Probes::default();
        let out: Vec<Bytes> = probes
            .watch(body(wav.clone(), 7))
            .try_collect()
            .await
            .expect("passes");
        assert_eq!(out.concat(), wav);
        let q = [queued("a.wav", Some(10.0))];
        assert_eq!(probes.not_wav(&q), None);
        assert_eq!(probes.truncation(&q, &[wav.len() as u64]), None);
    }

    #[tokio::test]
    async fn a_header_that_claims_more_than_the_object_holds_is_truncated() {
        // The header declares 120 s; the object holds 3 s.
        let wav = wav_declaring(44 + 48_000, 120 * 16_000);
        let mut probes = Probes::default();
        let _: Vec<Bytes> = probes
            .watch(body(wav.clone(), 4096))
            .try_collect()
            .await
            .expect("passes");
        let q = [queued("cut.wav", Some(120.0))];
        let t = probes
            .truncation(&q, &[wav.len() as u64])
            .expect("truncated");
        assert_eq!(
            (
                t.key.as_str(),
                t.expected_seconds,
                t.actual_seconds,
                t.recordings
            ),
            ("cut.wav", 120.0, 3.0, 1)
        );
        // Without an expected length there is nothing to compare.
        assert_eq!(
            probes.truncation(&[queued("cut.wav", None)], &[wav.len() as u64]),
            None
        );
    }

    #[tokio::test]
    async fn bytes_that_are_not_a_wav_stop_the_upload_at_once() {
        let html = b"<html><body>Service Unavailable</body></html>".repeat(100);
        let mut probes = Probes::default();
        let mut watched = probes.watch(body(html, 64));
        let first = watched.next().await.expect("an item");
        assert_eq!(
            first.expect_err("stopped").kind(),
            std::io::ErrorKind::InvalidData
        );
        let q = [queued("page.wav", None)];
        assert_eq!(probes.not_wav(&q), Some(("page.wav", WavError::NotWav)));
    }

    #[tokio::test]
    async fn a_body_too_short_for_a_header_is_not_a_wav() {
        let mut probes = Probes::default();
        let result: Result<Vec<Bytes>, _> =
            probes.watch(body(b"RIFF".to_vec(), 2)).try_collect().await;
        assert!(result.is_err());
        assert!(probes.not_wav(&[queued("k", None)]).is_some());
    }
}
