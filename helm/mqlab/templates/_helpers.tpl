{{/* Base of every object name: the release name unless overridden. */}}
{{- define "mqlab.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* <base>-<component>. Call with (dict "root" $ "component" "logging"). */}}
{{- define "mqlab.componentName" -}}
{{- printf "%s-%s" (include "mqlab.fullname" .root) .component -}}
{{- end -}}

{{- define "mqlab.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select one component's pods; never change them (selectors are immutable). */}}
{{- define "mqlab.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mqlab.labels" -}}
{{ include "mqlab.selectorLabels" . }}
app.kubernetes.io/part-of: mqlab
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "mqlab.chart" .root }}
{{- end -}}

{{- define "mqlab.namespace" -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* <name>.<namespace>.svc.<clusterDomain> */}}
{{- define "mqlab.svcDomain" -}}
{{- printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "mqlab.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Every member's stable DNS name and port, comma-separated (the clients' HAZELCAST_MEMBERS). */}}
{{- define "mqlab.hazelcastMembers" -}}
{{- $name := include "mqlab.componentName" (dict "root" . "component" "hazelcast") -}}
{{- $domain := include "mqlab.svcDomain" . -}}
{{- $members := list -}}
{{- range $i := until (int .Values.hazelcast.replicas) -}}
{{- $members = append $members (printf "%s-%d.%s.%s:%d" $name $i $name $domain (int $.Values.hazelcast.port)) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{/* Base URLs of a StatefulSet's pods through its headless Service. (dict "root" $ "component" "logging" "values" .Values.logging) */}}
{{- define "mqlab.instanceUrls" -}}
{{- $name := include "mqlab.componentName" (dict "root" .root "component" .component) -}}
{{- $domain := include "mqlab.svcDomain" .root -}}
{{- $urls := list -}}
{{- range $i := until (int .values.replicas) -}}
{{- $urls = append $urls (printf "http://%s-%d.%s.%s:%d" $name $i $name $domain (int $.values.port)) -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}

{{/* A hazelcast.* value, or its default when the values lack the key: `helm upgrade --reuse-values`
from a release made by an older chart reuses that release's values. The defaults are those of
values.yaml, kept in this one place. (dict "root" $ "key" "name") */}}
{{- define "mqlab.hazelcastValue" -}}
{{- $defaults := dict "discovery" "kubernetes-api" "mergeFirstRunDelaySeconds" 30 "mergeNextRunDelaySeconds" 5 "shareProcessNamespace" true -}}
{{- $h := .root.Values.hazelcast -}}
{{- if hasKey $h .key -}}{{ index $h .key }}{{- else -}}{{ index $defaults .key }}{{- end -}}
{{- end -}}

{{/* Whether the members discover each other through the API server (and so need a Role and a token). */}}
{{- define "mqlab.memberApiDiscovery" -}}
{{- if eq (include "mqlab.hazelcastValue" (dict "root" . "key" "discovery")) "kubernetes-api" -}}true{{- end -}}
{{- end -}}

{{- define "mqlab.rbacEnabled" -}}
{{- if or (eq .Values.configServer.registrySource "api") (eq .Values.configServer.registrySource "endpointslices") -}}true{{- end -}}
{{- end -}}

{{/* Pod annotations for annotation-based Prometheus scraping. (dict "root" $ "port" 8080) */}}
{{- define "mqlab.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- /* The URL of <component>-ready (logging-ready-service.yaml), the facade's LOGGING_FALLBACK_URL / MESSAGES_FALLBACK_URL. */ -}}
{{- define "mqlab.readyServiceUrl" -}}
{{- printf "http://%s.%s:%d" (include "mqlab.componentName" (dict "root" .root "component" (printf "%s-ready" .component))) (include "mqlab.svcDomain" .root) (int (index .root.Values .component).port) -}}
{{- end -}}

{{/* The split-brain protection's heartbeat tolerance: 2 s less than the failure detection, and at
least two heartbeats, so a member cut off refuses before it drops anyone from its member list. */}}
{{- define "mqlab.splitBrainToleranceMillis" -}}
{{- $h := .Values.hazelcast -}}
{{- $tolerance := mul (sub (int $h.maxNoHeartbeatSeconds) 2) 1000 -}}
{{- if lt $tolerance (mul 2000 (int $h.heartbeatIntervalSeconds)) -}}
{{- fail (printf "hazelcast.maxNoHeartbeatSeconds (%v) must be at least 2 heartbeats (heartbeatIntervalSeconds %v) plus 2 s: the split-brain protection counts members heard from within it, less 2 s" $h.maxNoHeartbeatSeconds $h.heartbeatIntervalSeconds) -}}
{{- end -}}
{{- $tolerance -}}
{{- end -}}
