"""The verbs of a tutoring centre as types: one msgspec struct per command.

A command's fields are what a client sends: the HTTP body (camelCase, unknown fields refused,
so a body can never carry a centre id; the centre comes from the token) plus the ids in the
route's path, which the HTTP adapter fills in. The actor travels beside the command.
"""
