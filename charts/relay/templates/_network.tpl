{{/*
What the NetworkPolicy and the Ingress derive from the rendered configuration.
*/}}
{{/*
relay.egressPorts: the ports the relay connects to, per kind of destination, for the NetworkPolicy, as
JSON {"kafka": [...], "redis": [...], "nats": [...], "http": [...]}. For each kind,
networkPolicy.egress.<kind>Ports when set, else the ports of the addresses in the rendered configuration:
Kafka brokers, Redis sinks and the shared dedupe tier (config.dedupe.shared.redis), NATS servers, HTTP
sink URLs (and their health_url).
*/}}
{{- define "relay.egressPorts" -}}
{{- $cfg := include "relay.config" . | fromYaml -}}
{{- $addrs := dict "kafka" list "redis" list "nats" list "http" list -}}
{{- range $s := $cfg.sinks -}}
{{- with $s.kafka }}{{ range .brokers }}{{ $_ := set $addrs "kafka" (concat $addrs.kafka (splitList "," (toString .))) }}{{ end }}{{ end -}}
{{- with $s.redis }}{{ $_ := set $addrs "redis" (append $addrs.redis (toString .addr)) }}{{ end -}}
{{- with $s.nats }}{{ range .urls }}{{ $_ := set $addrs "nats" (concat $addrs.nats (splitList "," (toString .))) }}{{ end }}{{ end -}}
{{- with $s.http -}}
{{- $_ := set $addrs "http" (append $addrs.http (toString .url)) -}}
{{- with .health_url }}{{ $_ := set $addrs "http" (append $addrs.http (toString .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- with dig "dedupe" "shared" "redis" "addr" "" $cfg }}{{ $_ := set $addrs "redis" (append $addrs.redis (toString .)) }}{{ end -}}
{{- $out := dict -}}
{{- range $kind, $list := $addrs -}}
{{- $ports := list -}}
{{- $given := index $.Values.networkPolicy.egress (printf "%sPorts" $kind) -}}
{{- if $given -}}
{{- range $given }}{{ $ports = append $ports (int .) }}{{ end -}}
{{- else -}}
{{- range $a := $list }}{{ with trim $a }}{{ $ports = append $ports (include "relay.addrPort" (list $kind .) | int) }}{{ end }}{{ end -}}
{{- end -}}
{{- $_ := set $out $kind (uniq $ports) -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/*
relay.addrPort: the port of one address of a kind (host:port; a URL for nats and http, whose scheme
gives the port when the URL has none). Fails when the address has no port to read.
*/}}
{{- define "relay.addrPort" -}}
{{- $kind := index . 0 -}}
{{- $addr := index . 1 -}}
{{- $hostport := $addr -}}
{{- $default := "" -}}
{{- if regexMatch "^[a-z]+://" $addr -}}
{{- $scheme := regexFind "^[a-z]+" $addr -}}
{{- $hostport = regexReplaceAll "^[a-z]+://([^/?#]*).*$" $addr "${1}" -}}
{{- $default = get (dict "nats" "4222" "tls" "4222" "ws" "80" "wss" "443" "http" "80" "https" "443") $scheme -}}
{{- else if eq $kind "nats" -}}
{{- $default = "4222" -}}
{{- end -}}
{{- $port := trimPrefix ":" (regexFind ":[0-9]+$" (regexReplaceAll "^.*@" $hostport "")) -}}
{{- if and (not $port) (not (contains "${" $addr)) -}}
{{- $port = $default -}}
{{- end -}}
{{- if not $port -}}
{{- fail (printf "networkPolicy: cannot read a port from the %s address %q; list the ports in networkPolicy.egress.%sPorts" $kind $addr $kind) -}}
{{- end -}}
{{- $port -}}
{{- end }}

{{/*
relay.publicPaths: the paths of the endpoints' public URLs on host, as JSON: what Twilio calls, and so what
the Ingress must route. Fails when such a path is not the endpoint's own path: the Ingress passes paths
unchanged (unless ingress.paths is set, for an ingress that rewrites). Argument: list context host.
*/}}
{{- define "relay.publicPaths" -}}
{{- $ := index . 0 -}}
{{- $host := index . 1 -}}
{{- $cfg := include "relay.config" $ | fromYaml -}}
{{- $paths := list -}}
{{- range $i, $ep := $cfg.endpoints -}}
{{- $u := urlParse (toString $ep.public_url) -}}
{{- if eq $u.hostname $host -}}
{{- $public := default "/" $u.path -}}
{{- if and (ne $public (toString $ep.path)) (not $.Values.ingress.paths) -}}
{{- fail (printf "config.endpoints[%d]: the relay serves %s but Twilio calls %s (the path of %s); the Ingress passes paths unchanged, so Twilio would get 404 and drop the events. Set config.endpoints[%d].path to %s, or route %s in ingress.paths and rewrite it to %s at the ingress controller" $i $ep.path $public $ep.public_url $i $public $public $ep.path) -}}
{{- end -}}
{{- $paths = append $paths $public -}}
{{- end -}}
{{- end -}}
{{- toJson (uniq $paths) -}}
{{- end }}
