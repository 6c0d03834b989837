"""Each cfn-guard rule of issues 11, 20 and 24 fails on a template that breaks it.

Every case below edits one thing in infra/template.yaml (a text replacement that must match), runs
cfn-guard with infra/guard/ on the copy, and expects exactly the named rules to fail. Skipped when
cfn-guard is not installed (scripts/infra-check.sh installs it before running these tests).
"""

import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

INFRA = Path(__file__).resolve().parent.parent
TEMPLATE = Path(os.environ.get("INFRA_TEMPLATE", INFRA / "template.yaml"))
HOME = Path(os.environ.get("CALL_RECOVERY_HOME", "/var/tmp/call-recovery"))
GUARD = shutil.which("cfn-guard") or str(HOME / "tools/cfn-guard/bin/cfn-guard")

# rule(s) expected to fail -> (text in the template, replacement)
CASES = {
    ("dead_letter_queues_retained", "queues_and_log_groups_retained"): (
        "  DeadLetterQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n",
        "  DeadLetterQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Delete\n"),
    ("work_queue_retention_shorter_than_dlq",): (
        "MessageRetentionPeriod: 345600\n", "MessageRetentionPeriod: 1209600\n"),
    ("schedule_target_has_dlq_and_retry_policy",): (
        "        DeadLetterConfig:\n          Arn: !GetAtt ScheduleDeadLetterQueue.Arn\n", ""),
    ("planner_async_invocations_not_retried",): (
        "      EventInvokeConfig:\n        MaximumRetryAttempts: 0\n",
        "      EventInvokeConfig:\n        MaximumRetryAttempts: 2\n"),
    ("parameter_patterns",): (
        '    Description: >-\n      ARN of the customer-managed KMS key that encrypts the recordings (SSE-KMS). A multi-Region\n'
        '      key (key/mrk-...) is accepted; give the ARN of its replica in this stack\'s Region.\n'
        '    AllowedPattern: "^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-[0-9a-f]{32}|',
        '    Description: >-\n      ARN of the customer-managed KMS key that encrypts the recordings (SSE-KMS).\n'
        '    AllowedPattern: "^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/('),
    ("parameter_patterns", "secret suffix"): (
        "[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", "[A-Za-z0-9/_+=.@-]+$"),
    ("parameter_patterns", "connect rate"): (
        "    Default: 0.25\n", "    Default: 5\n"),
    ("kms_decrypt_policies_only_via_service", "secret_kms_key_decrypt_via_secretsmanager"): (
        '                kms:ViaService: !Sub "secretsmanager.${AWS::Region}.amazonaws.com"',
        "                aws:SourceAccount: !Ref AWS::AccountId"),
    ("kms_decrypt_only_via_service",): (
        '                Condition:\n                  StringEquals:\n'
        '                    kms:ViaService: !Sub "s3.${AWS::Region}.amazonaws.com"\n              # ListBucket',
        "              # ListBucket"),
    ("functions_vpc_optional",): (
        "      LogGroup: !Ref WorkerLogGroup\n      VpcConfig: !If\n        - HasVpc",
        "      LogGroup: !Ref WorkerLogGroup\n      VpcConfig: !If\n        - HasCtrKmsKey"),
    ("no_managed_policy_attachments",): (
        "      Description: Call recovery worker - streams recordings into Verint.\n"
        "      # Only with VpcSubnetIds: Lambda creates the functions' network interfaces with this role.\n"
        "      ManagedPolicyArns: !If\n        - HasVpc\n"
        '        - [!Sub "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]',
        "      Description: Call recovery worker - streams recordings into Verint.\n"
        "      ManagedPolicyArns: !If\n        - HasVpc\n"
        '        - [!Sub "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"]'),
    ("sns_topics_tls_only",): (
        "            Resource: !Ref AlarmTopic\n            Condition:\n              Bool:",
        "            Resource: !Ref AlarmTopic\n            Condition:\n              BoolIfExists:"),
    ("capture_rate_alarm",): (
        "      Threshold: !Ref CaptureRateThreshold", "      Threshold: 90"),
    ("heartbeat_alarm",): (
        "      DatapointsToAlarm: 3\n      Threshold: 1\n      ComparisonOperator: LessThanThreshold\n"
        "      TreatMissingData: breaching",
        "      DatapointsToAlarm: 3\n      Threshold: 1\n      ComparisonOperator: LessThanThreshold\n"
        "      TreatMissingData: notBreaching"),
    ("dlq_oldest_message_alarm",): (
        "      Threshold: 604800", "      Threshold: 1209600"),
    ("alarms_notify",): (
        "      OKActions:\n        - !Ref AlarmTopic\n"
        "        - !If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AWS::NoValue]\n\n  # A heartbeat",
        "      OKActions:\n        - !Ref AlarmTopic\n\n  # A heartbeat"),
    ("alarms_notify", "stack topic"): (
        "      AlarmActions:\n        - !Ref AlarmTopic\n"
        "        - !If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AWS::NoValue]\n"
        "      OKActions:\n        - !Ref AlarmTopic\n"
        "        - !If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AWS::NoValue]\n\n  # A heartbeat",
        "      AlarmActions:\n"
        "        - !If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AWS::NoValue]\n"
        "      OKActions:\n        - !Ref AlarmTopic\n"
        "        - !If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AWS::NoValue]\n\n  # A heartbeat"),
    # issue 20
    ("queues_and_log_groups_retained",): (
        "  WorkerLogGroup:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n",
        "  WorkerLogGroup:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Delete\n"),
    ("queues_and_log_groups_retained", "a work queue"): (
        "  BackfillQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n",
        "  BackfillQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n"),
    ("worker_timeout_and_visibility",): (
        "      Timeout: 900\n      Role: !GetAtt WorkerRole.Arn", "      Timeout: 300\n      Role: !GetAtt WorkerRole.Arn"),
    ("worker_timeout_and_visibility", "backfill visibility"): (
        "      VisibilityTimeout: 5400 # = 6 x WorkerFunction Timeout (900 s)\n      MessageRetentionPeriod: 345600 # 4 days, shorter",
        "      VisibilityTimeout: 1800\n      MessageRetentionPeriod: 345600 # 4 days, shorter"),
    ("no_ctr_records_alarm",): (
        "      EvaluationPeriods: 1\n      Threshold: 1\n      ComparisonOperator: LessThanThreshold\n"
        "      TreatMissingData: breaching",
        "      EvaluationPeriods: 1\n      Threshold: 1\n      ComparisonOperator: LessThanThreshold\n"
        "      TreatMissingData: notBreaching"),
    ("no_ctr_records_alarm", "unconditional"): (
        "    Condition: ScheduleEnabled\n", ""),
    ("dlq_growth_alarm",): (
        "          Expression: IF(depth - DIFF(depth) > 0, DIFF(depth), 0)", "          Expression: depth"),
    ("dlq_growth_alarm", "NumberOfMessagesSent"): (
        "              MetricName: ApproximateNumberOfMessagesNotVisible", "              MetricName: NumberOfMessagesSent"),
    ("backfill_and_planning_age_alarms",): (
        "        - { Name: QueueName, Value: !GetAtt PlanningQueue.QueueName }",
        "        - { Name: QueueName, Value: !GetAtt PlanningDeadLetterQueue.QueueName }"),
    ("backfill_and_planning_age_alarms", "threshold"): (
        "    MinValue: 3600\n    MaxValue: 259200\n", "    MinValue: 3600\n    MaxValue: 345600\n"),
    ("role_arns_are_outputs",): (
        "    Value: !GetAtt WorkerRole.Arn", "    Value: !Ref WorkerRole"),
    # issue 24
    ("alarms_point_to_the_runbook",): (
        "\n        Runbook: docs/runbook.md#plannererrorsalarm\n", "\n"),
    ("operator_policies",): (
        "          - Sid: QueueAttributes\n            Effect: Allow\n            Action: sqs:GetQueueAttributes\n",
        "          - Sid: QueueAttributes\n            Effect: Allow\n"
        "            Action: [sqs:GetQueueAttributes, sqs:ReceiveMessage]\n"),
    ("operator_policies", "output"): (
        "    Value: !Ref OperatorRedrivePolicy", "    Value: !GetAtt OperatorRedrivePolicy.PolicyArn"),
}


def failed_rules(template_path):
    out = subprocess.run([GUARD, "validate", "-r", str(INFRA / "guard"), "-d", str(template_path),
                          "--show-summary", "fail"], capture_output=True, text=True, check=False)
    return {line.split("/", 1)[1].split()[0] for line in out.stdout.splitlines()
            if "call_recovery.guard/" in line and line.rstrip().endswith("FAIL")}


@unittest.skipUnless(os.access(GUARD, os.X_OK), "cfn-guard not installed (scripts/infra-check.sh installs it)")
class GuardRulesCatchBreakage(unittest.TestCase):
    def test_the_template_passes(self):
        self.assertEqual(failed_rules(TEMPLATE), set())

    def test_each_rule_fails_on_a_template_that_breaks_it(self):
        text = TEMPLATE.read_text()
        with tempfile.TemporaryDirectory() as tmp:
            for key, (old, new) in CASES.items():
                rules = {k for k in key if "_" in k}
                with self.subTest(case=key):
                    self.assertEqual(text.count(old), 1, f"the case's text is not in the template once: {old!r}")
                    broken = Path(tmp) / "template.yaml"
                    broken.write_text(text.replace(old, new))
                    self.assertEqual(failed_rules(broken), rules)


if __name__ == "__main__":
    unittest.main()
