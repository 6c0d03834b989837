#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/ (docs/fuzzing.md).

Real-looking inputs for each parser: CTR objects (plain, NDJSON, concatenated, gzip, multi-member
gzip, and damaged copies of each), planner payloads, SQS events, queue messages and Verint's
answers. Deterministic: the same files every run. Usage: python3 fuzz/seeds.py
"""

import gzip
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def record(cid, last_update="2024-05-14T14:06:00Z"):
    """A CTR record as the `record()` helper of shared/src/domain/ctr/tests.rs writes it."""
    loc = f"rec/connect/x/CallRecordings/2024/05/14/{cid}_20240514T14:03_UTC.wav"
    return json.dumps(
        {
            "AWSAccountId": "123456789012",
            "Agent": None,
            "Channel": "VOICE",
            "ContactId": cid,
            "InitiationTimestamp": "2024-05-14T14:00:00Z",
            "DisconnectTimestamp": "2024-05-14T14:05:00Z",
            "LastUpdateTimestamp": last_update,
            "InstanceARN": "arn:aws:connect:eu-west-2:1:instance/i",
            "Attributes": {"a": "{not json}"},
            "SomethingNew": {"x": [1, 2, {"y": None}]},
            "Recording": {"Location": loc, "Status": "AVAILABLE", "Type": "AUDIO"},
            "Recordings": [
                {
                    "Location": loc,
                    "MediaStreamType": "AUDIO",
                    "ParticipantType": "CUSTOMER",
                    "StorageType": "S3",
                    "Status": "AVAILABLE",
                },
                {
                    "Location": "rec/video/" + cid,
                    "MediaStreamType": "VIDEO",
                    "StorageType": "S3",
                    "Status": "DELETED",
                },
            ],
        },
        separators=(",", ":"),
    )


def gz(data):
    return gzip.compress(data, mtime=0)


def flip(data, at, mask=0x01):
    b = bytearray(data)
    b[at % len(b)] ^= mask
    return bytes(b)


def ctr_seeds():
    ids = [f"66c7ea48-1d2e-4f60-8a9b-{i:012x}" for i in range(4)]
    one = record(ids[0]).encode()
    ndjson = "".join(record(i) + "\n" for i in ids).encode()
    crlf = "\r\n".join(record(i) for i in ids).encode()
    concat = "".join(record(i) for i in ids).encode()
    legacy = b'{"ContactId":"legacy","Recording":{"Location":"b/legacy-only","Status":"AVAILABLE"}}'
    escaped = b'{"ContactId":"a\\u0062c","Channel":"VOICE"}'
    no_id = b'{"Channel":"VOICE"}\n' + record(ids[1]).encode() + b"\n"
    members = gz(ndjson[: len(ndjson) // 2]) + gz(ndjson[len(ndjson) // 2 :])
    seeds = {
        "plain": one,
        "ndjson": ndjson,
        "ndjson-crlf": crlf,
        "concatenated": concat,
        "legacy-recording": legacy,
        "escaped": escaped,
        "without-contact-id": no_id,
        "gzip-plain": gz(one),
        "gzip-ndjson": gz(ndjson),
        "gzip-concatenated": gz(concat),
        "gzip-multi-member": members,
        "gzip-multi-member-3": gz(ndjson) + gz(concat) + gz(legacy),
        "truncated-plain": concat[: len(concat) - 40],
        "truncated-record-in-middle": one + concat[:300] + concat,
        "malformed-ndjson-line": ndjson[:150] + b"\nnot json at all\n" + ndjson,
        "gzip-truncated": gz(ndjson)[:-9],
        "gzip-bad-crc": flip(gz(ndjson), -6),
        "gzip-bad-length": flip(gz(ndjson), -2),
        "gzip-flipped-body": flip(gz(concat), 40, 0x10),
        "gzip-then-garbage": gz(ndjson) + b"garbage",
        "gzip-multi-member-damaged-second": gz(ndjson) + flip(gz(one), -6) + gz(legacy),
        "gzip-header-only": bytes([0x1F, 0x8B, 0x08, 0x00, 0x01]),
        "empty": b"",
        "whitespace": b" \n\t\r\n",
    }
    return seeds


def manual_seeds():
    return {
        "manual": {"start": "2026-12-03T00:00:00Z", "end": "2026-12-04T00:00:00Z"},
        "manual-dry-run": {"start": "2026-12-03T00:00:00+00:00", "end": "2026-12-03T06:00:00+01:00", "dry_run": True},
        "backfill": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-04T13:30:00Z"},
        "long-backfill": {"start": "2025-01-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "start-only": {"start": "2026-12-03T00:00:00Z"},
        "reversed": {"start": "2026-12-04T00:00:00Z", "end": "2026-12-03T00:00:00Z"},
        "future": {"start": "2026-12-04T00:00:00Z", "end": "2026-12-05T00:00:00Z"},
        "too-old": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
        "not-rfc3339": {"start": "yesterday", "end": "2026-12-04T00:00:00Z"},
        "unknown-field": {"start": "2026-12-03T00:00:00Z", "end": "2026-12-04T00:00:00Z", "x": 1},
        "dry-run-string": {"start": "2026-12-03T00:00:00Z", "end": "2026-12-04T00:00:00Z", "dry_run": "yes"},
        "scheduled": {
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-12-04T11:00:00Z",
            "region": "eu-west-2",
            "resources": ["arn:aws:events:eu-west-2:123456789012:rule/call-recovery"],
            "detail": {},
        },
        "other-detail-type": {"detail-type": "Object Created", "source": "aws.s3", "detail": {}},
        "array": [1, 2, 3],
        "string": "start",
        "null": None,
        "empty-object": {},
    }


def work_body(**over):
    m = {
        "v": 1,
        "run_id": "run-20261204T110000Z-ab12",
        "contact_id": "66c7ea48-1d2e-4f60-8a9b-000000000001",
        "instance_id": "11111111-2222-3333-4444-555555555555",
        "initiation_timestamp": "2026-12-03T10:00:00Z",
        "disconnect_timestamp": "2026-12-03T10:05:00Z",
        "recordings": [{"bucket": "rec", "key": "connect/x/CallRecordings/2026/12/03/c_20261203T10:03_UTC.wav"}],
        "enqueued_at": "2026-12-04T11:00:00Z",
    }
    m.update(over)
    return json.dumps(m, separators=(",", ":"))


def slice_body(**over):
    m = {
        "v": 1,
        "parent_run_id": "run-20261204T110000Z-ab12",
        "run_id": "run-20261204T110000Z-ab12-s0001",
        "start": "2026-11-01T00:00:00Z",
        "end": "2026-11-02T00:00:00Z",
        "dry_run": False,
    }
    m.update(over)
    return json.dumps(m, separators=(",", ":"))


def message_seeds():
    return {
        "work": work_body(),
        "work-offset-times": work_body(initiation_timestamp="2026-12-03T10:00:00.123+02:00"),
        "work-v2": work_body(v=2),
        "work-no-recordings": work_body(recordings=[]),
        "work-blank-contact": work_body(contact_id="  "),
        "work-bad-time": work_body(disconnect_timestamp="later"),
        "slice": slice_body(),
        "slice-dry-run": slice_body(dry_run=True, end="2026-11-01T12:00:00+01:00"),
        "slice-too-long": slice_body(end="2026-11-03T00:00:00Z"),
        "slice-other-parent": slice_body(run_id="run-other-s0001"),
        "slice-v0": slice_body(v=0),
        "not-json": "nope",
    }


def sqs_event(bodies, receive_counts=None):
    records = []
    for i, body in enumerate(bodies):
        count = (receive_counts or {}).get(i, "1")
        records.append(
            {
                "messageId": f"059f36b4-87a3-44ab-83d2-66197{i:07d}",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": count,
                    "SentTimestamp": "1764846000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764846000001",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-2:123456789012:call-recovery-work",
                "awsRegion": "eu-west-2",
            }
        )
    return {"Records": records}


def sqs_seeds():
    return {
        "one-work-message": sqs_event([work_body()]),
        "batch": sqs_event([work_body(), work_body(v=2), "not json"], {1: "3", 2: "many"}),
        "slice": sqs_event([slice_body()]),
        "no-records": {"Records": []},
        "sparse-record": {"Records": [{"body": work_body()}]},
        "null-fields": {"Records": [{"messageId": None, "body": None, "attributes": {}}]},
    }


def verint_seeds():
    contact_id = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"

    def asked(id_, body):
        return bytes([len(id_)]) + id_.encode() + body

    page = (
        b'{"contacts":[{"amazonContactId":"A","interactionId":"i","startTime":"x"},'
        b'{"interactionId":"j"}],"nextCursor":"c2"}'
    )
    html = b"<html><head><title>Service maintenance</title></head><body>back soon</body></html>"
    return {
        "das-page": page,
        "das-page-last": b'{"contacts":[],"nextCursor":null}',
        "das-contacts-object": b'{"contacts":{}}',
        "ingest": b'{"interactionId":"int-9"}',
        "ingest-blank": b'{"interactionId":"  "}',
        "maintenance-page": html,
        "contact-match": asked(contact_id, ('{"amazonContactId":"%s","interactionId":"int-1"}' % contact_id.upper()).encode()),
        "contact-other": asked(contact_id, b'{"amazonContactId":"00000000-1d2e-4f60-8a9b-0c1d2e3f4a5b","interactionId":"x"}'),
        "contact-without-id": asked(contact_id, b"{}"),
        "contact-html": asked(contact_id, html),
    }


TARGETS = {
    "ctr_reader": ctr_seeds,
    "manual_payload": manual_seeds,
    "sqs_event": sqs_seeds,
    "work_message": message_seeds,
    "verint_answers": verint_seeds,
}


def encode(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


def seeds_of(target):
    """{file name: bytes} of the target's seeds."""
    return {f"seed-{name}": encode(value) for name, value in TARGETS[target]().items()}


def main():
    for target in TARGETS:
        folder = ROOT / target
        folder.mkdir(parents=True, exist_ok=True)
        files = seeds_of(target)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds in {folder}")


if __name__ == "__main__":
    main()
