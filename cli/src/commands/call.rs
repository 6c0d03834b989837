//! `recoveryctl call <contact id>` (design §11): one call as the customer lived it. The transfer
//! chain the contact belongs to, found in the runs' ledgers, and for each leg its class, its
//! recordings, what the worker made of it, the run, and where its audio is in Verint.

use std::collections::BTreeMap;

use recovery::domain::contacts::ContactKey;
use recovery::domain::ledger::{LedgerClass, LedgerRow};
use recovery::domain::report::Outcome;
use recovery::domain::time::format_ts;

use super::*;
use recovery::config::*;

/// The runs searched for the contact, newest first, when no day narrows them.
const RUNS_SEARCHED: usize = 500;

/// One leg of the chain, as the newest ledger that holds it says.
#[derive(Debug, Serialize)]
struct Leg {
    contact_id: String,
    initiation_timestamp: Option<String>,
    disconnect_timestamp: Option<String>,
    class: String,
    reason: String,
    run_id: String,
    /// The worker's outcome in that run, if it worked the leg.
    outcome: Option<Outcome>,
    /// Where its audio is in Verint: the interaction id, or `None` when Verint does not hold it.
    verint_interaction_id: Option<String>,
    /// The recordings found under `RECORDINGS_PREFIX` for it (empty when unset).
    recordings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CallView {
    contact_id: String,
    /// The chain's id: its first leg's contact id.
    chain: String,
    legs: Vec<Leg>,
    /// Whether every leg is in Verint or accounted for (unrecoverable).
    complete: bool,
}

pub(super) async fn call(json: bool, contact_id: &str) -> Result<()> {
    let wanted = ContactKey::new(&contact_id.trim().to_ascii_lowercase()).to_string();
    let (config, clients, store) = state(&[
        STATE_BUCKET,
        STATE_PREFIX,
        VERINT_DAS_URL,
        VERINT_API_KEY_SECRET_ID,
        VERINT_API_KEY,
    ])
    .await?;
    let ids = store.run_ids().await?;
    // The newest ledger row of the contact: its chain and its day.
    let mut found: Option<(String, LedgerRow)> = None;
    for id in ids.iter().take(RUNS_SEARCHED) {
        if let Some(row) = ledger_rows(&store, id)
            .await?
            .into_iter()
            .find(|r| r.contact_id.eq_ignore_ascii_case(&wanted))
        {
            found = Some((id.clone(), row));
            break;
        }
    }
    let Some((_, row)) = found else {
        bail!(
            "contact {wanted} is in no ledger of the latest {RUNS_SEARCHED} runs: no run saw its contact record (a call without a recording is never eligible); `recoveryctl coverage --from DAY --to DAY --csv` lists a day's contacts"
        );
    };
    let chain = if row.initial_contact_id.is_empty() {
        row.contact_id.to_ascii_lowercase()
    } else {
        row.initial_contact_id.to_ascii_lowercase()
    };
    // Every leg of the chain in the runs around its day, the newest ledger's row of each.
    let day = row.initiation.unwrap_or_else(chrono::Utc::now);
    let near = |r: &RunReport| {
        let Some(w) = &r.window else { return false };
        let (Some(start), Some(end)) = (
            recovery::domain::time::parse_ts(&w.start),
            recovery::domain::time::parse_ts(&w.end),
        ) else {
            return false;
        };
        start < day + chrono::TimeDelta::days(2) && day - chrono::TimeDelta::days(2) < end
    };
    let mut legs: BTreeMap<String, (String, LedgerRow)> = BTreeMap::new();
    for id in &ids {
        let Some(report) = store.report(id).await? else {
            continue;
        };
        if !near(&report) {
            continue;
        }
        for r in ledger_rows(&store, id).await? {
            let in_chain = r.class != LedgerClass::Orphan
                && (r.contact_id.eq_ignore_ascii_case(&chain)
                    || r.initial_contact_id.eq_ignore_ascii_case(&chain));
            if in_chain {
                legs.entry(r.contact_id.to_ascii_lowercase())
                    .or_insert((id.clone(), r));
            }
        }
    }
    let verint = clients
        .verint(&config)
        .await
        .context("the Verint key (to ask Verint where each leg is)")?;
    let mut view = CallView {
        contact_id: wanted,
        chain,
        legs: Vec::new(),
        complete: true,
    };
    let mut ordered: Vec<(String, LedgerRow)> = legs.into_values().collect();
    ordered.sort_by_key(|(_, r)| r.initiation);
    for (run_id, r) in ordered {
        let outcome: Option<Outcome> = store
            .run_json(&run_id, &format!("outcomes/{}.json", r.contact_id))
            .await?
            .map(|(o, _)| o);
        let interaction = verint
            .holds(&r.contact_id)
            .await
            .with_context(|| format!("asking Verint for {}", r.contact_id))?;
        let done = interaction.is_some() || r.class == LedgerClass::Unrecoverable;
        view.complete &= done;
        let recordings = recordings_of(&clients, &config, &r).await;
        view.legs.push(Leg {
            contact_id: r.contact_id.clone(),
            initiation_timestamp: r.initiation.map(format_ts),
            disconnect_timestamp: r.disconnect.map(format_ts),
            class: r.class.as_str().to_owned(),
            reason: r.reason.clone(),
            run_id,
            outcome,
            verint_interaction_id: interaction,
            recordings,
        });
    }
    if json {
        return print_json(&view);
    }
    println!(
        "Call {} is {} of chain {} ({} leg{}, {})",
        view.contact_id,
        if view.chain == view.contact_id {
            "the first leg"
        } else {
            "a later leg"
        },
        view.chain,
        view.legs.len(),
        if view.legs.len() == 1 { "" } else { "s" },
        if view.complete {
            "every leg in Verint or accounted for"
        } else {
            "a leg is not in Verint"
        }
    );
    let mut t = table(&[
        "leg",
        "started",
        "class",
        "outcome",
        "run",
        "in Verint",
        "recordings",
    ]);
    for leg in &view.legs {
        let outcome = leg.outcome.as_ref().map_or("-".to_owned(), |o| {
            let mut s = o.status.as_str().to_owned();
            if let Some(i) = &o.integrity {
                s.push_str(&format!(" ({i})"));
            }
            if let Some(r) = &o.reason {
                s.push_str(&format!(": {r}"));
            }
            s
        });
        t.add_row(vec![
            leg.contact_id.clone(),
            leg.initiation_timestamp.clone().unwrap_or_default(),
            if leg.reason.is_empty() {
                leg.class.clone()
            } else {
                format!("{}: {}", leg.class, leg.reason)
            },
            outcome,
            leg.run_id.clone(),
            leg.verint_interaction_id
                .clone()
                .map_or("no".into(), |i| format!("yes, interaction {i}")),
            if leg.recordings.is_empty() {
                "-".into()
            } else {
                leg.recordings.join("\n")
            },
        ]);
    }
    println!("{t}");
    Ok(())
}

async fn ledger_rows(store: &S3State, run_id: &str) -> Result<Vec<LedgerRow>> {
    let Some(bytes) = store.ledger_bytes(run_id).await? else {
        return Ok(Vec::new());
    };
    recovery::domain::ledger::rows_of(&bytes)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the ledger of run {run_id}"))
}

/// The leg's recordings under `RECORDINGS_PREFIX`, `s3://bucket/key` each; none when unset or
/// unreadable (this view is best effort).
async fn recordings_of(clients: &Clients, config: &Config, row: &LedgerRow) -> Vec<String> {
    let (Some(location), Some(at)) = (&config.recordings, row.initiation) else {
        return Vec::new();
    };
    let prefix = format!(
        "{}{}/{}_",
        location.prefix,
        at.format("%Y/%m/%d"),
        row.contact_id
    );
    let store = recovery::adapters::recordings::S3Recordings(clients.s3.clone());
    use recovery::ports::recordings::RecordingStore as _;
    store
        .keys(&location.bucket, &prefix, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| format!("s3://{}/{k}", location.bucket))
        .collect()
}
