"""The streaming scorer: Kafka -> parse and validate -> online features -> champion model -> sinks.

Small modules, each testable on its own: :mod:`.parse` (the one event schema applied to Kafka records),
:mod:`.state` (customer windows in Spark state), :mod:`.terminals` (the delayed terminal table),
:mod:`.models` (champion, hot reload, last-known-good copy), :mod:`.sinks` (one micro-batch scored and
written), :mod:`.job` (the query wired together). Heavy libraries are imported inside functions.
"""
