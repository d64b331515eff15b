"""Notifications: a run's failure (or a published release) posted to webhooks after the result is known.

A `Notice` says what happened; `deliver` posts it to each target of a `notify:` block, as a signed generic
JSON body or a Slack-compatible payload, retried with the registry's policy within one deadline. Nothing
here raises for a delivery that fails: each failure comes back as a warning line naming the target.

    notice = Notice(event="failure", pipeline="shop", image="shop/app", error="...", ...)
    block = plan.notifications()["shop"]  # the pipeline's resolved `notify:` (config.resolved.Notification)
    for warning in deliver([(block, notice, block.owner)], environment, Redactor.for_run(environment, ...)):
        print(f"warning: {warning}", file=sys.stderr)
"""
