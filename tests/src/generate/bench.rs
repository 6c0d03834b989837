//! The benchmark corpus: many hours of CTR objects written to disk, sized like production's.

use super::*;

/// What [`bench_corpus`] wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchCorpus {
    pub dir: PathBuf,
    pub date: NaiveDate,
    /// `ctr/` under `dir`: the CTR prefix to read from.
    pub ctr_dir: PathBuf,
    pub objects: usize,
    pub records: usize,
    pub voice: usize,
    pub chat: usize,
    /// Voice calls with one S3 recording (all of them).
    pub with_recording: usize,
    /// Lines of `verint_ids.txt`.
    pub in_verint: usize,
    /// Voice calls not in `verint_ids.txt`.
    pub expected_missing: usize,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
}

pub(super) const BENCH_TARGET_OBJECT: usize = 5 * 1024 * 1024;

/// Writes `n` CTRs of one day (2024-05-14) as gzip Firehose objects of about 5 MB under
/// `dir/ctr/YYYY/MM/DD/HH/`, and `dir/verint_ids.txt` (sorted, 97 % of the voice calls).
pub fn bench_corpus(
    dir: &Path,
    n: usize,
    seed: u64,
    instance_id: &str,
) -> anyhow::Result<BenchCorpus> {
    let date = NaiveDate::from_ymd_opt(2024, 5, 14).context("fixed date")?;
    bench_corpus_on(dir, date, n, seed, instance_id)
}

/// [`bench_corpus`] for any day: a backfill's corpus is one such day after another in the same
/// `dir/ctr/` (each call rewrites `dir/verint_ids.txt`: move it away before the next day).
pub fn bench_corpus_on(
    dir: &Path,
    date: NaiveDate,
    n: usize,
    seed: u64,
    instance_id: &str,
) -> anyhow::Result<BenchCorpus> {
    let day_start = date.and_hms_opt(0, 0, 0).context("midnight")?.and_utc();
    let instance_arn = format!("arn:aws:connect:us-east-1:123456789012:instance/{instance_id}");

    // Calibrate records per object on a sample.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sample = Vec::new();
    for i in 0..1000 {
        bench_record(
            &mut sample,
            &mut rng,
            &instance_arn,
            day_start + Duration::hours(12),
            i,
        )?;
    }
    let per_record = gzip(&sample, 6).len().max(1) as f64 / 1000.0;
    let per_object = ((BENCH_TARGET_OBJECT as f64 / per_record) as usize).max(1);
    let objects = n.div_ceil(per_object).max(1);

    let ctr_dir = dir.join("ctr");
    std::fs::create_dir_all(&ctr_dir)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .min(objects);
    struct Part {
        voice: usize,
        chat: usize,
        ids: Vec<String>,
        compressed: u64,
        uncompressed: u64,
    }
    let parts: Vec<anyhow::Result<Part>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Part> {
                    let mut part = Part {
                        voice: 0,
                        chat: 0,
                        ids: Vec::new(),
                        compressed: 0,
                        uncompressed: 0,
                    };
                    let mut buf = Vec::new();
                    loop {
                        let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if j >= objects {
                            return Ok(part);
                        }
                        let lo = j * n / objects;
                        let hi = (j + 1) * n / objects;
                        let hour = day_start + Duration::hours((j * 24 / objects) as i64);
                        let mut rng = StdRng::seed_from_u64(
                            seed ^ (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        );
                        buf.clear();
                        let mut oldest = hour + Duration::hours(1);
                        for i in lo..hi {
                            let (id, voice, arrival) =
                                bench_record(&mut buf, &mut rng, &instance_arn, hour, i)?;
                            oldest = oldest.min(arrival);
                            if voice {
                                part.voice += 1;
                                if rng.random_bool(0.97) {
                                    part.ids.push(id);
                                }
                            } else {
                                part.chat += 1;
                            }
                        }
                        let gz = gzip(&buf, 6);
                        part.compressed += gz.len() as u64;
                        part.uncompressed += buf.len() as u64;
                        let key = firehose_key("", hour, oldest, &mut rng);
                        let path = ctr_dir.join(&key);
                        if let Some(parent) = path.parent() {
                            std::fs::create_dir_all(parent)?;
                        }
                        std::fs::write(&path, gz)
                            .with_context(|| format!("write {}", path.display()))?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")))
            })
            .collect()
    });
    let mut corpus = BenchCorpus {
        dir: dir.to_owned(),
        date,
        ctr_dir: ctr_dir.clone(),
        objects,
        records: n,
        voice: 0,
        chat: 0,
        with_recording: 0,
        in_verint: 0,
        expected_missing: 0,
        compressed_bytes: 0,
        uncompressed_bytes: 0,
    };
    let mut ids = Vec::new();
    for p in parts {
        let p = p?;
        corpus.voice += p.voice;
        corpus.chat += p.chat;
        corpus.compressed_bytes += p.compressed;
        corpus.uncompressed_bytes += p.uncompressed;
        ids.extend(p.ids);
    }
    ids.sort_unstable();
    corpus.with_recording = corpus.voice;
    corpus.in_verint = ids.len();
    corpus.expected_missing = corpus.voice - ids.len();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("verint_ids.txt"))?);
    for id in &ids {
        writeln!(out, "{id}")?;
    }
    out.flush()?;
    Ok(corpus)
}

/// Appends one ~2.4 KB NDJSON CTR arriving in `hour`; returns (id, is voice, arrival).
pub(super) fn bench_record(
    buf: &mut Vec<u8>,
    rng: &mut StdRng,
    instance_arn: &str,
    hour: DateTime<Utc>,
    i: usize,
) -> anyhow::Result<(String, bool, DateTime<Utc>)> {
    let id = uuid(rng);
    let voice = rng.random_bool(0.8);
    let arrival = hour + secs(rng, 0..3600);
    let disconnect = arrival - secs(rng, 60..600);
    let connected = disconnect - secs(rng, 30..1200);
    let enqueue = connected - secs(rng, 0..300);
    let initiation = enqueue - secs(rng, 5..90);
    let acw_end = disconnect + secs(rng, 10..59);
    let agent = uuid(rng);
    let queue = uuid(rng);
    let (channel, method, stream) = if voice {
        ("VOICE", "INBOUND", "AUDIO")
    } else {
        ("CHAT", "API", "CHAT")
    };
    let (cust, sys) = if voice {
        (
            format!(
                r#"{{"Address":"{}","Type":"TELEPHONE_NUMBER"}}"#,
                phone(rng)
            ),
            r#"{"Address":"+18005550100","Type":"TELEPHONE_NUMBER"}"#.to_owned(),
        )
    } else {
        ("null".to_owned(), "null".to_owned())
    };
    let (rec, recs) = if voice {
        let loc = format!(
            "connect-recordings/connect/acme/CallRecordings/{}/{id}_{}_UTC.wav",
            connected.format("%Y/%m/%d"),
            connected.format("%Y%m%dT%H:%M")
        );
        (
            format!(
                r#"{{"DeletionReason":null,"Location":"{loc}","Status":"AVAILABLE","Type":"AUDIO"}}"#
            ),
            format!(
                r#"[{{"DeletionReason":null,"FragmentStartNumber":null,"FragmentStopNumber":null,"Location":"{loc}","MediaStreamType":"AUDIO","ParticipantType":"AGENT","StartTimestamp":null,"Status":"AVAILABLE","StopTimestamp":null,"StorageType":"S3"}}]"#
            ),
        )
    } else {
        ("null".to_owned(), "[]".to_owned())
    };
    let name = format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Ana"),
        LAST.choose(rng).unwrap_or(&"Novak")
    );
    writeln!(
        buf,
        r#"{{"AWSAccountId":"123456789012","AWSContactTraceRecordFormatVersion":"2017-03-10","Agent":{{"ARN":"{ia}/agent/{agent}","AfterContactWorkDuration":{acw},"AfterContactWorkEndTimestamp":"{acwe}","AfterContactWorkStartTimestamp":"{disc}","AgentInteractionDuration":{talk},"ConnectedToAgentTimestamp":"{conn}","CustomerHoldDuration":0,"DeviceInfo":null,"HierarchyGroups":null,"LongestHoldDuration":0,"NumberOfHolds":0,"RoutingProfile":{{"ARN":"{ia}/routing-profile/{queue}","Name":"Basic Routing Profile"}},"Username":"agent{an}"}},"AgentConnectionAttempts":1,"Attributes":{{"customerName":"{name}","accountNumber":"{acct:010}","intent":"billing","language":"en-US","disposition":"resolved"}},"Channel":"{channel}","ConnectedToSystemTimestamp":"{init}","ContactId":"{id}","CustomerEndpoint":{cust},"DisconnectReason":"CUSTOMER_DISCONNECT","DisconnectTimestamp":"{disc}","InitialContactId":null,"InitiationMethod":"{method}","InitiationTimestamp":"{init}","InstanceARN":"{ia}","LastUpdateTimestamp":"{acwe}","MediaStreams":[{{"Type":"{stream}"}}],"NextContactId":null,"PreviousContactId":null,"Queue":{{"ARN":"{ia}/queue/{queue}","DequeueTimestamp":"{conn}","Duration":{qd},"EnqueueTimestamp":"{enq}","Name":"Support"}},"Recording":{rec},"Recordings":{recs},"References":[],"ScheduledTimestamp":null,"SystemEndpoint":{sys},"Tags":{{"aws:connect:instanceId":"{iid}","record":"{i}"}},"TransferCompletedTimestamp":null,"TransferredToEndpoint":null}}"#,
        ia = instance_arn,
        acw = (acw_end - disconnect).num_seconds(),
        acwe = t(acw_end),
        disc = t(disconnect),
        talk = (disconnect - connected).num_seconds(),
        conn = t(connected),
        an = rng.random_range(100..999),
        acct = rng.random_range(0..10_000_000_000u64),
        init = t(initiation),
        enq = t(enqueue),
        qd = (connected - enqueue).num_seconds(),
        iid = instance_arn.rsplit('/').next().unwrap_or_default(),
    )?;
    Ok((id, voice, arrival))
}
