"""What a person is shown, computed from read-model documents at the moment of asking.

Documents hold facts and timestamps; views add what depends on the clock (waiting times, what
is overdue, what is today in the centre's time zone) and on who asks. Views are JSON objects:
each document's fields as stored (camelCase), with what the view adds.
"""

from __future__ import annotations

from shared.readmodels.patches import apply_merge_patch, merge_patch
from shared.readmodels.times import parse, utcnow
from shared.readmodels.views.catalogue import catalogue_row, exercise
from shared.readmodels.views.common import (
    Names,
    OrderName,
    as_stored,
    help_view,
    name_order,
    overdue,
)
from shared.readmodels.views.control_center import (
    ATTENTION_AFTER_SECONDS,
    IDLE_AFTER_SECONDS,
    control_center,
)
from shared.readmodels.views.my_day import at_risk, my_day, repeated_absences
from shared.readmodels.views.reports import (
    UrgencyKey,
    catch_up_entry_row,
    catch_up_row,
    catch_up_urgency,
    help_request_analytics,
    help_request_analytics_of,
    help_request_stats,
    page_cursor,
    parse_page_cursor,
)
from shared.readmodels.views.risk import (
    REPEATED_ABSENCES,
    Risk,
    RiskLevel,
    absence_streak,
    risk_of,
)
from shared.readmodels.views.students import older_months, overview_sessions, student_overview

__all__ = [
    "ATTENTION_AFTER_SECONDS",
    "IDLE_AFTER_SECONDS",
    "REPEATED_ABSENCES",
    "Names",
    "OrderName",
    "Risk",
    "RiskLevel",
    "UrgencyKey",
    "absence_streak",
    "apply_merge_patch",
    "as_stored",
    "at_risk",
    "catalogue_row",
    "catch_up_entry_row",
    "catch_up_row",
    "catch_up_urgency",
    "control_center",
    "exercise",
    "help_request_analytics",
    "help_request_analytics_of",
    "help_request_stats",
    "help_view",
    "merge_patch",
    "my_day",
    "name_order",
    "older_months",
    "overdue",
    "overview_sessions",
    "page_cursor",
    "parse",
    "parse_page_cursor",
    "repeated_absences",
    "risk_of",
    "student_overview",
    "utcnow",
]
