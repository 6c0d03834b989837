//! The contact model a day is drawn from: the kinds of contact and their weights, one
//! contact's timeline, parties, recordings and CTR copies, and the draws that make them.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Voice,
    Outbound,
    Callback,
    Abandoned,
    Chat,
    Task,
    OtherInstance,
    Transfer,
    Deleted,
    PartlyDeleted,
    IvrAgent,
    Long,
    LegacyOnly,
    ArrayOnly,
    WithVideo,
}

pub(super) const KINDS: [(Kind, u32); 15] = [
    (Kind::Voice, 520),
    (Kind::Outbound, 50),
    (Kind::Callback, 20),
    (Kind::Abandoned, 50),
    (Kind::Chat, 80),
    (Kind::Task, 40),
    (Kind::OtherInstance, 50),
    (Kind::Transfer, 25),
    (Kind::Deleted, 12),
    (Kind::PartlyDeleted, 3),
    (Kind::IvrAgent, 60),
    (Kind::Long, 25),
    (Kind::LegacyOnly, 20),
    (Kind::ArrayOnly, 20),
    (Kind::WithVideo, 20),
];

#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) status: &'static str,
    pub(super) participant: &'static str,
    pub(super) media: &'static str,
    pub(super) in_array: bool,
    pub(super) in_legacy: bool,
    /// Only in copies after after-contact work.
    pub(super) bytes: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Copy {
    pub(super) last_update: DateTime<Utc>,
    pub(super) arrival: DateTime<Utc>,
    /// Before after-contact work ended: no recordings, no ACW end.
    pub(super) early: bool,
    pub(super) attrs: usize,
    pub(super) future_field: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Party {
    pub(super) id: String,
    pub(super) arn: String,
    pub(super) name: String,
}

#[derive(Debug, Clone)]
pub(super) struct Contact {
    pub(super) id: String,
    pub(super) kind: Kind,
    pub(super) ours: bool,
    pub(super) instance_id: String,
    pub(super) channel: &'static str,
    pub(super) method: &'static str,
    pub(super) initiation: DateTime<Utc>,
    pub(super) enqueue: Option<DateTime<Utc>>,
    pub(super) connected: Option<DateTime<Utc>>,
    pub(super) disconnect: DateTime<Utc>,
    pub(super) acw_end: Option<DateTime<Utc>>,
    pub(super) reason: &'static str,
    pub(super) initial: Option<String>,
    pub(super) previous: Option<String>,
    pub(super) next: Option<String>,
    pub(super) transfer_to: Option<String>,
    pub(super) agent: Option<Party>,
    pub(super) queue: Option<Party>,
    pub(super) customer: Option<String>,
    pub(super) system: Option<String>,
    pub(super) attributes: Vec<(String, String)>,
    pub(super) recs: Vec<Rec>,
    pub(super) copies: Vec<Copy>,
    pub(super) in_verint: bool,
}

pub(super) fn t(s: DateTime<Utc>) -> String {
    s.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(super) fn phone(rng: &mut impl Rng) -> String {
    format!(
        "+1{}{:03}{:04}",
        rng.random_range(201..990),
        rng.random_range(200..999),
        rng.random_range(0..10000)
    )
}

pub(super) fn secs(rng: &mut impl Rng, r: Range<i64>) -> Duration {
    Duration::seconds(rng.random_range(r))
}

pub(super) fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

pub(super) const FIRST: [&str; 12] = [
    "Ana", "Ben", "Chloe", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
    "Lena",
];
pub(super) const LAST: [&str; 10] = [
    "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Ulrich", "Varga", "Wong",
];
pub(super) const QUEUES: [&str; 4] = ["Sales", "Support", "Billing", "Retention"];
pub(super) const ALIAS: &str = "acme";

pub(super) struct Ctx<'a> {
    pub(super) spec: &'a DaySpec,
    pub(super) our_arn: String,
    pub(super) other_arn: String,
    pub(super) agents: Vec<Party>,
    pub(super) queues: Vec<Party>,
    pub(super) system_numbers: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn rec_key(&self, alias: &str, contact: &str, at: DateTime<Utc>) -> String {
        format!(
            "connect/{alias}/CallRecordings/{}/{contact}_{}_UTC.wav",
            at.format("%Y/%m/%d"),
            at.format("%Y%m%dT%H:%M")
        )
    }
}

pub(super) fn kind_name(c: &Contact) -> String {
    let s = match c.kind {
        Kind::Voice => "voice",
        Kind::Outbound => "outbound",
        Kind::Callback => "callback",
        Kind::Abandoned => "abandoned",
        Kind::Chat => "chat",
        Kind::Task => "task",
        Kind::OtherInstance => "other_instance",
        Kind::Transfer if c.previous.is_some() => "transfer_second",
        Kind::Transfer => "transfer_first",
        Kind::Deleted => "deleted",
        Kind::PartlyDeleted => "partly_deleted",
        Kind::IvrAgent => "ivr_agent",
        Kind::Long => "long",
        Kind::LegacyOnly => "legacy_only",
        Kind::ArrayOnly => "array_only",
        Kind::WithVideo => "with_video",
    };
    s.to_owned()
}

pub(super) fn pick_day_time(ctx: &Ctx<'_>, rng: &mut StdRng) -> DateTime<Utc> {
    let start = ctx
        .spec
        .date
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |d| d.and_utc());
    // Most traffic in (US) business hours, some around the clock.
    let s = if rng.random_bool(0.7) {
        rng.random_range(13 * 3600..23 * 3600)
    } else {
        rng.random_range(0..86_340)
    };
    start + Duration::seconds(s)
}

pub(super) fn make_contacts(
    ctx: &Ctx<'_>,
    rng: &mut StdRng,
    kind: Kind,
    first: bool,
) -> Vec<Contact> {
    let spec = ctx.spec;
    let mut initiation = pick_day_time(ctx, rng);
    if kind == Kind::Long && first {
        // Starts late: its CTR arrives the next day.
        initiation = spec
            .date
            .and_hms_opt(21, 30, 0)
            .map_or(initiation, |d| d.and_utc())
            + secs(rng, 0..3600);
    }
    let ours = kind != Kind::OtherInstance;
    let id = uuid(rng);
    let customer_name = format!(
        "{} {}",
        FIRST.choose(rng).unwrap_or(&"Ana"),
        LAST.choose(rng).unwrap_or(&"Novak")
    );
    let mut attributes = vec![
        ("customerName".to_owned(), customer_name),
        (
            "accountNumber".to_owned(),
            format!("{:010}", rng.random_range(0..10_000_000_000u64)),
        ),
        (
            "intent".to_owned(),
            ["billing", "support", "sales", "cancel"]
                .choose(rng)
                .unwrap_or(&"support")
                .to_string(),
        ),
    ];
    attributes.push(("disposition".to_owned(), "resolved".to_owned()));
    let (channel, method) = match kind {
        Kind::Chat => ("CHAT", "API"),
        Kind::Task => ("TASK", "API"),
        Kind::Outbound => ("VOICE", "OUTBOUND"),
        Kind::Callback => ("VOICE", "CALLBACK"),
        _ => ("VOICE", "INBOUND"),
    };
    let ivr = match kind {
        Kind::IvrAgent | Kind::PartlyDeleted => secs(rng, 61..150),
        Kind::Outbound | Kind::Task => Duration::zero(),
        _ => secs(rng, 5..90),
    };
    let enqueue = initiation + ivr;
    let wait = secs(rng, 0..300);
    let talk = match kind {
        Kind::Long => secs(rng, 3600..10_800),
        Kind::Chat => secs(rng, 120..1800),
        _ => secs(rng, 30..1200),
    };
    let agent = ctx.agents.choose(rng).cloned();
    let queue = ctx.queues.choose(rng).cloned();
    let mut c = Contact {
        id: id.clone(),
        kind,
        ours,
        instance_id: if ours {
            spec.instance_id.clone()
        } else {
            spec.other_instance_id.clone()
        },
        channel,
        method,
        initiation,
        enqueue: Some(enqueue),
        connected: Some(enqueue + wait),
        disconnect: enqueue + wait + talk,
        acw_end: None,
        reason: if rng.random_bool(0.5) {
            "CUSTOMER_DISCONNECT"
        } else {
            "AGENT_DISCONNECT"
        },
        initial: None,
        previous: None,
        next: None,
        transfer_to: None,
        agent,
        queue,
        customer: if channel == "VOICE" {
            Some(phone(rng))
        } else {
            None
        },
        system: if channel == "VOICE" {
            ctx.system_numbers.choose(rng).cloned()
        } else {
            None
        },
        attributes,
        recs: Vec::new(),
        copies: Vec::new(),
        in_verint: false,
    };
    if kind == Kind::Abandoned {
        c.agent = None;
        c.connected = None;
        c.disconnect = enqueue + secs(rng, 10..400);
        c.reason = "CUSTOMER_DISCONNECT";
        c.attributes.retain(|a| a.0 != "disposition");
        return vec![finish(ctx, rng, c)];
    }
    if kind == Kind::Task {
        c.enqueue = Some(initiation);
        c.connected = Some(initiation + wait);
        c.disconnect = initiation + wait + talk;
    }
    c.acw_end = Some(c.disconnect + secs(rng, 10..240));
    let alias = if ours { ALIAS } else { "other" };
    let size = |rng: &mut StdRng| rng.random_range(spec.recording_bytes.clone());
    if channel == "VOICE" {
        let connected = c.connected.unwrap_or(initiation);
        let agent_rec = Rec {
            bucket: spec.recordings_bucket.clone(),
            key: ctx.rec_key(alias, &id, connected),
            status: "AVAILABLE",
            participant: "AGENT",
            media: "AUDIO",
            in_array: true,
            in_legacy: true,
            bytes: size(rng),
        };
        match kind {
            Kind::IvrAgent | Kind::PartlyDeleted => {
                let ivr_rec = Rec {
                    key: ctx.rec_key(alias, &id, initiation),
                    participant: "IVR",
                    status: if kind == Kind::PartlyDeleted {
                        "DELETED"
                    } else {
                        "AVAILABLE"
                    },
                    bytes: size(rng),
                    ..agent_rec.clone()
                };
                c.recs = vec![
                    ivr_rec,
                    Rec {
                        in_legacy: false,
                        ..agent_rec
                    },
                ];
            }
            Kind::Deleted => {
                c.recs = vec![Rec {
                    status: "DELETED",
                    ..agent_rec
                }];
            }
            Kind::LegacyOnly => {
                c.recs = vec![Rec {
                    in_array: false,
                    ..agent_rec
                }];
            }
            Kind::ArrayOnly => {
                c.recs = vec![Rec {
                    in_legacy: false,
                    ..agent_rec
                }];
            }
            Kind::WithVideo => {
                let video = Rec {
                    key: format!(
                        "connect/{alias}/ScreenRecordings/{}/{id}_{}.mp4",
                        connected.format("%Y/%m/%d"),
                        connected.format("%Y%m%dT%H:%M")
                    ),
                    media: "VIDEO",
                    in_legacy: false,
                    ..agent_rec.clone()
                };
                c.recs = vec![agent_rec, video];
            }
            _ => c.recs = vec![agent_rec],
        }
    } else if channel == "CHAT" && rng.random_bool(0.5) {
        c.recs = vec![Rec {
            bucket: spec.recordings_bucket.clone(),
            key: format!(
                "connect/{alias}/ChatTranscripts/{}/{id}_{}_UTC.json",
                initiation.format("%Y/%m/%d"),
                initiation.format("%Y%m%dT%H:%M")
            ),
            status: "AVAILABLE",
            participant: "ALL",
            media: "CHAT",
            in_array: true,
            in_legacy: false,
            bytes: 0,
        }];
    }
    if kind != Kind::Transfer {
        return vec![finish(ctx, rng, c)];
    }
    // The second leg: the agent transferred the caller to another queue.
    let mut b = c.clone();
    b.id = uuid(rng);
    b.method = "TRANSFER";
    b.initial = Some(c.id.clone());
    b.previous = Some(c.id.clone());
    b.initiation = c.disconnect;
    b.enqueue = Some(b.initiation + secs(rng, 1..5));
    b.connected = b.enqueue.map(|e| e + secs(rng, 5..200));
    b.disconnect = b.connected.unwrap_or(b.initiation) + secs(rng, 30..900);
    b.acw_end = Some(b.disconnect + secs(rng, 10..240));
    b.agent = ctx.agents.choose(rng).cloned();
    b.queue = ctx.queues.choose(rng).cloned();
    b.reason = "CUSTOMER_DISCONNECT";
    let connected = b.connected.unwrap_or(b.initiation);
    b.recs = vec![Rec {
        key: ctx.rec_key(alias, &b.id, connected),
        bytes: size(rng),
        ..c.recs[0].clone()
    }];
    c.next = Some(b.id.clone());
    c.reason = "TRANSFER";
    c.transfer_to = Some(phone(rng));
    vec![finish(ctx, rng, c), finish(ctx, rng, b)]
}

pub(super) fn finish(ctx: &Ctx<'_>, _rng: &mut StdRng, mut c: Contact) -> Contact {
    if !c.ours {
        let other = |p: Party| Party {
            arn: p.arn.replace(&ctx.our_arn, &ctx.other_arn),
            ..p
        };
        c.agent = c.agent.map(other);
        c.queue = c.queue.map(other);
    }
    c
}
