#!/usr/bin/env bash
# scripts/rotate-egress-ip.sh — rotate the egress IP of one MNO's pool (GCP Cloud NAT or an
# AWS NAT gateway), the procedure of docs/runbooks/egress-ip-rotation.md.
#
# Safe by default: without --apply it runs nothing at all (not even a read) and prints every
# command --apply would run, plus the checklist. It never deletes or releases an address:
# the old one is drained/kept and labelled (GCP) or tagged (AWS) with the date after which
# a person may release it. Run --help for everything.
set -euo pipefail

readonly SCRIPT_NAME="rotate-egress-ip.sh"
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  # mapfile, and empty arrays under `set -u`, need bash >= 4.4 (macOS ships 3.2).
  printf '%s: error: needs bash >= 4.4 (this is %s; on macOS: brew install bash)\n' \
    "$SCRIPT_NAME" "$BASH_VERSION" >&2
  exit 2
fi
readonly MIN_NOTICE_HOURS=72
readonly MIN_RETAIN_DAYS=30

# Exit codes (also in --help).
readonly EXIT_FAILED=1  # a cloud CLI command failed, or the CLI is missing
readonly EXIT_USAGE=2   # bad or missing option
readonly EXIT_REFUSED=3 # a safety check refused (notice, confirmation, pool state, IP mismatch)

usage() {
  cat <<'EOF'
Usage: scripts/rotate-egress-ip.sh --provider gcloud|aws --mno OPERATOR_ID --region REGION
                                   [--phase reserve|switch|rollback] [provider options]
                                   [--apply [--confirm-mno-allowlisted] [--notice-sent-at DATE]]

Rotates the egress IP of one MNO's pool in two phases, because the MNO must be told the
new IP in writing at least 72 h before traffic uses it:

  --phase reserve   reserve the new IP and print it (for the T-72 h notice). Touches no
                    traffic path, so it needs no MNO confirmation.
  --phase switch    (default) move the pool to the new IP reserved in phase reserve. The old
                    IP is NOT released: on GCP it becomes a drain IP (its established SMPP
                    sessions stay up until they reconnect), on AWS its NAT gateway and
                    Elastic IP stay allocated; either is labelled/tagged
                    release-after=<today + retain days>.
  --phase rollback  move the pool back to the old IP (valid while the MNO still allow-lists
                    it, i.e. within the retention period).

SAFE BY DEFAULT: without --apply nothing is run, not even a read-only describe; the script
prints the checklist and every command --apply would run (values only known at run time
are shown as <placeholders>). This script never deletes or releases an address, a NAT or a
NAT gateway: releasing the old IP after the retention period is a separate, manual change.

Common options:
  --provider gcloud|aws        cloud CLI flavour (or env EGRESS_PROVIDER)
  --mno OPERATOR_ID            the operator ([A-Za-z0-9_-]{1,64}), used in labels, tags, names
  --region REGION              cloud region of the NAT
  --phase reserve|switch|rollback
  --apply                      really run the commands (default: dry run)
  --confirm-mno-allowlisted    switch/rollback with --apply: the MNO confirmed in writing that
                               the IP traffic moves to is on their allow list
  --notice-sent-at DATE        switch with --apply: when the written notice with the new IP
                               was sent: YYYY-MM-DD (counted as 23:59:59 UTC that day, to be
                               safe) or YYYY-MM-DDTHH:MM[:SS]Z. Must be >= 72 h ago.
  --new-ip A.B.C.D             switch: the new IP exactly as given in the notice; the reserved
                               address must have it, else the switch is refused
  --retain-days N              days the old IP is kept before it may be released (default 30,
                               at least 30)
  --cli PATH                   the CLI binary (default: env ROTATE_EGRESS_CLI, else env
                               GCLOUD_BIN / AWS_BIN for the provider, else gcloud / aws on PATH)
  -h, --help                   this text

gcloud (Cloud NAT with manually reserved static addresses):
  --project PROJECT            GCP project (required)
  --new-address NAME           name of the new static address (reserve, switch, rollback)
  --old-address NAME           name of the address in use now (switch, rollback)
  --router ROUTER              Cloud Router of the NAT (switch, rollback)
  --nat NAT                    Cloud NAT config name (switch, rollback)
  --nat-rule NUMBER            rotate the IPs of this NAT rule (a per-destination rule for the
                               MNO's SMPP IP) instead of the NAT's own pool
  --keep-address NAME          another active address of the pool that stays active (repeat);
                               the active list is replaced as a whole, so list every one
  --keep-drain-address NAME    an address already draining that stays draining (repeat)

aws (one NAT gateway per MNO; the switch creates a new NAT gateway on the new Elastic IP and
points the MNO's route(s) at it, since a NAT gateway's primary IP cannot be changed):
  --profile PROFILE            AWS CLI profile (optional)
  --name NAME                  Name tag of the new EIP / NAT gateway
                               (default smpp-egress-<mno>-<YYYYMMDD>)
  --new-allocation-id ID       switch: the Elastic IP reserved in phase reserve (eipalloc-…)
  --old-allocation-id ID       switch: the Elastic IP in use now (tagged, never released)
  --old-nat-gateway-id ID      switch, rollback: the NAT gateway in use now / to go back to
  --new-nat-gateway-id ID      rollback: the NAT gateway created by the switch
  --subnet-id ID               switch: public subnet for the new NAT gateway
  --route-table-id ID          switch, rollback: route table sending the MNO's traffic to the
                               NAT gateway (repeat for several)
  --destination-cidr CIDR      the route's destination (default 0.0.0.0/0; e.g. the MNO's
                               SMPP IP/32 when only that route goes through the NAT)

Before changing anything, --apply reads the current state and refuses (exit 3) when it is
not what the options say: the new address's IP differs from --new-ip, the old address is
not in the pool, the pool holds an address not listed with --keep-address, the route does
not point at the old NAT gateway, the old NAT gateway is not available.

Needs bash >= 4.4 and GNU date (BSD date works too); nothing else besides the cloud CLI.

Exit codes:
  0  done (or dry run printed)
  1  a cloud CLI command failed, or the CLI is missing (see its message above)
  2  usage error: unknown, missing or malformed option
  3  refused by a safety check: no MNO confirmation, notice missing or under 72 h old,
     retention under 30 days, or the cloud state is not what the options say

Examples:
  # T-72 h or earlier: reserve the new IP (dry run first, then --apply) and send the notice
  scripts/rotate-egress-ip.sh --provider gcloud --mno awcc --region asia-south1 \
      --project sms-prod --phase reserve --new-address smpp-egress-awcc-2 --apply
  # after >= 72 h and the MNO's written confirmation: the switch
  scripts/rotate-egress-ip.sh --provider gcloud --mno awcc --region asia-south1 \
      --project sms-prod --router np-data-router --nat awcc-nat \
      --old-address smpp-egress-awcc-1 --new-address smpp-egress-awcc-2 \
      --new-ip 203.0.113.7 --notice-sent-at 2025-03-03 --confirm-mno-allowlisted --apply
EOF
}

# ----------------------------------------------------------------------------------------
# Messages and exits

die_usage() {
  printf '%s: error: %s (see --help)\n' "$SCRIPT_NAME" "$*" >&2
  exit "$EXIT_USAGE"
}

refuse() {
  printf '%s: refused: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit "$EXIT_REFUSED"
}

fail() {
  printf '%s: failed: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit "$EXIT_FAILED"
}

info() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

# ----------------------------------------------------------------------------------------
# Dates (GNU date, with a BSD date fallback)

# The date N days from today (UTC), YYYY-MM-DD.
date_plus_days() {
  local days="$1"
  date -u -d "+${days} days" +%F 2>/dev/null || date -u -v+"${days}"d +%F
}

today() {
  date -u +%F
}

now_epoch() {
  date -u +%s
}

# Seconds since the epoch of an ISO time YYYY-MM-DDTHH:MM:SSZ; fails when it is not a date.
epoch_of() {
  local iso="$1"
  date -u -d "$iso" +%s 2>/dev/null || date -u -j -f '%Y-%m-%dT%H:%M:%SZ' "$iso" +%s 2>/dev/null
}

# Normalise --notice-sent-at to YYYY-MM-DDTHH:MM:SSZ. A bare date counts as the last second
# of that day: the notice may have gone out at any time that day.
notice_iso() {
  local value="$1"
  if [[ "$value" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
    printf '%sT23:59:59Z\n' "$value"
  elif [[ "$value" =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2})Z$ ]]; then
    printf '%s:00Z\n' "${BASH_REMATCH[1]}"
  elif [[ "$value" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]; then
    printf '%s\n' "$value"
  else
    return 1
  fi
}

format_epoch() {
  date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ
}

# ----------------------------------------------------------------------------------------
# Options

PROVIDER="${EGRESS_PROVIDER:-}"
MNO=""
REGION=""
PHASE="switch"
APPLY=0
CONFIRMED=0
NOTICE_SENT_AT=""
NEW_IP=""
RETAIN_DAYS="$MIN_RETAIN_DAYS"
CLI=""
# gcloud
PROJECT=""
NEW_ADDRESS=""
OLD_ADDRESS=""
ROUTER=""
NAT=""
NAT_RULE=""
KEEP_ADDRESSES=()
KEEP_DRAIN_ADDRESSES=()
# aws
PROFILE=""
NAME=""
NEW_ALLOCATION_ID=""
OLD_ALLOCATION_ID=""
OLD_NAT_GATEWAY_ID=""
NEW_NAT_GATEWAY_ID=""
SUBNET_ID=""
ROUTE_TABLE_IDS=()
DESTINATION_CIDR="0.0.0.0/0"

# The value of option $1 given as $2, which must be present and not another option.
need_value() {
  if [[ $# -lt 2 || -z "$2" || "$2" == --* ]]; then
    die_usage "$1 needs a value"
  fi
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help)
        usage
        exit 0
        ;;
      --apply) APPLY=1 ;;
      --confirm-mno-allowlisted) CONFIRMED=1 ;;
      --provider | --mno | --region | --phase | --notice-sent-at | --new-ip | --retain-days | \
        --cli | --project | --new-address | --old-address | --router | --nat | --nat-rule | \
        --keep-address | --keep-drain-address | --profile | --name | --new-allocation-id | \
        --old-allocation-id | --old-nat-gateway-id | --new-nat-gateway-id | --subnet-id | \
        --route-table-id | --destination-cidr)
        need_value "$@"
        set_option "$1" "$2"
        shift
        ;;
      --*=*)
        local name="${1%%=*}" value="${1#*=}"
        shift
        set -- "$name" "$value" "$@"
        continue
        ;;
      *) die_usage "unknown argument: $1" ;;
    esac
    shift
  done
}

set_option() {
  case "$1" in
    --provider) PROVIDER="$2" ;;
    --mno) MNO="$2" ;;
    --region) REGION="$2" ;;
    --phase) PHASE="$2" ;;
    --notice-sent-at) NOTICE_SENT_AT="$2" ;;
    --new-ip) NEW_IP="$2" ;;
    --retain-days) RETAIN_DAYS="$2" ;;
    --cli) CLI="$2" ;;
    --project) PROJECT="$2" ;;
    --new-address) NEW_ADDRESS="$2" ;;
    --old-address) OLD_ADDRESS="$2" ;;
    --router) ROUTER="$2" ;;
    --nat) NAT="$2" ;;
    --nat-rule) NAT_RULE="$2" ;;
    --keep-address) KEEP_ADDRESSES+=("$2") ;;
    --keep-drain-address) KEEP_DRAIN_ADDRESSES+=("$2") ;;
    --profile) PROFILE="$2" ;;
    --name) NAME="$2" ;;
    --new-allocation-id) NEW_ALLOCATION_ID="$2" ;;
    --old-allocation-id) OLD_ALLOCATION_ID="$2" ;;
    --old-nat-gateway-id) OLD_NAT_GATEWAY_ID="$2" ;;
    --new-nat-gateway-id) NEW_NAT_GATEWAY_ID="$2" ;;
    --subnet-id) SUBNET_ID="$2" ;;
    --route-table-id) ROUTE_TABLE_IDS+=("$2") ;;
    --destination-cidr) DESTINATION_CIDR="$2" ;;
  esac
}

require() {
  local option="$1" value="$2"
  [[ -n "$value" ]] || die_usage "$option is required for --provider $PROVIDER --phase $PHASE"
}

valid_ipv4() {
  local ip="$1" octet
  [[ "$ip" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  for octet in "${BASH_REMATCH[@]:1}"; do
    ((10#$octet <= 255)) || return 1
  done
}

# GCP resource names: lower case letter first, then lower case letters, digits, dashes.
valid_gcp_name() {
  [[ "$1" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]]
}

validate() {
  case "$PROVIDER" in
    gcloud | aws) ;;
    "") die_usage "--provider is required (gcloud or aws)" ;;
    *) die_usage "--provider must be gcloud or aws, not '$PROVIDER'" ;;
  esac
  case "$PHASE" in
    reserve | switch | rollback) ;;
    *) die_usage "--phase must be reserve, switch or rollback, not '$PHASE'" ;;
  esac
  require --mno "$MNO"
  [[ "$MNO" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die_usage "--mno must match [A-Za-z0-9_-]{1,64}"
  require --region "$REGION"
  [[ "$REGION" =~ ^[a-z0-9-]+$ ]] || die_usage "--region '$REGION' is not a region name"
  [[ "$RETAIN_DAYS" =~ ^[0-9]+$ ]] || die_usage "--retain-days must be a number of days"
  if [[ -n "$NEW_IP" ]] && ! valid_ipv4 "$NEW_IP"; then
    die_usage "--new-ip '$NEW_IP' is not an IPv4 address"
  fi
  if [[ -n "$NOTICE_SENT_AT" ]] && ! notice_iso "$NOTICE_SENT_AT" >/dev/null; then
    die_usage "--notice-sent-at must be YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z, not '$NOTICE_SENT_AT'"
  fi
  [[ "$DESTINATION_CIDR" =~ ^[0-9.]+/[0-9]{1,2}$ ]] || die_usage "--destination-cidr '$DESTINATION_CIDR' is not an IPv4 CIDR"
  if [[ "$PROVIDER" == gcloud ]]; then
    validate_gcloud
  else
    validate_aws
  fi
}

validate_gcloud() {
  require --project "$PROJECT"
  require --new-address "$NEW_ADDRESS"
  valid_gcp_name "$NEW_ADDRESS" || die_usage "--new-address '$NEW_ADDRESS' is not a valid GCP name"
  if [[ "$PHASE" != reserve ]]; then
    require --old-address "$OLD_ADDRESS"
    require --router "$ROUTER"
    require --nat "$NAT"
    valid_gcp_name "$OLD_ADDRESS" || die_usage "--old-address '$OLD_ADDRESS' is not a valid GCP name"
    [[ "$OLD_ADDRESS" != "$NEW_ADDRESS" ]] || die_usage "--old-address and --new-address are the same"
    if [[ -n "$NAT_RULE" && ! "$NAT_RULE" =~ ^[0-9]+$ ]]; then
      die_usage "--nat-rule must be a rule number"
    fi
    local keep
    for keep in "${KEEP_ADDRESSES[@]}" "${KEEP_DRAIN_ADDRESSES[@]}"; do
      valid_gcp_name "$keep" || die_usage "'$keep' is not a valid GCP address name"
      [[ "$keep" != "$OLD_ADDRESS" && "$keep" != "$NEW_ADDRESS" ]] ||
        die_usage "--keep-address / --keep-drain-address must not name the old or the new address"
    done
  fi
  if [[ "$PHASE" == switch ]]; then
    require --new-ip "$NEW_IP"
  fi
}

validate_aws() {
  local id
  case "$PHASE" in
    switch)
      require --new-allocation-id "$NEW_ALLOCATION_ID"
      require --old-allocation-id "$OLD_ALLOCATION_ID"
      require --old-nat-gateway-id "$OLD_NAT_GATEWAY_ID"
      require --subnet-id "$SUBNET_ID"
      require --new-ip "$NEW_IP"
      [[ ${#ROUTE_TABLE_IDS[@]} -gt 0 ]] || die_usage "--route-table-id is required for --provider aws --phase switch"
      ;;
    rollback)
      require --old-nat-gateway-id "$OLD_NAT_GATEWAY_ID"
      require --new-nat-gateway-id "$NEW_NAT_GATEWAY_ID"
      [[ ${#ROUTE_TABLE_IDS[@]} -gt 0 ]] || die_usage "--route-table-id is required for --provider aws --phase rollback"
      ;;
  esac
  for id in "$NEW_ALLOCATION_ID" "$OLD_ALLOCATION_ID"; do
    [[ -z "$id" || "$id" =~ ^eipalloc-[0-9a-f]+$ ]] || die_usage "'$id' is not an Elastic IP allocation id (eipalloc-…)"
  done
  for id in "$OLD_NAT_GATEWAY_ID" "$NEW_NAT_GATEWAY_ID"; do
    [[ -z "$id" || "$id" =~ ^nat-[0-9a-f]+$ ]] || die_usage "'$id' is not a NAT gateway id (nat-…)"
  done
  [[ -z "$SUBNET_ID" || "$SUBNET_ID" =~ ^subnet-[0-9a-f]+$ ]] || die_usage "'$SUBNET_ID' is not a subnet id (subnet-…)"
  for id in "${ROUTE_TABLE_IDS[@]}"; do
    [[ "$id" =~ ^rtb-[0-9a-f]+$ ]] || die_usage "'$id' is not a route table id (rtb-…)"
  done
  [[ -z "$NAME" || "$NAME" =~ ^[A-Za-z0-9._-]{1,128}$ ]] || die_usage "--name may hold letters, digits, '.', '_' and '-' only"
}

# ----------------------------------------------------------------------------------------
# Safety gates of --apply

RELEASE_AFTER=""
NOTICE_STATUS="not given"
NOTICE_OK=0

check_dates() {
  ((RETAIN_DAYS >= MIN_RETAIN_DAYS)) ||
    refuse "--retain-days $RETAIN_DAYS: the old IP is kept at least $MIN_RETAIN_DAYS days"
  RELEASE_AFTER="$(date_plus_days "$RETAIN_DAYS")"
  if [[ -n "$NOTICE_SENT_AT" ]]; then
    local iso sent now allowed
    iso="$(notice_iso "$NOTICE_SENT_AT")"
    sent="$(epoch_of "$iso")" || die_usage "--notice-sent-at '$NOTICE_SENT_AT' is not a calendar date"
    now="$(now_epoch)"
    allowed=$((sent + MIN_NOTICE_HOURS * 3600))
    if ((sent > now)); then
      NOTICE_STATUS="$iso is in the future"
    elif ((now < allowed)); then
      NOTICE_STATUS="$iso: only $(((now - sent) / 3600)) h ago; the switch is allowed from $(format_epoch "$allowed")"
    else
      NOTICE_OK=1
      NOTICE_STATUS="$iso: $(((now - sent) / 3600)) h ago, OK (>= ${MIN_NOTICE_HOURS} h)"
    fi
  fi
}

gate_apply() {
  [[ "$APPLY" -eq 1 ]] || return 0
  case "$PHASE" in
    reserve) ;;
    switch)
      [[ "$CONFIRMED" -eq 1 ]] ||
        refuse "--apply of the switch needs --confirm-mno-allowlisted: the MNO must have confirmed in writing that $NEW_IP is on their allow list"
      [[ -n "$NOTICE_SENT_AT" ]] ||
        refuse "--apply of the switch needs --notice-sent-at: the written notice with the new IP must be at least ${MIN_NOTICE_HOURS} h old"
      [[ "$NOTICE_OK" -eq 1 ]] ||
        refuse "the notice must be at least ${MIN_NOTICE_HOURS} h old: --notice-sent-at $NOTICE_STATUS"
      ;;
    rollback)
      [[ "$CONFIRMED" -eq 1 ]] ||
        refuse "--apply of the rollback needs --confirm-mno-allowlisted: the MNO must still allow-list the old IP (within the ${MIN_RETAIN_DAYS}-day retention)"
      ;;
  esac
}

resolve_cli() {
  if [[ -z "$CLI" ]]; then
    if [[ -n "${ROTATE_EGRESS_CLI:-}" ]]; then
      CLI="$ROTATE_EGRESS_CLI"
    elif [[ "$PROVIDER" == gcloud ]]; then
      CLI="${GCLOUD_BIN:-gcloud}"
    else
      CLI="${AWS_BIN:-aws}"
    fi
  fi
  if [[ "$APPLY" -eq 1 ]] && ! command -v "$CLI" >/dev/null 2>&1; then
    fail "the $PROVIDER CLI '$CLI' was not found (set --cli PATH)"
  fi
}

# ----------------------------------------------------------------------------------------
# Steps: printed in a dry run, run with --apply

STEP_NO=0
STEP_OUT=""

# A word safe to print without quotes, else single-quoted.
shell_quote() {
  local word="$1"
  if [[ "$word" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$word"
  else
    printf "'%s'" "${word//\'/\'\\\'\'}"
  fi
}

command_line() {
  local line word
  line="$(shell_quote "$CLI")"
  for word in "$@"; do
    line+=" $(shell_quote "$word")"
  done
  printf '%s' "$line"
}

# Defence in depth: nothing this script runs may delete, release or disassociate anything.
guard_not_destructive() {
  local word
  for word in "$@"; do
    case "$word" in
      delete | delete-* | release | release-address | disassociate-* | purge | remove)
        fail "internal error: refusing to run a destructive command ($word)"
        ;;
    esac
  done
}

# step read|change DESCRIPTION ARGS...: the output of the command is in STEP_OUT (empty in a
# dry run).
step() {
  local kind="$1" description="$2"
  shift 2
  guard_not_destructive "$@"
  STEP_NO=$((STEP_NO + 1))
  STEP_OUT=""
  if [[ "$APPLY" -eq 0 ]]; then
    printf '%2d. [%s] %s\n    %s\n' "$STEP_NO" "$kind" "$description" "$(command_line "$@")"
    return 0
  fi
  info "step $STEP_NO [$kind] $description"
  info "+ $(command_line "$@")"
  if ! STEP_OUT="$("$CLI" "$@")"; then
    fail "step $STEP_NO ($description) failed; nothing after it was run. Check the state by hand before running again."
  fi
  STEP_OUT="$(printf '%s' "$STEP_OUT" | tr -d '\r' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')"
}

applying() {
  [[ "$APPLY" -eq 1 ]]
}

# Names of the addresses in a gcloud list (URLs or names, separated by ; , or spaces).
address_names() {
  printf '%s\n' "$1" | tr ';,' '  ' | tr -s '[:space:]' '\n' | sed -e 's#.*/##' -e '/^$/d'
}

# in_list WORD LIST...
in_list() {
  local word="$1" item
  shift
  for item in "$@"; do
    [[ "$item" == "$word" ]] && return 0
  done
  return 1
}

join_by_comma() {
  local IFS=,
  printf '%s' "$*"
}

label_value() {
  # GCP label values: lower case letters, digits, '_' and '-', at most 63.
  local value
  value="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')"
  printf '%s' "${value:0:63}"
}

# ----------------------------------------------------------------------------------------
# gcloud

GCLOUD_SCOPE=()

gcloud_scope() {
  GCLOUD_SCOPE=(--region="$REGION" --project="$PROJECT" --quiet)
}

gcloud_address_ip() {
  local name="$1" what="$2"
  step read "$what" compute addresses describe "$name" "${GCLOUD_SCOPE[@]}" --format='value(address)'
}

# Read the NAT's (or the rule's) active and drain lists into CURRENT_ACTIVE / CURRENT_DRAIN.
CURRENT_ACTIVE=()
CURRENT_DRAIN=()

gcloud_read_pool() {
  local active_field drain_field target
  if [[ -n "$NAT_RULE" ]]; then
    active_field="action.sourceNatActiveIps"
    drain_field="action.sourceNatDrainIps"
    target=(compute routers nats rules describe "$NAT_RULE" --nat="$NAT" --router="$ROUTER")
  else
    active_field="natIps"
    drain_field="drainNatIps"
    target=(compute routers nats describe "$NAT" --router="$ROUTER")
  fi
  step read "active addresses of the NAT${NAT_RULE:+ rule $NAT_RULE} now" \
    "${target[@]}" "${GCLOUD_SCOPE[@]}" --format="value($active_field)"
  mapfile -t CURRENT_ACTIVE < <(address_names "$STEP_OUT")
  step read "draining addresses of the NAT${NAT_RULE:+ rule $NAT_RULE} now" \
    "${target[@]}" "${GCLOUD_SCOPE[@]}" --format="value($drain_field)"
  mapfile -t CURRENT_DRAIN < <(address_names "$STEP_OUT")
}

# check_pool FROM TO: the pool must hold FROM, and nothing the new lists would silently drop.
check_pool() {
  local from="$1" to="$2" name
  applying || return 0
  in_list "$from" "${CURRENT_ACTIVE[@]}" ||
    refuse "$from is not an active address of the NAT${NAT_RULE:+ rule $NAT_RULE} (active now: ${CURRENT_ACTIVE[*]:-none}); nothing was changed"
  for name in "${CURRENT_ACTIVE[@]}"; do
    in_list "$name" "$from" "$to" "${KEEP_ADDRESSES[@]}" ||
      refuse "active address $name is not named with --keep-address: the switch would drop it; nothing was changed"
  done
  for name in "${CURRENT_DRAIN[@]}"; do
    in_list "$name" "$from" "$to" "${KEEP_DRAIN_ADDRESSES[@]}" ||
      refuse "draining address $name is not named with --keep-drain-address; nothing was changed"
  done
}

# gcloud_set_pool ACTIVE DRAIN (comma lists)
gcloud_set_pool() {
  local active="$1" drain="$2" description="$3"
  if [[ -n "$NAT_RULE" ]]; then
    step change "$description" compute routers nats rules update "$NAT_RULE" --nat="$NAT" \
      --router="$ROUTER" "${GCLOUD_SCOPE[@]}" \
      --source-nat-active-ips="$active" --source-nat-drain-ips="$drain"
  else
    step change "$description" compute routers nats update "$NAT" --router="$ROUTER" \
      "${GCLOUD_SCOPE[@]}" --nat-external-ip-pool="$active" --nat-external-drain-ip-pool="$drain"
  fi
}

NEW_IP_FOUND=""
OLD_IP_FOUND=""

gcloud_reserve() {
  local mno_label
  mno_label="$(label_value "$MNO")"
  step change "reserve the new static address" compute addresses create "$NEW_ADDRESS" \
    "${GCLOUD_SCOPE[@]}" --description="smpp-connector egress IP of MNO $MNO"
  step change "label it" compute addresses update "$NEW_ADDRESS" "${GCLOUD_SCOPE[@]}" \
    --update-labels="smpp-egress-mno=$mno_label,rotation-state=reserved,reserved-on=$(today)"
  gcloud_address_ip "$NEW_ADDRESS" "the new IP (for the notice)"
  NEW_IP_FOUND="${STEP_OUT:-<new IP>}"
}

gcloud_switch() {
  local active drain
  gcloud_address_ip "$NEW_ADDRESS" "the reserved new address must have --new-ip"
  if applying && [[ "$STEP_OUT" != "$NEW_IP" ]]; then
    refuse "address $NEW_ADDRESS has IP '${STEP_OUT}', not $NEW_IP (the IP in the notice); reserve it first with --phase reserve; nothing was changed"
  fi
  NEW_IP_FOUND="$NEW_IP"
  gcloud_address_ip "$OLD_ADDRESS" "the old IP (kept, drained)"
  OLD_IP_FOUND="${STEP_OUT:-<old IP>}"
  gcloud_read_pool
  check_pool "$OLD_ADDRESS" "$NEW_ADDRESS"
  active="$(join_by_comma "$NEW_ADDRESS" "${KEEP_ADDRESSES[@]}")"
  drain="$(join_by_comma "$OLD_ADDRESS" "${KEEP_DRAIN_ADDRESSES[@]}")"
  gcloud_set_pool "$active" "$drain" "switch: new connections use $NEW_ADDRESS; $OLD_ADDRESS drains (its sessions stay up)"
  step change "label the old address with its release date (it is NOT released)" \
    compute addresses update "$OLD_ADDRESS" "${GCLOUD_SCOPE[@]}" \
    --update-labels="rotation-state=retired,release-after=$RELEASE_AFTER,replaced-by=$NEW_ADDRESS"
  step change "label the new address active" compute addresses update "$NEW_ADDRESS" \
    "${GCLOUD_SCOPE[@]}" --update-labels="rotation-state=active,active-since=$(today)"
}

gcloud_rollback() {
  local active drain
  gcloud_address_ip "$OLD_ADDRESS" "the old IP traffic goes back to"
  OLD_IP_FOUND="${STEP_OUT:-<old IP>}"
  gcloud_read_pool
  check_pool "$NEW_ADDRESS" "$OLD_ADDRESS"
  active="$(join_by_comma "$OLD_ADDRESS" "${KEEP_ADDRESSES[@]}")"
  drain="$(join_by_comma "$NEW_ADDRESS" "${KEEP_DRAIN_ADDRESSES[@]}")"
  gcloud_set_pool "$active" "$drain" "rollback: new connections use $OLD_ADDRESS again; $NEW_ADDRESS drains"
  step change "label the old address active again (release date cancelled)" \
    compute addresses update "$OLD_ADDRESS" "${GCLOUD_SCOPE[@]}" \
    --update-labels="rotation-state=active,release-after=cancelled,replaced-by=none"
  step change "label the new address rolled back (it is NOT released)" \
    compute addresses update "$NEW_ADDRESS" "${GCLOUD_SCOPE[@]}" \
    --update-labels="rotation-state=rolled-back,rolled-back-on=$(today)"
}

# ----------------------------------------------------------------------------------------
# aws

AWS_SCOPE=()

aws_scope() {
  AWS_SCOPE=(--region "$REGION")
  if [[ -n "$PROFILE" ]]; then
    AWS_SCOPE+=(--profile "$PROFILE")
  fi
  # No pager: the script reads the CLI's output.
  export AWS_PAGER=""
}

aws_tags() {
  local resource_type="$1" state="$2"
  printf 'ResourceType=%s,Tags=[{Key=Name,Value=%s},{Key=smpp-egress-mno,Value=%s},{Key=rotation-state,Value=%s}]' \
    "$resource_type" "$NAME" "$MNO" "$state"
}

aws_check_route() {
  local table="$1" expected="$2"
  step read "route $DESTINATION_CIDR of $table must point at $expected" \
    ec2 describe-route-tables "${AWS_SCOPE[@]}" --route-table-ids "$table" \
    --query "RouteTables[0].Routes[?DestinationCidrBlock=='$DESTINATION_CIDR'].NatGatewayId" --output text
  if applying && [[ "$STEP_OUT" != "$expected" ]]; then
    refuse "route $DESTINATION_CIDR of $table points at '${STEP_OUT}', not $expected; nothing was changed"
  fi
}

aws_check_nat_available() {
  local nat="$1"
  step read "NAT gateway $nat must be available" ec2 describe-nat-gateways "${AWS_SCOPE[@]}" \
    --nat-gateway-ids "$nat" --query 'NatGateways[0].State' --output text
  if applying && [[ "$STEP_OUT" != available ]]; then
    refuse "NAT gateway $nat is '${STEP_OUT}', not available; nothing was changed"
  fi
}

aws_reserve() {
  local allocation
  step change "allocate the new Elastic IP" ec2 allocate-address "${AWS_SCOPE[@]}" --domain vpc \
    --tag-specifications "$(aws_tags elastic-ip reserved)" \
    --query '[AllocationId,PublicIp]' --output text
  if applying; then
    read -r allocation NEW_IP_FOUND <<<"$STEP_OUT" || true
    [[ -n "$allocation" && -n "$NEW_IP_FOUND" ]] || fail "unexpected answer of allocate-address: '$STEP_OUT'"
    info "new Elastic IP $NEW_IP_FOUND, allocation id $allocation (use --new-allocation-id $allocation for the switch)"
  else
    NEW_IP_FOUND="<new IP>"
  fi
}

aws_switch() {
  local table new_nat
  step read "the reserved Elastic IP must have --new-ip" ec2 describe-addresses "${AWS_SCOPE[@]}" \
    --allocation-ids "$NEW_ALLOCATION_ID" --query 'Addresses[0].PublicIp' --output text
  if applying && [[ "$STEP_OUT" != "$NEW_IP" ]]; then
    refuse "$NEW_ALLOCATION_ID has IP '${STEP_OUT}', not $NEW_IP (the IP in the notice); nothing was changed"
  fi
  NEW_IP_FOUND="$NEW_IP"
  step read "the old IP (kept)" ec2 describe-addresses "${AWS_SCOPE[@]}" \
    --allocation-ids "$OLD_ALLOCATION_ID" --query 'Addresses[0].PublicIp' --output text
  OLD_IP_FOUND="${STEP_OUT:-<old IP>}"
  aws_check_nat_available "$OLD_NAT_GATEWAY_ID"
  for table in "${ROUTE_TABLE_IDS[@]}"; do
    aws_check_route "$table" "$OLD_NAT_GATEWAY_ID"
  done
  step change "create the new NAT gateway on the new Elastic IP" ec2 create-nat-gateway \
    "${AWS_SCOPE[@]}" --subnet-id "$SUBNET_ID" --allocation-id "$NEW_ALLOCATION_ID" \
    --connectivity-type public --tag-specifications "$(aws_tags natgateway active)" \
    --query 'NatGateway.NatGatewayId' --output text
  new_nat="${STEP_OUT:-<new-nat-gateway-id>}"
  if applying && [[ ! "$new_nat" =~ ^nat-[0-9a-f]+$ ]]; then
    fail "unexpected answer of create-nat-gateway: '$new_nat'"
  fi
  step read "wait until it is available" ec2 wait nat-gateway-available "${AWS_SCOPE[@]}" \
    --nat-gateway-ids "$new_nat"
  for table in "${ROUTE_TABLE_IDS[@]}"; do
    step change "switch: route $DESTINATION_CIDR of $table to the new NAT gateway" \
      ec2 replace-route "${AWS_SCOPE[@]}" --route-table-id "$table" \
      --destination-cidr-block "$DESTINATION_CIDR" --nat-gateway-id "$new_nat"
  done
  step change "tag the old Elastic IP and NAT gateway with their release date (NOT released)" \
    ec2 create-tags "${AWS_SCOPE[@]}" --resources "$OLD_ALLOCATION_ID" "$OLD_NAT_GATEWAY_ID" \
    --tags Key=rotation-state,Value=retired "Key=release-after,Value=$RELEASE_AFTER" \
    "Key=replaced-by,Value=$new_nat"
  step change "tag the new Elastic IP active" ec2 create-tags "${AWS_SCOPE[@]}" \
    --resources "$NEW_ALLOCATION_ID" --tags Key=rotation-state,Value=active \
    "Key=active-since,Value=$(today)"
  if applying; then
    info "new NAT gateway: $new_nat (for a rollback: --old-nat-gateway-id $OLD_NAT_GATEWAY_ID --new-nat-gateway-id $new_nat)"
  fi
}

aws_rollback() {
  local table
  aws_check_nat_available "$OLD_NAT_GATEWAY_ID"
  for table in "${ROUTE_TABLE_IDS[@]}"; do
    aws_check_route "$table" "$NEW_NAT_GATEWAY_ID"
  done
  for table in "${ROUTE_TABLE_IDS[@]}"; do
    step change "rollback: route $DESTINATION_CIDR of $table to the old NAT gateway" \
      ec2 replace-route "${AWS_SCOPE[@]}" --route-table-id "$table" \
      --destination-cidr-block "$DESTINATION_CIDR" --nat-gateway-id "$OLD_NAT_GATEWAY_ID"
  done
  step change "tag the old NAT gateway active again (release date cancelled)" \
    ec2 create-tags "${AWS_SCOPE[@]}" --resources "$OLD_NAT_GATEWAY_ID" \
    --tags Key=rotation-state,Value=active Key=release-after,Value=cancelled
  step change "tag the new NAT gateway rolled back (NOT deleted)" ec2 create-tags \
    "${AWS_SCOPE[@]}" --resources "$NEW_NAT_GATEWAY_ID" \
    --tags Key=rotation-state,Value=rolled-back "Key=rolled-back-on,Value=$(today)"
}

# ----------------------------------------------------------------------------------------
# Checklist

mark() {
  if [[ "$1" -eq 1 ]]; then printf '[x]'; else printf '[ ]'; fi
}

print_checklist() {
  local notice_given=0
  [[ "$NOTICE_OK" -eq 1 ]] && notice_given=1
  printf '== Egress IP rotation of MNO %s: provider %s, region %s, phase %s ==\n' \
    "$MNO" "$PROVIDER" "$REGION" "$PHASE"
  printf 'Checklist (docs/runbooks/egress-ip-rotation.md):\n'
  printf '  [ ] new IP reserved (--phase reserve) and known: %s\n' "${NEW_IP:-<run --phase reserve; it prints the IP>}"
  printf '  %s T-%d h written notice with the new IP sent to the MNO (--notice-sent-at: %s)\n' \
    "$(mark "$notice_given")" "$MIN_NOTICE_HOURS" "$NOTICE_STATUS"
  printf '  %s the MNO confirmed in writing that the new IP is allow-listed (--confirm-mno-allowlisted: %s)\n' \
    "$(mark "$CONFIRMED")" "$([[ "$CONFIRMED" -eq 1 ]] && echo given || echo not given)"
  printf '  [ ] switch at a quiet hour, never together with another MNO, then restart the binds one at a time\n'
  printf '  [ ] old IP kept %d days: it may be released after %s (today + %d days), by hand, once the MNO\n' \
    "$RETAIN_DAYS" "$RELEASE_AFTER" "$RETAIN_DAYS"
  printf '      confirmed it is off their allow list. This script never releases or deletes an IP.\n'
  printf '\n'
}

# ----------------------------------------------------------------------------------------

main() {
  parse_args "$@"
  validate
  check_dates
  if [[ -z "$NAME" ]]; then
    NAME="smpp-egress-${MNO}-$(date -u +%Y%m%d)"
  fi
  resolve_cli
  print_checklist
  gate_apply
  if [[ "$APPLY" -eq 0 ]]; then
    printf 'DRY RUN: nothing was run. With --apply these commands would run, in order\n'
    printf '(read = read-only check, change = changes the cloud; <...> = known at run time):\n'
  fi
  if [[ "$PROVIDER" == gcloud ]]; then
    gcloud_scope
    "gcloud_$PHASE"
  else
    aws_scope
    "aws_$PHASE"
  fi
  if [[ "$APPLY" -eq 0 ]]; then
    printf '\nTo run them: add --apply'
    case "$PHASE" in
      switch) printf ' --confirm-mno-allowlisted --notice-sent-at YYYY-MM-DD (>= %d h ago)' "$MIN_NOTICE_HOURS" ;;
      rollback) printf ' --confirm-mno-allowlisted' ;;
    esac
    printf '.\n'
    return 0
  fi
  case "$PHASE" in
    reserve)
      printf 'New egress IP for MNO %s: %s\n' "$MNO" "$NEW_IP_FOUND"
      printf 'Next: send the written notice with this IP to the MNO; switch no earlier than %d h after it.\n' "$MIN_NOTICE_HOURS"
      ;;
    switch)
      printf 'New egress IP for MNO %s: %s (old IP %s kept until at least %s)\n' \
        "$MNO" "$NEW_IP_FOUND" "$OLD_IP_FOUND" "$RELEASE_AFTER"
      printf 'Next: restart the binds one at a time and have the MNO confirm the source IP (runbook).\n'
      ;;
    rollback)
      printf 'Rolled back: MNO %s egresses from the old IP %s again.\n' "$MNO" "$OLD_IP_FOUND"
      printf 'Next: restart the binds one at a time; tell the MNO.\n'
      ;;
  esac
}

main "$@"
