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
    (Kind::Transfer, 40),
    (Kind::Deleted, 12),
    (Kind::PartlyDeleted, 3),
    (Kind::IvrAgent, 60),
    (Kind::Long, 25),
    (Kind::LegacyOnly, 20),
    (Kind::ArrayOnly, 20),
    (Kind::WithVideo, 20),
];

/// How a recording's object falls short of what its CTR says (design §10's truncation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Whole: the WAV lasts what the CTR says.
    Whole,
    /// A well-formed short WAV: its header matches the object, the CTR says it lasted longer.
    Short,
    /// The header claims the whole recording (what the CTR says) but the object ends early.
    HeaderLonger,
}

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
    /// 2 (stereo, as Connect records) or 1 (mono): the WAV's format.
    pub(super) channels: u16,
    /// `StartTimestamp` and what `StopTimestamp − StartTimestamp` says, in seconds (the WAV's
    /// own duration unless [`Rec::cut`]); `None` writes both as null (chat transcripts).
    pub(super) span: Option<(DateTime<Utc>, i64)>,
    pub(super) cut: Cut,
    /// Uploaded with storage class `GLACIER`.
    pub(super) archived: bool,
}

impl Rec {
    /// An S3 audio recording that is not deleted: one the worker streams.
    pub(super) fn ingestible(&self) -> bool {
        self.media == "AUDIO" && self.status != "DELETED"
    }
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
    /// The scenario name of a transfer chain's leg (see [`Truth::kind`]).
    pub(super) leg: Option<&'static str>,
    /// A chain leg's place: (index from 0, number of legs).
    pub(super) chain: Option<(usize, usize)>,
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
    pub(super) agent: Option<Party>,
    pub(super) queue: Option<Party>,
    pub(super) customer: Option<String>,
    pub(super) system: Option<String>,
    pub(super) attributes: Vec<(String, String)>,
    pub(super) recs: Vec<Rec>,
    pub(super) copies: Vec<Copy>,
    pub(super) in_verint: bool,
    /// The Contact Lens redacted recording's key, when one is written.
    pub(super) redacted_key: Option<String>,
}

impl Contact {
    /// design §4's eligibility, without the instance: a voice call that ended with an S3 audio
    /// recording (the generator's contacts have always ended).
    pub(super) fn recorded_voice(&self) -> bool {
        self.channel == "VOICE" && self.recs.iter().any(|r| r.media == "AUDIO")
    }

    /// The recording Contact Lens analyses: the agent's, else the last one not deleted.
    pub(super) fn primary_rec(&self) -> Option<&Rec> {
        self.recs
            .iter()
            .rev()
            .filter(|r| r.ingestible())
            .find(|r| r.participant == "AGENT")
            .or_else(|| self.recs.iter().rev().find(|r| r.ingestible()))
    }

    pub(super) fn primary_rec_mut(&mut self) -> Option<&mut Rec> {
        let i = self
            .recs
            .iter()
            .rposition(|r| r.ingestible() && r.participant == "AGENT")
            .or_else(|| self.recs.iter().rposition(Rec::ingestible))?;
        self.recs.get_mut(i)
    }

    fn shift(&mut self, by: Duration) {
        self.initiation += by;
        self.enqueue = self.enqueue.map(|x| x + by);
        self.connected = self.connected.map(|x| x + by);
        self.disconnect += by;
        self.acw_end = self.acw_end.map(|x| x + by);
    }
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
/// The other instance's alias in its recordings' keys (`connect/other/CallRecordings/...`).
pub(super) const OTHER_ALIAS: &str = "other";

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
    if let Some(leg) = c.leg {
        return leg.to_owned();
    }
    let s = match c.kind {
        Kind::Voice => "voice",
        Kind::Outbound => "outbound",
        Kind::Callback => "callback",
        Kind::Abandoned => "abandoned",
        Kind::Chat => "chat",
        Kind::Task => "task",
        Kind::OtherInstance => "other_instance",
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

/// The shape of a transfer chain (design §11): contacts linked by `InitialContactId`,
/// `PreviousContactId` and `NextContactId`, one call as the customer lived it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chain {
    /// Agent to agent, twice: `transfer_first` → `transfer_second` → `transfer_third`.
    Agent3,
    /// Agent to agent: `transfer_first` → `transfer_second`.
    Agent2,
    /// Queued without an agent (no recording), moved to another queue by the customer queue
    /// flow: `queue_transfer_from` → `queue_transfer` (`QUEUE_TRANSFER`).
    QueueTransfer,
    /// Queued without an agent (no recording), the customer asked to be called back:
    /// `callback_request` → `queued_callback` (`CALLBACK`, minutes to hours later).
    Callback,
    /// Self-service IVR only (no queue, no agent, no recording), then an agent:
    /// `ivr_only` → `ivr_transfer`.
    IvrFirst,
}

/// The chain shapes and their weights. A day's first chains take them in this order, so any
/// day with five chains has one of each; the first is the one whose middle leg Verint misses.
pub(super) const CHAINS: [(Chain, u32); 5] = [
    (Chain::Agent3, 20),
    (Chain::Agent2, 40),
    (Chain::QueueTransfer, 15),
    (Chain::Callback, 15),
    (Chain::IvrFirst, 10),
];

/// One chain to draw: its shape, and whether its legs are moved so that the second starts just
/// after the day's midnight (the first leg on the day, the rest on the next).
#[derive(Debug, Clone, Copy)]
pub(super) struct ChainPlan {
    pub(super) shape: Chain,
    pub(super) cross_midnight: bool,
}

/// Of every 100 recordings, about this many are mono (the rest stereo, as Connect records).
const MONO_PERCENT: u32 = 20;

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
    ours: bool,
    chain: Option<ChainPlan>,
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
        leg: None,
        chain: None,
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
        redacted_key: None,
    };
    if kind == Kind::Abandoned {
        c.agent = None;
        c.connected = None;
        c.disconnect = enqueue + secs(rng, 10..400);
        c.reason = "CUSTOMER_DISCONNECT";
        c.attributes.retain(|a| a.0 != "disposition");
        return vec![finish(ctx, c)];
    }
    if kind == Kind::Long && first {
        // Ends after midnight, so that its CTR arrives the next day.
        let midnight = spec
            .date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        if let Some(midnight) = midnight.filter(|m| c.disconnect < *m) {
            c.disconnect = midnight + secs(rng, 60..1800);
        }
    }
    if kind == Kind::Task {
        c.enqueue = Some(initiation);
        c.connected = Some(initiation + wait);
        c.disconnect = initiation + wait + talk;
    }
    c.acw_end = Some(c.disconnect + secs(rng, 10..240));
    let mut legs = if kind == Kind::Transfer {
        let plan = chain.unwrap_or(ChainPlan {
            shape: Chain::Agent2,
            cross_midnight: false,
        });
        chain_legs(ctx, rng, c, plan)
    } else {
        vec![c]
    };
    for leg in &mut legs {
        add_recordings(ctx, rng, leg);
    }
    legs.into_iter().map(|c| finish(ctx, c)).collect()
}

/// The legs of a transfer chain whose first leg is `a` (its timeline drawn, no recordings yet).
fn chain_legs(ctx: &Ctx<'_>, rng: &mut StdRng, mut a: Contact, plan: ChainPlan) -> Vec<Contact> {
    let (names, method): (&[&'static str], &'static str) = match plan.shape {
        Chain::Agent3 => (
            &["transfer_first", "transfer_second", "transfer_third"],
            "TRANSFER",
        ),
        Chain::Agent2 => (&["transfer_first", "transfer_second"], "TRANSFER"),
        Chain::QueueTransfer => (&["queue_transfer_from", "queue_transfer"], "QUEUE_TRANSFER"),
        Chain::Callback => (&["callback_request", "queued_callback"], "CALLBACK"),
        Chain::IvrFirst => (&["ivr_only", "ivr_transfer"], "TRANSFER"),
    };
    match plan.shape {
        Chain::Agent3 | Chain::Agent2 => a.reason = "TRANSFER",
        Chain::QueueTransfer | Chain::Callback => {
            // Left the queue without reaching an agent: no agent, no after-contact work, no
            // recording.
            a.disconnect = a.connected.unwrap_or(a.disconnect);
            a.connected = None;
            a.agent = None;
            a.acw_end = None;
            a.reason = if plan.shape == Chain::Callback {
                "CUSTOMER_DISCONNECT"
            } else {
                "TRANSFER"
            };
        }
        Chain::IvrFirst => {
            a.disconnect = a.enqueue.unwrap_or(a.disconnect);
            a.enqueue = None;
            a.connected = None;
            a.queue = None;
            a.agent = None;
            a.acw_end = None;
            a.reason = "TRANSFER";
        }
    }
    let n = names.len();
    a.leg = Some(names[0]);
    a.chain = Some((0, n));
    let mut legs = vec![a];
    for (k, name) in names.iter().enumerate().skip(1) {
        let prev = &legs[k - 1];
        let mut b = prev.clone();
        b.id = uuid(rng);
        b.leg = Some(name);
        b.chain = Some((k, n));
        b.method = method;
        b.initial = Some(legs[0].id.clone());
        b.previous = Some(prev.id.clone());
        b.next = None;
        b.initiation = prev.disconnect;
        let enqueue = b.initiation + secs(rng, 1..5);
        let wait = match method {
            // A queued callback waits in its queue until an agent is free to dial the customer.
            "CALLBACK" => secs(rng, 300..7200),
            "QUEUE_TRANSFER" => secs(rng, 5..300),
            _ => secs(rng, 5..200),
        };
        b.enqueue = Some(enqueue);
        b.connected = Some(enqueue + wait);
        b.disconnect = enqueue + wait + secs(rng, 30..900);
        b.acw_end = Some(b.disconnect + secs(rng, 10..240));
        b.agent = ctx.agents.choose(rng).cloned();
        b.queue = ctx.queues.choose(rng).cloned();
        b.reason = if k + 1 < n {
            "TRANSFER"
        } else if rng.random_bool(0.5) {
            "CUSTOMER_DISCONNECT"
        } else {
            "AGENT_DISCONNECT"
        };
        b.recs = Vec::new();
        let id = b.id.clone();
        legs[k - 1].next = Some(id);
        legs.push(b);
    }
    if plan.cross_midnight {
        let midnight = ctx
            .spec
            .date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        if let Some(midnight) = midnight {
            // The first leg starts before midnight, the second at or after it.
            let first = (legs[0].disconnect - legs[0].initiation).num_seconds();
            let by = midnight + secs(rng, 0..first.max(1)) - legs[1].initiation;
            for leg in &mut legs {
                leg.shift(by);
            }
        }
    }
    legs
}

/// An S3 audio recording of `participant` whose key carries `at` and which starts at `start`;
/// the CTR's span is the WAV's own duration.
fn audio_rec(
    ctx: &Ctx<'_>,
    rng: &mut StdRng,
    c: &Contact,
    participant: &'static str,
    at: DateTime<Utc>,
    start: DateTime<Utc>,
) -> Rec {
    let spec = ctx.spec;
    let alias = if c.ours { ALIAS } else { OTHER_ALIAS };
    let bytes = rng.random_range(spec.recording_bytes.clone());
    let channels = if rng.random_ratio(MONO_PERCENT, 100) {
        1
    } else {
        2
    };
    let seconds = audio::seconds_of(audio::data_len(bytes, channels), channels);
    Rec {
        bucket: spec.recordings_bucket.clone(),
        key: ctx.rec_key(alias, &c.id, at),
        status: "AVAILABLE",
        participant,
        media: "AUDIO",
        in_array: true,
        in_legacy: true,
        bytes,
        channels,
        span: Some((start, seconds)),
        cut: Cut::Whole,
        archived: false,
    }
}

/// The recordings of a contact whose timeline is drawn: an agent recording once an agent
/// answered a voice call (and an IVR one for some kinds), a transcript for half the chats.
fn add_recordings(ctx: &Ctx<'_>, rng: &mut StdRng, c: &mut Contact) {
    let alias = if c.ours { ALIAS } else { OTHER_ALIAS };
    let id = c.id.clone();
    if c.channel == "VOICE" {
        let Some(connected) = c.connected.filter(|_| c.agent.is_some()) else {
            return;
        };
        let agent_rec = audio_rec(ctx, rng, c, "AGENT", connected, connected);
        match c.kind {
            Kind::IvrAgent | Kind::PartlyDeleted => {
                let ivr = audio_rec(
                    ctx,
                    rng,
                    c,
                    "IVR",
                    c.initiation,
                    c.initiation + Duration::seconds(1),
                );
                let ivr_rec = Rec {
                    status: if c.kind == Kind::PartlyDeleted {
                        "DELETED"
                    } else {
                        "AVAILABLE"
                    },
                    ..ivr
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
                    span: Some((connected, (c.disconnect - connected).num_seconds())),
                    ..agent_rec.clone()
                };
                c.recs = vec![agent_rec, video];
            }
            _ => c.recs = vec![agent_rec],
        }
    } else if c.channel == "CHAT" && rng.random_bool(0.5) {
        c.recs = vec![Rec {
            bucket: ctx.spec.recordings_bucket.clone(),
            key: format!(
                "connect/{alias}/ChatTranscripts/{}/{id}_{}_UTC.json",
                c.initiation.format("%Y/%m/%d"),
                c.initiation.format("%Y%m%dT%H:%M")
            ),
            status: "AVAILABLE",
            participant: "ALL",
            media: "CHAT",
            in_array: true,
            in_legacy: false,
            bytes: 0,
            channels: 2,
            span: None,
            cut: Cut::Whole,
            archived: false,
        }];
    }
}

pub(super) fn finish(ctx: &Ctx<'_>, mut c: Contact) -> Contact {
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
