from prometheus_client import Counter

COMMANDS = Counter(
    "tutorpulse_commands_total", "Commands handled, by command and outcome", ["command", "outcome"]
)
