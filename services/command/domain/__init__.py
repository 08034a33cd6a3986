"""The tutoring centre's domain model: aggregates whose methods are the centre's verbs."""
