"""OCI distribution: references, credentials and a small registry client."""
