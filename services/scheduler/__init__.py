"""The scheduler: timers derived from events, kept as JetStream message schedules, fired as
ordinary commands by SYSTEM (``docs/scheduler.md``)."""
