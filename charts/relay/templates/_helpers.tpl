{{/*
Names and labels.
*/}}
{{- define "relay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "relay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
relay.suffixedName: the full name with a suffix ("metrics", "headless"), cut so that the whole stays
within the 63 characters of a Service name. Arguments: list context suffix.
*/}}
{{- define "relay.suffixedName" -}}
{{- $suffix := printf "-%s" (index . 1) -}}
{{- printf "%s%s" (include "relay.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end }}

{{- define "relay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
relay.podLabels: the selector labels and podLabels, which may not repeat a selector key: the pods would
no longer match their own workload's selector.
*/}}
{{- define "relay.podLabels" -}}
{{- $selector := include "relay.selectorLabels" . | fromYaml -}}
{{- range $key, $_ := .Values.podLabels -}}
{{- if hasKey $selector $key -}}
{{- fail (printf "podLabels: %s is a selector label the chart sets (to %s); remove it from podLabels (nameOverride changes app.kubernetes.io/name)" $key (get $selector $key)) -}}
{{- end -}}
{{- end -}}
{{- toYaml (merge (deepCopy (default dict .Values.podLabels)) $selector) -}}
{{- end }}

{{- define "relay.labels" -}}
helm.sh/chart: {{ include "relay.chart" . }}
{{ include "relay.selectorLabels" . }}
app.kubernetes.io/version: {{ include "relay.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: twilio-relay
{{- end }}

{{- define "relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "relay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "relay.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "relay.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "relay.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Paths inside the container.
*/}}
{{- define "relay.configDir" -}}/etc/relay/config{{- end }}
{{- define "relay.kafkaCADir" -}}/etc/relay/kafka-ca{{- end }}
{{- define "relay.kafkaClientDir" -}}/etc/relay/kafka-client{{- end }}

{{/*
The chart's Secret: which credentials it holds (a dict of key -> value), and whether it exists.
A credential comes from the chart's Secret when its value is set and no existingSecret names another.
*/}}
{{- define "relay.secretData" -}}
{{- $v := .Values -}}
{{- $d := dict -}}
{{- if and $v.twilio.authTokens (not $v.twilio.existingSecret) -}}
{{- $_ := set $d "twilio-auth-tokens" (join "," $v.twilio.authTokens) -}}
{{- end -}}
{{- if and $v.twilio.basicAuth.password (not $v.twilio.basicAuth.existingSecret) -}}
{{- $_ := set $d "twilio-basic-auth-password" $v.twilio.basicAuth.password -}}
{{- end -}}
{{- if and $v.kafka.sasl.password (not $v.kafka.sasl.existingSecret) -}}
{{- $_ := set $d "kafka-sasl-password" $v.kafka.sasl.password -}}
{{- end -}}
{{- with $v.adminAuth -}}
{{- if and .enabled (not .existingSecret) -}}
{{- range $name := include "relay.adminAuthKeys" $ | fromYamlArray -}}
{{- $_ := set $d (printf "admin-%s" $name) (index $v.adminAuth $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $d -}}
{{- end }}

{{/*
relay.secretEnv: the environment variables that carry credentials into the pod, as a list of EnvVar
(YAML). Each is rendered only when a source exists; relay.config fails when the configuration refers
to one that has none.
*/}}
{{- define "relay.secretEnv" -}}
{{- $v := .Values -}}
{{- $own := include "relay.fullname" . -}}
{{- $env := list -}}
{{- with $v.twilio -}}
{{- if .existingSecret -}}
{{- $env = append $env (dict "name" "TWILIO_AUTH_TOKENS" "valueFrom" (dict "secretKeyRef" (dict "name" .existingSecret "key" .existingSecretKey))) -}}
{{- else if .authTokens -}}
{{- $env = append $env (dict "name" "TWILIO_AUTH_TOKENS" "valueFrom" (dict "secretKeyRef" (dict "name" $own "key" "twilio-auth-tokens"))) -}}
{{- end -}}
{{- if .basicAuth.existingSecret -}}
{{- $env = append $env (dict "name" "TWILIO_BASIC_AUTH_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .basicAuth.existingSecret "key" .basicAuth.existingSecretKey))) -}}
{{- else if .basicAuth.password -}}
{{- $env = append $env (dict "name" "TWILIO_BASIC_AUTH_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" $own "key" "twilio-basic-auth-password"))) -}}
{{- end -}}
{{- end -}}
{{- if $v.adminAuth.enabled -}}
{{- range $name := include "relay.adminAuthKeys" $ | fromYamlArray -}}
{{- $ref := include "relay.adminAuthRef" (list $ $name) | fromYaml -}}
{{- $env = append $env (dict "name" (printf "RELAY_ADMIN_%s" (upper $name)) "valueFrom" (dict "secretKeyRef" $ref)) -}}
{{- end -}}
{{- end -}}
{{- with $v.kafka.sasl -}}
{{- if .existingSecret -}}
{{- $env = append $env (dict "name" "KAFKA_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .existingSecret "key" .existingSecretKey))) -}}
{{- else if .password -}}
{{- $env = append $env (dict "name" "KAFKA_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" $own "key" "kafka-sasl-password"))) -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end }}

{{/*
relay.checkSecretRef fails unless the value that names a literal credential is a reference to an
environment variable: "${VAR}" or "${VAR:-}" (comma-separated entries each). Arguments: list path value.
*/}}
{{/*
relay.adminAuthKeys: the admin credentials adminAuth.type needs, as a YAML list: [token] or [username,
password].
*/}}
{{- define "relay.adminAuthKeys" -}}
{{- if eq .Values.adminAuth.type "basic" -}}
[username, password]
{{- else -}}
[token]
{{- end -}}
{{- end }}

{{/*
relay.adminAuthRef: the SecretKeySelector (YAML) of one admin credential (token, username, password):
in existingSecret under its configured key, else in the chart's Secret as admin-<name>. Argument: list
root name.
*/}}
{{- define "relay.adminAuthRef" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $a := $root.Values.adminAuth -}}
{{- if $a.existingSecret -}}
name: {{ $a.existingSecret }}
key: {{ index $a.existingSecretKeys $name }}
{{- else -}}
name: {{ include "relay.fullname" $root }}
key: admin-{{ $name }}
{{- end -}}
{{- end }}

{{- define "relay.checkSecretRef" -}}
{{- $path := index . 0 -}}
{{- $value := toString (index . 1) -}}
{{- range $part := splitList "," $value -}}
{{- if and (trim $part) (not (regexMatch "^\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-)?\\}$" (trim $part))) -}}
{{- fail (printf "%s: write credentials as ${VAR} references to environment variables filled from a Secret (twilio.*, kafka.sasl.* or extraEnv), never literally: the ConfigMap is not secret" $path) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
relay.config renders the relay's configuration file: .Values.config with the chart's values filled in
where an entry does not set them, checked for the mistakes the chart can see (missing publicUrl, tokens,
brokers; literal credentials; listeners the pod cannot probe). The relay checks the rest at start-up.
*/}}
{{- define "relay.config" -}}
{{- $v := .Values -}}
{{- range $path, $pair := dict "twilio.authTokens" (list $v.twilio.authTokens $v.twilio.existingSecret) "twilio.basicAuth.password" (list $v.twilio.basicAuth.password $v.twilio.basicAuth.existingSecret) "kafka.sasl.password" (list $v.kafka.sasl.password $v.kafka.sasl.existingSecret) "adminAuth.token" (list (or $v.adminAuth.token $v.adminAuth.password) $v.adminAuth.existingSecret) -}}
{{- if and (index $pair 0) (index $pair 1) -}}
{{- fail (printf "set %s or the existingSecret beside it, not both" $path) -}}
{{- end -}}
{{- end -}}
{{- $cfg := deepCopy (default dict $v.config) -}}
{{- $_ := set $cfg "listen" (default ":8080" $cfg.listen) -}}
{{- $admin := default dict $cfg.admin -}}
{{- $_ := set $admin "listen" (default ":9090" $admin.listen) -}}
{{- with $v.adminAuth -}}
{{- if .enabled -}}
{{- if not (has .type (list "bearer" "basic")) -}}
{{- fail (printf "adminAuth.type: %q is neither bearer nor basic" .type) -}}
{{- end -}}
{{- if not .existingSecret -}}
{{- range $name := include "relay.adminAuthKeys" $ | fromYamlArray -}}
{{- if not (index $v.adminAuth $name) -}}
{{- fail (printf "adminAuth.%s or adminAuth.existingSecret is required with adminAuth.enabled (type %s)" $name $v.adminAuth.type) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if eq .type "basic" -}}
{{- $_ := set $admin "auth" (dict "username" "${RELAY_ADMIN_USERNAME}" "password" "${RELAY_ADMIN_PASSWORD}") -}}
{{- else -}}
{{- $_ := set $admin "auth" (dict "token" "${RELAY_ADMIN_TOKEN}") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $admin.auth -}}
{{- include "relay.checkSecretRef" (list "config.admin.auth.token" (default "" .token)) -}}
{{- include "relay.checkSecretRef" (list "config.admin.auth.password" (default "" .password)) -}}
{{- end -}}
{{- $_ := set $cfg "admin" $admin -}}
{{- range $path, $addr := dict "config.listen" $cfg.listen "config.admin.listen" $admin.listen -}}
{{- if not (regexMatch "^(0\\.0\\.0\\.0|\\[::\\])?:[0-9]{1,5}$" (toString $addr)) -}}
{{- fail (printf "%s: %q must be a literal :PORT on every interface (e.g. \":8080\"): the container ports, probes and Service are derived from it" $path (toString $addr)) -}}
{{- end -}}
{{- end -}}
{{- if not $cfg.endpoints -}}
{{- fail "config.endpoints: at least one endpoint is required" -}}
{{- end -}}
{{- $endpoints := list -}}
{{- $takers := 0 -}}
{{- range $i, $ep := $cfg.endpoints -}}
{{- $ep = deepCopy $ep -}}
{{- $p := printf "config.endpoints[%d]" $i -}}
{{- if not $ep.public_url -}}
{{- if not $v.publicUrl -}}
{{- fail (printf "publicUrl is required: set it to the exact URL Twilio calls, the Event Streams sink destination (e.g. https://relay.example.com%s). X-Twilio-Signature is verified against it." (default "/twilio/events" $ep.path)) -}}
{{- end -}}
{{- $takers = add1 $takers -}}
{{- $_ := set $ep "public_url" $v.publicUrl -}}
{{- end -}}
{{- if not $ep.auth_tokens -}}
{{- $_ := set $ep "auth_tokens" (list "${TWILIO_AUTH_TOKENS}") -}}
{{- end -}}
{{- range $j, $t := $ep.auth_tokens -}}
{{- include "relay.checkSecretRef" (list (printf "%s.auth_tokens[%d]" $p $j) $t) -}}
{{- end -}}
{{- if and (not $ep.basic_auth) $v.twilio.basicAuth.username -}}
{{- $_ := set $ep "basic_auth" (dict "username" $v.twilio.basicAuth.username "password" "${TWILIO_BASIC_AUTH_PASSWORD}") -}}
{{- end -}}
{{- with $ep.basic_auth -}}
{{- include "relay.checkSecretRef" (list (printf "%s.basic_auth.password" $p) .password) -}}
{{- end -}}
{{- $endpoints = append $endpoints $ep -}}
{{- end -}}
{{- if gt $takers 1 -}}
{{- fail "publicUrl fills the public_url of one endpoint only: set public_url on the other entries of config.endpoints" -}}
{{- end -}}
{{- $_ := set $cfg "endpoints" $endpoints -}}
{{- $sinks := list -}}
{{- range $i, $s := $cfg.sinks -}}
{{- $s = deepCopy $s -}}
{{- if hasKey $s "kafka" -}}
{{- $p := printf "config.sinks[%d].kafka" $i -}}
{{- $k := default dict $s.kafka -}}
{{- if not $k.brokers -}}
{{- if not $v.kafka.brokers -}}
{{- fail "kafka.brokers is required: the Kafka bootstrap brokers as host:port (Strimzi: <cluster>-kafka-bootstrap.<namespace>:9092; Bitnami release \"kafka\": kafka.<namespace>:9092)" -}}
{{- end -}}
{{- $_ := set $k "brokers" $v.kafka.brokers -}}
{{- end -}}
{{- if and (not (hasKey $k "sasl")) $v.kafka.sasl.mechanism -}}
{{- $_ := set $k "sasl" (dict "mechanism" $v.kafka.sasl.mechanism "username" $v.kafka.sasl.username "password" "${KAFKA_PASSWORD}") -}}
{{- end -}}
{{- with $k.sasl -}}
{{- include "relay.checkSecretRef" (list (printf "%s.sasl.password" $p) (default "" .password)) -}}
{{- end -}}
{{- if and (not (hasKey $k "tls")) $v.kafka.tls.enabled -}}
{{- $tls := dict "enabled" true -}}
{{- with $v.kafka.tls -}}
{{- if .serverName }}{{ $_ := set $tls "server_name" .serverName }}{{ end -}}
{{- if .insecureSkipVerify }}{{ $_ := set $tls "insecure_skip_verify" true }}{{ end -}}
{{- if .caSecret.name }}{{ $_ := set $tls "ca_file" (printf "%s/ca.crt" (include "relay.kafkaCADir" $)) }}{{ end -}}
{{- if .clientCertSecret.name -}}
{{- $_ := set $tls "cert_file" (printf "%s/tls.crt" (include "relay.kafkaClientDir" $)) -}}
{{- $_ := set $tls "key_file" (printf "%s/tls.key" (include "relay.kafkaClientDir" $)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $k "tls" $tls -}}
{{- end -}}
{{- $_ := set $s "kafka" $k -}}
{{- end -}}
{{- $sinks = append $sinks $s -}}
{{- end -}}
{{- $_ := set $cfg "sinks" $sinks -}}
{{- $spool := default dict $cfg.spool -}}
{{- if $v.spool.enabled -}}
{{- $_ := set $spool "dir" (default $v.spool.path $spool.dir) -}}
{{- if not (hasPrefix $v.spool.path (toString $spool.dir)) -}}
{{- fail (printf "config.spool.dir (%s) must be spool.path (%s) or below it: the persistent volume is mounted there" $spool.dir $v.spool.path) -}}
{{- end -}}
{{- if not $spool.sinks }}{{ $_ := set $spool "sinks" $v.spool.sinks }}{{ end -}}
{{- if not $spool.max_bytes }}{{ $_ := set $spool "max_bytes" $v.spool.maxBytes }}{{ end -}}
{{- $_ := set $cfg "spool" $spool -}}
{{- else if and $spool.sinks (trim (join "" $spool.sinks)) -}}
{{- fail "config.spool.sinks needs spool.enabled: the spool must live on a persistent volume, and the container's root file system is read-only" -}}
{{- end -}}
{{- $out := toYaml $cfg -}}
{{- $env := include "relay.secretEnv" . | fromYamlArray -}}
{{- $names := dict -}}
{{- range $e := concat $env (default list $v.extraEnv) }}{{ $_ := set $names $e.name true }}{{ end -}}
{{- range $var, $source := dict "TWILIO_AUTH_TOKENS" "twilio.authTokens or twilio.existingSecret is required (the Twilio auth tokens that verify X-Twilio-Signature)" "TWILIO_BASIC_AUTH_PASSWORD" "twilio.basicAuth.password or twilio.basicAuth.existingSecret is required with twilio.basicAuth.username" "KAFKA_PASSWORD" "kafka.sasl.password or kafka.sasl.existingSecret is required with kafka.sasl.mechanism" -}}
{{- if and (contains (printf "${%s}" $var) $out) (not (hasKey $names $var)) -}}
{{- fail $source -}}
{{- end -}}
{{- end -}}
{{- $out -}}
{{- end }}

{{/*
relay.port extracts the port of a ":PORT" listen address.
*/}}
{{- define "relay.port" -}}
{{- regexFind "[0-9]+$" (toString .) -}}
{{- end }}

{{- define "relay.webhookPort" -}}
{{- include "relay.port" (default ":8080" .Values.config.listen) -}}
{{- end }}

{{- define "relay.adminPort" -}}
{{- include "relay.port" (default ":9090" (dig "admin" "listen" "" .Values.config)) -}}
{{- end }}

{{/*
relay.seconds turns a Go duration ("20s", "1m30s", "500ms") into whole seconds, rounded up.
*/}}
{{- define "relay.seconds" -}}
{{- $s := toString . -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|ns))+$" $s) -}}
{{- fail (printf "config.limits.shutdown_timeout: %q is not a literal Go duration such as 20s (the termination grace period is computed from it)" $s) -}}
{{- end -}}
{{- $units := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 "us" 0.000001 "ns" 0.000000001 -}}
{{- $total := 0.0 -}}
{{- range $part := regexFindAll "[0-9.]+(h|ms|us|ns|m|s)" $s -1 -}}
{{- $n := regexFind "^[0-9.]+" $part -}}
{{- $total = addf $total (mulf (float64 $n) (get $units (trimPrefix $n $part))) -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end }}

{{/*
relay.terminationGracePeriod: preStop sleep (+ the spool's drain timeout) + shutdown_timeout + 5 s unless
set, and never less.
*/}}
{{- define "relay.terminationGracePeriod" -}}
{{- $shutdown := include "relay.seconds" (default "20s" (dig "limits" "shutdown_timeout" "" .Values.config)) | int -}}
{{- $needed := add (int .Values.preStopSleepSeconds) $shutdown -}}
{{- $what := "preStopSleepSeconds + config.limits.shutdown_timeout" -}}
{{- if .Values.spool.enabled -}}
{{- $needed = add $needed (int .Values.spool.drainTimeoutSeconds) -}}
{{- $what = "preStopSleepSeconds + spool.drainTimeoutSeconds + config.limits.shutdown_timeout" -}}
{{- end -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $needed 5 -}}
{{- else if le (int .Values.terminationGracePeriodSeconds) $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed %s (%d s), or Kubernetes kills the relay before requests in flight are answered" (int .Values.terminationGracePeriodSeconds) $what $needed) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds | int -}}
{{- end -}}
{{- end }}

{{/*
relay.preStop: the container's preStop handler, or nothing. With the spool, `relay drain` (POST /drain on
the admin port; the image is scratch + /relay, so the hook runs the relay's own binary): keep serving for
preStopSleepSeconds (load balancers stop sending), stop intake, then wait up to spool.drainTimeoutSeconds
for the spool to empty into the sinks. Without it, the sleep action on Kubernetes 1.30+ (the image has no
shell to run sleep in); on older versions the same `relay drain`, whose spool wait is then empty.
*/}}
{{- define "relay.preStop" -}}
{{- $v := .Values -}}
{{- if $v.spool.enabled -}}
{{ include "relay.drainHook" (list . $v.spool.drainTimeoutSeconds) }}
{{- else if gt (int $v.preStopSleepSeconds) 0 -}}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version -}}
sleep:
  seconds: {{ int $v.preStopSleepSeconds }}
{{- else -}}
{{ include "relay.drainHook" (list . 0) }}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
relay.drainHook: the exec handler running `relay drain` against the admin port on 127.0.0.1, given the
root context and the spool's wait in seconds.
*/}}
{{- define "relay.drainHook" -}}
{{- $ := index . 0 -}}
exec:
  command: ["/relay", "drain", "-admin", "127.0.0.1:{{ include "relay.adminPort" $ }}", "-delay", "{{ int $.Values.preStopSleepSeconds }}s", "-timeout", "{{ int (index . 1) }}s"]
{{- end }}

{{/*
relay.bytes: a Kubernetes memory quantity (768Mi, 1.5Gi, 512M, 805306368) in bytes. Argument: list path
quantity.
*/}}
{{- define "relay.bytes" -}}
{{- $path := index . 0 -}}
{{- $q := toString (index . 1) -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) -}}
{{- fail (printf "%s: cannot read %q as a memory quantity; write it as e.g. 768Mi or 1Gi (GOMEMLIMIT is computed from it)" $path $q) -}}
{{- end -}}
{{- $n := regexFind "^[0-9.]+" $q -}}
{{- $unit := get (dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000) (trimPrefix $n $q) -}}
{{- mulf (float64 $n) $unit | floor | int64 -}}
{{- end }}

{{/*
relay.goMemLimit: GOMEMLIMIT as goMemLimitPercent of the memory limit, in MiB, or "" without a limit. The
Go runtime collects harder as the heap nears it; the rest of the limit is room for what the runtime does
not count, so that the kernel's OOM killer is not the first to act.
*/}}
{{- define "relay.goMemLimit" -}}
{{- with dig "limits" "memory" "" .Values.resources -}}
{{- $bytes := include "relay.bytes" (list "resources.limits.memory" .) | int64 -}}
{{- printf "%dMiB" (div (div (mul $bytes (int $.Values.goMemLimitPercent)) 100) 1048576) -}}
{{- end -}}
{{- end }}
