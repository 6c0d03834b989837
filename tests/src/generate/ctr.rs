//! CTR records as Firehose writes them (design §3): the JSON of one copy, its recordings in
//! both the array and the legacy field, the `YYYY/MM/DD/HH/` object keys, gzip.

use super::*;

pub(super) fn key_hour(prefix: &str, key: &str) -> Option<DateTime<Utc>> {
    let rest = key.strip_prefix(prefix)?;
    let d = chrono::NaiveDateTime::parse_from_str(
        &format!("{}:00:00", rest.get(..13)?),
        "%Y/%m/%d/%H:%M:%S",
    )
    .ok()?;
    Some(d.and_utc())
}

pub(super) fn firehose_key(
    prefix: &str,
    hour: DateTime<Utc>,
    at: DateTime<Utc>,
    rng: &mut impl Rng,
) -> String {
    format!(
        "{prefix}{}/connect-ctr-stream-1-{}-{}",
        hour.format("%Y/%m/%d/%H"),
        at.format("%Y-%m-%d-%H-%M-%S"),
        uuid(rng)
    )
}

pub(super) fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::new(level));
    e.write_all(data).expect("writing to a Vec cannot fail");
    e.finish().expect("writing to a Vec cannot fail")
}

pub(super) fn ts_or_null(t_: Option<DateTime<Utc>>) -> Value {
    t_.map_or(Value::Null, |x| json!(t(x)))
}

/// One CTR copy as Amazon Connect writes it.
pub(super) fn ctr_json(ctx: &Ctx<'_>, c: &Contact, cp: &Copy) -> Value {
    let spec = ctx.spec;
    let instance_arn = if c.ours { &ctx.our_arn } else { &ctx.other_arn };
    let acw_end = if cp.early { None } else { c.acw_end };
    let agent = match &c.agent {
        Some(a) => {
            let connected = c.connected.unwrap_or(c.initiation);
            json!({
                "ARN": a.arn,
                "AfterContactWorkDuration": acw_end.map(|e| (e - c.disconnect).num_seconds()),
                "AfterContactWorkEndTimestamp": ts_or_null(acw_end),
                "AfterContactWorkStartTimestamp": t(c.disconnect),
                "AgentInteractionDuration": (c.disconnect - connected).num_seconds(),
                "AgentPauseDuration": 0,
                "ConnectedToAgentTimestamp": t(connected),
                "CustomerHoldDuration": 0,
                "DeviceInfo": null,
                "HierarchyGroups": null,
                "LongestHoldDuration": 0,
                "NumberOfHolds": 0,
                "RoutingProfile": {"ARN": format!("{instance_arn}/routing-profile/basic"), "Name": "Basic Routing Profile"},
                "Username": a.name,
            })
        }
        None => Value::Null,
    };
    let queue = match &c.queue {
        Some(q) => {
            let enq = c.enqueue.unwrap_or(c.initiation);
            let deq = c.connected.unwrap_or(c.disconnect);
            json!({
                "ARN": q.arn,
                "DequeueTimestamp": t(deq),
                "Duration": (deq - enq).num_seconds(),
                "EnqueueTimestamp": t(enq),
                "Name": q.name,
            })
        }
        None => Value::Null,
    };
    let recs: Vec<&Rec> = if cp.early {
        Vec::new()
    } else {
        c.recs.iter().collect()
    };
    let legacy = recs
        .iter()
        .find(|r| r.in_legacy)
        .map_or(Value::Null, |r| {
            json!({
                "DeletionReason": if r.status == "DELETED" { json!("Deleted by retention policy") } else { Value::Null },
                "Location": format!("{}/{}", r.bucket, r.key),
                "Status": r.status,
                "Type": "AUDIO",
            })
        });
    let array: Vec<Value> = recs
        .iter()
        .filter(|r| r.in_array)
        .map(|r| {
            json!({
                "DeletionReason": if r.status == "DELETED" { json!("Deleted by retention policy") } else { Value::Null },
                "FragmentStartNumber": null,
                "FragmentStopNumber": null,
                "Location": format!("{}/{}", r.bucket, r.key),
                "MediaStreamType": r.media,
                "ParticipantType": r.participant,
                "StartTimestamp": r.span.map_or(Value::Null, |(start, _)| json!(t(start))),
                "Status": r.status,
                "StopTimestamp": r.span.map_or(Value::Null, |(start, secs)| json!(t(start + Duration::seconds(secs)))),
                "StorageType": "S3",
            })
        })
        .collect();
    let attributes: Map<String, Value> = c
        .attributes
        .iter()
        .take(cp.attrs)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let endpoint = |a: &Option<String>| {
        a.as_ref().map_or(
            Value::Null,
            |a| json!({"Address": a, "Type": "TELEPHONE_NUMBER"}),
        )
    };
    let mut v = json!({
        "AWSAccountId": spec.account,
        "AWSContactTraceRecordFormatVersion": "2017-03-10",
        "Agent": agent,
        "AgentConnectionAttempts": if c.agent.is_some() { 1 } else { 0 },
        "Attributes": attributes,
        "Campaign": {"CampaignId": null},
        "Channel": c.channel,
        "ConnectedToSystemTimestamp": if c.channel == "VOICE" { json!(t(c.initiation + Duration::seconds(1))) } else { Value::Null },
        "ContactDetails": {},
        "ContactId": c.id,
        "CustomerEndpoint": endpoint(&c.customer),
        "CustomerVoiceActivity": null,
        "DisconnectReason": c.reason,
        "DisconnectTimestamp": t(c.disconnect),
        "InitialContactId": c.initial,
        "InitiationMethod": c.method,
        "InitiationTimestamp": t(c.initiation),
        "InstanceARN": instance_arn,
        "LastUpdateTimestamp": t(cp.last_update),
        "MediaStreams": [{"Type": if c.channel == "VOICE" { "AUDIO" } else { c.channel }}],
        "NextContactId": c.next,
        "PreviousContactId": c.previous,
        "Queue": queue,
        "Recording": legacy,
        "Recordings": array,
        "References": [],
        "ScheduledTimestamp": null,
        "SystemEndpoint": endpoint(&c.system),
        "Tags": {"aws:connect:instanceId": c.instance_id},
        // A transfer to an agent or a queue (quick connect, flow block, callback) names no
        // endpoint; only the leg that was transferred has a completion time.
        "TransferCompletedTimestamp": if c.next.is_some() { json!(t(c.disconnect)) } else { Value::Null },
        "TransferredToEndpoint": null,
        "VoiceIdResult": null,
    });
    if cp.future_field {
        v["QualityMetrics"] =
            json!({"Agent": {"Audio": {"QualityScore": 4.6, "PotentialQualityIssues": []}}});
    }
    v
}

/// design §4's S3 recordings of one CTR, in order: (bucket, key, status).
pub fn s3_recordings(ctr: &Value) -> Vec<(String, String, String)> {
    let split = |loc: &str| {
        loc.split_once('/')
            .map(|(b, k)| (b.to_owned(), k.to_owned()))
    };
    let mut out: Vec<(String, String, String)> = Vec::new();
    if let Some(arr) = ctr.get("Recordings").and_then(Value::as_array) {
        for r in arr {
            let s3 = r.get("StorageType").and_then(Value::as_str) == Some("S3");
            let audio = matches!(r.get("MediaStreamType"), None | Some(Value::Null))
                || r.get("MediaStreamType").and_then(Value::as_str) == Some("AUDIO");
            if let (true, true, Some((b, k))) = (
                s3,
                audio,
                r.get("Location").and_then(Value::as_str).and_then(split),
            ) {
                let status = r
                    .get("Status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                out.push((b, k, status));
            }
        }
    }
    if let Some(r) = ctr.get("Recording").filter(|r| r.is_object())
        && let Some((b, k)) = r.get("Location").and_then(Value::as_str).and_then(split)
        && !out.iter().any(|o| o.0 == b && o.1 == k)
    {
        let status = r
            .get("Status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        out.push((b, k, status));
    }
    out
}
