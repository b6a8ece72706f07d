"""The analyst console: find a transaction and why it was scored so, work the alerts, see the model in
production, and give verdicts that become labels for the next retraining."""
