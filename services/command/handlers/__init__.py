"""The command handlers, one plain function per verb, grouped by aggregate.

Each takes its command and a :class:`~services.command.unit_of_work.UnitOfWork` (which knows
the actor), loads what it needs, checks the rules that depend on the resource in hand, lets
the aggregates decide, and answers a response struct. Which roles may attempt a verb at all,
and how its answer is stored, is the business of :mod:`services.command.bus`.
"""
