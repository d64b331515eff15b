"""Sigstore signing: cosign-format keys, simple-signing payloads, signatures stored in the registry."""
