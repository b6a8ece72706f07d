"""``fraudops`` subcommands of the model core (the stack's commands live in :mod:`fraudops.stack`)."""
