"""Everything Azure: ACR Tasks (wanted tasks, run requests, syncing a registry's tasks), the Azure SDK adapter,
build-source upload and the ACR refresh-token exchange for registry access."""
