"""An example body of every command that takes one, as the OpenAPI document shows it.

Each is a request a client could send as it is (tested: it decodes into the command's body, and
schemathesis sends it); the ids are those of people and things of a centre, made up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.command.commands import academic as ac
from services.command.commands import catch_ups as cu
from services.command.commands import centres as ce
from services.command.commands import classes as cl
from services.command.commands import exercises as ex
from services.command.commands import help_requests as hr
from services.command.commands import homework as hw
from services.command.commands import notes as no
from services.command.commands import seats as se
from services.command.commands import series as sr
from services.command.commands import sessions as ss
from services.command.commands.base import Command

STUDENT = "6a1f0c52-3d8e-5b47-9e21-7c4d5a8b9f03"
TUTOR = "1b7e4d90-2c6a-5f38-8d15-4e9a0b3c7d21"
PARENT = "9d2c5e81-7a4f-5b06-a3c8-1f6e2d9b0a47"
SESSION = "0e8b3f27-5c1d-4a96-b7e2-3d9f6a1c8b54"
CLASS = "7c3a9e15-4b2d-4f81-9a6c-2e5d8b1f0a73"
EXERCISE = "b5d3f1e4-3c4a-4f7e-9d51-5a3b2c1d0e9f"

_ONLINE = {"mode": "ONLINE", "meetingLink": "https://meet.example.org/fractions"}
_WEEKLY = {
    "daysOfWeek": [2, 4],
    "startTime": "16:00",
    "durationMinutes": 60,
    "firstDate": "2030-04-01",
    "weeks": 12,
    "title": "Year 7 maths",
    **_ONLINE,
}

BODIES: Mapping[type[Command], dict[str, Any]] = {
    ce.RegisterCentre: {
        "centreId": "north-campus",
        "name": "North Campus",
        "timeZone": "Europe/London",
        "helpSlaMinutes": {"URGENT": 2, "HIGH": 5, "MEDIUM": 10, "LOW": 20},
    },
    ce.ChangeHelpSlas: {"helpSlaMinutes": {"URGENT": 3, "HIGH": 8}},
    ce.ChangeSessionLength: {"maxSessionMinutes": 240},
    ce.RegisterPerson: {
        "name": "Jane Johnson",
        "email": "jane@north-campus.example",
        "role": "STUDENT",
        "guardianId": PARENT,
    },
    ce.ErasePersonData: {"reason": "Right-to-erasure request from the student's parent, 3 March"},
    ss.ScheduleSession: {
        "title": "Fractions clinic",
        "startsAt": "2030-03-04T16:00:00Z",
        "endsAt": "2030-03-04T17:00:00Z",
        **_ONLINE,
        "tutorId": TUTOR,
        "capacity": 5,
    },
    sr.ScheduleSeries: {
        **_WEEKLY,
        "tutorId": TUTOR,
        "students": [{"studentId": STUDENT, "courseId": "maths", "lessonId": "fractions-2"}],
    },
    sr.CancelSeries: {"reason": "the tutor is away for the term"},
    ss.CancelSession: {"reason": "the tutor is ill"},
    ss.RescheduleSession: {
        "startsAt": "2030-03-05T16:00:00Z",
        "endsAt": "2030-03-05T17:00:00Z",
        "reason": "moved to Wednesday",
    },
    ss.ChangeSessionMode: {
        "mode": "HYBRID",
        "meetingLink": "https://meet.example.org/f",
        "location": "Room 2",
    },
    ss.ExtendSession: {"minutes": 15},
    ss.EnrolStudent: {"studentId": STUDENT, "courseId": "maths", "lessonId": "fractions-2"},
    ss.ChangeLesson: {"lessonId": "fractions-3", "reason": "finished fractions-2 early"},
    hr.RaiseHelpRequest: {"priority": "HIGH", "exerciseId": EXERCISE, "message": "Stuck on 2b"},
    se.RecordPresence: {"event": "JOIN"},
    se.SwitchTeachingMode: {"mode": "TEACH"},
    hr.ResolveHelpRequest: {"response": "Worked through 2b together"},
    cu.AssignCatchUp: {
        "sessionId": SESSION,
        "studentId": STUDENT,
        "dueAt": "2030-03-11T16:00:00Z",
        "reason": "missed the fractions session",
    },
    no.WriteNote: {
        "content": "Confident with halves, unsure with thirds",
        "visibility": "EXTERNAL",
        "sessionId": SESSION,
    },
    no.EditNote: {"content": "Confident with halves and thirds", "visibility": "EXTERNAL"},
    no.RedactNote: {"reason": "written about the wrong student"},
    cl.CreateClass: {
        "name": "Year 7 maths",
        "subject": "Mathematics",
        "teacherId": TUTOR,
        "capacity": 12,
    },
    cl.UpdateClass: {
        "name": "Year 7 maths (B)",
        "subject": "Mathematics",
        "teacherId": TUTOR,
        "capacity": 10,
    },
    cl.CancelClass: {"reason": "merged with Year 7 maths (A)"},
    cl.AddClassMember: {"studentId": STUDENT},
    cl.ScheduleClassSession: {
        "title": "Year 7 maths",
        "startsAt": "2030-03-04T16:00:00Z",
        "endsAt": "2030-03-04T17:00:00Z",
        **_ONLINE,
    },
    sr.ScheduleClassRule: _WEEKLY,
    se.MarkAttendance: {
        "sessionId": SESSION,
        "records": [{"studentId": STUDENT, "status": "ABSENT", "notes": "no message from home"}],
    },
    ex.PublishExercise: {
        "title": "Halves",
        "courseId": "maths",
        "exerciseType": "NUMERICAL",
        "difficulty": "EASY",
        "questions": [
            {
                "questionId": "q1",
                "prompt": "1/2 as a decimal",
                "acceptedAnswers": ["0.5"],
                "tolerance": 0.001,
            }
        ],
        "instructions": "Give decimals to one place",
        "timeLimitMinutes": 10,
    },
    ex.RetireExercise: {"reason": "replaced by a longer one"},
    ex.AssignExercise: {"exerciseId": EXERCISE, "studentIds": [STUDENT]},
    ex.ReportExerciseProgress: {"percent": 40},
    ex.SubmitExercise: {"answers": {"q1": "0.5"}},
    ex.GradeExercise: {"score": 8.5, "feedback": "Good; check the last one"},
    hw.AssignHomework: {
        "studentId": STUDENT,
        "title": "Fractions practice",
        "exerciseIds": [EXERCISE],
        "dueAt": "2030-03-11T08:00:00Z",
        "sessionId": SESSION,
        "notes": "Do questions 1 to 5",
    },
    hw.SubmitHomework: {"answers": {EXERCISE: {"q1": "0.5"}}},
    hw.GradeHomework: {"score": 9, "feedback": "Well done"},
    ac.AssessSubject: {
        "courseId": "maths",
        "schoolGrade": 7,
        "workingLevel": 6,
        "notes": "Fractions need work",
    },
    ac.ChangeWorkingLevel: {
        "courseId": "maths",
        "level": 7,
        "changeType": "LEVEL_ADVANCEMENT",
        "reason": "passed the level 6 checkpoint",
    },
    ac.AssignContent: {
        "courseId": "maths",
        "reason": "revise before the test",
        "lessonId": "fractions-1",
        "sessionId": SESSION,
    },
    ac.WithdrawContentAssignment: {"reason": "the test was moved"},
}
"""An example body by command (the body's fields: those not in the path or query)."""
