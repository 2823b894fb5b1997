{{/*
relay.podTemplate: the pod template shared by the Deployment and the StatefulSet.
*/}}
{{- define "relay.podTemplate" -}}
{{- $v := .Values -}}
metadata:
  labels:
    {{- include "relay.podLabels" . | nindent 4 }}
  annotations:
    # A change of the configuration or of the chart's Secret rolls the pods.
    checksum/config: {{ include "relay.config" . | sha256sum }}
    {{- $secret := include "relay.secretData" . }}
    {{- if ne $secret "{}" }}
    checksum/secret: {{ $secret | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "relay.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- if $v.hostNetwork }}
  hostNetwork: true
  {{- end }}
  {{- with $v.dnsPolicy }}
  dnsPolicy: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ include "relay.terminationGracePeriod" . }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- if $v.preflight.initContainer }}
  initContainers:
    # Connects to Kafka as the relay will and checks its topics and ACLs: a configuration that cannot
    # work stops here, with each failed check and its fix in `kubectl describe pod` and in the log.
    - name: preflight
      image: {{ include "relay.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: ["check", "-config", "{{ include "relay.configDir" . }}/config.yaml", "-connect", "-allow-unreachable"]
      terminationMessagePolicy: FallbackToLogsOnError
      env:
        - name: RELAY_CONFIG
          value: {{ include "relay.configDir" . }}/config.yaml
        {{- include "relay.credentialEnv" . | nindent 8 }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "relay.configMounts" . | nindent 8 }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- end }}
  containers:
    - name: relay
      image: {{ include "relay.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: ["serve", "-config", "{{ include "relay.configDir" . }}/config.yaml"]
      ports:
        - name: webhook
          containerPort: {{ include "relay.webhookPort" . }}
          protocol: TCP
        - name: admin
          containerPort: {{ include "relay.adminPort" . }}
          protocol: TCP
      env:
        - name: RELAY_CONFIG
          value: {{ include "relay.configDir" . }}/config.yaml
        {{- with include "relay.goMemLimit" . }}
        # goMemLimitPercent of resources.limits.memory.
        - name: GOMEMLIMIT
          value: {{ . }}
        {{- end }}
        {{- include "relay.credentialEnv" . | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: admin
        {{- toYaml $v.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: {{ $v.readinessProbe.path | default "/readyz" }}
          port: admin
        {{- toYaml (omit $v.readinessProbe "path") | nindent 8 }}
      {{- if $v.startupProbe.enabled }}
      startupProbe:
        httpGet:
          path: /healthz
          port: admin
        {{- toYaml (omit $v.startupProbe "enabled") | nindent 8 }}
      {{- end }}
      {{- with include "relay.preStop" . }}
      lifecycle:
        preStop:
          {{- . | nindent 10 }}
      {{- end }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "relay.configMounts" . | nindent 8 }}
        {{- if $v.spool.enabled }}
        - name: spool
          mountPath: {{ $v.spool.path }}
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "relay.fullname" . }}
    {{- with $v.kafka.tls.caSecret }}
    {{- if .name }}
    - name: kafka-ca
      secret:
        secretName: {{ .name }}
        items:
          - key: {{ .key }}
            path: ca.crt
    {{- end }}
    {{- end }}
    {{- with $v.kafka.tls.clientCertSecret }}
    {{- if .name }}
    - name: kafka-client
      secret:
        secretName: {{ .name }}
        items:
          - key: {{ .certKey }}
            path: tls.crt
          - key: {{ .keyKey }}
            path: tls.key
    {{- end }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    {{- $c := deepCopy . }}
    {{- if not (hasKey $c "labelSelector") }}
    {{- $_ := set $c "labelSelector" (dict "matchLabels" (include "relay.selectorLabels" $ | fromYaml)) }}
    {{- end }}
    - {{ toYaml $c | indent 6 | trim }}
    {{- end }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
relay.credentialEnv: the environment variables the configuration refers to (credentials from Secrets,
extraEnv), for the relay and its preflight init container.
*/}}
{{- define "relay.credentialEnv" -}}
{{- $env := concat (include "relay.secretEnv" . | fromYamlArray) (default list .Values.extraEnv) -}}
{{- if $env }}{{ toYaml $env }}{{ end -}}
{{- end }}

{{/*
relay.configMounts: the configuration and the Kafka TLS files, for the relay and its preflight init
container.
*/}}
{{- define "relay.configMounts" -}}
- name: config
  mountPath: {{ include "relay.configDir" . }}
  readOnly: true
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: {{ include "relay.kafkaCADir" . }}
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret.name }}
- name: kafka-client
  mountPath: {{ include "relay.kafkaClientDir" . }}
  readOnly: true
{{- end }}
{{- end }}
