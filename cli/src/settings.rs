//! Where `recoveryctl`'s settings come from: the environment first, then, with `--stack NAME`,
//! the deployed stack (its planner function's environment and its outputs), then the defaults
//! of design §7. An operator types one stack name instead of ten variables; `doctor` shows each
//! setting's source.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use recovery::adapters::aws::Clients;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Environment,
    /// The stack's planner function's environment.
    Function(String),
    /// One of the stack's outputs.
    Output(String),
    Default,
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::Function(name) => write!(f, "stack: function {name}"),
            Source::Output(key) => write!(f, "stack: output {key}"),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("unset"),
        }
    }
}

/// The stack outputs that name a setting.
const OUTPUTS: [(&str, &str); 5] = [
    ("WorkQueueUrl", "WORK_QUEUE_URL"),
    ("DeadLetterQueueUrl", "DEAD_LETTER_QUEUE_URL"),
    ("BackfillQueueUrl", "BACKFILL_QUEUE_URL"),
    ("PlanningQueueUrl", "PLANNING_QUEUE_URL"),
    ("StateBucketName", "STATE_BUCKET"),
];

/// The settings of one invocation of `recoveryctl`.
#[derive(Debug, Default)]
pub struct Settings {
    /// From the stack, by variable name.
    stack: HashMap<String, (String, Source)>,
    pub stack_name: Option<String>,
}

impl Settings {
    /// The environment alone, or with the stack's settings behind it.
    pub async fn load(stack: Option<&str>) -> Result<Self> {
        let Some(name) = stack else {
            return Ok(Settings::default());
        };
        let clients = Clients::load(env).await;
        let endpoint = |service: &str| {
            env(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| env("AWS_ENDPOINT_URL"))
        };
        let mut cfn = aws_sdk_cloudformation::config::Builder::from(&clients.sdk);
        if let Some(url) = endpoint("CLOUDFORMATION") {
            cfn = cfn.endpoint_url(url);
        }
        let cfn = aws_sdk_cloudformation::Client::from_conf(cfn.build());
        let described = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(e)))
            .with_context(|| {
                format!("reading stack {name} (cloudformation:DescribeStacks; is the name and region right?)")
            })?;
        let Some(found) = described.stacks().first() else {
            bail!("no stack {name} in this account and region");
        };
        let outputs: HashMap<String, String> = found
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let mut settings = Settings {
            stack: HashMap::new(),
            stack_name: Some(name.to_owned()),
        };
        for (key, var) in OUTPUTS {
            if let Some(v) = outputs.get(key) {
                settings
                    .stack
                    .insert(var.to_owned(), (v.clone(), Source::Output(key.to_owned())));
            }
        }
        let Some(function) = outputs.get("PlannerFunctionName") else {
            bail!("stack {name} has no PlannerFunctionName output: is it a call-recovery stack?");
        };
        let mut lambda = aws_sdk_lambda::config::Builder::from(&clients.sdk);
        if let Some(url) = endpoint("LAMBDA") {
            lambda = lambda.endpoint_url(url);
        }
        let lambda = aws_sdk_lambda::Client::from_conf(lambda.build());
        let conf = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))
            .with_context(|| {
                format!("reading the environment of function {function} (lambda:GetFunctionConfiguration)")
            })?;
        let variables = conf
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        for (k, v) in variables {
            // Outputs name the queues exactly; the function's own copy comes second.
            settings
                .stack
                .entry(k)
                .or_insert((v, Source::Function(function.clone())));
        }
        Ok(settings)
    }

    /// A setting's value: the environment's, else the stack's.
    pub fn get(&self, name: &str) -> Option<String> {
        env(name)
            .filter(|v| !v.is_empty())
            .or_else(|| self.stack.get(name).map(|(v, _)| v.clone()))
    }

    /// A setting's value and where it came from (the default when neither gives it).
    pub fn explain(&self, var: &recovery::config::Variable) -> (Option<String>, Source) {
        if let Some(v) = env(var.name).filter(|v| !v.is_empty()) {
            return (Some(v), Source::Environment);
        }
        if let Some((v, source)) = self.stack.get(var.name) {
            return (Some(v.clone()), source.clone());
        }
        match var.default {
            Some(d) => (Some(d.to_owned()), Source::Default),
            None => (None, Source::Unset),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
