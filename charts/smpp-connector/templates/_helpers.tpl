{{/*
Shared definitions. Every per-Deployment template ranges over "smpp-connector.units": one
unit per (MNO x direction), computed and validated once here.
*/}}

{{/* Labels on every object of the release. */}}
{{- define "smpp-connector.commonLabels" -}}
app.kubernetes.io/name: smpp-connector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Selector of one unit's pods (argument: dict "root" $ "u" $unit). Never changes for an
existing Deployment: a Deployment's selector is immutable. */}}
{{- define "smpp-connector.selectorLabels" -}}
app.kubernetes.io/name: smpp-connector
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: connector
smpp-connector/mno: {{ .u.name | quote }}
smpp-connector/direction: {{ .u.direction | quote }}
{{- end }}

{{/* Labels of one unit's objects (argument: dict "root" $ "u" $unit). */}}
{{- define "smpp-connector.unitLabels" -}}
{{ include "smpp-connector.commonLabels" .root }}
app.kubernetes.io/component: connector
smpp-connector/mno: {{ .u.name | quote }}
smpp-connector/direction: {{ .u.direction | quote }}
smpp-connector/egress-ip-pool: {{ .u.egressIpPool | quote }}
{{- end }}

{{/* Labels of the release-wide objects (ServiceMonitor, PrometheusRule, dashboard). */}}
{{- define "smpp-connector.releaseLabels" -}}
{{ include "smpp-connector.commonLabels" . }}
app.kubernetes.io/component: monitoring
{{- end }}

{{/* The Services the ServiceMonitor selects: every unit's Service of this release. */}}
{{- define "smpp-connector.serviceSelector" -}}
app.kubernetes.io/name: smpp-connector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: connector
{{- end }}

{{/* An IP or CIDR as a CIDR: a bare IPv4 gets /32, a bare IPv6 /128. */}}
{{- define "smpp-connector.cidr" -}}
{{- if contains "/" . -}}{{ . }}
{{- else if contains ":" . -}}{{ . }}/128
{{- else -}}{{ . }}/32
{{- end -}}
{{- end }}

{{/* A config value as an environment variable's text: whole numbers without an exponent or
a decimal point (values arrive as floats), everything else as Go prints it. */}}
{{- define "smpp-connector.envValue" -}}
{{- if kindIs "float64" . -}}
{{- if eq (floor .) . -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end }}

{{/* The image reference. */}}
{{- define "smpp-connector.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "smpp-connector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default "smpp-connector" }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end }}

{{/*
Every (MNO x direction) as JSON {"units": [...]}; use with
  (include "smpp-connector.units" . | fromJson).units
Each unit: fullName, name, mnoId, operatorIds, direction, lanes, replicas, egressIpPool,
endpoints [{cidr, port, mno}], config (global < MNO < direction), grace, graceNeeded,
resources, smppTls. Fails rendering with one line on anything the schema cannot express.
*/}}
{{- define "smpp-connector.units" -}}
{{- $v := .Values -}}
{{- $units := list -}}
{{- $byId := dict -}}
{{- $names := dict -}}
{{- range $m := $v.mnos -}}
  {{- if hasKey $byId $m.id -}}{{- fail (printf "mnos: operator id %q is listed twice" $m.id) -}}{{- end -}}
  {{- $_ := set $byId $m.id $m -}}
{{- end -}}
{{- if $v.mnos -}}
  {{- if not $v.nats.url -}}{{- fail "nats.url is required (NATS_URL)" -}}{{- end -}}
  {{- if not $v.database.urlSecret.name -}}{{- fail "database.urlSecret.name is required (DATABASE_URL comes from a Secret)" -}}{{- end -}}
  {{- if not $v.admin.tokenSecret.name -}}{{- fail "admin.tokenSecret.name is required (ADMIN_TOKEN comes from a Secret)" -}}{{- end -}}
  {{- if not $v.oms.baseUrl -}}{{- fail "oms.baseUrl is required (OMS_BASE_URL)" -}}{{- end -}}
  {{- if and $v.redis.url $v.redis.urlSecret.name -}}{{- fail "redis: set redis.url or redis.urlSecret.name, not both (REDIS_URL)" -}}{{- end -}}
  {{- if not (or $v.redis.url $v.redis.urlSecret.name) -}}{{- fail "redis.url or redis.urlSecret.name is required (REDIS_URL)" -}}{{- end -}}
  {{- if and $v.oms.tls.enabled (not $v.oms.tls.secretName) -}}{{- fail "oms.tls.secretName is required when oms.tls.enabled" -}}{{- end -}}
  {{- range $b := list "nats" "redis" "database" -}}
    {{- $tls := (get $v $b).tls -}}
    {{- if and $tls.enabled (not $tls.secretName) -}}{{- fail (printf "%s.tls.secretName is required when %s.tls.enabled" $b $b) -}}{{- end -}}
  {{- end -}}
  {{- if and $v.redis.tls.enabled $v.redis.url (not (hasPrefix "rediss" $v.redis.url)) -}}
    {{- fail (printf "redis.tls.enabled sets REDIS_TLS_*, which the service refuses beside the plaintext REDIS_URL %q: use rediss://, rediss-cluster:// or rediss-sentinel://" (regexReplaceAll "^([a-z-]+://)[^@/]*@" $v.redis.url "${1}")) -}}
  {{- end -}}
  {{- if eq (int64 $v.ports.http) (int64 $v.ports.admin) -}}{{- fail "ports.http and ports.admin must differ" -}}{{- end -}}
  {{- if $v.networkPolicy.enabled -}}
    {{- range $backend := list "nats" "redis" "postgresql" "oms" -}}
      {{- $b := get $v.networkPolicy.egress $backend -}}
      {{- if not (or $b.cidrs $b.destinations) -}}
        {{- fail (printf "networkPolicy.egress.%s has neither cidrs nor destinations: the pods could not reach %s (set them, or networkPolicy.enabled=false)" $backend $backend) -}}
      {{- end -}}
      {{- range $i, $d := ($b.destinations | default list) -}}
        {{- if not (or $d.cidrs $d.namespaceSelector $d.podSelector) -}}
          {{- fail (printf "networkPolicy.egress.%s.destinations[%d]: set cidrs, namespaceSelector and/or podSelector" $backend $i) -}}
        {{- end -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- range $m := $v.mnos -}}
  {{- $name := $m.name | default $m.id -}}
  {{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,42}[a-z0-9])?$" $name) -}}
    {{- fail (printf "mnos[%s]: %q cannot name Kubernetes objects (lowercase letters, digits and '-', at most 44): set mnos[].name" $m.id $name) -}}
  {{- end -}}
  {{- if hasKey $names $name -}}{{- fail (printf "mnos: name %q is used by two MNOs" $name) -}}{{- end -}}
  {{- $_ := set $names $name true -}}
  {{- $endpoints := list -}}
  {{- range $e := $m.smppEndpoints -}}
    {{- $endpoints = append $endpoints (dict "cidr" (include "smpp-connector.cidr" $e.ip) "port" $e.port "mno" $m.id) -}}
  {{- end -}}
  {{- range $b := ($m.backupMnos | default list) -}}
    {{- if eq $b $m.id -}}{{- fail (printf "mnos[%s].backupMnos names the MNO itself" $m.id) -}}{{- end -}}
    {{- if not (hasKey $byId $b) -}}{{- fail (printf "mnos[%s].backupMnos: %q is not an MNO of this release (its smppEndpoints are needed)" $m.id $b) -}}{{- end -}}
    {{- range $e := (get $byId $b).smppEndpoints -}}
      {{- $endpoints = append $endpoints (dict "cidr" (include "smpp-connector.cidr" $e.ip) "port" $e.port "mno" $b) -}}
    {{- end -}}
  {{- end -}}
  {{- $smppTls := mergeOverwrite (deepCopy $v.smppTls) (deepCopy ($m.smppTls | default dict)) -}}
  {{- if and $smppTls.enabled (not $smppTls.secretName) -}}{{- fail (printf "mnos[%s]: smppTls.secretName is required when smppTls.enabled" $m.id) -}}{{- end -}}
  {{- $seen := dict -}}
  {{- range $d := $m.directions -}}
    {{- if hasKey $seen $d.direction -}}{{- fail (printf "mnos[%s]: direction %s is listed twice" $m.id $d.direction) -}}{{- end -}}
    {{- $_ := set $seen $d.direction true -}}
    {{- $cfg := mergeOverwrite (dict) (deepCopy ($v.config | default dict)) (deepCopy ($m.config | default dict)) (deepCopy ($d.config | default dict)) -}}
    {{- $replicas := $v.replicas -}}
    {{- if hasKey $d "replicas" -}}{{- $replicas = $d.replicas -}}{{- end -}}
    {{- if and (eq (toString (get $cfg "BIND_OWNERSHIP")) "off") (gt (int64 $replicas) 1) -}}
      {{- fail (printf "smpp-connector-%s-%s: BIND_OWNERSHIP=off runs every bind in each pod, so replicas must be 1 (got %v)" $name $d.direction $replicas) -}}
    {{- end -}}
    {{- $ttl := int64 (get $cfg "OWNER_TTL_MS" | default 30000) -}}
    {{- $refresh := int64 (get $cfg "OWNER_REFRESH_MS" | default 10000) -}}
    {{- if ge (mul $refresh 2) $ttl -}}
      {{- fail (printf "smpp-connector-%s-%s: OWNER_REFRESH_MS (%d) must be below half of OWNER_TTL_MS (%d)" $name $d.direction $refresh $ttl) -}}
    {{- end -}}
    {{- $drainMs := int64 (get $cfg "DRAIN_TIMEOUT_MS" | default 10000) -}}
    {{- $bindMs := int64 (get $cfg "BIND_TIMEOUT_MS" | default 10000) -}}
    {{- /* drain in-flight submits, unbind (bounded by the bind timeout), 2 s, up to 5 s to release the KV keys */ -}}
    {{- $needed := add (int64 $v.preStopSleepSeconds) (div (add $drainMs $bindMs 7000 999) 1000) -}}
    {{- $grace := $v.terminationGracePeriodSeconds -}}
    {{- if hasKey $m "terminationGracePeriodSeconds" -}}{{- $grace = $m.terminationGracePeriodSeconds -}}{{- end -}}
    {{- if hasKey $d "terminationGracePeriodSeconds" -}}{{- $grace = $d.terminationGracePeriodSeconds -}}{{- end -}}
    {{- if le (int64 $grace) $needed -}}
      {{- fail (printf "smpp-connector-%s-%s: terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + DRAIN_TIMEOUT_MS + BIND_TIMEOUT_MS + 2 s + 5 s = %d s" $name $d.direction (int64 $grace) $needed) -}}
    {{- end -}}
    {{- $units = append $units (dict
        "fullName" (printf "smpp-connector-%s-%s" $name $d.direction)
        "name" $name
        "mnoId" $m.id
        "operatorIds" ($m.operatorIds | default list)
        "direction" $d.direction
        "lanes" ($d.lanes | default list)
        "replicas" (int64 $replicas)
        "egressIpPool" $m.egressIpPool
        "endpoints" $endpoints
        "config" $cfg
        "grace" (int64 $grace)
        "graceNeeded" $needed
        "resources" ($d.resources | default $v.resources)
        "smppTls" $smppTls
      ) -}}
  {{- end -}}
{{- end -}}
{{- toJson (dict "units" $units) -}}
{{- end }}

{{/* One NetworkPolicy peer list from {namespaceSelector, podSelector} (argument: dict "name"
"peer"); an empty selector is left out (an empty namespaceSelector would mean every namespace). */}}
{{- define "smpp-connector.peers" -}}
{{- $peer := dict -}}
{{- with .peer.namespaceSelector -}}{{- $_ := set $peer "namespaceSelector" . -}}{{- end -}}
{{- with .peer.podSelector -}}{{- $_ := set $peer "podSelector" . -}}{{- end -}}
{{- if not $peer -}}
{{- fail (printf "networkPolicy.ingress.%s: set namespaceSelector and/or podSelector" .name) -}}
{{- end -}}
{{- toYaml (list $peer) -}}
{{- end }}

{{/* Egress ports (TCP) of a NetworkPolicy rule from a list of numbers and "N-M" ranges
(port + endPort). */}}
{{- define "smpp-connector.egressPorts" -}}
{{- range . }}
{{- if kindIs "string" . }}
{{- $r := splitList "-" . }}
{{- if lt (int64 (index $r 1)) (int64 (index $r 0)) }}
{{- fail (printf "networkPolicy.egress: port range %q ends before it starts" .) }}
{{- end }}
{{- if or (lt (int64 (index $r 0)) 1) (gt (int64 (index $r 1)) 65535) }}
{{- fail (printf "networkPolicy.egress: port range %q is not within 1-65535" .) }}
{{- end }}
- protocol: TCP
  port: {{ int64 (index $r 0) }}
  {{- if ne (int64 (index $r 1)) (int64 (index $r 0)) }}
  endPort: {{ int64 (index $r 1) }}
  {{- end }}
{{- else }}
- protocol: TCP
  port: {{ int64 . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The `to` peers of one egress destination {cidrs, namespaceSelector, podSelector}: an
ipBlock per CIDR, and one selector peer when a selector is set (an empty selector is left
out, as for ingress: no namespaceSelector means the release's namespace). */}}
{{- define "smpp-connector.egressPeers" -}}
{{- $peers := list -}}
{{- range (.cidrs | default list) -}}
{{- $peers = append $peers (dict "ipBlock" (dict "cidr" (include "smpp-connector.cidr" .))) -}}
{{- end -}}
{{- $sel := dict -}}
{{- with .namespaceSelector -}}{{- $_ := set $sel "namespaceSelector" . -}}{{- end -}}
{{- with .podSelector -}}{{- $_ := set $sel "podSelector" . -}}{{- end -}}
{{- if $sel -}}{{- $peers = append $peers $sel -}}{{- end -}}
{{- toYaml $peers -}}
{{- end }}

{{/* Env of a TLS block {enabled, clientAuth, caKey, certKey, keyKey} mounted at .dir
(argument: dict "prefix" "NATS_TLS" "dir" "/etc/..." "tls" $tls): {prefix}_CA_FILE, and
{prefix}_CERT_FILE / {prefix}_KEY_FILE with clientAuth. */}}
{{- define "smpp-connector.tlsEnv" -}}
{{- if .tls.enabled }}
- name: {{ .prefix }}_CA_FILE
  value: {{ printf "%s/%s" .dir .tls.caKey | quote }}
{{- if .tls.clientAuth }}
- name: {{ .prefix }}_CERT_FILE
  value: {{ printf "%s/%s" .dir .tls.certKey | quote }}
- name: {{ .prefix }}_KEY_FILE
  value: {{ printf "%s/%s" .dir .tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret volume of a TLS block (argument: dict "name" "nats-tls" "tls" $tls): the CA,
and the certificate and key with clientAuth; 0440, group fsGroup (10001), read by the
pod's user only through its group. */}}
{{- define "smpp-connector.tlsVolume" -}}
{{- if .tls.enabled }}
- name: {{ .name }}
  secret:
    secretName: {{ .tls.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .tls.caKey }}
        path: {{ .tls.caKey }}
      {{- if .tls.clientAuth }}
      - key: {{ .tls.certKey }}
        path: {{ .tls.certKey }}
      - key: {{ .tls.keyKey }}
        path: {{ .tls.keyKey }}
      {{- end }}
{{- end }}
{{- end }}
