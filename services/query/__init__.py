"""The query API: read models over HTTP, with the same tokens and permission matrix."""
