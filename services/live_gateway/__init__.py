"""The live gateway: read-model changes pushed to tutors over websockets (docs/live.md)."""
