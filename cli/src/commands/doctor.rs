//! `recoveryctl doctor`: every effective setting with its source, then a probe of each queue,
//! bucket, secret and Verint, each with what to do when it fails. Nothing is changed.

use recovery::config::{VARIABLES, VerintKeySource};
use recovery::domain::error::error_chain;

use super::*;

/// One probe's result.
#[derive(Debug, Serialize)]
struct Probe {
    what: String,
    ok: bool,
    detail: String,
}

/// One setting as `doctor` shows it.
#[derive(Debug, Serialize)]
struct Setting {
    name: &'static str,
    value: Option<String>,
    source: String,
}

/// Values that must not be printed.
const SECRET: [&str; 1] = ["VERINT_API_KEY"];

pub(super) async fn doctor(json: bool) -> Result<()> {
    let settings = super::settings();
    let shown: Vec<Setting> = VARIABLES
        .iter()
        .map(|var| {
            let (value, source) = settings.explain(var);
            Setting {
                name: var.name,
                value: value.map(|v| {
                    if SECRET.contains(&var.name) {
                        "(set, not shown)".to_owned()
                    } else {
                        v
                    }
                }),
                source: source.to_string(),
            }
        })
        .collect();
    let mut probes = Vec::new();
    let config = Config::from_lookup(env);
    match &config {
        Ok(_) => probes.push(Probe {
            what: "configuration".into(),
            ok: true,
            detail: "every variable the functions need is set and well formed".into(),
        }),
        Err(e) => probes.push(Probe {
            what: "configuration".into(),
            ok: false,
            detail: e
                .problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
    let clients = Clients::load(env).await;
    // Each queue: its depth (sqs:GetQueueAttributes).
    for (name, url) in [
        ("work queue", env("WORK_QUEUE_URL")),
        ("dead-letter queue", env("DEAD_LETTER_QUEUE_URL")),
        ("backfill queue", env("BACKFILL_QUEUE_URL")),
        ("planning queue", env("PLANNING_QUEUE_URL")),
    ] {
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            continue;
        };
        let probe = match SqsQueue::new(clients.sqs.clone(), &url).depth().await {
            Ok(d) => Probe {
                what: name.into(),
                ok: true,
                detail: format!("{} visible, {} in flight", d.visible, d.in_flight),
            },
            Err(e) => Probe {
                what: name.into(),
                ok: false,
                detail: format!(
                    "{}: check the URL and sqs:GetQueueAttributes on it",
                    error_chain(&e)
                ),
            },
        };
        probes.push(probe);
    }
    // Each bucket: one listing of its prefix (s3:ListBucket).
    let recordings =
        env("RECORDINGS_BUCKET").map(|b| (b, env("RECORDINGS_PREFIX").unwrap_or_default()));
    for (name, bucket, prefix) in [
        (
            "CTR bucket",
            env("CTR_BUCKET"),
            env("CTR_PREFIX").unwrap_or_default(),
        ),
        (
            "state bucket",
            env("STATE_BUCKET"),
            env("STATE_PREFIX").unwrap_or_else(|| "call-recovery/".into()),
        ),
        (
            "recordings bucket",
            recordings.as_ref().map(|r| r.0.clone()),
            recordings.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
        ),
    ] {
        let Some(bucket) = bucket.filter(|b| !b.is_empty()) else {
            continue;
        };
        let listed = clients
            .s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .max_keys(1)
            .send()
            .await;
        probes.push(match listed {
            Ok(_) => Probe {
                what: name.into(),
                ok: true,
                detail: format!("s3://{bucket}/{prefix} can be listed"),
            },
            Err(e) => Probe {
                what: name.into(),
                ok: false,
                detail: format!(
                    "{}: check the name and s3:ListBucket on arn:aws:s3:::{bucket} (prefix {prefix:?})",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ),
            },
        });
    }
    // The Verint key and Verint itself: a look-up of a contact that does not exist.
    if let Ok(config) = &config {
        if let VerintKeySource::Secret(id) = &config.verint_key {
            let read = clients
                .secrets
                .get_secret_value()
                .secret_id(id)
                .send()
                .await;
            probes.push(match read {
                Ok(_) => Probe {
                    what: "Verint key secret".into(),
                    ok: true,
                    detail: format!("{id} can be read"),
                },
                Err(e) => Probe {
                    what: "Verint key secret".into(),
                    ok: false,
                    detail: format!(
                        "{}: check secretsmanager:GetSecretValue on {id} (and kms:Decrypt on its key)",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                    ),
                },
            });
        }
        let probe = match clients.verint(config).await {
            Err(e) => Probe {
                what: "Verint".into(),
                ok: false,
                detail: format!("the key could not be loaded: {}", error_chain(&e)),
            },
            Ok(verint) => match verint.holds("00000000-0000-4000-8000-000000000000").await {
                Ok(_) => Probe {
                    what: "Verint".into(),
                    ok: true,
                    detail: format!(
                        "DAS at {} answered a signed look-up as Verint does",
                        config.verint_das_url
                    ),
                },
                Err(e) => Probe {
                    what: "Verint".into(),
                    ok: false,
                    detail: format!(
                        "DAS at {}: {}: check VERINT_DAS_URL, the network path and the key",
                        config.verint_das_url,
                        error_chain(&e)
                    ),
                },
            },
        };
        probes.push(probe);
    }
    let failed = probes.iter().filter(|p| !p.ok).count();
    if json {
        print_json(&json!({"stack": settings.stack_name, "settings": shown, "probes": probes}))?;
    } else {
        let mut t = table(&["setting", "value", "source"]);
        for s in &shown {
            t.add_row(vec![
                s.name.to_owned(),
                s.value.clone().unwrap_or_else(|| "-".into()),
                s.source.clone(),
            ]);
        }
        println!("{t}");
        let mut t = table(&["check", "", "detail"]);
        for p in &probes {
            t.add_row(vec![
                p.what.clone(),
                if p.ok { "ok".into() } else { "FAILED".into() },
                p.detail.clone(),
            ]);
        }
        println!("{t}");
        println!("nothing was changed");
    }
    if failed > 0 {
        bail!("{failed} check(s) failed (see above); nothing was changed");
    }
    Ok(())
}
