//! How a failure reaches the operator (design §8): one line that says what failed and what the
//! command had changed, at most one `hint:` line, and the exit code.
//!
//! AWS's answers are read here: an access denial names the permission that is missing (the
//! action, and the resource when AWS names it) instead of the SDK's struct dump
//! (`Error { code: "AccessDenied", message: … }` is how `ErrorMetadata` displays itself).

use std::fmt;

use aws_smithy_types::error::ErrorMetadata;

use crate::exit;

/// Marks a failure as the operator's input, bad arguments or configuration: exit 2. Added as an
/// `anyhow` context; it prints as nothing.
#[derive(Debug)]
pub(crate) struct Invalid;

/// What the command had changed when it failed, said at the end of its line. Added as an
/// `anyhow` context; it prints as nothing in the chain.
#[derive(Debug)]
pub(crate) struct Changed(pub(crate) String);

impl Changed {
    pub(crate) fn nothing() -> Changed {
        Changed("nothing was changed; safe to re-run".to_owned())
    }
}

/// What the operator can do about a failure: the `hint:` line (an AWS failure's own hint comes
/// first). Added as an `anyhow` context; it prints as nothing in the chain.
#[derive(Debug)]
pub(crate) struct Hint(pub(crate) String);

macro_rules! silent {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Ok(())
            }
        }
    )*};
}
silent!(Invalid, Changed, Hint);

/// Adds `changed` to a failure that does not say yet what its command changed.
pub(crate) fn unless_said(e: anyhow::Error, changed: impl FnOnce() -> Changed) -> anyhow::Error {
    if e.downcast_ref::<Changed>().is_some() {
        e
    } else {
        e.context(changed())
    }
}

/// A failure as printed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// `error: …`, on one line.
    pub(crate) line: String,
    /// `hint: …`, on one line.
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.line)?;
        if let Some(hint) = &self.hint {
            writeln!(f, "{hint}")?;
        }
        Ok(())
    }
}

/// What AWS said, read from the error's chain.
#[derive(Debug, PartialEq, Eq)]
enum Aws {
    /// IAM (or a bucket or key policy) refused the call.
    Denied {
        code: Option<String>,
        action: Option<String>,
        resource: Option<String>,
    },
    /// The credentials are missing, expired or wrong.
    Credentials { code: Option<String> },
    /// Any other answer of an AWS service.
    Other {
        code: Option<String>,
        message: Option<String>,
    },
}

const CREDENTIAL_CODES: [&str; 8] = [
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "TokenRefreshRequired",
];

const NOT_AUTHORIZED: &str = "is not authorized to perform: ";

fn is_denial(text: &str) -> bool {
    text.contains("AccessDenied") || text.contains("Access Denied") || text.contains(NOT_AUTHORIZED)
}

impl Aws {
    fn of(meta: &ErrorMetadata, what: &[String]) -> Aws {
        let code = meta.code().map(str::to_owned);
        let message = meta.message().map(one_line);
        if code.as_deref().is_some_and(is_denial)
            || message
                .as_deref()
                .is_some_and(|m| m.contains(NOT_AUTHORIZED))
        {
            let (said, resource) = message.as_deref().map(permission).unwrap_or_default();
            return Aws::Denied {
                code,
                action: action(said, what),
                resource,
            };
        }
        if code
            .as_deref()
            .is_some_and(|c| CREDENTIAL_CODES.contains(&c))
        {
            return Aws::Credentials { code };
        }
        Aws::Other { code, message }
    }

    /// Without the SDK's metadata in the chain (a modelled error, a credentials provider that
    /// failed): what its text says.
    fn from_text(what: &[String]) -> Option<Aws> {
        if let Some(denied) = what.iter().find(|t| is_denial(t)) {
            let (said, resource) = permission(denied);
            return Some(Aws::Denied {
                code: None,
                action: action(said, what),
                resource,
            });
        }
        let credentials = what.iter().any(|t| {
            CREDENTIAL_CODES.iter().any(|c| t.contains(c))
                || t.contains("no credentials")
                || t.contains("credentials provider")
                || t.contains("credential provider")
        });
        credentials.then_some(Aws::Credentials { code: None })
    }

    /// What AWS said, for the end of the line.
    fn said(&self) -> String {
        match self {
            Aws::Denied {
                action: Some(action),
                resource,
                ..
            } => match resource {
                Some(r) => format!("AWS denied {action} on {r}"),
                None => format!("AWS denied {action}"),
            },
            Aws::Denied { code, .. } => {
                format!(
                    "AWS denied access ({})",
                    code.as_deref().unwrap_or("AccessDenied")
                )
            }
            Aws::Credentials { code: Some(code) } => {
                format!("AWS refused the credentials ({code})")
            }
            Aws::Credentials { code: None } => "no usable AWS credentials".to_owned(),
            Aws::Other { code, message } => match (code, message) {
                (Some(c), Some(m)) => format!("AWS answered {c}: {m}"),
                (Some(c), None) => format!("AWS answered {c}"),
                (None, Some(m)) => format!("AWS answered: {m}"),
                (None, None) => "AWS answered with an error".to_owned(),
            },
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Aws::Denied {
                action: Some(action),
                resource,
                ..
            } => Some(format!(
                "hint: the AWS identity recoveryctl runs as (AWS_PROFILE or the AWS_* credentials) needs {action}{}; docs/runbook.md lists the operator policies",
                resource
                    .as_deref()
                    .map_or(String::new(), |r| format!(" on {r}"))
            )),
            Aws::Denied { action: None, .. } => Some(
                "hint: the AWS identity recoveryctl runs as (AWS_PROFILE or the AWS_* credentials) lacks a permission for the call named above; docs/runbook.md lists the operator policies"
                    .to_owned(),
            ),
            Aws::Credentials { .. } => Some(
                "hint: refresh or choose the AWS credentials (`aws sso login`, AWS_PROFILE, AWS_ACCESS_KEY_ID…) and run the command again"
                    .to_owned(),
            ),
            Aws::Other { .. } => None,
        }
    }

    fn as_text(&self) -> bool {
        matches!(self, Aws::Denied { .. } | Aws::Credentials { .. })
    }
}

/// The action and resource of AWS's `… is not authorized to perform: ACTION on resource: RESOURCE
/// because …`.
fn permission(message: &str) -> (Option<String>, Option<String>) {
    let Some((_, rest)) = message.split_once(NOT_AUTHORIZED) else {
        return (None, None);
    };
    let word = |s: &str| {
        s.split_whitespace()
            .next()
            .map(|w| w.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '.' | ';')))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
    };
    let resource = rest.split_once(" on resource: ").and_then(|(_, r)| word(r));
    (word(rest), resource)
}

/// The IAM action a failure needed: the one AWS named (in the case the SDK's operation gives it,
/// `sqs:ReceiveMessage` rather than AWS's `sqs:receivemessage`), else the one the failing call
/// needs, from the adapters' own words.
fn action(said: Option<String>, what: &[String]) -> Option<String> {
    let known = what.iter().rev().find_map(|w| action_of(w));
    match (said, known) {
        (Some(said), Some(known)) if said.eq_ignore_ascii_case(&known) => Some(known),
        (Some(said), _) => Some(said),
        (None, known) => known,
    }
}

/// The IAM action behind one of the adapters' descriptions of a call (`sqs request failed:
/// receive_message`, `state bucket request failed: put KEY`, `listing PREFIX failed`, …).
fn action_of(what: &str) -> Option<String> {
    if let Some(op) = what
        .split_once("sqs request failed: ")
        .and_then(|(_, op)| {
            op.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        })
        .filter(|op| !op.is_empty())
    {
        let pascal: String = op
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map_or(String::new(), |f| {
                    f.to_ascii_uppercase().to_string() + c.as_str()
                })
            })
            .collect();
        return Some(format!("sqs:{pascal}"));
    }
    let s3 = |a: &str| Some(format!("s3:{a}"));
    if let Some((_, call)) = what.split_once("state bucket request failed: ") {
        let verb = call.split_whitespace().next().unwrap_or_default();
        return match verb {
            "put" | "create" | "upload" | "complete" | "gzip" => s3("PutObject"),
            "get" | "read" | "gunzip" => s3("GetObject"),
            "list" => s3("ListBucket"),
            "delete" => s3("DeleteObject"),
            _ => None,
        };
    }
    if what.starts_with("listing ") {
        return s3("ListBucket");
    }
    if what.starts_with("reading ") || what.ends_with("could not be read") {
        return s3("GetObject");
    }
    None
}

/// The chain of `e` as the operator reads it: what failed, what AWS said, what it changed, and
/// what to do; the exit code.
pub(crate) fn render(e: &anyhow::Error) -> Rendered {
    let mut what: Vec<String> = Vec::new();
    let mut meta = None;
    for cause in e.chain() {
        if let Some(m) = cause.downcast_ref::<ErrorMetadata>() {
            meta = Some(m);
            break;
        }
        let text = one_line(&cause.to_string());
        // The markers print as nothing; the SDK's operation error only repeats the code that
        // its metadata, next in the chain, holds.
        if text.is_empty() || text.starts_with("unhandled error") || text == "service error" {
            continue;
        }
        if what.last().is_some_and(|l| l.ends_with(&text)) {
            continue;
        }
        what.push(text);
    }
    let aws = match meta {
        Some(m) => Some(Aws::of(m, &what)),
        None => Aws::from_text(&what),
    };
    let mut line = what.join(": ");
    if let Some(aws) = &aws
        && (meta.is_some() || aws.as_text())
    {
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&aws.said());
    }
    if line.is_empty() {
        line = "failed".to_owned();
    }
    let invalid = e.downcast_ref::<Invalid>().is_some();
    // Invalid input changed nothing, by definition (exit 2): the line says only what is wrong.
    if let Some(Changed(changed)) = e.downcast_ref::<Changed>()
        && !invalid
    {
        line.push_str("; ");
        line.push_str(changed);
    }
    let hint = aws
        .as_ref()
        .and_then(Aws::hint)
        .or_else(|| e.downcast_ref::<Hint>().map(|h| format!("hint: {}", h.0)));
    Rendered {
        line: format!("error: {}", one_line(&line)),
        hint: hint.map(|h| one_line(&h)),
        code: if invalid { exit::INVALID } else { exit::FAILED },
    }
}

/// `text` on exactly one line, whatever its parts hold.
pub(crate) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
    use recovery::ports::queue::QueueError;

    use super::*;

    /// An SQS call refused as AWS refuses it: the SDK's operation error around its metadata,
    /// inside the adapter's error.
    fn sqs_denied(what: &'static str, code: &str, message: &str) -> anyhow::Error {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        anyhow::Error::new(QueueError::Sqs {
            what,
            source: Box::new(ReceiveMessageError::generic(meta)),
        })
    }

    const DENIED: &str = "User: arn:aws:sts::123456789012:assumed-role/oncall/night is not authorized to perform: sqs:receivemessage on resource: arn:aws:sqs:eu-west-1:123456789012:call-recovery-work because no identity-based policy allows the sqs:receivemessage action";

    #[test]
    fn an_access_denied_names_the_action_and_resource_and_says_nothing_changed() {
        let e = sqs_denied("receive_message", "AccessDenied", DENIED)
            .context(Changed::nothing())
            .context("receiving from the work queue");

        let r = render(&e);

        assert_eq!(
            r.line,
            "error: receiving from the work queue: sqs request failed: receive_message: AWS denied sqs:ReceiveMessage on arn:aws:sqs:eu-west-1:123456789012:call-recovery-work; nothing was changed; safe to re-run"
        );
        let hint = r.hint.expect("a hint");
        assert!(
            hint.starts_with("hint: ") && hint.contains("needs sqs:ReceiveMessage on arn:aws:sqs:"),
            "{hint}"
        );
        assert_eq!(r.code, exit::FAILED);
    }

    #[test]
    fn an_access_denied_never_prints_the_sdks_struct_dump() {
        let r = render(&sqs_denied("receive_message", "AccessDenied", DENIED));

        assert!(!r.line.contains("Error {"), "{}", r.line);
        assert!(!r.line.contains("unhandled error"), "{}", r.line);
    }

    #[test]
    fn a_denial_without_aws_naming_the_action_names_the_call_that_needs_it() {
        let e = sqs_denied(
            "get_queue_attributes",
            "AccessDeniedException",
            "Access to the resource is denied.",
        );

        let r = render(&e);

        assert!(
            r.line.ends_with("AWS denied sqs:GetQueueAttributes"),
            "{}",
            r.line
        );
    }

    #[test]
    fn a_denial_known_only_by_its_text_still_names_the_permission() {
        let e = anyhow::anyhow!(
            "User: arn:aws:iam::1:user/x is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::ctr/connect/ctr/2026/11/26/03/a.gz\" because no identity-based policy allows it"
        )
        .context("reading connect/ctr/2026/11/26/03/a.gz failed");

        let r = render(&e);

        assert!(
            r.hint
                .as_deref()
                .is_some_and(|h| h
                    .contains("s3:GetObject on arn:aws:s3:::ctr/connect/ctr/2026/11/26/03/a.gz")),
            "{r:?}"
        );
    }

    #[test]
    fn expired_credentials_say_so_and_how_to_refresh_them() {
        let r = render(&sqs_denied(
            "receive_message",
            "ExpiredToken",
            "The security token included in the request is expired",
        ));

        assert!(
            r.line
                .ends_with("AWS refused the credentials (ExpiredToken)"),
            "{}",
            r.line
        );
        assert!(r.hint.is_some_and(|h| h.contains("credentials")));
    }

    #[test]
    fn another_aws_answer_is_its_code_and_message() {
        let r = render(&sqs_denied(
            "receive_message",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        ));

        assert!(
            r.line.ends_with(
                "AWS answered AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist."
            ),
            "{}",
            r.line
        );
        assert_eq!(r.hint, None);
    }

    #[test]
    fn the_action_of_each_adapters_words() {
        for (what, action) in [
            (
                "sqs request failed: change_message_visibility",
                "sqs:ChangeMessageVisibility",
            ),
            (
                "state bucket request failed: put call-recovery/checkpoint.json",
                "s3:PutObject",
            ),
            (
                "state bucket request failed: list call-recovery/runs/",
                "s3:ListBucket",
            ),
            (
                "state bucket request failed: delete call-recovery/queued/x",
                "s3:DeleteObject",
            ),
            (
                "state bucket request failed: get call-recovery/checkpoint.json",
                "s3:GetObject",
            ),
            ("listing connect/ctr/2026/11/26/03/ failed", "s3:ListBucket"),
            ("recording s3://rec/a.wav could not be read", "s3:GetObject"),
        ] {
            assert_eq!(action_of(what).as_deref(), Some(action), "{what}");
        }
        assert_eq!(action_of("verint answered 422: rejected"), None);
    }

    #[test]
    fn invalid_input_exits_2_with_its_hint_and_no_word_of_changes() {
        let e = unless_said(
            anyhow::anyhow!("--from \"yesterday\" is not a time")
                .context(Hint("--from 2026-11-26T00:00:00Z".to_owned()))
                .context(Invalid),
            Changed::nothing,
        );

        let r = render(&e);

        assert_eq!(r.code, exit::INVALID);
        assert_eq!(r.line, "error: --from \"yesterday\" is not a time");
        assert_eq!(r.hint.as_deref(), Some("hint: --from 2026-11-26T00:00:00Z"));
    }

    #[test]
    fn what_a_command_changed_is_said_once_and_not_replaced() {
        let e = unless_said(
            anyhow::anyhow!("boom").context(Changed("3 message(s) were moved".to_owned())),
            Changed::nothing,
        );

        assert_eq!(render(&e).line, "error: boom; 3 message(s) were moved");
    }
}
