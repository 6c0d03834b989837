use std::collections::HashMap;

use super::*;

fn base() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("CTR_BUCKET", "ctr"),
        (
            "CONNECT_INSTANCE_ID",
            "11111111-2222-3333-4444-555555555555",
        ),
        ("WORK_QUEUE_URL", "http://127.0.0.1:5055/123456789012/work"),
        (
            "DEAD_LETTER_QUEUE_URL",
            "http://127.0.0.1:5055/123456789012/dlq",
        ),
        ("STATE_BUCKET", "state"),
        ("VERINT_DAS_URL", "https://verint.example.com/das"),
        ("VERINT_INGEST_URL", "http://127.0.0.1:5056/ingest"),
        ("VERINT_API_KEY_ID", "kid"),
        ("VERINT_API_KEY", "c2VjcmV0LWtleS1mb3ItdGVzdHM"),
    ])
}

fn parse(vars: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
}

#[test]
fn defaults_apply_when_optional_variables_are_unset() {
    let c = parse(&base()).expect("valid config");
    assert_eq!(c.ctr_prefix, "");
    assert_eq!(c.state_prefix, "call-recovery/");
    assert_eq!(c.settle_delay, Duration::from_secs(30 * 60));
    assert_eq!(c.arrival_slack, Duration::from_secs(4 * 3600));
    assert_eq!(c.das_margin, Duration::from_secs(15 * 60));
    assert_eq!(c.max_hours_per_run, 24);
    assert_eq!(c.initial_lookback, Duration::from_secs(24 * 3600));
    assert_eq!(c.max_manual_span, Duration::from_secs(731 * 86400));
    assert_eq!(c.connect_max_rps, 5.0);
    assert_eq!(c.retry_base, Duration::from_secs(60));
    assert_eq!(c.retry_max, Duration::from_secs(15 * 60));
    assert_eq!(c.stall_timeout, Duration::from_secs(60));
    assert_eq!(c.late_sweep, Duration::from_secs(24 * 3600));
}

#[test]
fn a_missing_required_variable_is_named() {
    for name in [
        "CTR_BUCKET",
        "CONNECT_INSTANCE_ID",
        "WORK_QUEUE_URL",
        "STATE_BUCKET",
        "VERINT_DAS_URL",
    ] {
        let mut vars = base();
        vars.remove(name);
        let err = parse(&vars).expect_err("must fail");
        assert_eq!(err.problems, [Problem::Missing(name)]);
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn a_malformed_variable_is_named_with_its_value() {
    let cases = [
        ("SETTLE_DELAY", "half an hour"),
        ("INITIAL_LOOKBACK", "300000y"),
        ("MAX_HOURS_PER_RUN", "0"),
        ("CONNECT_MAX_RPS", "-1"),
        ("VERINT_DAS_URL", "http://verint.example.com/das"),
        ("VERINT_INGEST_URL", "not a url"),
        ("VERINT_API_KEY", "not base64!"),
        ("RETRY_BASE", "soon"),
        ("RETRY_MAX", "13h"),
        ("STALL_TIMEOUT", "0s"),
    ];
    for (name, value) in cases {
        let mut vars = base();
        vars.insert(name, value);
        let err = parse(&vars).expect_err("must fail");
        let text = err.to_string();
        assert!(text.starts_with(name), "{text}");
        assert!(
            matches!(err.problems[..], [Problem::Malformed { .. }]),
            "{text}"
        );
    }
}

#[test]
fn every_bad_variable_is_named_at_once_one_per_line() {
    let mut vars = base();
    vars.remove("STATE_BUCKET");
    vars.insert("SETTLE_DELAY", "half an hour");
    vars.insert("CONNECT_MAX_RPS", "-1");
    let err = parse(&vars).expect_err("must fail");
    let names: Vec<&str> = err
        .problems
        .iter()
        .map(|p| match p {
            Problem::Missing(name) | Problem::Malformed { name, .. } => *name,
        })
        .collect();
    assert_eq!(names, ["STATE_BUCKET", "SETTLE_DELAY", "CONNECT_MAX_RPS"]);
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, name) in lines.iter().zip(names) {
        assert!(line.starts_with(name), "{text}");
    }
}

#[test]
fn the_variables_are_listed_once_each_with_the_defaults_of_design_section_7() {
    let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), VARIABLES.len());
    assert_eq!(MAX_MANUAL_SPAN.default, Some("731d"));
    assert_eq!(STATE_PREFIX.default, Some("call-recovery/"));
    assert_eq!(CTR_BUCKET.default, None);
}

#[test]
fn the_api_key_may_come_from_a_secret_instead() {
    let mut vars = base();
    vars.remove("VERINT_API_KEY_ID");
    vars.remove("VERINT_API_KEY");
    assert!(parse(&vars).is_err());
    vars.insert(
        "VERINT_API_KEY_SECRET_ID",
        "arn:aws:secretsmanager:eu-west-2:1:secret:verint",
    );
    let c = parse(&vars).expect("valid");
    assert!(matches!(c.verint_key, VerintKeySource::Secret(ref s) if s.ends_with(":verint")));
}

#[test]
fn the_instance_may_be_given_as_an_arn() {
    let mut vars = base();
    vars.insert(
        "CONNECT_INSTANCE_ID",
        "arn:aws:connect:eu-west-2:123456789012:instance/11111111-2222-3333-4444-555555555555",
    );
    let c = parse(&vars).expect("valid");
    assert_eq!(
        c.connect_instance_id,
        "11111111-2222-3333-4444-555555555555"
    );
}

#[test]
fn recordings_settings_of_design_10_have_their_defaults_and_name_what_is_wrong() {
    let c = parse(&base()).expect("valid config");
    assert_eq!(c.recording_variant, Variant::Original);
    assert_eq!(c.redacted_prefix, "Analysis/Voice/Redacted/");
    assert_eq!(c.restore_tier, RestoreTier::Standard);
    assert_eq!(c.restore_max_wait, Duration::from_secs(48 * 3600));
    let mut vars = base();
    vars.insert("RECORDING_VARIANT", "redacted-else-original");
    vars.insert("RESTORE_TIER", "bulk");
    let c = parse(&vars).expect("valid");
    assert_eq!(
        (c.recording_variant, c.restore_tier),
        (Variant::RedactedElseOriginal, RestoreTier::Bulk)
    );
    vars.insert("RECORDING_VARIANT", "redacted_only");
    vars.insert("RESTORE_TIER", "Glacier");
    let e = parse(&vars).expect_err("malformed").to_string();
    assert!(e.contains("RECORDING_VARIANT is malformed"), "{e}");
    assert!(e.contains("RESTORE_TIER is malformed"), "{e}");
}

#[test]
fn several_instances_are_listed_by_id_or_arn_and_override_the_single_one() {
    let mut vars = base();
    vars.insert(
        "CONNECT_INSTANCE_IDS",
        " aaaaaaaa-0000-4000-8000-000000000001 , arn:aws:connect:eu-west-2:1:instance/bbbbbbbb-0000-4000-8000-000000000002,",
    );
    let c = parse(&vars).expect("valid");
    assert_eq!(
        c.connect_instance_ids,
        [
            "aaaaaaaa-0000-4000-8000-000000000001",
            "bbbbbbbb-0000-4000-8000-000000000002"
        ]
    );
    assert_eq!(
        c.connect_instance_id,
        "aaaaaaaa-0000-4000-8000-000000000001"
    );
    vars.remove("CONNECT_INSTANCE_ID");
    assert!(parse(&vars).is_ok(), "the list alone is enough");
    vars.insert("CONNECT_INSTANCE_IDS", "a/b");
    let e = parse(&vars).expect_err("malformed").to_string();
    assert!(e.contains("CONNECT_INSTANCE_IDS is malformed"), "{e}");
    // CONNECT_INSTANCE_ID alone still works.
    assert_eq!(
        parse(&base()).expect("valid").connect_instance_ids,
        ["11111111-2222-3333-4444-555555555555"]
    );
}

#[test]
fn a_command_that_needs_a_few_variables_is_told_only_of_those() {
    let vars: HashMap<&str, &str> = HashMap::from([("STATE_BUCKET", "state")]);
    let c = Config::from_lookup_needing(|k| vars.get(k).map(|v| v.to_string()), &[STATE_BUCKET])
        .expect("the state bucket is all coverage needs");
    assert_eq!(c.state_bucket, "state");
    let e = Config::from_lookup_needing(
        |k| vars.get(k).map(|v| v.to_string()),
        &[STATE_BUCKET, WORK_QUEUE_URL, DEAD_LETTER_QUEUE_URL],
    )
    .expect_err("two queues missing");
    assert_eq!(
        e.problems,
        [
            Problem::Missing("WORK_QUEUE_URL"),
            Problem::Missing("DEAD_LETTER_QUEUE_URL")
        ]
    );
}
