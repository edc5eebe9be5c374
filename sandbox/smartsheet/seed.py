"""The seeds: "demo" (three realistic sheets, one of 20,000 rows) and "empty" (no sheets).

Everything comes from `random.Random` seeded with fixed text, so the same seed gives the same ids,
values and timestamps on every start.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.smartsheet.model import Column, IdMaker, Row, Sheet, User

OWNER = User(
    id=4834523749181316, email="sandbox@example.com", first_name="Sam", last_name="Sandbox"
)
OTHER = User(id=6951264932685700, email="pat@example.com", first_name="Pat", last_name="Other")
USERS_BY_TOKEN = {"sandbox-token": OWNER, "sandbox-token-2": OTHER}

FIRST = [
    "Alex",
    "Jordan",
    "Priya",
    "Mateo",
    "Hana",
    "Chen",
    "Fatima",
    "Lukas",
    "Amara",
    "Diego",
    "Sofia",
    "Kwame",
    "Elena",
    "Ravi",
    "Noor",
    "Tomasz",
    "Yuki",
    "Grace",
    "Omar",
    "Ingrid",
]
LAST = [
    "Morgan",
    "Lee",
    "Patel",
    "Garcia",
    "Kim",
    "Wei",
    "Hassan",
    "Becker",
    "Okafor",
    "Silva",
    "Rossi",
    "Mensah",
    "Popescu",
    "Iyer",
    "Khan",
    "Nowak",
    "Sato",
    "Walsh",
    "Farouk",
    "Berg",
]
TEAM = [
    User(
        id=5000000000000000 + i * 7919,
        email=f"{f.lower()}.{last.lower()}@example.com",
        first_name=f,
        last_name=last,
    )
    for i, (f, last) in enumerate(zip(FIRST[:10], LAST[:10], strict=True))
]
DIRECTORY = {user.email: user for user in [OWNER, OTHER, *TEAM]}

COMPANIES = [
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc",
    "Tailspin Toys",
    "Woodgrove Bank",
    "Adventure Works",
    "Litware",
    "Proseware",
    "Wide World Importers",
    "Blue Yonder Air",
    "Alpine Ski House",
    "Coho Winery",
    "Lucerne Publishing",
    "Margie's Travel",
    "Fourth Coffee",
    "Trey Research",
    "Humongous Insurance",
    "Graphic Design Institute",
    "School of Fine Art",
    "City Power & Light",
]

BASE_TIME = datetime(2025, 1, 6, 9, 0, 0, tzinfo=UTC)


def _cell(column: Column, value: Any, display: str | None = None) -> tuple[Any, str | None]:
    if column.type in ("CHECKBOX", "DATE"):
        return (value, None)
    return (value, display if display is not None else str(value))


def _row(
    ids: IdMaker,
    index: int,
    cells: dict[int, tuple[Any, str | None]],
    parent_id: int | None = None,
    rng: random.Random | None = None,
) -> Row:
    created = BASE_TIME + timedelta(minutes=index * 7)
    modified = created + timedelta(hours=rng.randrange(0, 240)) if rng else created
    return Row(
        id=ids(),
        parent_id=parent_id,
        created_at=created,
        modified_at=modified,
        created_by=OWNER,
        modified_by=OWNER,
        cells=cells,
    )


def _sheet(ids: IdMaker, name: str, columns: list[Column], days: int) -> Sheet:
    return Sheet(
        id=ids(),
        name=name,
        owner=OWNER,
        columns=columns,
        created_at=BASE_TIME - timedelta(days=days),
    )


def _finish(sheet: Sheet, rows: list[Row]) -> Sheet:
    sheet.rows = rows
    sheet.rows_by_id = {row.id: row for row in rows}
    sheet.modified_at = max([sheet.created_at, *(row.modified_at for row in rows)])
    return sheet


PHASES = {
    "Discovery": [
        "Interview stakeholders",
        "Audit current sheets",
        "Map data flows",
        "Write problem statement",
    ],
    "Design": [
        "Sketch grid layout",
        "Define AI job templates",
        "Review prompt library",
        "Accessibility review",
        "Sign off designs",
    ],
    "Build": [
        "Smartsheet client",
        "Mirror and sync",
        "Inline editing",
        "Assistant tools",
        "Job runner",
        "Webhook receiver",
    ],
    "Launch": ["Pilot with support team", "Collect pilot feedback", "Fix pilot issues"],
    "Operate": ["Weekly usage report", "Cost review", "Quarterly roadmap"],
}
TASK_VERBS = [
    "Update",
    "Review",
    "Draft",
    "Clean up",
    "Prepare",
    "Check",
    "Migrate",
    "Document",
    "Test",
    "Plan",
]
TASK_THINGS = [
    "onboarding checklist",
    "vendor contract",
    "Q3 budget",
    "release notes",
    "customer survey",
    "training deck",
    "support macros",
    "data retention policy",
    "team calendar",
    "status dashboard",
    "pricing page",
    "FAQ",
    "escalation matrix",
    "holiday rota",
    "access review",
]
NOTES = [
    "",
    "",
    "Waiting on legal.",
    "Needs a second reviewer.",
    "See thread in #ops.",
    "Blocked by the vendor's API outage.",
    "Ask Priya for the latest numbers.",
    "Moved from last sprint.",
    "Low priority unless the pilot slips.",
    "",
]


def project_tracker(ids: IdMaker) -> Sheet:
    rng = random.Random("demo:project-tracker")
    cols = [
        Column(ids(), "Task", "TEXT_NUMBER", primary=True, width=260),
        Column(ids(), "Owner", "CONTACT_LIST"),
        Column(
            ids(), "Status", "PICKLIST", options=["Not Started", "In Progress", "Blocked", "Done"]
        ),
        Column(ids(), "Due", "DATE"),
        Column(ids(), "Done", "CHECKBOX", width=60),
        Column(ids(), "Notes", "TEXT_NUMBER", width=300),
    ]
    task, owner, status, due, done, notes = cols
    sheet = _sheet(ids, "Project Tracker", cols, 30)
    rows: list[Row] = []

    def add(title: str, parent: Row | None) -> Row:
        state = rng.choices(["Not Started", "In Progress", "Blocked", "Done"], [3, 3, 1, 3])[0]
        person = rng.choice(TEAM)
        cells = {
            task.id: _cell(task, title),
            owner.id: _cell(owner, person.email, person.name),
            status.id: _cell(status, state),
            due.id: _cell(
                due, (date(2025, 2, 1) + timedelta(days=rng.randrange(0, 150))).isoformat()
            ),
            done.id: _cell(done, state == "Done"),
        }
        note = rng.choice(NOTES)
        if note:
            cells[notes.id] = _cell(notes, note)
        row = _row(ids, len(rows), cells, parent.id if parent else None, rng)
        rows.append(row)
        return row

    for phase, children in PHASES.items():
        parent = add(phase, None)
        for child in children:
            add(child, parent)
    while len(rows) < 200:
        add(f"{rng.choice(TASK_VERBS)} {rng.choice(TASK_THINGS)}", None)
    return _finish(sheet, rows)


POSITIVE = [
    "Love the new dashboard, it saves me an hour every Monday.",
    "Support resolved my issue within minutes. Great job!",
    "The export feature works exactly as I hoped.",
    "Onboarding was smooth and the docs were clear.",
    "Really happy with the latest update; the app feels much faster.",
    "Your agent Priya went above and beyond to help us migrate.",
]
NEUTRAL = [
    "Would be nice to have a dark mode.",
    "I changed my billing address, please confirm it went through.",
    "How do I add a second admin to our account?",
    "The mobile app is fine, though I mostly use the web version.",
    "Received the invoice. Is the annual plan price fixed for two years?",
    "Can you share the roadmap for reporting features?",
]
NEGATIVE = [
    "The sync keeps failing since yesterday and we lost a morning of work.",
    "Very disappointed: the invoice was charged twice.",
    "Search is painfully slow on large sheets.",
    "I waited three days for a reply to a critical ticket.",
    "The new layout hides the buttons I use most. Please bring back the old one.",
    "Login fails with a vague error and nobody could tell me why.",
]
DETAILS = [
    "We have about forty people on the team.",
    "This happened on both Chrome and Firefox.",
    "Our renewal is next month, so this matters.",
    "Happy to jump on a call if that helps.",
    "Screenshots are attached to the original email.",
    "It started after the last release.",
    "Our finance team noticed it first.",
    "Thanks for listening.",
]


def customer_feedback(ids: IdMaker) -> Sheet:
    rng = random.Random("demo:customer-feedback")
    cols = [
        Column(ids(), "Customer", "TEXT_NUMBER", primary=True, width=200),
        Column(ids(), "Feedback", "TEXT_NUMBER", width=420),
        Column(
            ids(), "Channel", "PICKLIST", options=["Email", "Phone", "Chat", "Survey", "Social"]
        ),
        Column(ids(), "Received", "DATE"),
        Column(ids(), "Sentiment", "PICKLIST", options=["Positive", "Neutral", "Negative"]),
        Column(ids(), "Summary", "TEXT_NUMBER", width=300),
        Column(ids(), "Follow up", "CHECKBOX", width=80),
    ]
    customer, feedback, channel, received, _sentiment, _summary, follow_up = cols
    sheet = _sheet(ids, "Customer Feedback", cols, 90)
    rows = []
    for index in range(2000):
        mood = rng.choices([POSITIVE, NEUTRAL, NEGATIVE], [4, 3, 3])[0]
        parts = [rng.choice(mood), *rng.sample(DETAILS, rng.randrange(0, 4))]
        who = (
            f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if rng.random() < 0.5
            else rng.choice(COMPANIES)
        )
        cells = {
            customer.id: _cell(customer, who),
            feedback.id: _cell(feedback, " ".join(parts)),
            channel.id: _cell(channel, rng.choice(channel.options)),
            received.id: _cell(
                received, (date(2024, 10, 1) + timedelta(days=rng.randrange(0, 120))).isoformat()
            ),
        }
        if mood is NEGATIVE and rng.random() < 0.4:
            cells[follow_up.id] = _cell(follow_up, True)
        rows.append(_row(ids, index, cells, None, rng))
    return _finish(sheet, rows)


SUBJECTS = [
    "Cannot log in",
    "Invoice question",
    "Sync error",
    "Slow search",
    "Export fails",
    "Feature request",
    "Password reset",
    "API rate limit",
    "Missing data",
    "Billing change",
    "Webhook not firing",
    "Mobile crash",
]


def support_tickets(ids: IdMaker) -> Sheet:
    rng = random.Random("demo:support-tickets")
    cols = [
        Column(ids(), "Ticket", "TEXT_NUMBER", primary=True),
        Column(ids(), "Subject", "TEXT_NUMBER", width=240),
        Column(ids(), "Customer", "TEXT_NUMBER"),
        Column(ids(), "Priority", "PICKLIST", options=["Low", "Medium", "High", "Urgent"]),
        Column(ids(), "Status", "PICKLIST", options=["New", "Open", "Pending", "Solved", "Closed"]),
        Column(ids(), "Assignee", "CONTACT_LIST"),
        Column(ids(), "Opened", "DATE"),
        Column(ids(), "Due", "DATE"),
        Column(ids(), "Resolved", "CHECKBOX"),
        Column(ids(), "Escalated", "CHECKBOX"),
        Column(
            ids(),
            "Category",
            "PICKLIST",
            options=["Account", "Billing", "Bug", "How-to", "Integration"],
        ),
        Column(ids(), "Product", "PICKLIST", options=["Web", "Mobile", "API", "Reports"]),
        Column(ids(), "Region", "PICKLIST", options=["AMER", "EMEA", "APAC"]),
        Column(ids(), "Hours Spent", "TEXT_NUMBER"),
        Column(ids(), "Cost", "TEXT_NUMBER"),
        Column(ids(), "Satisfaction", "TEXT_NUMBER"),
        Column(ids(), "SLA Breach", "CHECKBOX"),
        Column(ids(), "Description", "TEXT_NUMBER", width=400),
        Column(ids(), "Tags", "TEXT_NUMBER"),
        Column(ids(), "Created", "DATETIME", system_column_type="CREATED_DATE"),
    ]
    (
        ticket,
        subject,
        customer,
        priority,
        status,
        assignee,
        opened,
        due,
        resolved,
        escalated,
        category,
        product,
        region,
        hours,
        cost,
        satisfaction,
        breach,
        description,
        tags,
        _created,
    ) = cols
    sheet = _sheet(ids, "Support Tickets", cols, 365)
    start = date(2024, 1, 1)
    rows = []
    choice, rand, randrange = rng.choice, rng.random, rng.randrange
    for index in range(20000):
        person = TEAM[randrange(len(TEAM))]
        day = start + timedelta(days=randrange(0, 360))
        state = choice(status.options)
        spent = randrange(1, 80) / 4
        subject_text = choice(SUBJECTS)
        cells = {
            ticket.id: (f"TCK-{index + 1:06d}", f"TCK-{index + 1:06d}"),
            subject.id: (subject_text, subject_text),
            customer.id: (choice(COMPANIES),) * 2,
            priority.id: (choice(priority.options),) * 2,
            status.id: (state, state),
            assignee.id: (person.email, person.name),
            opened.id: (day.isoformat(), None),
            due.id: ((day + timedelta(days=randrange(1, 15))).isoformat(), None),
            resolved.id: (state in ("Solved", "Closed"), None),
            escalated.id: (rand() < 0.1, None),
            category.id: (choice(category.options),) * 2,
            product.id: (choice(product.options),) * 2,
            region.id: (choice(region.options),) * 2,
            hours.id: (spent, str(spent)),
            cost.id: (round(spent * 85), str(round(spent * 85))),
            breach.id: (rand() < 0.05, None),
            description.id: (f"{subject_text} reported via portal. " + choice(DETAILS),) * 2,
        }
        if rand() < 0.8:
            score = randrange(1, 6)
            cells[satisfaction.id] = (score, str(score))
        if rand() < 0.3:
            cells[tags.id] = (choice(["vip", "renewal", "churn-risk", "beta"]),) * 2
        rows.append(_row(ids, index, cells, None, None))
    return _finish(sheet, rows)


def build(seed: str) -> tuple[list[Sheet], IdMaker]:
    """The pristine sheets for a seed, and the id maker that knows which ids they took."""
    ids = IdMaker(f"{seed}:ids", taken={OWNER.id, OTHER.id})
    if seed == "empty":
        return [], ids
    if seed != "demo":
        raise ValueError(f"Unknown seed {seed!r}; use 'demo' or 'empty'.")
    sheets = [project_tracker(ids), customer_feedback(ids), support_tickets(ids)]
    # Pat (sandbox-token-2) is an admin of Project Tracker (a colleague who may restructure it),
    # an editor of Customer Feedback (edits rows under a running AI job) and only a viewer of
    # Support Tickets, so clients meet every kind of share, including one that cannot write
    # (403/1004).
    sheets[0].shares[OTHER.id] = "ADMIN"
    sheets[2].shares[OTHER.id] = "VIEWER"
    return sheets, ids
