"""Static checks of infra/template.yaml that do not depend on the cfn-guard rules.

Run by scripts/infra-check.sh with the cfn-lint virtual environment's python:
    python -m unittest discover -s infra/tests -v
The template is parsed with cfn-lint's own loader (cfnlint.decode), so !Sub, !Ref, !GetAtt and
!If are read as the intrinsic functions they are. INFRA_TEMPLATE=path checks another template.

Wildcards: no IAM statement may Allow a '*' action, a service-wide 'svc:*' (or any action with
'*'), a '*' resource, a '*' region/account, an ARN whose resource part is just '*', or a whole
bucket's objects ('arn:...:s3:::bucket/*'). The one exemption is the TLS guard: a Deny whose
only condition is aws:SecureTransport = false may name 's3:*'/'sqs:*' and the whole bucket,
because it only ever refuses requests.
"""

import os
import re
import unittest
from pathlib import Path

import cfnlint.decode

TEMPLATE = Path(os.environ.get("INFRA_TEMPLATE", Path(__file__).resolve().parent.parent / "template.yaml"))

# docs/design.md section 7 (the functions' configuration) plus RECORDINGS_BUCKET.
REQUIRED_ENV = {
    "CTR_BUCKET", "CTR_PREFIX", "CONNECT_INSTANCE_ID", "WORK_QUEUE_URL", "DEAD_LETTER_QUEUE_URL",
    "STATE_BUCKET", "STATE_PREFIX", "VERINT_DAS_URL", "VERINT_INGEST_URL",
    "VERINT_API_KEY_SECRET_ID", "SETTLE_DELAY", "ARRIVAL_SLACK", "DAS_MARGIN", "MAX_HOURS_PER_RUN",
    "INITIAL_LOOKBACK", "MAX_MANUAL_SPAN", "CONNECT_MAX_RPS", "MAX_RECEIVE_COUNT", "RECORDINGS_BUCKET",
    "RECORDINGS_PREFIX", "LATE_SWEEP",
    "RETRY_BASE", "RETRY_MAX", "STALL_TIMEOUT", "PLANNING_QUEUE_URL", "BACKFILL_QUEUE_URL",
    "MIN_LINK_RATE",
    "BACKFILL_MAX_QUEUED",
    # docs/design.md section 10 (issue 22)
    "RECORDING_VARIANT", "REDACTED_PREFIX", "RESTORE_TIER", "RESTORE_MAX_WAIT",
    # docs/design.md section 11 (issue 23)
    "CONNECT_INSTANCE_IDS",
}

POLICY_RESOURCE_TYPES = {
    "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy",
    "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
}


def load(path=TEMPLATE):
    template, matches = cfnlint.decode.decode(str(path))
    if matches or template is None:
        raise AssertionError(f"cannot parse {path}: {[str(m) for m in matches]}")
    return template


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def render(value):
    """All the strings an intrinsic value can become, with references kept as ${Name}."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float, bool)):
        return [str(value)]
    if isinstance(value, list):
        return [s for item in value for s in render(item)]
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return ["${%s}" % arg]
        if fn == "Fn::GetAtt":
            return ["${%s}" % (".".join(arg) if isinstance(arg, list) else arg)]
        if fn == "Fn::Sub":
            return [arg[0] if isinstance(arg, list) else arg]
        if fn == "Fn::If":
            return render(arg[1]) + render(arg[2])
        if fn == "Fn::Join":
            sep, parts = arg
            return [sep.join(p for part in parts for p in render(part)[:1])]
        if fn == "Fn::ImportValue":
            return ["${Import}"]
    raise AssertionError(f"cannot read policy value {value!r}")


def statements(template):
    """(where, statement) for every policy statement in the template."""
    for name, res in template.get("Resources", {}).items():
        rtype, props = res.get("Type"), res.get("Properties", {}) or {}
        if rtype == "AWS::IAM::Role":
            for pol in as_list(props.get("Policies")):
                for i, st in enumerate(as_list(pol["PolicyDocument"].get("Statement"))):
                    yield f"{name}/{pol.get('PolicyName')}/{st.get('Sid', i)}", st
        elif rtype in POLICY_RESOURCE_TYPES:
            for i, st in enumerate(as_list(props["PolicyDocument"].get("Statement"))):
                yield f"{name}/{st.get('Sid', i)}", st
        elif rtype == "AWS::Serverless::Function" and "Policies" in props:
            # SAM policy templates and managed policies cannot be checked here: not allowed.
            yield f"{name}/Policies", {"Effect": "Allow", "Action": "*", "Resource": "*",
                                       "Sid": "SAM Policies property (use an explicit role)"}


def is_tls_guard(st):
    cond = st.get("Condition") or {}
    return (st.get("Effect") == "Deny" and list(cond) == ["Bool"]
            and dict(cond["Bool"]) == {"aws:SecureTransport": "false"})


ARN = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):(?P<rest>.*)$")


ARN_PREFIX = {  # what ${Name.Arn} of a resource type starts with
    "AWS::S3::Bucket": "arn:${AWS::Partition}:s3:::${%s}",
    "AWS::SQS::Queue": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${%s}",
}


def expand(resource, template):
    """Spell out ${Name.Arn} of the template's own resources as the ARN it is."""
    types = {n: r.get("Type") for n, r in (template or {}).get("Resources", {}).items()}

    def arn(m):
        pattern = ARN_PREFIX.get(types.get(m[1]))
        return pattern % m[1] if pattern else m[0]

    return re.sub(r"\$\{(\w+)\.Arn\}", arn, resource)


def prefix_problems(resource, template):
    """A '${Param}*' must not become a bare '*': the parameter must refuse '' and '*'."""
    problems = []
    params = (template or {}).get("Parameters", {})
    for name in re.findall(r"\$\{(\w+)\}\*", resource):
        if name not in params:
            continue
        pattern = params[name].get("AllowedPattern")
        if not pattern or re.fullmatch(pattern, "") or re.fullmatch(pattern, "*/"):
            problems.append(f"parameter {name} before '*' in {resource!r} may be empty or a wildcard")
    return problems


def resource_problems(resource, template=None):
    if resource == "*" or resource.strip() == "":
        return ["resource '*'"]
    if "*" not in resource:
        return []
    problems = prefix_problems(resource, template)
    resource = expand(resource, template)
    # References become plain names, so that the colons of ${AWS::Region} do not split fields.
    m = ARN.match(re.sub(r"\$\{[^}]*\}", "REF", resource))
    if not m:
        return problems + [f"resource {resource!r} with a wildcard is not an ARN"]
    for field in ("partition", "service", "region", "account"):
        if "*" in m[field]:
            problems.append(f"wildcard {field} in {resource!r}")
    rest = m["rest"]
    if rest.startswith("*"):
        problems.append(f"resource {resource!r} names every resource of the service")
    if m["service"] == "s3":
        bucket, _, key = rest.partition("/")
        if "*" in bucket:
            problems.append(f"wildcard bucket in {resource!r}")
        if key.startswith("*"):
            problems.append(f"resource {resource!r} is a whole bucket's objects: scope it by a prefix")
    elif re.search(r"(^|[:/])\*$", rest) and not re.search(r"[^:/*]+[:/][^:/*]+[:/]\*$", rest):
        # 'instance/ID/contact/*' or 'log-group:NAME:log-stream:*' are scoped by a parent;
        # 'table/*' or 'key/*' are not.
        problems.append(f"resource {resource!r} ends in a bare '*' not scoped by a parent")
    return problems


def statement_problems(where, st, template=None):
    if is_tls_guard(st):
        return []
    problems = []
    for key in ("NotAction", "NotResource", "NotPrincipal"):
        if key in st:
            problems.append(f"{key} is not allowed")
    if st.get("Effect") == "Allow":
        principal = st.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS"))):
            problems.append("Allow to Principal '*'")
    actions = [a for v in as_list(st.get("Action")) for a in render(v)]
    if not actions:
        problems.append("no Action")
    for action in actions:
        if action == "*" or action.endswith(":*"):
            problems.append(f"wildcard action {action!r}")
        elif "*" in action:
            problems.append(f"action pattern {action!r}: name the actions")
    resources = [r for v in as_list(st.get("Resource")) for r in render(v)]
    if not resources:
        problems.append("no Resource")
    for resource in resources:
        problems.extend(resource_problems(resource, template))
    return [f"{where}: {p}" for p in problems]


def all_problems(template):
    return [p for where, st in statements(template) for p in statement_problems(where, st, template)]


def resources_of(template, rtype):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == rtype}


def ref_name(value):
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        return arg[0] if isinstance(arg, list) else arg.split(".")[0]
    raise AssertionError(f"expected a Ref or GetAtt, got {value!r}")


class NoWildcardTest(unittest.TestCase):
    def test_no_wildcard_in_any_policy_statement(self):
        template = load()
        found = list(statements(template))
        self.assertGreaterEqual(len(found), 10, "too few statements found: is the parser broken?")
        problems = all_problems(template)
        self.assertEqual(problems, [], "wildcards in IAM statements:\n  " + "\n  ".join(problems))

    def test_checker_catches_wildcards(self):
        """The checker itself: each bad statement is reported, each good one is not."""
        bad = [
            {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:sqs:eu-west-1:123456789012:q"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::Sub": "arn:aws:s3:::${B}/p/*"}},
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": {"Fn::Sub": "arn:aws:s3:::${B}/p/*"}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${StateBucket.Arn}/*"}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:aws:s3:::${B}/*"}},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:*"}},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:123456789012:key/abc"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Fn::Sub": "arn:aws:kms:${AWS::Region}:${AWS::AccountId}:key/*"}},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Fn::If": ["C", ["arn:aws:kms:r:1:key/a"], "*"]}},
            {"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        ]
        for st in bad:
            with self.subTest(statement=st):
                self.assertNotEqual(statement_problems("bad", st), [])
        loose = {"Parameters": {"P": {"Type": "String"}}, "Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
        for st in [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:aws:s3:::b/${P}*"}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "${B.Arn}/*"}},
        ]:
            with self.subTest(statement=st):
                self.assertNotEqual(statement_problems("bad", st, loose), [])
        good = [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:aws:s3:::${B}/${CtrPrefix}*"}},
            {"Effect": "Allow", "Action": "connect:DescribeContact",
             "Resource": {"Fn::Sub": "arn:aws:connect:${AWS::Region}:${AWS::AccountId}:instance/${Id}/contact/*"}},
            {"Effect": "Allow", "Action": ["logs:PutLogEvents"],
             "Resource": {"Fn::Sub": "arn:aws:logs:${AWS::Region}:${AWS::AccountId}:log-group:${G}:log-stream:*"}},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": {"Fn::Sub": "${StateBucket.Arn}/*"},
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]
        for st in good:
            with self.subTest(statement=st):
                self.assertEqual(statement_problems("good", st), [])


class InvariantsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.functions = resources_of(cls.t, "AWS::Serverless::Function")
        cls.queues = resources_of(cls.t, "AWS::SQS::Queue")
        cls.esms = resources_of(cls.t, "AWS::Lambda::EventSourceMapping")

    def test_work_queue_visibility_at_least_six_times_worker_timeout(self):
        self.assertTrue(self.esms, "no SQS event source mapping")
        for name, esm in self.esms.items():
            props = esm["Properties"]
            queue = self.queues[ref_name(props["EventSourceArn"])]
            function = self.functions[ref_name(props["FunctionName"])]
            timeout = int(function["Properties"]["Timeout"])
            visibility = int(queue["Properties"]["VisibilityTimeout"])
            self.assertGreaterEqual(visibility, 6 * timeout, f"{name}: visibility {visibility} < 6 x {timeout}")

    def test_event_source_mapping(self):
        params = self.t["Parameters"]
        for name, esm in self.esms.items():
            props = esm["Properties"]
            self.assertEqual(list(props.get("FunctionResponseTypes", [])), ["ReportBatchItemFailures"], name)
            # Backfill slices are one per invocation (a slice is a day of CTRs): a fixed 1.
            if props["BatchSize"] != 1:
                self.assertIn(ref_name(props["BatchSize"]), params, f"{name}: BatchSize is not a parameter")
            self.assertIn(ref_name(props["ScalingConfig"]["MaximumConcurrency"]), params,
                          f"{name}: MaximumConcurrency is not a parameter")

    def test_work_queue_redrives_to_a_14_day_dlq(self):
        redriven = {n: q for n, q in self.queues.items() if "RedrivePolicy" in q["Properties"]}
        self.assertTrue(redriven, "no queue has a RedrivePolicy")
        for name, queue in redriven.items():
            policy = queue["Properties"]["RedrivePolicy"]
            dlq = self.queues[ref_name(policy["deadLetterTargetArn"])]
            if name == "PlanningQueue":
                # A slice that failed three times waits for the operator (alarmed).
                self.assertEqual(policy["maxReceiveCount"], 3)
            else:
                self.assertIn(ref_name(policy["maxReceiveCount"]), self.t["Parameters"], f"{name}: maxReceiveCount")
            self.assertEqual(int(dlq["Properties"]["MessageRetentionPeriod"]), 14 * 24 * 3600)
        for name, queue in self.queues.items():
            props = queue["Properties"]
            self.assertTrue(props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, f"{name}: no SSE")

    def test_environment_is_complete_and_holds_no_secret(self):
        env = dict(self.t["Globals"]["Function"]["Environment"]["Variables"])
        self.assertEqual(set(env), REQUIRED_ENV)
        self.assertNotIn("VERINT_API_KEY", env)
        secret_param = ref_name(env["VERINT_API_KEY_SECRET_ID"])
        self.assertNotIn("Default", self.t["Parameters"][secret_param], "the secret ARN must not have a default")
        for fname, fn in self.functions.items():
            self.assertNotIn("Environment", fn["Properties"], f"{fname}: set the environment in Globals only")
        for pname, param in self.t["Parameters"].items():
            # A KMS key ARN (SecretKmsKeyArn: the key of the secret) is no secret.
            if ":kms:" in param.get("AllowedPattern", ""):
                continue
            if re.search(r"secret|password|token|apikey", pname, re.I):
                self.assertNotIn("Default", param, f"parameter {pname} must not have a default")

    def test_functions_arm64_al2023_with_logs_and_cargo_lambda(self):
        self.assertEqual(len(self.functions), 2)
        log_groups = resources_of(self.t, "AWS::Logs::LogGroup")
        binaries = set()
        for name, fn in self.functions.items():
            props = fn["Properties"]
            self.assertEqual(props["Runtime"], "provided.al2023", name)
            self.assertEqual(list(props["Architectures"]), ["arm64"], name)
            self.assertEqual(props["LoggingConfig"]["LogFormat"], "JSON", name)
            group = log_groups[ref_name(props["LoggingConfig"]["LogGroup"])]
            self.assertIn("RetentionInDays", group["Properties"], name)
            self.assertEqual(fn["Metadata"]["BuildMethod"], "rust-cargolambda", name)
            binaries.add(fn["Metadata"]["BuildProperties"]["Binary"])
        self.assertEqual(binaries, {"planner", "worker"})

    def test_state_bucket_tls_only_and_lifecycle(self):
        buckets = resources_of(self.t, "AWS::S3::Bucket")
        policies = resources_of(self.t, "AWS::S3::BucketPolicy")
        for name, bucket in buckets.items():
            guarded = [p for p in policies.values() if ref_name(p["Properties"]["Bucket"]) == name
                       and any(is_tls_guard(s) for s in p["Properties"]["PolicyDocument"]["Statement"])]
            self.assertTrue(guarded, f"{name}: no TLS-only bucket policy")
            rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
            self.assertTrue(any("ExpirationInDays" in r for r in rules), f"{name}: no expiry of old reports")

    def test_checkov_skips_give_reasons(self):
        for name, res in self.t["Resources"].items():
            for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", []):
                self.assertGreater(len(skip.get("comment", "")), 40, f"{name}: skip {skip.get('id')} needs a reason")


# Amazon Connect's default quota for DescribeContact (like most Connect APIs): 2 requests per
# second, burst 5, per account and Region (Amazon Connect API Reference, "Best practices for
# using Amazon Connect APIs"; Administrator Guide, "Amazon Connect service quotas").
DESCRIBE_CONTACT_DEFAULT_RPS = 2

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression):
    m = RATE.match(expression)
    return int(m[1]) * RATE_UNIT[m[2].rstrip("s")] if m else None


def alarm_on(template, metric):
    found = [a["Properties"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
             if a["Properties"].get("MetricName") == metric]
    if len(found) != 1:
        raise AssertionError(f"expected one alarm on {metric}, found {len(found)}")
    return found[0]


def dims(alarm):
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def matches(param, value):
    return re.fullmatch(param["AllowedPattern"], value) is not None


class CoverageAlarmsTest(unittest.TestCase):
    """Issue 11 item 3: CaptureRate, the heartbeat, the DLQ's oldest message."""

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.params = cls.t["Parameters"]

    def test_every_alarm_notifies_the_topic_and_the_optional_one(self):
        """Issue 20: every alarm notifies the stack's topic and, when AlarmTopicArn is set, that one."""
        topics = resources_of(self.t, "AWS::SNS::Topic")
        self.assertEqual(list(topics), ["AlarmTopic"])
        optional = {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]}
        alarms = resources_of(self.t, "AWS::CloudWatch::Alarm")
        self.assertGreaterEqual(len(alarms), 14)
        for name, alarm in alarms.items():
            for key in ("AlarmActions", "OKActions"):
                self.assertEqual(alarm["Properties"].get(key), [{"Ref": "AlarmTopic"}, optional], f"{name}: {key}")
            self.assertNotIn("InsufficientDataActions", alarm["Properties"], name)
        p = self.params["AlarmTopicArn"]
        self.assertEqual((p["Type"], p["Default"]), ("String", ""))
        self.assertEqual(self.t["Conditions"]["HasAlarmTopicArn"],
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]})
        self.assertTrue(matches(p, ""))
        self.assertTrue(matches(p, "arn:aws:sns:eu-west-2:123456789012:on-call_pager-1"))
        self.assertTrue(matches(p, "arn:aws-us-gov:sns:us-gov-west-1:123456789012:pager"))
        for bad in ("arn:aws:sns:eu-west-2:123456789012:pager.fifo", "arn:aws:sns:eu-west-2:123456789012:*",
                    "pager", "arn:aws:sqs:eu-west-2:123456789012:pager", "arn:aws:sns:eu-west-2:1234:pager"):
            self.assertFalse(matches(p, bad), bad)

    def test_capture_rate_alarm(self):
        a = alarm_on(self.t, "CaptureRate")
        # Issue 20: automatic runs only; no automatic run (manual runs, backfills) never pages.
        text = " ".join(a["AlarmDescription"].split())
        self.assertIn("Only automatic runs emit CaptureRate", text)
        self.assertIn("manual runs and backfills look at the past and emit none", text)
        self.assertEqual(a["TreatMissingData"], "notBreaching")
        self.assertEqual((a["Namespace"], dims(a)), ("CallRecovery", {"Function": "planner"}))
        self.assertEqual(a["ComparisonOperator"], "LessThanThreshold")
        self.assertEqual(ref_name(a["Threshold"]), "CaptureRateThreshold")
        p = self.params["CaptureRateThreshold"]
        self.assertEqual((int(p["Default"]), int(p["MinValue"]), int(p["MaxValue"])), (90, 0, 100))
        self.assertEqual(ref_name(a["Period"]), "SchedulePeriodSeconds")
        self.assertEqual(a["Statistic"], "Minimum")

    def test_heartbeat_alarm_three_schedule_periods_missing_data_breaching(self):
        a = alarm_on(self.t, "AutomaticRunSucceeded")
        self.assertEqual((a["Namespace"], dims(a)), ("CallRecovery", {"Function": "planner"}))
        self.assertEqual(a["TreatMissingData"], "breaching")
        self.assertEqual((int(a["EvaluationPeriods"]), int(a["DatapointsToAlarm"])), (3, 3))
        self.assertEqual(ref_name(a["Period"]), "SchedulePeriodSeconds")
        self.assertEqual((a["Statistic"], a["ComparisonOperator"], int(a["Threshold"])),
                         ("Sum", "LessThanThreshold", 1))
        self.assertEqual(a["ActionsEnabled"], {"Fn::If": ["ScheduleEnabled", True, False]})
        self.assertEqual(self.t["Conditions"]["ScheduleEnabled"],
                         {"Fn::Equals": [{"Ref": "ScheduleState"}, "ENABLED"]})

    def test_schedule_period_matches_the_schedule_and_fits_an_alarm(self):
        period = self.params["SchedulePeriodSeconds"]
        self.assertEqual(int(period["Default"]), rate_seconds(self.params["ScheduleExpression"]["Default"]))
        for seconds in period["AllowedValues"]:
            # CloudWatch: a period of 60 s or more is a multiple of 60, and an alarm evaluates at
            # most one day (3 periods here).
            self.assertEqual(int(seconds) % 60, 0)
            self.assertLessEqual(3 * int(seconds), 86400)
        self.assertEqual(rate_seconds("rate(15 minutes)"), 900)
        self.assertEqual(rate_seconds("rate(1 day)"), 86400)

    def test_template_rule_ties_each_rate_to_its_period(self):
        """The deploy-time rule SchedulePeriodMatchesRate: right pairs, one per allowed period."""
        [assertion] = self.t["Rules"]["SchedulePeriodMatchesRate"]["Assertions"]
        unchecked, *pairs = assertion["Assert"]["Fn::Or"]
        listed = unchecked["Fn::Not"][0]["Fn::Contains"][0]
        seen = {}
        for pair in pairs:
            expr, period = pair["Fn::And"]
            self.assertEqual(expr["Fn::Equals"][0], {"Ref": "ScheduleExpression"})
            self.assertEqual(period["Fn::Equals"][0], {"Ref": "SchedulePeriodSeconds"})
            seen[expr["Fn::Equals"][1]] = int(period["Fn::Equals"][1])
        self.assertEqual(sorted(listed), sorted(seen))
        for expression, seconds in seen.items():
            self.assertEqual(rate_seconds(expression), seconds, expression)
        self.assertEqual(sorted(seen.values()), sorted(int(v) for v in self.params["SchedulePeriodSeconds"]["AllowedValues"]))
        default = self.params["ScheduleExpression"]["Default"]
        self.assertEqual(seen[default], int(self.params["SchedulePeriodSeconds"]["Default"]))

    def test_dlq_oldest_message_alarm_at_seven_days(self):
        ages = [x["Properties"] for x in resources_of(self.t, "AWS::CloudWatch::Alarm").values()
                if x["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"]
        dlqs = {ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
                for q in resources_of(self.t, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]}
        on_dlq = [x for x in ages if ref_name(dims(x)["QueueName"]) in dlqs]
        self.assertEqual(len(on_dlq), 1, "one age alarm on the work queue's DLQ")
        a = on_dlq[0]
        self.assertEqual((a["Namespace"], int(a["Threshold"]), a["ComparisonOperator"]),
                         ("AWS/SQS", 7 * 86400, "GreaterThanThreshold"))
        self.assertEqual(a["Statistic"], "Maximum")


def evaluate(condition, values):
    """A template Rules assertion, with each Ref replaced by values[name] (a string, as in Rules)."""
    if isinstance(condition, str):
        return condition
    if isinstance(condition, list):
        return [evaluate(c, values) for c in condition]
    (fn, arg), = condition.items()
    if fn == "Ref":
        return values[arg]
    args = [evaluate(a, values) for a in arg]
    if fn == "Fn::Or":
        return any(args)
    if fn == "Fn::And":
        return all(args)
    if fn == "Fn::Not":
        return not args[0]
    if fn == "Fn::Equals":
        return args[0] == args[1]
    if fn == "Fn::Contains":
        return args[1] in args[0]
    raise AssertionError(f"cannot evaluate {fn}")


class LimitsTest(unittest.TestCase):
    """Issue 20: the worker's clock, retained queues and logs, alarms that page for the right thing."""

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.params = cls.t["Parameters"]
        cls.res = cls.t["Resources"]
        cls.alarms = resources_of(cls.t, "AWS::CloudWatch::Alarm")

    def alarm(self, name):
        return self.alarms[name]["Properties"]

    def test_worker_timeout_900_and_its_queues_visibility_six_times(self):
        worker = self.res["WorkerFunction"]["Properties"]
        self.assertEqual(worker["Timeout"], 900)
        mappings = [m["Properties"] for m in resources_of(self.t, "AWS::Lambda::EventSourceMapping").values()
                    if ref_name(m["Properties"]["FunctionName"]) == "WorkerFunction"]
        queues = sorted(ref_name(m["EventSourceArn"]) for m in mappings)
        self.assertEqual(queues, ["BackfillQueue", "WorkQueue"])
        for name in queues:
            self.assertEqual(self.res[name]["Properties"]["VisibilityTimeout"], 6 * worker["Timeout"], name)

    def test_min_link_rate_reaches_the_functions(self):
        p = self.params["MinLinkRate"]
        self.assertEqual((p["Type"], p["Default"]), ("String", "1000000"))
        # What MIN_LINK_RATE accepts (a whole number of bytes per second, at least 1000), and
        # nothing a Number parameter would let through that the functions refuse at start.
        for value in ("1000", "1000000", "2500000", "100000000000"):
            self.assertTrue(matches(p, value), value)
        for value in ("", "999", "0", "01000", "1000.5", "1e6", "-1000", "1000000000000"):
            self.assertFalse(matches(p, value), value)
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["MIN_LINK_RATE"], {"Ref": "MinLinkRate"})
        # The default lets a call of 840 MB through one invocation (840 s of upload).
        self.assertEqual(840 * int(p["Default"]), 840_000_000)
        # Each function is given one MIN_LINK_RATE, the worker's: neither sets its own environment.
        for name, fn in resources_of(self.t, "AWS::Serverless::Function").items():
            self.assertNotIn("Environment", fn["Properties"], name)

    def test_every_queue_and_log_group_is_retained(self):
        retained = [("AWS::SQS::Queue", 6), ("AWS::Logs::LogGroup", 2)]
        for rtype, count in retained:
            found = resources_of(self.t, rtype)
            self.assertEqual(len(found), count, rtype)
            for name, res in found.items():
                self.assertEqual((res.get("DeletionPolicy"), res.get("UpdateReplacePolicy")), ("Retain", "Retain"), name)

    def test_no_ctr_records_alarm(self):
        a = self.alarm("NoCtrRecordsAlarm")
        self.assertEqual(self.alarms["NoCtrRecordsAlarm"].get("Condition"), "ScheduleEnabled")
        self.assertEqual((a["Namespace"], a["MetricName"], dims(a)), ("CallRecovery", "AutomaticCtrRecords", {"Function": "planner"}))
        self.assertEqual((a["Statistic"], a["ComparisonOperator"], int(a["Threshold"]), int(a["EvaluationPeriods"])),
                         ("Sum", "LessThanThreshold", 1, 1))
        self.assertEqual(a["TreatMissingData"], "breaching")
        self.assertEqual(ref_name(a["Period"]), "NoCtrRecordsPeriodSeconds")
        text = " ".join(a["AlarmDescription"].split())
        for word in ("Firehose", "CtrPrefix", "succeed"):
            self.assertIn(word, text)
        p = self.params["NoCtrRecordsPeriodSeconds"]
        self.assertEqual(int(p["Default"]), 10800)
        allowed = [int(v) for v in p["AllowedValues"]]
        self.assertIn(int(p["Default"]), allowed)
        for seconds in allowed:
            # A CloudWatch period of an hour or more (a one-period alarm), at most a day.
            self.assertEqual(seconds % 60, 0)
            self.assertTrue(3600 <= seconds <= 86400, seconds)

    def test_no_ctr_records_alarm_referenced_only_under_its_condition(self):
        """A conditional resource named unconditionally fails the deploy with the schedule disabled."""
        def refs(value, under_condition=False):
            if isinstance(value, dict):
                if "Fn::If" in value and value["Fn::If"][0] == "ScheduleEnabled":
                    return refs(value["Fn::If"][1], True) + refs(value["Fn::If"][2], under_condition)
                found = []
                if value.get("Ref") == "NoCtrRecordsAlarm" or (
                        "Fn::GetAtt" in value and ref_name(value) == "NoCtrRecordsAlarm"):
                    found.append(under_condition)
                if "Fn::Sub" in value:
                    arg = value["Fn::Sub"]
                    text = arg[0] if isinstance(arg, list) else arg
                    if re.search(r"\$\{NoCtrRecordsAlarm[.}]", text):
                        found.append(under_condition)
                for v in value.values():
                    found += refs(v, under_condition)
                return found
            if isinstance(value, list):
                return [f for v in value for f in refs(v, under_condition)]
            return []

        for name, res in self.res.items():
            if name == "NoCtrRecordsAlarm":
                continue
            self.assertTrue(all(refs(res)), f"{name} names NoCtrRecordsAlarm outside Fn::If ScheduleEnabled")
        self.assertEqual(refs(self.res["Dashboard"]), [True])
        self.assertTrue(all(refs(self.t.get("Outputs", {}))))

    def test_no_ctr_records_window_spans_two_schedule_periods(self):
        """The rule NoCtrRecordsPeriodCoversTwoRuns accepts exactly the windows of two periods or more."""
        [assertion] = self.t["Rules"]["NoCtrRecordsPeriodCoversTwoRuns"]["Assertions"]
        schedule = self.params["SchedulePeriodSeconds"]["AllowedValues"]
        window = self.params["NoCtrRecordsPeriodSeconds"]["AllowedValues"]
        for s in schedule:
            for w in window:
                values = {"SchedulePeriodSeconds": str(s), "NoCtrRecordsPeriodSeconds": str(w)}
                self.assertEqual(evaluate(assertion["Assert"], values), int(w) >= 2 * int(s), values)
        self.assertGreaterEqual(int(self.params["NoCtrRecordsPeriodSeconds"]["Default"]),
                                2 * int(self.params["SchedulePeriodSeconds"]["Default"]))

    def test_dlq_growth_alarm(self):
        a = self.alarm("DeadLetterQueueGrowthAlarm")
        queries = {q["Id"]: q for q in a["Metrics"]}
        returned = [q for q in queries.values() if q.get("ReturnData", True)]
        self.assertEqual(len(returned), 1)
        stats = {q["MetricStat"]["Metric"]["MetricName"]: q for q in queries.values() if "MetricStat" in q}
        # Messages SQS moves through a redrive policy are not in NumberOfMessagesSent.
        self.assertEqual(set(stats), {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"})
        for q in stats.values():
            metric = q["MetricStat"]["Metric"]
            self.assertEqual(metric["Namespace"], "AWS/SQS")
            self.assertEqual(ref_name(dims(metric)["QueueName"]), "DeadLetterQueue")
            self.assertEqual((q["MetricStat"]["Stat"], q["MetricStat"]["Period"]), ("Maximum", 300))
        self.assertIn("DIFF(", returned[0]["Expression"])
        for ident in re.findall(r"\b([a-z]\w*)\b", " ".join(q.get("Expression", "") for q in queries.values())):
            self.assertTrue(ident in queries or ident.upper() in {"IF", "DIFF", "FILL"}, ident)
        self.assertEqual((a["ComparisonOperator"], int(a["Threshold"]), a["TreatMissingData"]),
                         ("GreaterThanThreshold", 0, "notBreaching"))
        # The first message still pages once, from the depth alarm.
        d = self.alarm("DeadLetterQueueAlarm")
        self.assertEqual((d["MetricName"], int(d["Threshold"]), d["ComparisonOperator"]),
                         ("ApproximateNumberOfMessagesVisible", 1, "GreaterThanOrEqualToThreshold"))

    def test_dlq_growth_expression_pages_on_growth_of_a_non_empty_queue(self):
        """The growth expression, evaluated as CloudWatch would over a series of 5-minute depths."""
        expression = next(q["Expression"] for q in self.alarm("DeadLetterQueueGrowthAlarm")["Metrics"]
                          if q.get("ReturnData", True))
        self.assertEqual(expression, "IF(depth - DIFF(depth) > 0, DIFF(depth), 0)")

        def growth(depths):
            return [d if prev > 0 else 0 for prev, d in
                    ((p, c - p) for p, c in zip(depths, depths[1:]))]
        # first failure (the depth alarm's), more failures, an operator's redrive, failures again
        self.assertEqual([g > 0 for g in growth([0, 3, 3, 5, 5, 0, 2, 4])],
                         [False, False, True, False, False, False, True])

    def test_backfill_and_planning_queues_age_alarms_fire_before_expiry(self):
        p = self.params["BackfillAgeThresholdSeconds"]
        self.assertEqual(int(p["Default"]), 2 * 86400)
        for name, queue in (("BackfillQueueOldestMessageAlarm", "BackfillQueue"),
                            ("PlanningQueueOldestMessageAlarm", "PlanningQueue")):
            a = self.alarm(name)
            self.assertEqual((a["Namespace"], a["MetricName"], a["Statistic"], a["ComparisonOperator"]),
                             ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", "GreaterThanThreshold"), name)
            self.assertEqual(ref_name(dims(a)["QueueName"]), queue, name)
            self.assertEqual(ref_name(a["Threshold"]), "BackfillAgeThresholdSeconds", name)
            retention = int(self.res[queue]["Properties"]["MessageRetentionPeriod"])
            # At least a day to act between the alarm and the message's expiry.
            self.assertLessEqual(int(p["MaxValue"]) + 86400, retention, name)

    def test_role_arns_are_outputs(self):
        outputs = self.t["Outputs"]
        for output, role in (("PlannerRoleArn", "PlannerRole"), ("WorkerRoleArn", "WorkerRole")):
            self.assertEqual(outputs[output]["Value"], {"Fn::GetAtt": [role, "Arn"]})
            text = " ".join(outputs[output]["Description"].split())
            self.assertIn("bucket", text)
            self.assertIn("KMS", text)

    def test_readme_names_and_counts_every_alarm(self):
        readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
        for name in self.alarms:
            self.assertTrue(re.search(r"^\| [^|]*`%s`[^|]*\|" % name, readme, re.M),
                            f"{name} is not in infra/README.md's alarm table")
        words = {13: "thirteen", 14: "fourteen", 15: "fifteen", 16: "sixteen"}
        conditional = [n for n, a in self.alarms.items() if "Condition" in a]
        self.assertIn(f"{words[len(self.alarms)]} **CloudWatch alarms**", " ".join(readme.split()))
        self.assertIn(f"{words[len(self.alarms) - len(conditional)]} while `ScheduleState` is `DISABLED`",
                      " ".join(readme.split()))


class OperationsTemplateTest(unittest.TestCase):
    """Issue 11 item 5: what the template was missing."""

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.params = cls.t["Parameters"]
        cls.queues = resources_of(cls.t, "AWS::SQS::Queue")
        cls.functions = resources_of(cls.t, "AWS::Serverless::Function")
        cls.roles = resources_of(cls.t, "AWS::IAM::Role")

    def function(self, binary):
        [fn] = [f for f in self.functions.values() if f["Metadata"]["BuildProperties"]["Binary"] == binary]
        return fn

    def test_schedule_target_retries_then_dead_letters(self):
        schedules = resources_of(self.t, "AWS::Scheduler::Schedule")
        self.assertTrue(schedules)
        for name, schedule in schedules.items():
            target = schedule["Properties"]["Target"]
            retry = target["RetryPolicy"]
            self.assertGreaterEqual(int(retry["MaximumRetryAttempts"]), 1, name)
            self.assertIn("MaximumEventAgeInSeconds", retry, name)
            dlq = ref_name(target["DeadLetterConfig"]["Arn"])
            self.assertIn(dlq, self.queues, f"{name}: DeadLetterConfig is not a queue of this stack")
            role = self.roles[ref_name(target["RoleArn"])]
            sends = [st for pol in role["Properties"]["Policies"] for st in pol["PolicyDocument"]["Statement"]
                     if "sqs:SendMessage" in as_list(st["Action"]) and ref_name(st["Resource"]) == dlq]
            self.assertTrue(sends, f"{name}: the scheduler role cannot send to {dlq}")
            alarmed = [a for a in resources_of(self.t, "AWS::CloudWatch::Alarm").values()
                       if ref_name(dims(a["Properties"]).get("QueueName", {"Ref": "-"})) == dlq]
            self.assertTrue(alarmed, f"no alarm on {dlq}")

    def test_planner_async_invocation_not_retried(self):
        self.assertEqual(int(self.function("planner")["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"]), 0)

    def test_work_queue_keeps_messages_shorter_than_its_dlq_and_dlqs_are_retained(self):
        for name, queue in self.queues.items():
            props = queue["Properties"]
            if "RedrivePolicy" in props:
                dlq = self.queues[ref_name(props["RedrivePolicy"]["deadLetterTargetArn"])]
                self.assertLess(int(props["MessageRetentionPeriod"]), int(dlq["Properties"]["MessageRetentionPeriod"]))
                self.assertEqual(int(props["MessageRetentionPeriod"]), 4 * 86400, name)
            else:
                self.assertEqual((queue.get("DeletionPolicy"), queue.get("UpdateReplacePolicy")), ("Retain", "Retain"), name)

    def test_kms_key_patterns_accept_multi_region_keys(self):
        key = "arn:aws:kms:eu-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        mrk = "arn:aws:kms:eu-west-2:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
        for name in ("KmsKeyArn", "CtrKmsKeyArn", "SecretKmsKeyArn"):
            p = self.params[name]
            self.assertTrue(matches(p, key) and matches(p, mrk), name)
            self.assertFalse(matches(p, "arn:aws:kms:eu-west-2:123456789012:alias/connect"), name)
            self.assertFalse(matches(p, "arn:aws:kms:eu-west-2:123456789012:key/mrk-"), name)
            self.assertEqual(matches(p, ""), name != "KmsKeyArn", name)

    def test_secret_arn_pattern_requires_the_suffix(self):
        p = self.params["VerintApiKeySecretArn"]
        self.assertTrue(matches(p, "arn:aws:secretsmanager:eu-west-2:123456789012:secret:verint/api-key-AbC12z"))
        self.assertFalse(matches(p, "arn:aws:secretsmanager:eu-west-2:123456789012:secret:verint/key"))
        self.assertFalse(matches(p, "arn:aws:secretsmanager:eu-west-2:123456789012:secret:verint/api-key-AbC12*"))

    def test_optional_secret_key_decrypt_via_secrets_manager(self):
        self.assertEqual(self.params["SecretKmsKeyArn"]["Default"], "")
        policies = [p for p in resources_of(self.t, "AWS::IAM::Policy").values() if p.get("Condition") == "HasSecretKmsKey"]
        self.assertEqual(len(policies), 1)
        props = policies[0]["Properties"]
        self.assertEqual({ref_name(r) for r in props["Roles"]},
                         {ref_name(f["Properties"]["Role"]) for f in self.functions.values()})
        [st] = props["PolicyDocument"]["Statement"]
        self.assertEqual((st["Effect"], st["Action"], ref_name(st["Resource"])), ("Allow", "kms:Decrypt", "SecretKmsKeyArn"))
        self.assertEqual(st["Condition"]["StringEquals"]["kms:ViaService"],
                         {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"})

    def test_optional_vpc(self):
        for name in ("VpcSubnetIds", "VpcSecurityGroupIds"):
            self.assertEqual((self.params[name]["Type"], self.params[name]["Default"]), ("CommaDelimitedList", ""))
        self.assertEqual(self.t["Conditions"]["HasVpc"],
                         {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VpcSubnetIds"}]}, ""]}]})
        self.assertIn("VpcSubnetsAndSecurityGroupsTogether", self.t["Rules"])
        for name, fn in self.functions.items():
            cond, config, otherwise = fn["Properties"]["VpcConfig"]["Fn::If"]
            self.assertEqual((cond, otherwise), ("HasVpc", {"Ref": "AWS::NoValue"}), name)
            self.assertEqual((ref_name(config["SubnetIds"]), ref_name(config["SecurityGroupIds"])),
                             ("VpcSubnetIds", "VpcSecurityGroupIds"), name)
            role = self.roles[ref_name(fn["Properties"]["Role"])]["Properties"]
            cond, arns, otherwise = role["ManagedPolicyArns"]["Fn::If"]
            self.assertEqual((cond, otherwise), ("HasVpc", {"Ref": "AWS::NoValue"}), name)
            self.assertEqual([render(a)[0] for a in arns],
                             ["arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"])

    def test_backfill_pacing_default_is_what_the_lane_drains_in_half_the_queues_retention(self):
        def default(name):
            return float(self.params[name]["Default"])

        retention = float(self.t["Resources"]["BackfillQueue"]["Properties"]["MessageRetentionPeriod"])
        lane = default("ConnectMaxRps") * default("BackfillMaxConcurrency")
        self.assertEqual(default("BackfillMaxQueued"), lane * retention / 2)
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["BACKFILL_MAX_QUEUED"], {"Ref": "BackfillMaxQueued"})

    def test_connect_rate_defaults_stay_under_the_default_quota(self):
        def default(name):
            return float(self.params[name]["Default"])

        mappings = resources_of(self.t, "AWS::Lambda::EventSourceMapping").values()
        concurrency = {ref_name(m["Properties"]["EventSourceArn"]):
                       ref_name(m["Properties"]["ScalingConfig"]["MaximumConcurrency"]) for m in mappings}
        self.assertEqual(concurrency, {"WorkQueue": "WorkerMaxConcurrency",
                                       "BackfillQueue": "BackfillMaxConcurrency",
                                       "PlanningQueue": "PlanningMaxConcurrency"})
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        rps = default(ref_name(env["CONNECT_MAX_RPS"]))
        # Issue 20: one rate limiter per function instance (process), shared by its whole batch,
        # so WorkerBatchSize does not multiply the rate: one limiter per concurrent worker
        # instance on either queue, and per backfill slice (slices describe orphan recordings).
        processes = (default("WorkerMaxConcurrency") + default("BackfillMaxConcurrency")
                     + default("PlanningMaxConcurrency"))
        stack_rate = rps * processes
        self.assertAlmostEqual(stack_rate, 1.5)
        self.assertLessEqual(stack_rate, DESCRIBE_CONTACT_DEFAULT_RPS * 0.75 + 1e-9)
        text = " ".join(self.params["ConnectMaxRps"]["Description"].split())
        self.assertIn("ConnectMaxRps x (WorkerMaxConcurrency + BackfillMaxConcurrency + "
                      "PlanningMaxConcurrency)", text)
        self.assertNotIn("WorkerBatchSize x", text)
        self.assertIn("2 requests/s", text)
        self.assertIn("every stack in the account and Region", text)
        readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
        self.assertIn("ConnectMaxRps × (WorkerMaxConcurrency + BackfillMaxConcurrency + PlanningMaxConcurrency)", readme)
        self.assertNotIn("WorkerBatchSize × (", readme)

    def test_backfill_slices_fan_out_through_the_planning_queue(self):
        mappings = {ref_name(m["Properties"]["EventSourceArn"]): m["Properties"]
                    for m in resources_of(self.t, "AWS::Lambda::EventSourceMapping").values()}
        slices = mappings["PlanningQueue"]
        self.assertEqual(ref_name(slices["FunctionName"]), "PlannerFunction")
        self.assertEqual(slices["BatchSize"], 1)
        self.assertEqual(slices["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertEqual(ref_name(mappings["BackfillQueue"]["FunctionName"]), "WorkerFunction")
        queue = self.t["Resources"]["PlanningQueue"]["Properties"]
        planner = self.t["Resources"]["PlannerFunction"]["Properties"]
        self.assertGreaterEqual(queue["VisibilityTimeout"], 6 * planner["Timeout"])
        self.assertEqual(ref_name(queue["RedrivePolicy"]["deadLetterTargetArn"]), "PlanningDeadLetterQueue")

    def test_alarm_topic_is_tls_only(self):
        policies = resources_of(self.t, "AWS::SNS::TopicPolicy").values()
        for name in resources_of(self.t, "AWS::SNS::Topic"):
            guarded = [p for p in policies if name in [ref_name(t) for t in p["Properties"]["Topics"]]
                       and any(is_tls_guard(st) and ref_name(st["Resource"]) == name
                               for st in p["Properties"]["PolicyDocument"]["Statement"])]
            self.assertTrue(guarded, f"{name}: no TLS-only topic policy")

    def test_samconfig_example_tracked_and_real_one_ignored(self):
        infra = Path(__file__).resolve().parent.parent
        example = (infra / "samconfig.example.toml").read_text()
        self.assertIn("beta_features = true", example, "sam build needs the rust-cargolambda beta feature")
        self.assertIn("samconfig.toml", (infra / ".gitignore").read_text().split())


def policy_statements(template, role):
    """(policy resource or None, its Condition, statement) of every statement a role is granted:
    its inline policies, then the AWS::IAM::Policy resources attached to it."""
    res = template["Resources"]
    for pol in as_list(res[role]["Properties"].get("Policies")):
        for st in as_list(pol["PolicyDocument"]["Statement"]):
            yield None, None, st
    for name, pol in resources_of(template, "AWS::IAM::Policy").items():
        if role in [ref_name(r) for r in pol["Properties"]["Roles"]]:
            for st in as_list(pol["Properties"]["PolicyDocument"]["Statement"]):
                yield name, pol.get("Condition"), st


def granting(template, role, action):
    return [(name, cond, st) for name, cond, st in policy_statements(template, role)
            if action in as_list(st.get("Action"))]


class RecordingsTest(unittest.TestCase):
    """Issue 22 (docs/design.md section 10): the recording variant, redacted recordings, restores."""

    RECORDINGS = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucketName}/${RecordingsPrefix}*"}
    REDACTED = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucketName}/${RedactedPrefix}*"}
    BUCKET = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucketName}"}
    REDACTED_LISTING = {"StringLike": {"s3:prefix": {"Fn::Sub": "${RedactedPrefix}*"}}}

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.params = cls.t["Parameters"]
        cls.env = cls.t["Globals"]["Function"]["Environment"]["Variables"]

    def test_parameters_and_their_defaults(self):
        p = self.params
        self.assertEqual((p["RecordingVariant"]["Default"], p["RecordingVariant"]["AllowedValues"]),
                         ("original", ["original", "redacted", "redacted-else-original"]))
        self.assertEqual((p["RestoreTier"]["Default"], p["RestoreTier"]["AllowedValues"]),
                         ("Standard", ["Expedited", "Standard", "Bulk"]))
        self.assertEqual(p["RedactedPrefix"]["Default"], "Analysis/Voice/Redacted/")
        self.assertEqual(p["RestoreMaxWait"]["Default"], "48h")
        for value in ("Analysis/Voice/Redacted/", "connect/acme/Analysis/Voice/Redacted/"):
            self.assertTrue(matches(p["RedactedPrefix"], value), value)
        # Before a '*' in a grant: neither empty nor a wildcard.
        for value in ("", "*/", "Analysis/*/", "Analysis/Voice/Redacted"):
            self.assertFalse(matches(p["RedactedPrefix"], value), value)
        for value in ("48h", "2d", "90m"):
            self.assertTrue(matches(p["RestoreMaxWait"], value), value)
        for value in ("", "48", "2 days", "-1h"):
            self.assertFalse(matches(p["RestoreMaxWait"], value), value)

    def test_both_functions_get_the_variables(self):
        for variable, param in (("RECORDING_VARIANT", "RecordingVariant"), ("REDACTED_PREFIX", "RedactedPrefix"),
                                ("RESTORE_TIER", "RestoreTier"), ("RESTORE_MAX_WAIT", "RestoreMaxWait")):
            self.assertEqual(self.env[variable], {"Ref": param}, variable)
        # Globals reach both functions; neither overrides them.
        functions = resources_of(self.t, "AWS::Serverless::Function")
        self.assertEqual(len(functions), 2)
        for name, fn in functions.items():
            self.assertNotIn("Environment", fn["Properties"], name)

    def test_worker_restores_archived_recordings_under_the_recordings_prefix(self):
        grants = granting(self.t, "WorkerRole", "s3:RestoreObject")
        unconditional = [st for name, cond, st in grants if name is None]
        self.assertEqual(len(unconditional), 1)
        [st] = unconditional
        self.assertEqual((st["Effect"], st["Action"], st["Resource"]), ("Allow", "s3:RestoreObject", self.RECORDINGS))
        self.assertNotIn("Condition", st)
        # The same resource as the worker's read of the recordings.
        [(_, _, read)] = [g for g in granting(self.t, "WorkerRole", "s3:GetObject") if g[0] is None
                          and "RecordingsBucketName" in render(g[2]["Resource"])[0]]
        self.assertEqual(read["Resource"], st["Resource"])
        self.assertEqual(granting(self.t, "PlannerRole", "s3:RestoreObject"), [])

    def test_redacted_recordings_only_when_they_may_be_sent(self):
        condition = self.t["Conditions"]["SendsRedactedRecordings"]
        self.assertEqual(condition, {"Fn::Not": [{"Fn::Equals": [{"Ref": "RecordingVariant"}, "original"]}]})
        for variant in self.params["RecordingVariant"]["AllowedValues"]:
            self.assertEqual(evaluate(condition, {"RecordingVariant": variant}), variant != "original", variant)

        def redacted(role):
            return [(name, cond, st) for name, cond, st in policy_statements(self.t, role)
                    if "RedactedPrefix" in str(st)]

        planner = redacted("PlannerRole")
        self.assertEqual([(cond, st["Effect"], st["Action"], st["Resource"], st["Condition"]) for _, cond, st in planner],
                         [("SendsRedactedRecordings", "Allow", "s3:ListBucket", self.BUCKET, self.REDACTED_LISTING)])
        worker = redacted("WorkerRole")
        self.assertEqual({cond for _, cond, _ in worker}, {"SendsRedactedRecordings"})
        self.assertEqual(sorted((st["Action"], render(st["Resource"])[0], str(st.get("Condition")))
                                for _, _, st in worker),
                         sorted([("s3:ListBucket", render(self.BUCKET)[0], str(self.REDACTED_LISTING)),
                                 ("s3:GetObject", render(self.REDACTED)[0], "None"),
                                 ("s3:RestoreObject", render(self.REDACTED)[0], "None")]))
        for _, _, st in planner + worker:
            self.assertEqual(st["Effect"], "Allow")
            if "Condition" not in st:
                self.assertEqual(st["Resource"], self.REDACTED)
        # Each conditional policy is attached to its own role only.
        for name in {n for n, _, _ in planner + worker}:
            roles = [ref_name(r) for r in self.t["Resources"][name]["Properties"]["Roles"]]
            self.assertEqual(len(roles), 1, name)


NO_VALUE = object()
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-2", "AWS::AccountId": "123456789012",
          "AWS::StackName": "call-recovery", "AWS::NoValue": NO_VALUE}


def resolve(value, template, params):
    """An intrinsic value as CloudFormation would deploy it, for the given parameter values (strings,
    as CloudFormation passes them); pseudo parameters as in PSEUDO. Fn::If reads the template's
    Conditions; an AWS::NoValue list item is dropped, as CloudFormation drops it."""
    def r(v):
        return resolve(v, template, params)

    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [x for x in (r(v) for v in value) if x is not NO_VALUE]
    (fn, arg), = value.items()
    if fn == "Ref":
        return PSEUDO[arg] if arg in PSEUDO else params[arg]
    if fn == "Condition":
        return r(template["Conditions"][arg])
    if fn == "Fn::If":
        cond, yes, no = arg
        return r(yes) if r(template["Conditions"][cond]) else r(no)
    if fn == "Fn::Equals":
        return r(arg[0]) == r(arg[1])
    if fn == "Fn::Not":
        return not r(arg[0])
    if fn == "Fn::And":
        return all(r(a) for a in arg)
    if fn == "Fn::Or":
        return any(r(a) for a in arg)
    if fn == "Fn::Join":
        return arg[0].join(r(arg[1]))
    if fn == "Fn::Split":
        return r(arg[1]).split(arg[0])
    if fn == "Fn::Select":
        items = r(arg[1])
        index = int(r(arg[0]))
        if not 0 <= index < len(items):
            raise AssertionError(f"Fn::Select index {index} out of range in {value!r}: the deploy fails")
        return items[index]
    if fn == "Fn::Sub":
        text, names = (arg[0], {k: r(v) for k, v in arg[1].items()}) if isinstance(arg, list) else (arg, {})

        def name(m):
            key = m[1]
            if key in names:
                return names[key]
            return PSEUDO[key] if key in PSEUDO else params[key]
        return re.sub(r"\$\{([^}!]+)\}", name, text)
    raise AssertionError(f"cannot resolve {fn}")


def instance_ids(n):
    return [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, n + 1)]


def contact_arn(instance):
    return f"arn:aws:connect:eu-west-2:123456789012:instance/{instance}/contact/*"


class SeveralInstancesTest(unittest.TestCase):
    """Issue 23 (docs/design.md section 11): ConnectInstanceIds, and DescribeContact in exactly those."""

    SINGLE = "0f0e0d0c-0b0a-4000-8000-000000000001"

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.param = cls.t["Parameters"]["ConnectInstanceIds"]

    def params(self, ids):
        return {"ConnectInstanceId": self.SINGLE, "ConnectInstanceIds": ids}

    def describe_contact_statements(self):
        found = []
        for role in ("PlannerRole", "WorkerRole"):
            found += [(role, name, cond, st) for name, cond, st in granting(self.t, role, "connect:DescribeContact")]
        return found

    def granted(self, ids):
        """The DescribeContact resources each role gets for a ConnectInstanceIds value."""
        out = {}
        for role, _, _, st in self.describe_contact_statements():
            out.setdefault(role, []).extend(resolve(as_list(st["Resource"]), self.t, self.params(ids)))
        return out

    def test_parameter(self):
        p = self.param
        self.assertEqual((p["Type"], p["Default"]), ("String", ""))
        ids = instance_ids(10)
        for n in range(0, 11):
            self.assertTrue(matches(p, ",".join(ids[:n])), n)
        for bad in (",".join(instance_ids(11)), f"{ids[0]}, {ids[1]}", f"{ids[0]},", f",{ids[0]}",
                    f"{ids[0]},,{ids[1]}", SeveralInstancesTest.SINGLE.upper(), "*", f"{ids[0]},*",
                    f"arn:aws:connect:eu-west-2:123456789012:instance/{ids[0]}"):
            self.assertFalse(matches(p, bad), bad)
        # ConnectInstanceId stays, required, for the stacks deployed before.
        self.assertNotIn("Default", self.t["Parameters"]["ConnectInstanceId"])

    def test_environment_of_both_functions(self):
        env = self.t["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["CONNECT_INSTANCE_ID"], {"Ref": "ConnectInstanceId"})
        self.assertEqual(env["CONNECT_INSTANCE_IDS"], {"Ref": "ConnectInstanceIds"})
        two = ",".join(instance_ids(2))
        self.assertEqual(resolve(env["CONNECT_INSTANCE_IDS"], self.t, self.params(two)), two)
        self.assertEqual(resolve(env["CONNECT_INSTANCE_IDS"], self.t, self.params("")), "")

    def test_describe_contact_in_exactly_the_instances_listed(self):
        self.assertEqual(self.granted(""), {"PlannerRole": [contact_arn(self.SINGLE)],
                                            "WorkerRole": [contact_arn(self.SINGLE)]})
        ids = instance_ids(10)
        for n in range(1, 11):
            with self.subTest(instances=n):
                value = ",".join(ids[:n])
                expected = [contact_arn(i) for i in ids[:n]]
                # ConnectInstanceId is ignored once the list is set.
                self.assertEqual(self.granted(value), {"PlannerRole": expected, "WorkerRole": expected})
        two = instance_ids(2)
        self.assertEqual(self.granted(",".join(two))["WorkerRole"],
                         [f"arn:aws:connect:eu-west-2:123456789012:instance/{two[0]}/contact/*",
                          f"arn:aws:connect:eu-west-2:123456789012:instance/{two[1]}/contact/*"])

    def test_one_statement_of_one_policy_for_both_roles(self):
        found = self.describe_contact_statements()
        self.assertEqual(sorted((role, name, cond) for role, name, cond, _ in found),
                         [("PlannerRole", "DescribeContactsPolicy", None), ("WorkerRole", "DescribeContactsPolicy", None)])
        [st] = self.t["Resources"]["DescribeContactsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        self.assertEqual((st["Effect"], st["Action"]), ("Allow", "connect:DescribeContact"))
        self.assertNotIn("Condition", st)
        # One entry per id the parameter admits.
        most = int(re.search(r"\{0,(\d+)\}\$$", self.param["AllowedPattern"])[1]) + 1
        self.assertEqual(len(st["Resource"]), most)
        # No other Connect action anywhere.
        for role in ("PlannerRole", "WorkerRole"):
            for _, _, other in policy_statements(self.t, role):
                actions = [a for a in as_list(other.get("Action")) if a.startswith("connect:")]
                self.assertIn(actions, ([], ["connect:DescribeContact"]), role)
        # Neither function runs before the policy is attached.
        for name, fn in resources_of(self.t, "AWS::Serverless::Function").items():
            self.assertIn("DescribeContactsPolicy", as_list(fn.get("DependsOn")), name)

    def test_alarms_watch_the_aggregate_and_the_dashboard_each_instance(self):
        """The planner emits per instance (dimension InstanceId) and the aggregate as before."""
        for name, alarm in resources_of(self.t, "AWS::CloudWatch::Alarm").items():
            props = alarm["Properties"]
            if props.get("Namespace") == "CallRecovery":
                self.assertEqual(dims(props), {"Function": "planner"}, name)
        body = render(self.t["Resources"]["Dashboard"]["Properties"]["DashboardBody"])[0]
        for metric in ("Missing", "CaptureRate"):
            self.assertIn("{CallRecovery,Function,InstanceId} Function=\\\"planner\\\" MetricName=\\\"%s\\\"" % metric, body)


ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs/runbook.md"


def cli_commands(root=ROOT):
    """recoveryctl's subcommands and their long flags, read from cli/src/main.rs (clap derive):
    {subcommand: {flag}}, global flags under None. A field's flag is `long = "..."` or its name
    with '-' for '_'."""
    text = (root / "cli/src/main.rs").read_text()

    def flags(block):
        found = set()
        # An attribute may span lines (rustfmt breaks long ones).
        for attr, field in re.findall(r"#\[arg\(((?:[^()\]]|\([^()]*\))*)\)\]\s*(?:///[^\n]*\s*)*(\w+)\s*:", block):
            if re.search(r"\blong\b", attr):
                named = re.search(r'\blong\s*=\s*"([^"]+)"', attr)
                found.add("--" + (named[1] if named else field.strip("_").replace("_", "-")))
        return found

    cli = text[text.index("pub struct Cli"):text.index("pub enum Command")]
    enum = text[text.index("pub enum Command"):]
    enum = enum[:enum.index("\n}\n")]
    commands = {None: flags(cli) | {"--help"}}
    # Each variant: `Name {` ... `},` or `Name,` at four spaces.
    for m in re.finditer(r"^    (\w+)(?: \{(.*?)^    \})?,?$", enum, re.M | re.S):
        name = re.sub(r"(?<!^)([A-Z])", r"-\1", m[1]).lower()
        commands[name] = flags(m[2] or "")
    return commands


def recoveryctl_uses(text):
    """(subcommand, [flags], line) of every `recoveryctl ...` command line in a document."""
    out = []
    for line in text.splitlines():
        for m in re.finditer(r"\brecoveryctl ([a-z][a-z-]*)((?: +(?:--[a-z][a-z-]*|[A-Z0-9][^ `|;&]*|[0-9][^ `|;&]*))*)",
                             line):
            out.append((m[1], re.findall(r"--[a-z][a-z-]*", m[2]), line.strip()))
    return out


def anchor(heading):
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


class RunbookTest(unittest.TestCase):
    """Issue 24: a runbook section per alarm, and each alarm pointing to its section."""

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.alarms = resources_of(cls.t, "AWS::CloudWatch::Alarm")
        cls.runbook = RUNBOOK.read_text()
        cls.headings = re.findall(r"^## (.+)$", cls.runbook, re.M)

    def test_every_alarm_points_to_its_section(self):
        self.assertEqual(len(self.alarms), 14)
        for name, alarm in self.alarms.items():
            text = " ".join(alarm["Properties"]["AlarmDescription"].split())
            self.assertTrue(text.endswith(f"Runbook: docs/runbook.md#{name.lower()}"), f"{name}: {text}")
            self.assertLessEqual(len(alarm["Properties"]["AlarmDescription"]), 1024, name)

    def test_runbook_has_a_section_per_alarm_and_none_for_another(self):
        for name in self.alarms:
            self.assertIn(name, self.headings, f"docs/runbook.md has no '## {name}'")
            self.assertEqual(anchor(name), name.lower())
            section = self.runbook.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
            for part in ("**What it means.**", "**Triage.**", "**Fix.**", "**See it worked.**", "**Escalate**"):
                self.assertIn(part, section, f"{name}: no {part}")
        stale = [h for h in self.headings if h.endswith("Alarm") and h not in self.alarms]
        self.assertEqual(stale, [], "runbook sections for alarms the template does not have")

    def test_runbook_links_resolve(self):
        anchors = {anchor(h) for h in re.findall(r"^#+ (.+)$", self.runbook, re.M)}
        for target in re.findall(r"\]\(#([^)]+)\)", self.runbook):
            self.assertIn(target, anchors, target)

    def test_backfills_and_the_checkpoint(self):
        text = " ".join(self.runbook.split())
        # The alarm a backfill trips on purpose is the one whose metric every run emits.
        section = text.split("## MissingCallsSpikeAlarm", 1)[1].split(" ## ", 1)[0]
        self.assertIn("backfill", section)
        self.assertEqual(self.alarms["MissingCallsSpikeAlarm"]["Properties"]["MetricName"], "Missing")
        self.assertNotIn("trips this alarm on purpose", text.split("## CaptureRateAlarm", 1)[1].split(" ## ", 1)[0])
        # The checkpoint's real key, and a restore rather than a bare delete.
        key = re.search(r'format!\("\{\}(\w+\.json)", self\.prefix\)',
                        (ROOT / "shared/src/adapters/state/mod.rs").read_text())[1]
        self.assertEqual(key, "checkpoint.json")
        self.assertIn("{STATE_PREFIX}checkpoint.json", text)
        for command in ("aws s3api list-object-versions", "aws s3api copy-object", "?versionId=",
                        "you must not simply delete it", "recoveryctl plan --from"):
            self.assertIn(command, text)

    def test_recoveryctl_commands_and_flags_exist(self):
        """The runbook and the README use only recoveryctl's real subcommands and flags."""
        commands = cli_commands()
        self.assertIn("--until-empty", commands["work"])
        self.assertIn("--dry-run", commands["plan"])
        for doc in (RUNBOOK, ROOT / "infra/README.md"):
            uses = recoveryctl_uses(doc.read_text())
            self.assertTrue(uses, doc)
            for sub, flags, line in uses:
                with self.subTest(doc=doc.name, line=line):
                    self.assertIn(sub, commands)
                    for flag in flags:
                        self.assertIn(flag, commands[sub] | commands[None])

    def test_flag_reader_on_a_sample(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "cli/src").mkdir(parents=True)
            (Path(tmp) / "cli/src/main.rs").write_text('''
pub struct Cli {
    #[arg(long, global = true)]
    json: bool,
}
pub enum Command {
    Plan {
        /// doc
        #[arg(long, required_unless_present = "auto")]
        from: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    Work {
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<u64>,
    },
    Runs {
        run_id: Option<String>,
    },
    Status,
}
''')
            commands = cli_commands(Path(tmp))
        self.assertEqual(commands, {None: {"--json", "--help"}, "plan": {"--from", "--dry-run"},
                                    "work": {"--for"}, "runs": set(), "status": set()})
        self.assertEqual([(s, f) for s, f, _ in recoveryctl_uses(
            "run `recoveryctl plan --from 2026-01-01T00:00:00Z --to X --dry-run` then recoveryctl status")],
            [("plan", ["--from", "--to", "--dry-run"]), ("status", [])])


def statement_map(policy):
    """{action: sorted rendered resources} of a managed policy's Allow statements."""
    out = {}
    for st in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert st["Effect"] == "Allow", st
        for action in as_list(st["Action"]):
            out.setdefault(action, set()).update(r for v in as_list(st["Resource"]) for r in render(v))
    return {a: sorted(r) for a, r in out.items()}


class OperatorPoliciesTest(unittest.TestCase):
    """Issue 24: managed policies for people, read only and redrive, exported as outputs."""

    QUEUES = ["${BackfillQueue.Arn}", "${DeadLetterQueue.Arn}", "${PlanningDeadLetterQueue.Arn}",
              "${PlanningQueue.Arn}", "${ScheduleDeadLetterQueue.Arn}", "${WorkQueue.Arn}"]
    STATE = "${StateBucket.Arn}/${StatePrefix}*"
    CTR_KEYS = ["${CtrKmsKeyArn}", "${KmsKeyArn}"]

    @classmethod
    def setUpClass(cls):
        cls.t = load()
        cls.policies = resources_of(cls.t, "AWS::IAM::ManagedPolicy")

    def test_two_policies_attached_to_no_one_and_exported(self):
        self.assertEqual(sorted(self.policies), ["OperatorReadOnlyPolicy", "OperatorRedrivePolicy"])
        for name, policy in self.policies.items():
            for key in ("Roles", "Users", "Groups", "ManagedPolicyName"):
                self.assertNotIn(key, policy["Properties"], name)
            self.assertNotIn("Condition", policy, name)
            self.assertEqual(self.t["Outputs"][f"{name}Arn"]["Value"], {"Ref": name})

    def test_read_only(self):
        self.assertEqual(statement_map(self.policies["OperatorReadOnlyPolicy"]), {
            "sqs:GetQueueAttributes": self.QUEUES,
            "s3:ListBucket": ["${StateBucket.Arn}", "arn:${AWS::Partition}:s3:::${CtrBucketName}"],
            "s3:ListBucketVersions": ["${StateBucket.Arn}"],
            "s3:GetObject": [self.STATE, "arn:${AWS::Partition}:s3:::${CtrBucketName}/${CtrPrefix}*"],
            "s3:GetObjectVersion": [self.STATE],
            "kms:Decrypt": self.CTR_KEYS,
            "cloudformation:DescribeStacks": ["${AWS::StackId}"],
            "lambda:GetFunctionConfiguration": ["${PlannerFunction.Arn}", "${WorkerFunction.Arn}"],
            "logs:FilterLogEvents": ["${PlannerLogGroup.Arn}", "${WorkerLogGroup.Arn}"],
            "logs:GetLogEvents": ["${PlannerLogGroup.Arn}", "${WorkerLogGroup.Arn}"],
            "secretsmanager:DescribeSecret": ["${VerintApiKeySecretArn}"],
        })
        for st in self.policies["OperatorReadOnlyPolicy"]["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(st["Action"])
            if "s3:ListBucket" in actions or "s3:ListBucketVersions" in actions:
                prefix = render(st["Condition"]["StringLike"]["s3:prefix"])[0]
                self.assertIn(prefix, ("${StatePrefix}*", "${CtrPrefix}*"))
            if "kms:Decrypt" in actions:
                self.assertEqual(st["Condition"]["StringEquals"]["kms:ViaService"],
                                 {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"})

    def test_redrive(self):
        dead_letters = ["${DeadLetterQueue.Arn}", "${PlanningDeadLetterQueue.Arn}"]
        self.assertEqual(statement_map(self.policies["OperatorRedrivePolicy"]), {
            **{a: dead_letters for a in ("sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks",
                                         "sqs:CancelMessageMoveTask", "sqs:DeleteMessage",
                                         "sqs:ChangeMessageVisibility")},
            "sqs:ReceiveMessage": dead_letters + ["${ScheduleDeadLetterQueue.Arn}"],
            "sqs:SendMessage": ["${BackfillQueue.Arn}", "${PlanningQueue.Arn}", "${WorkQueue.Arn}"],
            "sqs:PurgeQueue": ["${ScheduleDeadLetterQueue.Arn}"],
            "s3:PutObject": ["${StateBucket.Arn}/${StatePrefix}checkpoint.json",
                             "${StateBucket.Arn}/${StatePrefix}runs/*/outcomes/*"],
            "s3:DeleteObject": ["${StateBucket.Arn}/${StatePrefix}checkpoint.json"],
        })
        # recoveryctl redrive's fallback reads both queues' ARNs (read-only policy) and moves
        # each message from the DLQ to the work queue.
        read_only = statement_map(self.policies["OperatorReadOnlyPolicy"])
        self.assertIn("${WorkQueue.Arn}", read_only["sqs:GetQueueAttributes"])

    def test_runbook_names_every_grant(self):
        section = RUNBOOK.read_text().split("\n## Operator access\n", 1)[1].split("\n## ", 1)[0]
        for name, policy in self.policies.items():
            self.assertIn(f"`{name}`", section)
            for action in statement_map(policy):
                self.assertIn(f"`{action}`", section, f"{name}: {action}")
        readme = (ROOT / "infra/README.md").read_text()
        for output in ("OperatorReadOnlyPolicyArn", "OperatorRedrivePolicyArn"):
            self.assertTrue(f"`{output}`" in readme, f"infra/README.md does not name {output}")


if __name__ == "__main__":
    unittest.main()
