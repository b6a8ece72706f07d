"""Prometheus metrics of our own processes, the Prometheus and Alertmanager configuration generated from the
settings, the alert rules, and drift of recent traffic against the champion's training reference."""
