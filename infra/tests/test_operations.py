"""The template grants each function exactly the AWS operations its code calls (issue 11).

Run by scripts/infra-check.sh with the other template tests:
    python -m unittest discover -s infra/tests -v

How it works:
1. Every Rust source of the two Lambdas (shared/src/**, functions/*/src/**; tests and comments
   left out) is scanned for AWS SDK fluent calls: `.describe_contact()`, `.get_object()`, ...
   A call is recognised by its operation name (OPERATIONS) or by its receiver (a client field
   named s3/sqs/secrets/connect/client); an unrecognised method on a client fails the test, so a
   new SDK call cannot slip past the table.
2. Each call site is attributed to the functions that run it. Calls under functions/<name>/src
   belong to <name>. A call in the shared crate belongs to its enclosing fn, and that fn to every
   function whose code reaches it: reachability by name from functions/<name>/src through the
   shared crate's fns (a call `f(` or `.f(` follows every fn named f, a path `Type::f` only
   Type's f, another crate's path `tokio::f` none; so it errs wide, never narrow). OVERRIDES narrows it where a name collision
   makes it too wide. The CLI (cli/src) is not a Lambda and runs with the operator's own
   credentials, so what only it reaches is not granted here.
3. Operations become IAM actions (OPERATIONS), plus what they imply (IMPLIED: kms:Decrypt to read
   SSE-KMS objects through S3, s3:ListBucket so that a missing key is a 404 and not a 403), what
   the Lambda runtime needs (logs), what an SQS event source mapping polls with the function's
   role, and operations docs/design.md requires of a function before its code may have them
   (CONTRACT).
4. Each function's role (its inline policies, the AWS::IAM::Policy resources attached to it,
   conditional ones included) must Allow every needed action and no other.
"""

import re
import unittest
from pathlib import Path

from test_template import as_list, load, ref_name, render, resources_of

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("planner", "worker")

# SDK fluent method -> the IAM actions the request needs.
OPERATIONS = {
    # S3
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},  # HeadObject is authorised by s3:GetObject
    "put_object": {"s3:PutObject"},
    "list_objects_v2": {"s3:ListBucket"},
    "list_objects": {"s3:ListBucket"},
    # Only to name an unreadable checkpoint's previous version (and read it: s3:GetObjectVersion).
    "list_object_versions": {"s3:ListBucketVersions", "s3:GetObjectVersion"},
    "delete_object": {"s3:DeleteObject"},
    "restore_object": {"s3:RestoreObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    # A multipart upload is authorised by s3:PutObject, except its abort.
    "create_multipart_upload": {"s3:PutObject"},
    "upload_part": {"s3:PutObject"},
    "complete_multipart_upload": {"s3:PutObject"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    # SQS
    "send_message": {"sqs:SendMessage"},
    "send_message_batch": {"sqs:SendMessage"},
    "receive_message": {"sqs:ReceiveMessage"},
    "delete_message": {"sqs:DeleteMessage"},
    "delete_message_batch": {"sqs:DeleteMessage"},
    "change_message_visibility": {"sqs:ChangeMessageVisibility"},
    "change_message_visibility_batch": {"sqs:ChangeMessageVisibility"},
    "get_queue_attributes": {"sqs:GetQueueAttributes"},
    "get_queue_url": {"sqs:GetQueueUrl"},
    "start_message_move_task": {"sqs:StartMessageMoveTask"},
    "list_message_move_tasks": {"sqs:ListMessageMoveTasks"},
    "cancel_message_move_task": {"sqs:CancelMessageMoveTask"},
    # Secrets Manager, Amazon Connect, CloudWatch
    "get_secret_value": {"secretsmanager:GetSecretValue"},
    "describe_contact": {"connect:DescribeContact"},
    "put_metric_data": {"cloudwatch:PutMetricData"},
}

# Actions an action brings with it.
IMPLIED = {
    # Recordings and CTRs are SSE-KMS objects: S3 decrypts them with the caller's kms:Decrypt
    # (granted only via S3). ListBucket under the same prefix makes a missing key a 404
    # (permanent: gone) instead of a 403 (transient), for the checkpoint and the recordings.
    "s3:GetObject": {"kms:Decrypt", "s3:ListBucket"},
    # A secret under a customer-managed key (SecretKmsKeyArn) is decrypted via Secrets Manager.
    "secretsmanager:GetSecretValue": {"kms:Decrypt"},
}

# Every Lambda writes its logs with its role.
RUNTIME = {"logs:CreateLogStream", "logs:PutLogEvents"}

# What an SQS event source mapping polls with the function's role.
SQS_EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

# Operations a function's contract requires, counted as called even before its code has them.
CONTRACT = {
    "worker": {
        "change_message_visibility": "docs/design.md section 5: before reporting a transient failure, the "
                                     "worker sets the message's visibility timeout to the retry delay",
        "restore_object": "docs/design.md section 10: a recording in an archive storage class is restored "
                          "(RestoreObject, tier RESTORE_TIER), not failed",
    },
}

# Where the automatic attribution (reachability by name, below) is too wide, the functions that
# really reach a call site: (file, enclosing fn) -> functions. Narrowing only: each entry must be
# a subset of what reachability finds (test_overrides_only_narrow).
OVERRIDES = {
    # S3Ledger (multipart upload of runs/{run_id}/ledger.csv.gz): the planner writes every run's
    # ledger (docs/design.md section 9). Reachability also finds these from the worker, through other
    # fns named finish (an encoder's, a hasher's) and upload_part/abort.
    ("shared/src/adapters/ledger.rs", "upload_part"): {"planner"},
    ("shared/src/adapters/ledger.rs", "finish"): {"planner"},
    ("shared/src/adapters/ledger.rs", "abort"): {"planner"},
    # S3State::get_object reads the checkpoint and the queued record (planner) and
    # reports/outcomes (CLI). Reachability also finds it from the worker, through
    # ConnectClient::describe's `.status()` on an HTTP response, which has the name of
    # S3State::status.
    ("shared/src/adapters/state/mod.rs", "get_object"): {"planner"},
    # Names shared across the merged code make reachability too wide here: `open` (a CTR object,
    # the planner), a recording's HEAD and GET (the worker), the run listing that only
    # `recoveryctl coverage`/`runs` read, and the redrive that only `recoveryctl redrive` runs.
    ("shared/src/adapters/ctr_source.rs", "open"): {"planner"},
    ("shared/src/adapters/recordings.rs", "open_recording"): {"worker"},
    ("shared/src/adapters/recordings.rs", "into_part"): {"worker"},
    ("shared/src/adapters/state/mod.rs", "run_ids"): set(),
    ("shared/src/adapters/sqs_redrive.rs", "queue_arn"): set(),
    # The planner's queueing (Planner::enqueue): its record of the ids a stopped run queued (read
    # through get_object, above), and the SendMessageBatch calls of send_bodies_each.
    # Reachability also finds them from the worker, which reaches Planner::run through every
    # other fn named `run`.
    ("shared/src/adapters/state/mod.rs", "put_queued_log"): {"planner"},
    ("shared/src/adapters/sqs.rs", "send_batch"): {"planner"},
    # docs/design.md section 10: the worker restores an archived recording before it streams it.
    # Reachability also finds it from the planner: open_recording (narrowed above) reads the
    # HeadObject output's `.restore()` (the object's restore status), which has the name of
    # S3Recordings::restore.
    ("shared/src/adapters/recordings.rs", "restore"): {"worker"},
    # An unreadable checkpoint's previous version (issue 24), read only when an automatic run
    # reads the checkpoint (the planner). Reachability also finds it from the worker through
    # other fns named `checkpoint`.
    ("shared/src/adapters/state/mod.rs", "previous_checkpoint"): {"planner"},
}

# Path prefixes that name the shared crate's own items (anything else before '::' is another crate).
SHARED_MODULES = {"crate", "self", "super", "recovery"}

# Receivers that are AWS SDK clients in this code base, and methods on them that are no requests.
CLIENT_RECEIVER = re.compile(r"\b(?:s3|sqs|secrets|connect|client)\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")
NOT_REQUESTS = {"build", "clone", "config"}


def strip_rust(text):
    """The source without its test module (`#[cfg(test)]` to the end) and without comments."""
    m = re.search(r"^\s*#\[cfg\(test\)\]", text, re.M)
    if m:
        text = text[:m.start()]
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m[0].count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def lambda_sources(root=ROOT):
    files = sorted((root / "shared/src").rglob("*.rs"))
    files += sorted(p for p in (root / "functions").glob("*/src/**/*.rs"))
    return files


def sdk_calls(text):
    """(operation, offset) of every AWS SDK request in a stripped source, and unknown ones."""
    known = re.compile(r"\.\s*(%s)\s*\(\s*\)" % "|".join(sorted(OPERATIONS, key=len, reverse=True)))
    calls = {m.start(1): m[1] for m in known.finditer(text)}
    unknown = []
    for m in CLIENT_RECEIVER.finditer(text):
        name = m[1]
        if name in NOT_REQUESTS or m.start(1) in calls:
            continue
        unknown.append((name, m.start(1)))
    return sorted((op, at) for at, op in calls.items()), unknown


def enclosing_fn(text, offset):
    names = re.findall(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", text[:offset])
    return names[-1] if names else None


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def scan(root=ROOT):
    """[(relative file, enclosing fn, operation, line)] and [(file, line, unknown method)]."""
    found, unknown = [], []
    for path in lambda_sources(root):
        rel = path.relative_to(root).as_posix()
        text = strip_rust(path.read_text())
        calls, odd = sdk_calls(text)
        for op, at in calls:
            found.append((rel, enclosing_fn(text, at), op, line_of(text, at)))
        for name, at in odd:
            unknown.append((rel, line_of(text, at), name))
    return found, unknown


RUST_KEYWORDS = {
    "as", "async", "await", "box", "const", "crate", "dyn", "else", "enum", "fn", "for", "if", "impl",
    "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static",
    "struct", "super", "type", "unsafe", "use", "where", "while",
}
REFERENCE = re.compile(r"(?:(\w+)\s*::\s*)?\b([a-z_][a-z0-9_]*)\s*(?:::<[^()]*?>\s*)?(\()?")


def block_end(text, brace):
    """The offset of the '}' that closes the '{' at `brace`."""
    depth, i = 0, brace
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
        i += 1
    return len(text)


IMPL = re.compile(r"\bimpl\b(?:\s*<[^{]*?>)?\s+(?:[\w:<>, ]+?\s+for\s+)?(?:[\w]+::)*(\w+)[^{;]*\{")


def fn_bodies(text):
    """(name, impl type or None, body) of every fn with a body in a stripped source."""
    impls = [(m.end() - 1, block_end(text, m.end() - 1), m[1]) for m in IMPL.finditer(text)]
    out = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", text):
        brace, semi = text.find("{", m.end()), text.find(";", m.end())
        if brace < 0 or 0 <= semi < brace:
            continue  # a trait method without a body
        owner = [t for start, end, t in impls if start < m.start() < end]
        out.append((m[1], owner[-1] if owner else None, text[brace:block_end(text, brace) + 1]))
    return out


def references(code, modules):
    """(type or None, name) of the fns a piece of code calls or names by path: `Type::f` keeps its
    type, `f(`, `.f(` and `module::f` have none."""
    refs = set()
    for m in REFERENCE.finditer(code):
        path, name, call = m[1], m[2], m[3]
        if path is None and not call:
            continue
        if path is not None and not (path[0].isupper() or path in modules):
            continue  # another crate's function, e.g. lambda_runtime::run
        typed = path if path is not None and path[0].isupper() and path != "Self" else None
        if name not in RUST_KEYWORDS:
            refs.add((typed, name))
    return refs


def reachability(root=ROOT):
    """Function -> names of the shared crate's fns its code reaches, by name (an over-approximation:
    every fn of a name is followed, e.g. a trait's implementations)."""
    texts = {p.relative_to(root).as_posix(): strip_rust(p.read_text()) for p in lambda_sources(root)}
    modules = SHARED_MODULES | {p.stem for p in (root / "shared/src").rglob("*.rs")}
    defs = {}
    for rel, text in texts.items():
        if rel.startswith("shared/"):
            for name, owner, body in fn_bodies(text):
                defs.setdefault(name, []).append((owner, body))
    reach = {}
    for function in FUNCTIONS:
        seen = set()
        for rel, text in texts.items():
            if rel.startswith(f"functions/{function}/"):
                seen |= references(text, modules)
        todo = list(seen)
        while todo:
            typed, name = todo.pop()
            for owner, body in defs.get(name, []):
                if typed is not None and owner != typed:
                    continue  # `Type::f` reaches Type's f only
                new = references(body, modules) - seen
                seen |= new
                todo.extend(new)
        reach[function] = {name for typed, name in seen
                           if any(typed is None or owner == typed for owner, _ in defs.get(name, []))}
    return reach


_REACH = {}


def users(rel, fn, root=ROOT):
    """The Lambdas that run a call site."""
    m = re.match(r"functions/([^/]+)/src/", rel)
    if m:
        return {m[1]}
    if (rel, fn) in OVERRIDES:
        return OVERRIDES[(rel, fn)]
    if root not in _REACH:
        _REACH[root] = reachability(root)
    return {f for f, names in _REACH[root].items() if fn in names}


def needed_actions(found):
    """Function -> {IAM action: [why]} for the calls found plus the contract."""
    needed = {f: {} for f in FUNCTIONS}

    def add(function, action, why):
        needed[function].setdefault(action, []).append(why)
        for implied in IMPLIED.get(action, ()):
            needed[function].setdefault(implied, []).append(f"implied by {action} ({why})")

    for rel, fn, op, line in found:
        for function in users(rel, fn) or ():
            for action in OPERATIONS[op]:
                add(function, action, f"{rel}:{line} {fn}() .{op}()")
    for function, ops in CONTRACT.items():
        for op, why in ops.items():
            for action in OPERATIONS[op]:
                add(function, action, why)
    for function in FUNCTIONS:
        for action in RUNTIME:
            add(function, action, "Lambda runtime logs")
    return needed


def role_actions(template):
    """Role resource name -> set of actions its Allow statements grant (all conditions taken)."""
    granted = {}

    def take(role, statements):
        for st in as_list(statements):
            if st.get("Effect") == "Allow":
                for value in as_list(st.get("Action")):
                    granted.setdefault(role, set()).update(render(value))

    for name, role in resources_of(template, "AWS::IAM::Role").items():
        granted.setdefault(name, set())
        for pol in as_list(role["Properties"].get("Policies")):
            take(name, pol["PolicyDocument"].get("Statement"))
    for pol in resources_of(template, "AWS::IAM::Policy").values():
        for role in as_list(pol["Properties"].get("Roles")):
            take(ref_name(role), pol["Properties"]["PolicyDocument"].get("Statement"))
    return granted


def function_roles(template):
    """'planner'/'worker' -> (function resource, role resource)."""
    out = {}
    for name, fn in resources_of(template, "AWS::Serverless::Function").items():
        binary = fn["Metadata"]["BuildProperties"]["Binary"]
        out[binary] = (name, ref_name(fn["Properties"]["Role"]))
    return out


def event_source_actions(template):
    """Function resource name -> actions its SQS event source mappings poll with."""
    queues = resources_of(template, "AWS::SQS::Queue")
    out = {}
    for esm in resources_of(template, "AWS::Lambda::EventSourceMapping").values():
        props = esm["Properties"]
        if ref_name(props["EventSourceArn"]) in queues:
            out.setdefault(ref_name(props["FunctionName"]), set()).update(SQS_EVENT_SOURCE)
    return out


def grant_problems(template, found):
    """What a role lacks or grants beyond the code, per function."""
    needed = needed_actions(found)
    granted = role_actions(template)
    esm = event_source_actions(template)
    problems = []
    for function, (fn_name, role) in sorted(function_roles(template).items()):
        need = dict(needed.get(function, {}))
        for action in esm.get(fn_name, ()):
            need.setdefault(action, []).append("SQS event source mapping")
        have = granted.get(role, set())
        for action in sorted(set(need) - have):
            problems.append(f"{function} ({role}) lacks {action}, needed by: {'; '.join(need[action])}")
        for action in sorted(have - set(need)):
            problems.append(f"{function} ({role}) grants {action}, which its code never calls")
    return problems


def config_variables(root=ROOT):
    """The names of the environment variables the shared crate's configuration reads
    (shared/src/config/mod.rs: `var("NAME", default, doc)`)."""
    text = strip_rust((root / "shared/src/config/mod.rs").read_text())
    return set(re.findall(r"\bvar\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


class EnvironmentTest(unittest.TestCase):
    def test_every_variable_the_template_sets_is_read_by_the_config(self):
        """A variable the code does not read is a setting that silently does nothing."""
        read = config_variables()
        self.assertIn("CONNECT_INSTANCE_ID", read, "the scanner found no variable: is it broken?")
        env = load()["Globals"]["Function"]["Environment"]["Variables"]
        unread = sorted(set(env) - read)
        self.assertEqual(unread, [], "set by infra/template.yaml, not read by shared/src/config/mod.rs")


class OperationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.found, cls.unknown = scan()

    def test_scanner_finds_the_known_calls(self):
        ops = {op for _, _, op, _ in self.found}
        self.assertTrue({"get_object", "put_object", "send_message_batch", "get_secret_value",
                         "describe_contact", "head_object"} <= ops, f"scanner found only {sorted(ops)}")

    def test_no_unknown_sdk_call(self):
        self.assertEqual(self.unknown, [], "SDK calls missing from OPERATIONS (add them with their IAM actions)")

    def test_attribution_of_stable_call_sites(self):
        """Reachability on today's code: wrappers whose users will not change."""
        for site, expected in [
            (("shared/src/adapters/aws.rs", "verint_key"), {"planner", "worker"}),  # the Verint key at start
            (("shared/src/adapters/ctr_source.rs", "open"), {"planner"}),  # CTR objects
            (("shared/src/adapters/sqs.rs", "send_batch"), {"planner"}),  # queueing work
            (("shared/src/adapters/recordings.rs", "open_recording"), {"worker"}),  # HeadObject of a recording
            (("shared/src/adapters/recordings.rs", "into_part"), {"worker"}),  # GetObject of a recording
            (("shared/src/adapters/sqs.rs", "receive"), set()),  # the CLI only: the worker has its trigger
            (("shared/src/adapters/state/mod.rs", "run_ids"), set()),  # the CLI only
        ]:
            with self.subTest(site=site):
                self.assertEqual(users(*site), expected)

    def test_overrides_only_narrow(self):
        sites = {(rel, fn) for rel, fn, _, _ in self.found}
        reach = reachability()
        for (rel, fn), narrowed in OVERRIDES.items():
            self.assertIn((rel, fn), sites, f"OVERRIDES entry {(rel, fn)} has no AWS call any more")
            self.assertLessEqual(narrowed, {f for f, names in reach.items() if fn in names}, (rel, fn))

    def test_roles_grant_exactly_what_the_code_calls(self):
        problems = grant_problems(self.t, self.found)
        self.assertEqual(problems, [], "\n  " + "\n  ".join(problems))

    def test_a_dropped_or_an_extra_grant_is_caught(self):
        """The check itself, on copies of the template with one action removed or added."""
        import copy

        def statements_of(t, role):
            """The role's inline statements and those of the AWS::IAM::Policy resources attached to it."""
            inline = [st for pol in t["Resources"][role]["Properties"]["Policies"]
                      for st in pol["PolicyDocument"]["Statement"]]
            return inline + [st for pol in resources_of(t, "AWS::IAM::Policy").values()
                             if role in [ref_name(r) for r in pol["Properties"]["Roles"]]
                             for st in pol["Properties"]["PolicyDocument"]["Statement"]]

        roles = dict(function_roles(self.t))
        t = copy.deepcopy(self.t)
        for st in statements_of(t, roles["worker"][1]):
            if "connect:DescribeContact" in as_list(st.get("Action")):
                st["Action"] = "connect:ListContactReferences"
        problems = grant_problems(t, self.found)
        self.assertTrue(any("lacks connect:DescribeContact" in p for p in problems), problems)
        self.assertTrue(any("grants connect:ListContactReferences" in p for p in problems), problems)

        t = copy.deepcopy(self.t)
        t["Resources"][roles["planner"][1]]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Effect": "Allow", "Action": "sqs:PurgeQueue", "Resource": "arn:aws:sqs:r:1:q"})
        self.assertTrue(any("planner" in p and "grants sqs:PurgeQueue" in p
                            for p in grant_problems(t, self.found)))

        # Without the contract, the worker's ChangeMessageVisibility is needed only once called.
        calls = [c for c in self.found if c[2] != "change_message_visibility"]
        saved = CONTRACT.pop("worker")
        try:
            problems = grant_problems(self.t, calls)
        finally:
            CONTRACT["worker"] = saved
        self.assertIn(f"worker ({roles['worker'][1]}) grants sqs:ChangeMessageVisibility, which its code never calls",
                      problems)

    def test_reachability_on_a_sample_tree(self):
        """`Type::f` follows Type's f only; `.f(` follows every f; other crates' paths none."""
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            files = {
                "shared/src/queue.rs": """
                    impl Queue { pub fn new() -> Self { Queue } pub async fn push(&self) { self.sqs.send_message().send().await; } }
                """,
                "shared/src/redrive.rs": """
                    impl Redrive { pub fn new() -> Self { arn(); Redrive } }
                    fn arn() { sqs.get_queue_attributes().send(); }
                    pub fn run() { sqs.start_message_move_task().send(); }
                """,
                "functions/planner/src/lib.rs": "fn main() { let q = Queue::new(); q.push(); lambda_runtime::run(); }",
                "functions/worker/src/lib.rs": "fn main() { let r = redrive::Redrive::new(); }",
            }
            for rel, text in files.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            reach = reachability(root)
        self.assertIn("push", reach["planner"])
        self.assertNotIn("arn", reach["planner"], "Queue::new must not follow Redrive::new")
        self.assertNotIn("run", reach["planner"], "lambda_runtime::run is another crate's")
        self.assertIn("arn", reach["worker"])

    def test_scanner_on_sample_sources(self):
        text = strip_rust('''
            // self.s3.delete_object() in a comment is not a call
            pub async fn fetch(&self) {
                let out = self
                    .s3
                    .get_object()
                    .bucket(b)
                    .send()
                    .await;
                self.sqs.purge_queue().queue_url(u).send().await;
                let c = self.s3.clone();
            }
            #[cfg(test)]
            mod tests { fn t() { s3.put_object(); } }
        ''')
        calls, unknown = sdk_calls(text)
        self.assertEqual([op for op, _ in calls], ["get_object"])
        self.assertEqual([name for name, _ in unknown], ["purge_queue"])
        self.assertEqual(enclosing_fn(text, calls[0][1]), "fetch")


if __name__ == "__main__":
    unittest.main()
