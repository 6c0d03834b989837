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

    // Contacts: one of each kind first, then by weight.
    let mut contacts: Vec<Contact> = Vec::new();
    let total_weight: u32 = KINDS.iter().map(|k| k.1).sum();
    let mut i = 0usize;
    while contacts.len() < spec.calls {
        let kind = if i < KINDS.len() {
            KINDS[i].0
        } else {
            let mut w = rng.random_range(0..total_weight);
            let mut pick = Kind::Voice;
            for (k, kw) in KINDS {
                if w < kw {
                    pick = k;
                    break;
                }
                w -= kw;
            }
            pick
        };
        let first_of_kind = i < KINDS.len();
        i += 1;
        let made = make_contacts(&ctx, &mut rng, kind, first_of_kind);
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

    // Verint: eligible calls, less the missed ones; some kinds are always missed so every
    // path of a run gets exercised.
    let mut forced_long = false;
    let mut forced_transfer = false;
    let mut forced_ivr = false;
    let mut forced_dup = false;
    for c in contacts.iter_mut() {
        let eligible = c.ours && c.channel == "VOICE" && c.recs.iter().any(|r| r.media == "AUDIO");
        if !eligible {
            continue;
        }
        let mut miss = rng.random_bool(spec.verint_miss_rate);
        match c.kind {
            Kind::Deleted | Kind::PartlyDeleted => miss = true,
            Kind::Long if !forced_long => {
                forced_long = true;
                miss = true;
            }
            Kind::Transfer if c.previous.is_some() && !forced_transfer => {
                forced_transfer = true;
                miss = true;
            }
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
    let mut verint = Vec::new();
    let mut seq = 0u64;
    let mut interaction = |rng: &mut StdRng| {
        seq += 1;
        format!(
            "{}{:06}{:02}",
            spec.date.format("%y%m%d"),
            seq,
            rng.random_range(0..100)
        )
    };
    for c in &contacts {
        if c.in_verint {
            let start = if rng.random_bool(0.5) {
                c.connected.unwrap_or(c.initiation)
            } else {
                c.initiation + secs(&mut rng, 0..4)
            };
            let start = start.min(c.disconnect);
            verint.push(VerintContact {
                amazon_contact_id: Some(c.id.clone()),
                interaction_id: interaction(&mut rng),
                start_time: start,
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
        verint.push(VerintContact {
            amazon_contact_id: None,
            interaction_id: interaction(&mut rng),
            start_time: start,
            end_time: start + secs(&mut rng, 30..900),
        });
    }

    // Recordings in S3: every one not deleted.
    let mut recordings = Vec::new();
    for c in &contacts {
        for r in &c.recs {
            if r.status != "DELETED" && r.media == "AUDIO" {
                recordings.push(Object {
                    bucket: r.bucket.clone(),
                    key: r.key.clone(),
                    body: wav(&mut rng, r.bytes),
                });
            }
        }
    }

    // DescribeContact: every contact of our instance, as its latest copy says.
    let connect = contacts
        .iter()
        .filter(|c| c.ours)
        .map(|c| describe(&ctx, c))
        .collect();

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
            }
        })
        .collect();

    Day {
        ctr_objects,
        recordings,
        verint,
        connect,
        truth,
        malformed_records,
    }
}
