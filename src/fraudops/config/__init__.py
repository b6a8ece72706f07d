"""Every setting of the product, in one package: :mod:`.settings` loads ``configs/fraudops.yaml`` with the
``FRAUDOPS_*`` overrides into one frozen :class:`~fraudops.config.settings.Settings`; its sections are
defined beside the code's concern (:mod:`.model` for training and the label delay, :mod:`.pipeline` for the
retraining's gates, :mod:`.scorer` for the streaming scorer, :mod:`.monitoring` for the alert thresholds
and the drift check), all on the one strict base of :mod:`.base`,
and the checks that span sections (the split gap equals the label delay, every configured topic is in
``kafka/topics.yaml``) run when the settings load."""
