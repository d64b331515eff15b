"""General helpers every layer may use, over errors only, none of them about one domain: the retry
policy of every network operation (retry: registry requests, the ACR token exchange, engine pushes,
notifications), URL credentials stripped from what is published or shown (urls), the checkout a
plan builds from as plain data (checkout), the progress `Reporter` every layer says its progress
to (reporting), and an object's attributes under their own names (fields). Import the module you need:
this package loads nothing itself, so a light command (`changed`) that needs `checkout` does not load tenacity.

    from pipeline.common.retry import POLICY, Transient
    from pipeline.common.urls import strip_credentials
"""
