#!/usr/bin/env bash
# scripts/tests/rotate-egress-ip.test.sh — self-contained test of scripts/rotate-egress-ip.sh.
#
#   bash scripts/tests/rotate-egress-ip.test.sh      # PASS/FAIL per case; exit 1 on any FAIL
#
# Puts a fake `gcloud` and a fake `aws` first on PATH: each appends its argv to a log file
# and prints canned answers for the read-only describe calls (tuned per case through FAKE_*
# variables). Then checks that a dry run calls nothing, that every safety gate refuses
# with a message and a non-zero exit before anything is called, that --apply calls the
# expected commands and never a delete/release/disassociate, and the usage errors.
# Needs bash and GNU date; nothing else, no network, no cloud account.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT="$HERE/../rotate-egress-ip.sh"
[[ -x "$SCRIPT" ]] || {
  echo "not executable: $SCRIPT" >&2
  exit 2
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BIN="$WORK/bin"
LOG="$WORK/calls.log"
ALL_LOG="$WORK/all-calls.log"
mkdir -p "$BIN"
: >"$ALL_LOG"

# ---------------------------------------------------------------------------------------
# The fakes

cat >"$BIN/gcloud" <<'FAKE'
#!/usr/bin/env bash
# Fake gcloud: log argv, answer the describes, fail on FAKE_FAIL_MATCH.
printf '%s %s\n' "$(basename "$0")" "$*" >>"$FAKE_CLI_LOG"
args=" $* "
if [[ -n "${FAKE_FAIL_MATCH:-}" && "$args" == *"$FAKE_FAIL_MATCH"* ]]; then
  echo "ERROR: (gcloud) simulated failure" >&2
  exit 1
fi
case "$args" in
  *" addresses describe "*"value(address)"*)
    name="$4"
    for pair in ${FAKE_GCLOUD_ADDRESSES:-egress-awcc-1=198.51.100.4 egress-awcc-2=203.0.113.7}; do
      [[ "${pair%%=*}" == "$name" ]] && echo "${pair#*=}"
    done
    ;;
  *"value(natIps)"* | *"value(action.sourceNatActiveIps)"*)
    echo "${FAKE_GCLOUD_ACTIVE-https://www.googleapis.com/compute/v1/projects/sms-prod/regions/asia-south1/addresses/egress-awcc-1}"
    ;;
  *"value(drainNatIps)"* | *"value(action.sourceNatDrainIps)"*)
    echo "${FAKE_GCLOUD_DRAIN-}"
    ;;
esac
exit 0
FAKE

cat >"$BIN/aws" <<'FAKE'
#!/usr/bin/env bash
# Fake aws: log argv, answer the describes and creates, fail on FAKE_FAIL_MATCH.
printf '%s %s\n' "$(basename "$0")" "$*" >>"$FAKE_CLI_LOG"
args=" $* "
if [[ -n "${FAKE_FAIL_MATCH:-}" && "$args" == *"$FAKE_FAIL_MATCH"* ]]; then
  echo "An error occurred (Simulated) when calling the operation" >&2
  exit 255
fi
case "$args" in
  *" describe-addresses "*)
    for pair in ${FAKE_AWS_ADDRESSES:-eipalloc-0aaa1=198.51.100.4 eipalloc-0bbb2=203.0.113.9}; do
      [[ "$args" == *" ${pair%%=*} "* ]] && echo "${pair#*=}"
    done
    ;;
  *" describe-nat-gateways "*) echo "${FAKE_AWS_NAT_STATE:-available}" ;;
  *" describe-route-tables "*) echo "${FAKE_AWS_ROUTE_TARGET:-nat-0aaa1}" ;;
  *" create-nat-gateway "*) echo "nat-0ccc3" ;;
  *" allocate-address "*) printf 'eipalloc-0bbb2\t203.0.113.9\n' ;;
esac
exit 0
FAKE
chmod +x "$BIN/gcloud" "$BIN/aws"

export PATH="$BIN:$PATH"
export FAKE_CLI_LOG="$LOG"
unset ROTATE_EGRESS_CLI GCLOUD_BIN AWS_BIN EGRESS_PROVIDER FAKE_FAIL_MATCH \
  FAKE_GCLOUD_ADDRESSES FAKE_GCLOUD_ACTIVE FAKE_GCLOUD_DRAIN FAKE_AWS_ADDRESSES \
  FAKE_AWS_NAT_STATE FAKE_AWS_ROUTE_TARGET

# ---------------------------------------------------------------------------------------
# Helpers

RELEASE_DATE="$(date -u -d '+30 days' +%F)"
days_ago() { date -u -d "$1 days ago" +%F; }
hours_ago_iso() { date -u -d "$1 hours ago" +%Y-%m-%dT%H:%MZ; }
OLD_NOTICE="$(days_ago 10)"

GCLOUD_BASE=(--provider gcloud --mno awcc --region asia-south1 --project sms-prod
  --router np-data-router --nat awcc-nat --old-address egress-awcc-1
  --new-address egress-awcc-2 --new-ip 203.0.113.7)
AWS_BASE=(--provider aws --mno awcc --region ap-south-1 --old-nat-gateway-id nat-0aaa1
  --old-allocation-id eipalloc-0aaa1 --new-allocation-id eipalloc-0bbb2 --new-ip 203.0.113.9
  --subnet-id subnet-0ddd4 --route-table-id rtb-0eee5)
GO=(--apply --confirm-mno-allowlisted --notice-sent-at "$OLD_NOTICE")

RC=0
PROBLEMS=()

# run ARGS...: run the script with a fresh call log; RC, $WORK/out, $WORK/err.
run() {
  : >"$LOG"
  set +e
  "$SCRIPT" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  set -e
  cat "$LOG" >>"$ALL_LOG"
}

problem() { PROBLEMS+=("$*"); }
expect_rc() { [[ "$RC" -eq "$1" ]] || problem "exit code $RC, expected $1"; }
expect_nonzero() { [[ "$RC" -ne 0 ]] || problem "exit code 0, expected non-zero"; }
expect_out() { grep -qF -- "$1" "$WORK/out" || problem "stdout lacks: $1"; }
expect_err() { grep -qF -- "$1" "$WORK/err" || problem "stderr lacks: $1"; }
expect_no_calls() { [[ ! -s "$LOG" ]] || problem "the CLI was called: $(head -n 3 "$LOG" | tr '\n' '|')"; }
expect_call() { grep -qF -- "$1" "$LOG" || problem "no call with: $1"; }
expect_no_call() { ! grep -qF -- "$1" "$LOG" || problem "unexpected call with: $1"; }
# No delete, release or disassociate of any kind (gcloud `delete`, aws `release-address`,
# `delete-*`, `disassociate-*`).
expect_nothing_destroyed() {
  if grep -qwE 'delete|release-address|delete-[a-z-]+|disassociate-[a-z-]+|purge' "$LOG"; then
    problem "a destructive command was called: $(grep -wE 'delete|release-address|delete-[a-z-]+|disassociate-[a-z-]+|purge' "$LOG" | head -n 1)"
  fi
}
# The calls appear in this order in the log.
expect_order() {
  local previous=0 needle line
  for needle in "$@"; do
    line="$(grep -nF -- "$needle" "$LOG" | head -n 1 | cut -d: -f1)"
    if [[ -z "$line" ]]; then
      problem "no call with: $needle"
      return
    fi
    ((line > previous)) || problem "call out of order: $needle"
    previous="$line"
  done
}

PASSED=0
FAILED=0
FAILED_NAMES=()

# case NAME FUNCTION: run one case, print PASS or FAIL with its problems.
case_() {
  local name="$1" fn="$2"
  PROBLEMS=()
  "$fn"
  if [[ ${#PROBLEMS[@]} -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %s\n' "$name"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    printf 'FAIL  %s\n' "$name"
    local p
    for p in "${PROBLEMS[@]}"; do
      printf '        %s\n' "$p"
    done
    printf '        --- stdout:\n'
    sed 's/^/        | /' "$WORK/out" | head -n 40
    printf '        --- stderr:\n'
    sed 's/^/        | /' "$WORK/err" | head -n 20
  fi
}

# ---------------------------------------------------------------------------------------
# Cases

t_help() {
  run --help
  expect_rc 0
  expect_out "--apply"
  expect_out "--confirm-mno-allowlisted"
  expect_out "--notice-sent-at"
  expect_out "--provider gcloud|aws"
  expect_out "Exit codes"
  expect_no_calls
}

t_dry_run_gcloud() {
  run "${GCLOUD_BASE[@]}"
  expect_rc 0
  expect_no_calls
  expect_out "DRY RUN: nothing was run"
  expect_out "T-72 h written notice"
  expect_out "the MNO confirmed in writing"
  expect_out "released after $RELEASE_DATE (today + 30 days)"
  expect_out "gcloud compute routers nats update awcc-nat --router=np-data-router --region=asia-south1 --project=sms-prod --quiet --nat-external-ip-pool=egress-awcc-2 --nat-external-drain-ip-pool=egress-awcc-1"
  expect_out "gcloud compute addresses update egress-awcc-1 --region=asia-south1 --project=sms-prod --quiet --update-labels=rotation-state=retired,release-after=$RELEASE_DATE,replaced-by=egress-awcc-2"
}

t_dry_run_gcloud_even_with_go_flags_missing_apply() {
  # Every gate satisfied but no --apply: still nothing runs.
  run "${GCLOUD_BASE[@]}" --confirm-mno-allowlisted --notice-sent-at "$OLD_NOTICE"
  expect_rc 0
  expect_no_calls
  expect_out "DRY RUN"
}

t_dry_run_aws() {
  run "${AWS_BASE[@]}"
  expect_rc 0
  expect_no_calls
  expect_out "DRY RUN: nothing was run"
  expect_out "aws ec2 create-nat-gateway --region ap-south-1 --subnet-id subnet-0ddd4 --allocation-id eipalloc-0bbb2"
  expect_out "aws ec2 replace-route --region ap-south-1 --route-table-id rtb-0eee5 --destination-cidr-block 0.0.0.0/0 --nat-gateway-id '<new-nat-gateway-id>'"
  expect_out "Key=release-after,Value=$RELEASE_DATE"
}

t_dry_run_reserve() {
  run --provider gcloud --mno awcc --region asia-south1 --project sms-prod \
    --new-address egress-awcc-2 --phase reserve
  expect_rc 0
  expect_no_calls
  expect_out "gcloud compute addresses create egress-awcc-2"
}

t_dry_run_needs_no_cli() {
  run "${GCLOUD_BASE[@]}" --cli "$WORK/does-not-exist"
  expect_rc 0
  expect_no_calls
  expect_out "$WORK/does-not-exist compute routers nats update"
}

t_apply_without_confirmation() {
  run "${GCLOUD_BASE[@]}" --apply --notice-sent-at "$OLD_NOTICE"
  expect_nonzero
  expect_rc 3
  expect_err "refused"
  expect_err "--confirm-mno-allowlisted"
  expect_no_calls
}

t_apply_without_confirmation_aws() {
  run "${AWS_BASE[@]}" --apply --notice-sent-at "$OLD_NOTICE"
  expect_rc 3
  expect_err "--confirm-mno-allowlisted"
  expect_no_calls
}

t_apply_without_notice() {
  run "${GCLOUD_BASE[@]}" --apply --confirm-mno-allowlisted
  expect_rc 3
  expect_err "--notice-sent-at"
  expect_no_calls
}

t_apply_notice_one_day_old() {
  run "${GCLOUD_BASE[@]}" --apply --confirm-mno-allowlisted --notice-sent-at "$(days_ago 1)"
  expect_rc 3
  expect_err "at least 72 h old"
  expect_err "the switch is allowed from"
  expect_no_calls
}

t_apply_notice_71_hours_old() {
  run "${AWS_BASE[@]}" --apply --confirm-mno-allowlisted --notice-sent-at "$(hours_ago_iso 71)"
  expect_rc 3
  expect_err "at least 72 h old"
  expect_no_calls
}

t_apply_notice_date_only_3_days_counts_end_of_day() {
  # A bare date counts as 23:59:59 that day, so 3 calendar days ago is not yet 72 h.
  run "${GCLOUD_BASE[@]}" --apply --confirm-mno-allowlisted --notice-sent-at "$(days_ago 3)"
  expect_rc 3
  expect_no_calls
}

t_apply_notice_in_future() {
  run "${GCLOUD_BASE[@]}" --apply --confirm-mno-allowlisted --notice-sent-at "$(date -u -d '+2 days' +%F)"
  expect_rc 3
  expect_err "in the future"
  expect_no_calls
}

t_apply_gcloud() {
  run "${GCLOUD_BASE[@]}" --apply --confirm-mno-allowlisted --notice-sent-at "$(hours_ago_iso 73)"
  expect_rc 0
  expect_order \
    "gcloud compute addresses describe egress-awcc-2 --region=asia-south1 --project=sms-prod --quiet --format=value(address)" \
    "gcloud compute routers nats describe awcc-nat --router=np-data-router" \
    "gcloud compute routers nats update awcc-nat --router=np-data-router --region=asia-south1 --project=sms-prod --quiet --nat-external-ip-pool=egress-awcc-2 --nat-external-drain-ip-pool=egress-awcc-1" \
    "gcloud compute addresses update egress-awcc-1 --region=asia-south1 --project=sms-prod --quiet --update-labels=rotation-state=retired,release-after=$RELEASE_DATE,replaced-by=egress-awcc-2" \
    "gcloud compute addresses update egress-awcc-2"
  expect_no_call "addresses create"
  expect_nothing_destroyed
  expect_out "New egress IP for MNO awcc: 203.0.113.7 (old IP 198.51.100.4 kept until at least $RELEASE_DATE)"
}

t_apply_gcloud_rule_with_kept_addresses() {
  FAKE_GCLOUD_ACTIVE="egress-awcc-1;egress-awcc-3" FAKE_GCLOUD_DRAIN="egress-awcc-0" \
    run "${GCLOUD_BASE[@]}" "${GO[@]}" --nat-rule 100 --keep-address egress-awcc-3 \
    --keep-drain-address egress-awcc-0
  expect_rc 0
  expect_call "gcloud compute routers nats rules describe 100 --nat=awcc-nat --router=np-data-router"
  expect_call "gcloud compute routers nats rules update 100 --nat=awcc-nat --router=np-data-router --region=asia-south1 --project=sms-prod --quiet --source-nat-active-ips=egress-awcc-2,egress-awcc-3 --source-nat-drain-ips=egress-awcc-1,egress-awcc-0"
  expect_no_call "nats update"
  expect_nothing_destroyed
}

t_apply_gcloud_refuses_other_ip() {
  FAKE_GCLOUD_ADDRESSES="egress-awcc-1=198.51.100.4 egress-awcc-2=203.0.113.99" \
    run "${GCLOUD_BASE[@]}" "${GO[@]}"
  expect_rc 3
  expect_err "203.0.113.99"
  expect_call "addresses describe egress-awcc-2"
  expect_no_call "nats update"
  expect_no_call "addresses update"
}

t_apply_gcloud_refuses_unlisted_pool_address() {
  FAKE_GCLOUD_ACTIVE="egress-awcc-1;egress-awcc-9" run "${GCLOUD_BASE[@]}" "${GO[@]}"
  expect_rc 3
  expect_err "egress-awcc-9"
  expect_no_call "nats update"
  expect_no_call "addresses update"
}

t_apply_gcloud_refuses_old_not_in_pool() {
  FAKE_GCLOUD_ACTIVE="egress-awcc-7" run "${GCLOUD_BASE[@]}" "${GO[@]}"
  expect_rc 3
  expect_err "egress-awcc-1 is not an active address"
  expect_no_call "nats update"
}

t_apply_gcloud_reserve() {
  run --provider gcloud --mno AWCC --region asia-south1 --project sms-prod \
    --new-address egress-awcc-2 --phase reserve --apply
  expect_rc 0
  expect_order "gcloud compute addresses create egress-awcc-2 --region=asia-south1 --project=sms-prod" \
    "gcloud compute addresses update egress-awcc-2 --region=asia-south1 --project=sms-prod --quiet --update-labels=smpp-egress-mno=awcc,rotation-state=reserved" \
    "gcloud compute addresses describe egress-awcc-2"
  expect_no_call "nats"
  expect_nothing_destroyed
  expect_out "New egress IP for MNO AWCC: 203.0.113.7"
}

t_apply_gcloud_rollback() {
  FAKE_GCLOUD_ACTIVE="egress-awcc-2" FAKE_GCLOUD_DRAIN="egress-awcc-1" \
    run --provider gcloud --mno awcc --region asia-south1 --project sms-prod \
    --router np-data-router --nat awcc-nat --old-address egress-awcc-1 \
    --new-address egress-awcc-2 --phase rollback --apply --confirm-mno-allowlisted
  expect_rc 0
  expect_call "--nat-external-ip-pool=egress-awcc-1 --nat-external-drain-ip-pool=egress-awcc-2"
  expect_call "compute addresses update egress-awcc-1 --region=asia-south1 --project=sms-prod --quiet --update-labels=rotation-state=active,release-after=cancelled"
  expect_nothing_destroyed
  expect_out "Rolled back"
}

t_apply_rollback_without_confirmation() {
  run --provider gcloud --mno awcc --region asia-south1 --project sms-prod \
    --router np-data-router --nat awcc-nat --old-address egress-awcc-1 \
    --new-address egress-awcc-2 --phase rollback --apply
  expect_rc 3
  expect_err "--confirm-mno-allowlisted"
  expect_no_calls
}

t_apply_aws() {
  run "${AWS_BASE[@]}" "${GO[@]}" --route-table-id rtb-0fff6 --profile prod
  expect_rc 0
  expect_order \
    "aws ec2 describe-addresses --region ap-south-1 --profile prod --allocation-ids eipalloc-0bbb2" \
    "aws ec2 describe-nat-gateways --region ap-south-1 --profile prod --nat-gateway-ids nat-0aaa1" \
    "aws ec2 describe-route-tables --region ap-south-1 --profile prod --route-table-ids rtb-0eee5" \
    "aws ec2 create-nat-gateway --region ap-south-1 --profile prod --subnet-id subnet-0ddd4 --allocation-id eipalloc-0bbb2 --connectivity-type public" \
    "aws ec2 wait nat-gateway-available --region ap-south-1 --profile prod --nat-gateway-ids nat-0ccc3" \
    "aws ec2 replace-route --region ap-south-1 --profile prod --route-table-id rtb-0eee5 --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-0ccc3" \
    "aws ec2 replace-route --region ap-south-1 --profile prod --route-table-id rtb-0fff6 --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-0ccc3" \
    "aws ec2 create-tags --region ap-south-1 --profile prod --resources eipalloc-0aaa1 nat-0aaa1 --tags Key=rotation-state,Value=retired Key=release-after,Value=$RELEASE_DATE Key=replaced-by,Value=nat-0ccc3"
  expect_nothing_destroyed
  expect_out "New egress IP for MNO awcc: 203.0.113.9 (old IP 198.51.100.4 kept until at least $RELEASE_DATE)"
}

t_apply_aws_refuses_wrong_route() {
  FAKE_AWS_ROUTE_TARGET="nat-0999" run "${AWS_BASE[@]}" "${GO[@]}"
  expect_rc 3
  expect_err "points at 'nat-0999'"
  expect_no_call "create-nat-gateway"
  expect_no_call "replace-route"
  expect_no_call "create-tags"
}

t_apply_aws_refuses_unavailable_nat() {
  FAKE_AWS_NAT_STATE="deleting" run "${AWS_BASE[@]}" "${GO[@]}"
  expect_rc 3
  expect_err "not available"
  expect_no_call "create-nat-gateway"
}

t_apply_aws_reserve() {
  run --provider aws --mno awcc --region ap-south-1 --phase reserve --apply
  expect_rc 0
  expect_call "aws ec2 allocate-address --region ap-south-1 --domain vpc --tag-specifications ResourceType=elastic-ip,Tags=[{Key=Name,Value=smpp-egress-awcc-"
  expect_no_call "create-nat-gateway"
  expect_nothing_destroyed
  expect_out "New egress IP for MNO awcc: 203.0.113.9"
  expect_err "--new-allocation-id eipalloc-0bbb2"
}

t_apply_aws_rollback() {
  FAKE_AWS_ROUTE_TARGET="nat-0ccc3" run --provider aws --mno awcc --region ap-south-1 \
    --phase rollback --old-nat-gateway-id nat-0aaa1 --new-nat-gateway-id nat-0ccc3 \
    --route-table-id rtb-0eee5 --apply --confirm-mno-allowlisted
  expect_rc 0
  expect_call "aws ec2 replace-route --region ap-south-1 --route-table-id rtb-0eee5 --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-0aaa1"
  expect_nothing_destroyed
}

t_bad_provider() {
  run --provider azure --mno awcc --region westeurope --apply
  expect_rc 2
  expect_err "--provider must be gcloud or aws"
  expect_no_calls
}

t_missing_provider() {
  run --mno awcc --region asia-south1
  expect_rc 2
  expect_err "--provider is required"
}

t_missing_required_option() {
  run --provider gcloud --mno awcc --region asia-south1 --project sms-prod \
    --new-address egress-awcc-2 --new-ip 203.0.113.7
  expect_rc 2
  expect_err "--old-address is required"
  expect_no_calls
}

t_unknown_option() {
  run "${GCLOUD_BASE[@]}" --yes-really
  expect_rc 2
  expect_err "unknown argument: --yes-really"
}

t_bad_values() {
  run "${GCLOUD_BASE[@]}" --new-ip 203.0.113.300
  expect_rc 2
  expect_err "is not an IPv4 address"
  run "${GCLOUD_BASE[@]}" --notice-sent-at 03/01/2025
  expect_rc 2
  expect_err "--notice-sent-at must be"
  run "${GCLOUD_BASE[@]}" --notice-sent-at 2025-13-45 --apply --confirm-mno-allowlisted
  expect_rc 2
  expect_err "not a calendar date"
  run "${GCLOUD_BASE[@]}" --phase later
  expect_rc 2
  expect_err "--phase must be"
  expect_no_calls
}

t_retention_under_30_days() {
  run "${GCLOUD_BASE[@]}" "${GO[@]}" --retain-days 10
  expect_rc 3
  expect_err "at least 30 days"
  expect_no_calls
}

t_cli_override_flag_and_env() {
  mkdir -p "$WORK/other"
  cp "$BIN/gcloud" "$WORK/other/gcloud-pinned"
  run "${GCLOUD_BASE[@]}" "${GO[@]}" --cli "$WORK/other/gcloud-pinned"
  expect_rc 0
  expect_call "gcloud-pinned compute routers nats update awcc-nat"
  expect_no_call "gcloud compute"
  ROTATE_EGRESS_CLI="$WORK/other/gcloud-pinned" run "${GCLOUD_BASE[@]}" "${GO[@]}"
  expect_rc 0
  expect_call "gcloud-pinned compute routers nats update awcc-nat"
  cp "$BIN/aws" "$WORK/other/aws-pinned"
  AWS_BIN="$WORK/other/aws-pinned" run "${AWS_BASE[@]}" "${GO[@]}"
  expect_rc 0
  expect_call "aws-pinned ec2 create-nat-gateway"
}

t_missing_cli_on_apply() {
  run "${GCLOUD_BASE[@]}" "${GO[@]}" --cli "$WORK/does-not-exist"
  expect_rc 1
  expect_err "was not found"
}

t_cli_failure_stops() {
  FAKE_FAIL_MATCH="nats update" run "${GCLOUD_BASE[@]}" "${GO[@]}"
  expect_rc 1
  expect_err "failed"
  expect_call "nats update"
  expect_no_call "addresses update"
}

t_env_provider() {
  EGRESS_PROVIDER=aws run --mno awcc --region ap-south-1 --phase reserve
  expect_rc 0
  expect_out "aws ec2 allocate-address"
  expect_no_calls
}

# ---------------------------------------------------------------------------------------

case_ "--help exits 0 and documents the options" t_help
case_ "dry run (gcloud) calls nothing, prints the plan and the checklist" t_dry_run_gcloud
case_ "dry run with every gate satisfied but no --apply still calls nothing" t_dry_run_gcloud_even_with_go_flags_missing_apply
case_ "dry run (aws) calls nothing, prints the plan" t_dry_run_aws
case_ "dry run of --phase reserve calls nothing" t_dry_run_reserve
case_ "dry run needs no CLI installed" t_dry_run_needs_no_cli
case_ "--apply without --confirm-mno-allowlisted is refused (gcloud)" t_apply_without_confirmation
case_ "--apply without --confirm-mno-allowlisted is refused (aws)" t_apply_without_confirmation_aws
case_ "--apply without --notice-sent-at is refused" t_apply_without_notice
case_ "--apply with a 1-day-old notice is refused" t_apply_notice_one_day_old
case_ "--apply with a 71-hour-old notice is refused" t_apply_notice_71_hours_old
case_ "--apply with a bare date 3 days ago is refused (counted from 23:59:59)" t_apply_notice_date_only_3_days_counts_end_of_day
case_ "--apply with a notice in the future is refused" t_apply_notice_in_future
case_ "--apply (gcloud) switches the NAT pool, labels the old IP, never deletes" t_apply_gcloud
case_ "--apply (gcloud) with a NAT rule and kept addresses" t_apply_gcloud_rule_with_kept_addresses
case_ "--apply (gcloud) refuses when the reserved IP is not --new-ip" t_apply_gcloud_refuses_other_ip
case_ "--apply (gcloud) refuses to drop an unlisted active address" t_apply_gcloud_refuses_unlisted_pool_address
case_ "--apply (gcloud) refuses when the old address is not in the pool" t_apply_gcloud_refuses_old_not_in_pool
case_ "--apply --phase reserve (gcloud) reserves and prints the new IP" t_apply_gcloud_reserve
case_ "--apply --phase rollback (gcloud) swaps back, never deletes" t_apply_gcloud_rollback
case_ "--apply --phase rollback without confirmation is refused" t_apply_rollback_without_confirmation
case_ "--apply (aws) new NAT gateway, routes switched, old tagged, never released" t_apply_aws
case_ "--apply (aws) refuses when the route does not point at the old NAT gateway" t_apply_aws_refuses_wrong_route
case_ "--apply (aws) refuses when the old NAT gateway is not available" t_apply_aws_refuses_unavailable_nat
case_ "--apply --phase reserve (aws) allocates and prints the new IP" t_apply_aws_reserve
case_ "--apply --phase rollback (aws) routes back to the old NAT gateway" t_apply_aws_rollback
case_ "a bad provider is refused" t_bad_provider
case_ "a missing provider is refused" t_missing_provider
case_ "a missing required option is refused" t_missing_required_option
case_ "an unknown option is refused" t_unknown_option
case_ "malformed values are refused" t_bad_values
case_ "a retention under 30 days is refused" t_retention_under_30_days
case_ "the CLI is overridable by --cli, ROTATE_EGRESS_CLI and AWS_BIN" t_cli_override_flag_and_env
case_ "--apply with a missing CLI fails clearly" t_missing_cli_on_apply
case_ "a failing CLI command stops the run" t_cli_failure_stops
case_ "EGRESS_PROVIDER selects the provider" t_env_provider

# Over every case: nothing destructive was ever called.
PROBLEMS=()
LOG_SAVED="$LOG"
LOG="$ALL_LOG"
expect_nothing_destroyed
LOG="$LOG_SAVED"
if [[ ${#PROBLEMS[@]} -eq 0 ]]; then
  PASSED=$((PASSED + 1))
  echo "PASS  no delete/release/disassociate in any call of any case ($(wc -l <"$ALL_LOG") calls)"
else
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("no destructive call overall")
  echo "FAIL  ${PROBLEMS[*]}"
fi

echo
echo "$PASSED passed, $FAILED failed"
if [[ "$FAILED" -gt 0 ]]; then
  printf 'failed: %s\n' "${FAILED_NAMES[@]}"
  exit 1
fi
