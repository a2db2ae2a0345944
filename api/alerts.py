"""Alert intake: what a PagerDuty Events API v2 event or an Alertmanager notification makes of
an incident (title, description, severity, categories). The writes are in resources/alerts.py."""

import json
import secrets

from api.schemas import DESCRIPTION, TITLE

PAGERDUTY_SEVERITIES = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
ALERTMANAGER_SEVERITIES = {"critical": "critical", "warning": "high", "info": "low"}
PAGERDUTY_DETAILS = ("source", "component", "group", "class")
MAX_TITLE = TITLE["maxLength"]
MAX_DESCRIPTION = DESCRIPTION["maxLength"]


def clipped(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def new_dedup_key():
    return secrets.token_hex(16)


def pagerduty_incident(payload):
    """The fields of the incident a PagerDuty `trigger` opens."""
    lines = [f"{name}: {payload[name]}" for name in PAGERDUTY_DETAILS if payload.get(name)]
    if len(payload["summary"]) > MAX_TITLE:
        lines.insert(0, payload["summary"])
    if "custom_details" in payload:
        details = json.dumps(payload["custom_details"], ensure_ascii=False, indent=2, sort_keys=True)
        lines.append("custom_details: " + details)
    return {
        "title": clipped(payload["summary"].strip(), MAX_TITLE),
        "description": clipped("\n".join(lines), MAX_DESCRIPTION),
        "severity": PAGERDUTY_SEVERITIES[payload["severity"]],
    }


def alertmanager_incident(notification):
    """The fields of the incident a firing Alertmanager notification opens."""
    labels = notification.get("commonLabels", {})
    return {
        "title": clipped(alertmanager_title(notification).strip(), MAX_TITLE),
        "description": clipped(alertmanager_description(notification), MAX_DESCRIPTION),
        "severity": ALERTMANAGER_SEVERITIES.get(labels.get("severity"), "medium"),
    }


def alertmanager_title(notification):
    summary = notification.get("commonAnnotations", {}).get("summary", "")
    if summary.strip():
        return summary
    for labels in [notification.get("commonLabels", {}), *(a["labels"] for a in notification["alerts"])]:
        if labels.get("alertname", "").strip():
            return labels["alertname"]
    return "Alert from Alertmanager"


def alertmanager_description(notification):
    alerts = notification["alerts"]
    parts = []
    for number, alert in enumerate(alerts, 1):
        since = f", since {alert['startsAt']}" if alert.get("startsAt") else ""
        parts.append(
            f"Alert {number} of {len(alerts)} ({alert.get('status', notification['status'])}{since})"
        )
        parts.append("  labels: " + pairs(alert["labels"]))
        if alert.get("annotations"):
            parts.append("  annotations: " + pairs(alert["annotations"]))
    if notification.get("truncatedAlerts"):
        parts.append(f"… and {notification['truncatedAlerts']} more alerts Alertmanager left out")
    return "\n".join(parts)


def pairs(mapping):
    return ", ".join(f"{name}={value}" for name, value in sorted(mapping.items()))


def alertmanager_categories(notification):
    """The names the alerts' `category` labels give (categories are found by name)."""
    names = {alert["labels"].get("category") for alert in notification["alerts"]}
    return sorted(name for name in names if name and name.strip())
