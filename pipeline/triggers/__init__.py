"""Git triggers: which images a change affects, rules for pushes, hooks, the watch loop, webhooks."""
