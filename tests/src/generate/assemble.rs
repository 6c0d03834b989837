//! A day put together: contacts drawn per kind, their CTR copies written into Firehose's hour
//! objects (with the malformed lines and objects design §4 counts), their recordings, what Verint
//! holds and what `DescribeContact` answers, and the ground truth.

use super::*;

/// Generates the day; the same spec gives the same bytes.
pub fn day(spec: &DaySpec) -> Day {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let our_arn = spec.instance_arn(&spec.instance_id);
    let other_arn = spec.instance_arn(&spec.other_instance_id);
    let agents = (0..12)
        .map(|i| {
            let id = uuid(&mut rng);
            Party {
                arn: format!("{our_arn}/agent/{id}"),
                id,
                name: format!(
                    "{}.{}",
                    FIRST[i % FIRST.len()].to_lowercase(),
                    LAST[i % LAST.len()].to_lowercase()
                ),
            }
        })
        .collect();
    let queues = QUEUES
        .iter()
        .map(|q| {
            let id = uuid(&mut rng);
            Party {
                arn: format!("{our_arn}/queue/{id}"),
                id,
                name: (*q).to_owned(),
            }
        })
        .collect();
    let system_numbers = (0..3).map(|_| phone(&mut rng)).collect();
    let ctx = Ctx {
        spec,
        our_arn,
        other_arn,
        agents,
        queues,
        system_numbers,
    };

    // Contacts: one of each kind first, then by weight. The other instance's share of the
    // weight draws a contact of any other kind for that instance; transfer chains take each
    // shape once, in CHAINS order (the second crossing midnight), then by weight.
    let mut contacts: Vec<Contact> = Vec::new();
    let mut i = 0usize;
    let mut chains = 0usize;
    while contacts.len() < spec.calls {
        let kind = if i < KINDS.len() {
            KINDS[i].0
        } else {
            draw_kind(&mut rng, None)
        };
        let first_of_kind = i < KINDS.len();
        i += 1;
        let (kind, ours) = if kind == Kind::OtherInstance {
            let sub = if first_of_kind {
                Kind::Voice
            } else {
                draw_kind(&mut rng, Some(Kind::OtherInstance))
            };
            (sub, false)
        } else {
            (kind, true)
        };
        let plan = if kind == Kind::Transfer {
            let n = if ours { chains } else { usize::MAX };
            if ours {
                chains += 1;
            }
            let shape = match CHAINS.get(n) {
                Some(&(shape, _)) => shape,
                None => draw_chain(&mut rng),
            };
            let cross_midnight = n == 1 || (n >= CHAINS.len() && rng.random_ratio(15, 100));
            Some(ChainPlan {
                shape,
                cross_midnight,
            })
        } else {
            None
        };
        let made = make_contacts(&ctx, &mut rng, kind, first_of_kind && ours, ours, plan);
        contacts.extend(made);
    }

    // Copies: arrival after disconnect (and after-contact work); some contacts arrive twice
    // or three times, the later copy updated.
    for (n, c) in contacts.iter_mut().enumerate() {
        let dup = n < 3 || rng.random_bool(0.07);
        let copies = if dup { rng.random_range(2..=3) } else { 1 };
        let final_update = c.acw_end.unwrap_or(c.disconnect + secs(&mut rng, 1..5));
        let attrs = c.attributes.len();
        let has_recs = !c.recs.is_empty();
        let mut out = Vec::new();
        // An early copy (written at disconnect, before ACW) for half the duplicated calls.
        let early =
            copies > 1 && has_recs && c.acw_end.is_some() && (n == 0 || rng.random_bool(0.5));
        let mut last = if early {
            c.disconnect + secs(&mut rng, 1..5)
        } else {
            final_update
        };
        for k in 0..copies {
            let is_early = early && k == 0;
            let arrival = if k == 0 {
                (c.disconnect + secs(&mut rng, 60..600)).max(last + secs(&mut rng, 5..30))
            } else {
                last + secs(&mut rng, 5..120)
            };
            out.push(Copy {
                last_update: last,
                arrival,
                early: is_early,
                attrs: if k + 1 == copies {
                    attrs
                } else {
                    attrs.saturating_sub(1).max(1)
                },
                future_field: rng.random_bool(0.1),
            });
            let step = secs(&mut rng, 120..5400);
            last = if is_early {
                final_update.max(last + Duration::seconds(1))
            } else {
                last + step
            };
        }
        c.copies = out;
    }

    // Verint: recorded voice calls of both instances, less the missed ones; some kinds of ours
    // are always missed so every path of a run gets exercised.
    let mut forced_long = false;
    let mut forced_transfer = false;
    let mut forced_ivr = false;
    let mut forced_dup = false;
    let mut forced_other = false;
    for c in contacts.iter_mut() {
        if !c.recorded_voice() {
            continue;
        }
        let mut miss = rng.random_bool(spec.verint_miss_rate);
        if !c.ours {
            // The other instance's first call with audio to ingest is always missed, so that a
            // deployment planning for both instances has one to recover in each.
            if !forced_other && c.recs.iter().any(Rec::ingestible) {
                forced_other = true;
                miss = true;
            }
            c.in_verint = !(miss || matches!(c.kind, Kind::Deleted | Kind::PartlyDeleted));
            continue;
        }
        let later_leg = c.chain.is_some_and(|(k, _)| k > 0);
        let middle_leg = c.chain.is_some_and(|(k, n)| k > 0 && k + 1 < n);
        match c.kind {
            Kind::Deleted | Kind::PartlyDeleted => miss = true,
            Kind::Long if !forced_long => {
                forced_long = true;
                miss = true;
            }
            // The first later leg of the day's first chain (its middle leg: an Agent3 chain).
            Kind::Transfer if later_leg && !forced_transfer => {
                forced_transfer = true;
                miss = true;
            }
            // Half the middle legs are missing: the chain is incomplete in the middle.
            Kind::Transfer if middle_leg => miss |= rng.random_bool(0.5),
            Kind::IvrAgent if !forced_ivr => {
                forced_ivr = true;
                miss = true;
            }
            _ if c.copies.len() > 1 && c.copies[0].early && !forced_dup => {
                forced_dup = true;
                miss = true;
            }
            _ => {}
        }
        c.in_verint = !miss;
    }

    // The knobs of design §10 (truncated, archived, redacted recordings) draw from generators
    // of their own, so that turning one on leaves the rest of the day as it was.
    let mut taken = BTreeSet::new();
    let mut knob_rng = StdRng::seed_from_u64(spec.seed ^ 0x6b6e_6f62_735f_7631);
    // Only a recording whose CTR entry states its span can be seen to be cut short.
    let truncated = pick_missed(
        &mut contacts,
        spec.truncated,
        &mut taken,
        &mut knob_rng,
        spec.date,
        |c| {
            c.primary_rec()
                .is_some_and(|r| r.in_array && r.span.is_some())
        },
    );
    for (n, &ci) in truncated.iter().enumerate() {
        let c = &mut contacts[ci];
        let disconnect = c.disconnect;
        if let Some(r) = c.primary_rec_mut()
            && let Some((start, _)) = r.span
        {
            // The CTR says the recording lasted the call; the object holds a second or two.
            r.span = Some((start, (disconnect - start).num_seconds().max(60)));
            r.cut = if n % 2 == 0 {
                Cut::HeaderLonger
            } else {
                Cut::Short
            };
        }
    }
    let archived = pick_missed(
        &mut contacts,
        spec.archived,
        &mut taken,
        &mut knob_rng,
        spec.date,
        |_| true,
    );
    for &ci in &archived {
        if let Some(r) = contacts[ci].primary_rec_mut() {
            r.archived = true;
        }
    }
    let unredacted: BTreeSet<usize> = pick_missed(
        &mut contacts,
        spec.redacted_missing,
        &mut taken,
        &mut knob_rng,
        spec.date,
        |_| true,
    )
    .into_iter()
    .collect();
    let mut redact_rng = StdRng::seed_from_u64(spec.seed ^ 0x7265_6461_6374_6564);
    let share = spec.redacted.clamp(0.0, 1.0);
    for (ci, c) in contacts.iter_mut().enumerate() {
        if c.channel != "VOICE" || c.primary_rec().is_none() {
            continue;
        }
        let redact = redact_rng.random_bool(share);
        let done = c.disconnect + secs(&mut redact_rng, 120..600);
        if redact && !unredacted.contains(&ci) {
            c.redacted_key = Some(redacted_key(&spec.redacted_prefix, c, done));
        }
    }

    let mut verint = Vec::new();
    let mut seq = 0u64;
    for c in &contacts {
        if !c.recorded_voice() {
            continue;
        }
        // Drawn for every recorded call, held or not, so that which calls Verint holds does
        // not move the rest of the day.
        let start = if rng.random_bool(0.5) {
            c.connected.unwrap_or(c.initiation)
        } else {
            c.initiation + secs(&mut rng, 0..4)
        };
        let suffix = rng.random_range(0..100);
        if c.in_verint {
            seq += 1;
            verint.push(VerintContact {
                amazon_contact_id: Some(c.id.clone()),
                interaction_id: interaction_id(spec.date, seq, suffix),
                start_time: start.min(c.disconnect),
                end_time: c.disconnect,
            });
        }
    }
    let day_start = spec
        .date
        .and_hms_opt(0, 0, 0)
        .map_or_else(Utc::now, |d| d.and_utc());
    for _ in 0..(spec.calls / 100).max(3) {
        let start = day_start + secs(&mut rng, 0..86_000);
        seq += 1;
        verint.push(VerintContact {
            amazon_contact_id: None,
            interaction_id: interaction_id(spec.date, seq, rng.random_range(0..100)),
            start_time: start,
            end_time: start + secs(&mut rng, 30..900),
        });
    }

    // Recordings in S3: every audio one not deleted, truncated or archived as the knobs chose;
    // then the redacted copies, as long as the audio the recording's object holds.
    let mut recordings = Vec::new();
    for c in &contacts {
        for r in c.recs.iter().filter(|r| r.ingestible()) {
            let body = match (r.cut, r.span) {
                (Cut::HeaderLonger, Some((_, claimed))) => {
                    let claimed = u64::try_from(claimed).unwrap_or(0)
                        * u64::from(audio::byte_rate(r.channels));
                    wav_cut_short(&mut rng, r.bytes, r.channels, claimed)
                }
                _ => wav_of(&mut rng, r.bytes, r.channels),
            };
            recordings.push(Object {
                bucket: r.bucket.clone(),
                key: r.key.clone(),
                storage_class: r.archived.then(|| "GLACIER".to_owned()),
                body,
            });
        }
    }
    let mut redacted = Vec::new();
    for c in &contacts {
        if let (Some(key), Some(r)) = (&c.redacted_key, c.primary_rec()) {
            redacted.push(Object {
                bucket: r.bucket.clone(),
                key: key.clone(),
                storage_class: None,
                body: wav_of(&mut redact_rng, r.bytes, r.channels),
            });
        }
    }

    // DescribeContact: every contact of both instances, as its latest copy says.
    let connect = contacts.iter().map(|c| describe(&ctx, c)).collect();

    // CTR objects: records grouped by Firehose buffer (10 minutes), named by the arrival
    // hour of the oldest record.
    let mut records: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    for (ci, c) in contacts.iter().enumerate() {
        for (k, cp) in c.copies.iter().enumerate() {
            records.push((cp.arrival, ci, k));
        }
    }
    records.sort();
    let mut groups: BTreeMap<i64, Vec<(DateTime<Utc>, usize, usize)>> = BTreeMap::new();
    let offset = rng.random_range(0..600);
    for r in records {
        groups
            .entry((r.0.timestamp() + offset) / 600)
            .or_default()
            .push(r);
    }
    let mut arrival_hours: Vec<Vec<DateTime<Utc>>> = contacts
        .iter()
        .map(|c| vec![day_start; c.copies.len()])
        .collect();
    let mut ctr_objects = Vec::new();
    let mut malformed_records = 0usize;
    let mut malformed_left = 3usize;
    for (_, group) in groups {
        let oldest = group[0].0;
        let hour = floor_hour(oldest);
        let framing = rng.random_range(0..4u8); // 0 concat, 1 ndjson, 2 gz concat, 3 gz ndjson
        let ndjson = framing % 2 == 1;
        let mut body = Vec::new();
        for &(_, ci, k) in &group {
            arrival_hours[ci][k] = hour;
            let v = ctr_json(&ctx, &contacts[ci], &contacts[ci].copies[k]);
            body.extend_from_slice(v.to_string().as_bytes());
            if ndjson {
                body.push(b'\n');
            }
        }
        if ndjson && malformed_left > 0 {
            malformed_left -= 1;
            let sample = ctr_json(&ctx, &contacts[group[0].1], &contacts[group[0].1].copies[0]);
            let junk: Vec<u8> = match malformed_left {
                2 => {
                    // A record cut short, of a contact that exists nowhere else.
                    let mut s = sample.clone();
                    s["ContactId"] = json!(uuid(&mut rng));
                    let full = s.to_string();
                    full.as_bytes()[..full.len() / 2].to_vec()
                }
                1 => {
                    let mut s = sample.clone();
                    if let Some(m) = s.as_object_mut() {
                        m.remove("ContactId");
                    }
                    s.to_string().into_bytes()
                }
                _ => b"<html><body>502 Bad Gateway</body></html>".to_vec(),
            };
            body.extend_from_slice(&junk);
            body.push(b'\n');
            malformed_records += 1;
        }
        if framing >= 2 {
            body = gzip(&body, 6);
        }
        ctr_objects.push(Object {
            bucket: spec.ctr_bucket.clone(),
            key: firehose_key(&spec.ctr_prefix, hour, oldest, &mut rng),
            storage_class: None,
            body,
        });
    }
    // One object that is not readable at all.
    if let Some(hour) = ctr_objects
        .get(ctr_objects.len() / 2)
        .and_then(|o| key_hour(&spec.ctr_prefix, &o.key))
    {
        let mut body = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
        body.extend((0..512).map(|_| rng.random::<u8>()));
        let at = hour + secs(&mut rng, 0..3600);
        ctr_objects.push(Object {
            bucket: spec.ctr_bucket.clone(),
            key: firehose_key(&spec.ctr_prefix, hour, at, &mut rng),
            storage_class: None,
            body,
        });
        malformed_records += 1;
    }

    let truth = contacts
        .iter()
        .zip(arrival_hours)
        .map(|(c, hours)| {
            let latest = c
                .copies
                .iter()
                .max_by_key(|cp| cp.last_update)
                .map(|cp| ctr_json(&ctx, c, cp))
                .unwrap_or(Value::Null);
            Truth {
                contact_id: c.id.clone(),
                channel: c.channel.to_owned(),
                ours: c.ours,
                initiation: c.initiation,
                disconnect: Some(c.disconnect),
                arrival_hours: hours,
                s3_recordings: s3_recordings(&latest),
                in_verint: c.in_verint,
                kind: kind_name(c),
                instance_id: c.instance_id.clone(),
                initial_contact_id: c.initial.clone(),
                previous_contact_id: c.previous.clone(),
                truncated: c.recs.iter().any(|r| r.cut != Cut::Whole),
                archived: c.recs.iter().any(|r| r.archived),
                redacted_key: c.redacted_key.clone(),
            }
        })
        .collect();

    Day {
        ctr_objects,
        recordings,
        redacted,
        verint,
        connect,
        truth,
        malformed_records,
    }
}

/// A kind drawn by weight, never `except`.
fn draw_kind(rng: &mut StdRng, except: Option<Kind>) -> Kind {
    let weights = || KINDS.iter().filter(|k| Some(k.0) != except);
    let total: u32 = weights().map(|k| k.1).sum();
    let mut w = rng.random_range(0..total);
    for &(k, kw) in weights() {
        if w < kw {
            return k;
        }
        w -= kw;
    }
    Kind::Voice
}

/// A chain shape drawn by weight.
fn draw_chain(rng: &mut StdRng) -> Chain {
    let total: u32 = CHAINS.iter().map(|c| c.1).sum();
    let mut w = rng.random_range(0..total);
    for &(c, cw) in &CHAINS {
        if w < cw {
            return c;
        }
        w -= cw;
    }
    Chain::Agent2
}

fn interaction_id(date: NaiveDate, seq: u64, suffix: u32) -> String {
    format!("{}{seq:06}{suffix:02}", date.format("%y%m%d"))
}

/// `n` of our calls that Verint misses, initiated on `date`, with exactly one recording to
/// ingest, that `also` accepts, none in `taken` (the picks join it): missed calls first, then,
/// when the day has too few, calls Verint held, which become missed. Fewer than `n` when the
/// day has too few such calls at all.
fn pick_missed(
    contacts: &mut [Contact],
    n: usize,
    taken: &mut BTreeSet<usize>,
    rng: &mut StdRng,
    date: NaiveDate,
    also: impl Fn(&Contact) -> bool,
) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let fits = |c: &Contact| {
        c.ours
            && c.recorded_voice()
            && c.initiation.date_naive() == date
            && c.recs.iter().filter(|r| r.ingestible()).count() == 1
            && also(c)
    };
    let candidates = |held: bool| -> Vec<usize> {
        contacts
            .iter()
            .enumerate()
            .filter(|(i, c)| fits(c) && c.in_verint == held && !taken.contains(i))
            .map(|(i, _)| i)
            .collect()
    };
    let mut missed = candidates(false);
    let mut held = candidates(true);
    missed.shuffle(rng);
    held.shuffle(rng);
    let picked: Vec<usize> = missed.into_iter().chain(held).take(n).collect();
    for &i in &picked {
        contacts[i].in_verint = false;
        taken.insert(i);
    }
    picked
}

/// design §10: `{prefix}YYYY/MM/DD/{contactId}_call_recording_redacted_{timestamp}.wav`, the
/// date of the call's initiation, the timestamp (as Amazon Connect's documentation shows it,
/// `2020-02-04T21:14:16Z`) when post-call analysis wrote it.
fn redacted_key(prefix: &str, c: &Contact, written: DateTime<Utc>) -> String {
    format!(
        "{prefix}{}/{}_call_recording_redacted_{}.wav",
        c.initiation.format("%Y/%m/%d"),
        c.id,
        written.format("%Y-%m-%dT%H:%M:%SZ")
    )
}
