//! A small SQS for the soak: the JSON protocol's queue operations the worker and the soak use,
//! in memory. moto's SQS serves one request at a time and, with thousands of messages queued,
//! spends a whole core on a few dozen requests a second, so a soak of 10,000 calls on moto
//! measures moto. This one keeps SQS's rules that the worker depends on: a received message is
//! invisible for the queue's (or the receive's) visibility timeout, `ChangeMessageVisibility`
//! sets when it comes back, `ApproximateReceiveCount` counts receives, and a message received
//! more than the redrive policy's `maxReceiveCount` times moves to the dead-letter queue.
//! Written from SQS's documentation (design §5 names the behaviour), not from the worker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::md5_hex;

#[derive(Debug)]
struct Message {
    body: String,
    attributes: Value,
    receives: u32,
    visible_at: Instant,
}

#[derive(Debug, Default)]
struct Queue {
    arn: String,
    visibility: Duration,
    /// The dead-letter queue's URL and the receives after which a message moves there.
    redrive: Option<(String, u32)>,
    order: VecDeque<String>,
    messages: HashMap<String, Message>,
}

#[derive(Debug, Default)]
struct Queues {
    by_url: HashMap<String, Queue>,
    next_id: u64,
}

/// A running SQS; its URL is the endpoint to give the SDK (`AWS_ENDPOINT_URL_SQS`).
#[derive(Debug, Clone)]
pub struct LocalSqs {
    pub url: String,
}

impl LocalSqs {
    /// Serves on a free loopback port until the process ends.
    pub async fn start() -> anyhow::Result<LocalSqs> {
        let state = Arc::new(Mutex::new(Queues::default()));
        let url = crate::serve_on_loopback(|url| {
            let base = url.to_owned();
            Router::new().route(
                "/",
                post(move |headers: HeaderMap, body: String| {
                    let (state, base) = (state.clone(), base.clone());
                    async move { respond(&state, &base, &headers, &body) }
                }),
            )
        })
        .await?;
        Ok(LocalSqs { url })
    }
}

/// One request of the JSON protocol: the action `X-Amz-Target` names, and its answer or error.
fn respond(
    state: &Mutex<Queues>,
    base: &str,
    headers: &HeaderMap,
    body: &str,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let action = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("AmazonSQS."))
        .unwrap_or("");
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut queues = state.lock().unwrap_or_else(|e| e.into_inner());
    let (status, answer) = match queues.act(base, action, &request) {
        Ok(answer) => (StatusCode::OK, answer),
        Err((kind, message)) => (
            StatusCode::BAD_REQUEST,
            json!({"__type": format!("com.amazonaws.sqs#{kind}"), "message": message}),
        ),
    };
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
}

type Answer = Result<Value, (&'static str, String)>;

fn text<'a>(request: &'a Value, field: &str) -> Result<&'a str, (&'static str, String)> {
    request[field]
        .as_str()
        .ok_or(("MissingParameter", format!("{field} is required")))
}

impl Queues {
    fn act(&mut self, base: &str, action: &str, request: &Value) -> Answer {
        match action {
            "CreateQueue" => self.create(base, request),
            "GetQueueAttributes" => self.attributes(request),
            "SendMessage" => {
                let id = self.send(
                    text(request, "QueueUrl")?,
                    text(request, "MessageBody")?,
                    &request["MessageAttributes"],
                )?;
                Ok(
                    json!({"MessageId": id, "MD5OfMessageBody": md5_hex(text(request, "MessageBody")?.as_bytes())}),
                )
            }
            "SendMessageBatch" => {
                let url = text(request, "QueueUrl")?;
                let mut ok = Vec::new();
                for entry in request["Entries"].as_array().into_iter().flatten() {
                    let body = text(entry, "MessageBody")?;
                    let id = self.send(url, body, &entry["MessageAttributes"])?;
                    ok.push(json!({"Id": entry["Id"], "MessageId": id, "MD5OfMessageBody": md5_hex(body.as_bytes())}));
                }
                Ok(json!({"Successful": ok, "Failed": []}))
            }
            "ReceiveMessage" => self.receive(request),
            "DeleteMessage" => {
                let (queue, id, _) = self.handle(request)?;
                queue.messages.remove(&id);
                Ok(json!({}))
            }
            "ChangeMessageVisibility" => {
                let seconds = request["VisibilityTimeout"].as_u64().unwrap_or(0);
                let (queue, id, receives) = self.handle(request)?;
                match queue.messages.get_mut(&id) {
                    Some(m) if m.receives == receives => {
                        m.visible_at = Instant::now() + Duration::from_secs(seconds);
                        Ok(json!({}))
                    }
                    _ => Err((
                        "MessageNotInflight",
                        "the receipt handle has expired".into(),
                    )),
                }
            }
            other => Err((
                "UnsupportedOperation",
                format!("{other} is not served here"),
            )),
        }
    }

    fn create(&mut self, base: &str, request: &Value) -> Answer {
        let name = text(request, "QueueName")?;
        let url = format!("{base}/123456789012/{name}");
        let attributes = &request["Attributes"];
        let visibility = attributes["VisibilityTimeout"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        let redrive = attributes["RedrivePolicy"]
            .as_str()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| {
                let arn = p["deadLetterTargetArn"].as_str()?.to_owned();
                let max = match &p["maxReceiveCount"] {
                    Value::String(s) => s.parse().ok()?,
                    v => v.as_u64()? as u32,
                };
                Some((arn, max))
            });
        let redrive = match redrive {
            Some((arn, max)) => {
                let dlq = self
                    .by_url
                    .iter()
                    .find(|(_, q)| q.arn == arn)
                    .map(|(url, _)| url.clone())
                    .ok_or(("QueueDoesNotExist", format!("no queue {arn}")))?;
                Some((dlq, max))
            }
            None => None,
        };
        let queue = self.by_url.entry(url.clone()).or_default();
        queue.arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
        queue.visibility = Duration::from_secs(visibility);
        queue.redrive = redrive;
        Ok(json!({"QueueUrl": url}))
    }

    fn queue(&mut self, request: &Value) -> Result<&mut Queue, (&'static str, String)> {
        let url = text(request, "QueueUrl")?;
        self.by_url
            .get_mut(url)
            .ok_or(("QueueDoesNotExist", format!("no queue {url}")))
    }

    fn attributes(&mut self, request: &Value) -> Answer {
        let queue = self.queue(request)?;
        let now = Instant::now();
        let visible = queue
            .messages
            .values()
            .filter(|m| m.visible_at <= now)
            .count();
        Ok(json!({"Attributes": {
            "QueueArn": queue.arn,
            "ApproximateNumberOfMessages": visible.to_string(),
            "ApproximateNumberOfMessagesNotVisible": (queue.messages.len() - visible).to_string(),
            "ApproximateNumberOfMessagesDelayed": "0",
        }}))
    }

    fn send(
        &mut self,
        url: &str,
        body: &str,
        attributes: &Value,
    ) -> Result<String, (&'static str, String)> {
        self.next_id += 1;
        let id = format!("m-{:012}", self.next_id);
        let queue = self
            .by_url
            .get_mut(url)
            .ok_or(("QueueDoesNotExist", format!("no queue {url}")))?;
        queue.order.push_back(id.clone());
        queue.messages.insert(
            id.clone(),
            Message {
                body: body.to_owned(),
                attributes: attributes.clone(),
                receives: 0,
                visible_at: Instant::now(),
            },
        );
        Ok(id)
    }

    fn receive(&mut self, request: &Value) -> Answer {
        let max = request["MaxNumberOfMessages"]
            .as_u64()
            .unwrap_or(1)
            .clamp(1, 10) as usize;
        let queue = self.queue(request)?;
        let hide = request["VisibilityTimeout"]
            .as_u64()
            .map_or(queue.visibility, Duration::from_secs);
        let redrive = queue.redrive.clone();
        let now = Instant::now();
        let mut out = Vec::new();
        let mut moved = Vec::new();
        let mut kept = VecDeque::with_capacity(queue.order.len());
        while let Some(id) = queue.order.pop_front() {
            if out.len() == max {
                // Enough: the rest keep their place, deleted ones are dropped on a later scan.
                kept.push_back(id);
                kept.append(&mut queue.order);
                break;
            }
            let Some(m) = queue.messages.get_mut(&id) else {
                continue; // deleted
            };
            if m.visible_at <= now {
                if let Some((_, limit)) = &redrive
                    && m.receives >= *limit
                {
                    moved.push(id.clone());
                    continue;
                }
                m.receives += 1;
                m.visible_at = now + hide;
                out.push(json!({
                    "MessageId": id,
                    "ReceiptHandle": format!("{id}:{}", m.receives),
                    "MD5OfBody": md5_hex(m.body.as_bytes()),
                    "Body": m.body,
                    "Attributes": {"ApproximateReceiveCount": m.receives.to_string()},
                    "MessageAttributes": m.attributes,
                }));
            }
            kept.push_back(id);
        }
        queue.order = kept;
        let moved: Vec<Message> = moved
            .iter()
            .filter_map(|id| queue.messages.remove(id))
            .collect();
        if let Some((dlq, _)) = redrive {
            for m in moved {
                self.send(&dlq, &m.body, &m.attributes)?;
            }
        }
        Ok(json!({"Messages": out}))
    }

    /// The queue, message id and receive a receipt handle names.
    fn handle(
        &mut self,
        request: &Value,
    ) -> Result<(&mut Queue, String, u32), (&'static str, String)> {
        let receipt = text(request, "ReceiptHandle")?.to_owned();
        let (id, receives) = receipt
            .rsplit_once(':')
            .and_then(|(id, n)| Some((id.to_owned(), n.parse().ok()?)))
            .ok_or(("ReceiptHandleIsInvalid", format!("{receipt:?}")))?;
        Ok((self.queue(request)?, id, receives))
    }
}
