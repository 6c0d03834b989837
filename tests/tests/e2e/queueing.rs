//! `SendMessageBatch` entries that SQS fails are sent again, and only those. moto never fails an
//! entry, so this talks to a small SQS stand-in speaking SQS's JSON protocol.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use recovery::adapters::sqs::SqsQueue;
use recovery::ports::queue::QueueError;
use serde_json::{Value, json};

/// Fails every entry the first time it is seen (or always, for a sender fault), then accepts it.
#[derive(Default)]
struct Flaky {
    seen: Mutex<Vec<String>>,
    batches: Mutex<Vec<Vec<String>>>,
}

async fn start(flaky: Arc<Flaky>, sender_fault: bool) -> String {
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let flaky = flaky.clone();
            async move {
                let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
                assert_eq!(target, "AmazonSQS.SendMessageBatch");
                let request: Value = serde_json::from_str(&body).expect("json request");
                let (mut ok, mut failed, mut bodies) = (vec![], vec![], vec![]);
                for entry in request["Entries"].as_array().expect("entries") {
                    let (id, text) = (entry["Id"].as_str().expect("id"), entry["MessageBody"].as_str().expect("body"));
                    bodies.push(text.to_owned());
                    let mut seen = flaky.seen.lock().expect("lock");
                    if sender_fault || !seen.contains(&text.to_owned()) {
                        seen.push(text.to_owned());
                        failed.push(json!({"Id": id, "SenderFault": sender_fault, "Code": "InternalError", "Message": "try again"}));
                    } else {
                        ok.push(json!({"Id": id, "MessageId": format!("msg-{id}"), "MD5OfMessageBody": "00000000000000000000000000000000"}));
                    }
                }
                flaky.batches.lock().expect("lock").push(bodies);
                ([("content-type", "application/x-amz-json-1.0")], json!({"Successful": ok, "Failed": failed}).to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

async fn queue(endpoint: &str) -> SqsQueue {
    let vars = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_SQS", endpoint),
    ];
    let clients = recovery::adapters::aws::Clients::load(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .await;
    SqsQueue::new(clients.sqs, format!("{endpoint}/123456789012/work"))
}

#[tokio::test]
async fn entries_sqs_fails_are_sent_again_until_accepted() {
    let flaky = Arc::new(Flaky::default());
    let endpoint = start(flaky.clone(), false).await;
    let bodies: Vec<(String, Option<String>)> =
        (0..13).map(|i| (format!("body-{i}"), None)).collect();

    let sent = queue(&endpoint)
        .await
        .send_bodies(&bodies)
        .await
        .expect("all sent");

    assert_eq!(sent, 13);
    // Batches go out concurrently, so requests of different batches interleave.
    let mut batches = flaky.batches.lock().expect("lock").clone();
    batches.sort();
    assert_eq!(
        batches
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>()
            .iter()
            .sum::<usize>(),
        26,
        "batches of ten, each failed entry again: {batches:?}"
    );
    assert_eq!(batches.len(), 4, "{batches:?}");
    assert_eq!(
        batches[1], batches[0],
        "a retry carries exactly the failed entries of its batch"
    );
    assert_eq!(batches[3], batches[2]);
    assert!(batches.iter().all(|b| b.len() == 10 || b.len() == 3));
}

#[tokio::test]
async fn an_entry_sqs_blames_on_the_sender_is_an_error_not_a_retry() {
    let flaky = Arc::new(Flaky::default());
    let endpoint = start(flaky.clone(), true).await;
    let err = queue(&endpoint)
        .await
        .send_bodies(&[("x".into(), None)])
        .await
        .expect_err("rejected");
    assert!(matches!(err, QueueError::Rejected { .. }), "{err:?}");
    assert_eq!(flaky.batches.lock().expect("lock").len(), 1, "not retried");
}

#[tokio::test]
async fn entries_sqs_blames_on_the_sender_are_reported_one_by_one_not_retried() {
    let flaky = Arc::new(Flaky::default());
    let endpoint = start(flaky.clone(), true).await;
    let bodies: Vec<(String, Option<String>)> =
        (0..12).map(|i| (format!("body-{i}"), None)).collect();
    let sent = queue(&endpoint)
        .await
        .send_bodies_each(&bodies)
        .await
        .expect("a rejection is reported, not an error");
    assert_eq!(sent.accepted, 0);
    let rejected: Vec<usize> = sent.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        rejected,
        (0..12).collect::<Vec<_>>(),
        "indices across batches"
    );
    assert!(sent.rejected.iter().all(|(_, r)| r.contains("try again")));
    assert_eq!(
        flaky.batches.lock().expect("lock").len(),
        2,
        "one batch of ten, one of two, none again"
    );
}
