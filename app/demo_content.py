"""Original demo articles for `broadsheet seed-demo`: a small coastal-town publication."""

from __future__ import annotations

# (title, subtitle, tags, lead paragraph)
PUBLIC = [
    ("The ferry timetable nobody can read", "Why the new schedule confused half the harbour",
     ["Transport", "Harbour"],
     "On Monday the ferry company pinned a new timetable to the terminal door, and by Tuesday "
     "three different versions were circulating among commuters."),
    ("A library that opens at dawn", "Early hours for shift workers, and who asked for them",
     ["Culture", "Community"],
     "The east branch library now unlocks at six in the morning, a change pushed by nurses "
     "coming off night shifts at the hospital."),
    ("Counting the swifts", "Volunteers tally the birds returning to the old mill",
     ["Environment"],
     "Forty-one volunteers stood on the bridge at dusk with clickers and notebooks, counting "
     "swifts as they dived into the gaps of the old mill roof."),
    ("The bakery that survived the bypass", "Trade fell by a third, then the regulars came back",
     ["Business", "Community"],
     "When the bypass opened, the corner bakery on Station Road lost its passing trade "
     "overnight; two years later, the queue is back out the door."),
    ("What the tide gauge tells us", "A century of readings from the pier",
     ["Environment", "Harbour"],
     "The brass tide gauge on the north pier has been read by hand every day since 1921, and "
     "its ledgers are now being typed up by a retired surveyor."),
    ("Five questions for the new harbour master", "On dredging, licences and the fish market",
     ["Harbour", "Interviews"],
     "The new harbour master took office last month; we asked her what she plans to change "
     "first and what she will leave alone."),
    ("A town meeting in numbers", "Who turned up, who spoke and what was decided",
     ["Politics"],
     "Two hundred and twelve people filled the assembly hall on Thursday, the largest turnout "
     "for a town meeting in a decade."),
    ("The choir with no auditions", "Anyone may sing, and nearly everyone does",
     ["Culture"],
     "The Tuesday choir has one rule: if you turn up, you sing. Its membership has grown to "
     "ninety in three years."),
    ("Repairing the sea wall, stone by stone", "The masons working against the weather",
     ["Harbour", "Environment"],
     "A crew of four masons is rebuilding the damaged stretch of sea wall using stone from "
     "the original quarry, reopened for the job."),
    ("Market day moves indoors", "Stallholders weigh the cost of the covered hall",
     ["Business"],
     "From next month the Saturday market moves into the old grain hall, ending a hundred "
     "years of trading in the open square."),
    ("Letters: on the bus shelter", "Readers respond to last week's report",
     ["Letters"],
     "Our report on the missing bus shelter drew more letters than any story this year; a "
     "selection follows."),
    ("The school that grows its lunch", "Raised beds, a greenhouse and a kitchen rota",
     ["Education", "Community"],
     "At the primary school on Hill Lane, a third of the vegetables served at lunch are now "
     "grown by the pupils themselves."),
]  # fmt: skip

MEMBERS = [
    ("Inside the council's parking review", "The options officers did not publish",
     ["Politics", "Transport"],
     "The council's parking review lists four options, but only two were shown at the public "
     "consultation. We read all four."),
    ("How the lifeboat crew trains", "A night on the water with the volunteers",
     ["Harbour", "Community"],
     "The lifeboat launches for training every Wednesday at eight, whatever the weather, with "
     "a crew that includes a teacher, a plumber and a florist."),
    ("The rent ledger of Quay Street", "Forty years of shop rents, line by line",
     ["Business", "Housing"],
     "A ledger kept by a Quay Street landlord since 1985 shows how shop rents rose, fell and "
     "rose again with the fortunes of the harbour."),
    ("Where the recycling really goes", "Following a lorry from kerb to depot",
     ["Environment"],
     "We followed one recycling lorry for a full round to see where the town's sorted "
     "rubbish ends up, and how much of it is recycled."),
    ("The oyster beds come back", "A slow recovery in the estuary",
     ["Environment", "Harbour"],
     "Ten years after the estuary oyster beds were declared dead, divers have counted the "
     "first new colonies."),
    ("A year of the youth council", "What young councillors asked for and what they got",
     ["Politics", "Education"],
     "The youth council held its first session a year ago; of its eleven requests, four have "
     "been met in full."),
    ("The night bus experiment", "Three months of late services, evaluated",
     ["Transport"],
     "The trial night bus ran for three months and carried more passengers than forecast, "
     "but not enough to pay for itself."),
    ("Who owns the headland?", "Tracing the title to the cliff path",
     ["Housing", "Politics"],
     "The cliff path has been walked for centuries, but the land beneath it has changed hands "
     "five times since 1990."),
    ("The harbour's busiest hour", "Five in the morning at the fish market",
     ["Harbour", "Business"],
     "At five in the morning the fish market is the busiest place in town, and most residents "
     "have never seen it."),
    ("Teaching in two languages", "The school that switched its timetable",
     ["Education"],
     "Half the lessons at the secondary school are now taught in a second language, a change "
     "parents were split on."),
    ("The festival's balance sheet", "What the summer festival cost and earned",
     ["Culture", "Business"],
     "The summer festival drew record crowds; its accounts, filed this week, show a small "
     "loss for the third year running."),
    ("A map of the town's wells", "Forgotten water under the streets",
     ["Environment", "Community"],
     "A local historian has mapped thirty-two wells under the streets of the old town, some "
     "still holding water."),
]  # fmt: skip

PAID = [
    ("The harbour deal, explained", "What the council signed, and what it means for rates",
     ["Politics", "Harbour"],
     "The council has signed a thirty-year lease of the outer harbour; the contract runs to "
     "two hundred pages and we have read every one."),
    ("Investigation: the missing road fund", "Where the resurfacing money went",
     ["Politics", "Investigations"],
     "Money set aside three years ago to resurface the coast road was spent elsewhere; "
     "council papers show where."),
    ("The housing waiting list, analysed", "Ten years of data on who waits longest",
     ["Housing", "Investigations"],
     "We analysed ten years of the town's housing waiting list to find out who waits longest "
     "for a home, and why."),
    ("Fishing quotas and the town's future", "A long read on the fleet",
     ["Harbour", "Business"],
     "The fleet has shrunk from sixty boats to nineteen; this long read asks what a harbour "
     "town is when it stops fishing."),
    ("The hospital's night shift", "Eight hours on the ward, in the staff's words",
     ["Health", "Community"],
     "Nurses on the night shift at the cottage hospital describe the eight hours most of the "
     "town sleeps through."),
    ("Who funds the local election?", "Every donation over fifty pounds, listed",
     ["Politics", "Investigations"],
     "Candidates must declare donations over fifty pounds; we collected every declaration and "
     "matched the donors."),
    ("The flood map they did not publish", "What the insurers know about our streets",
     ["Environment", "Investigations"],
     "Insurers price flood risk street by street using a map that residents cannot see; we "
     "obtained a copy."),
    ("Schools, budgets and the missing teachers", "Why three posts stay empty",
     ["Education"],
     "Three teaching posts at the secondary school have been empty for a year; the budget "
     "papers explain part of the reason."),
    ("The pier's last owner", "A profile of the man who bought it for a pound",
     ["Harbour", "Interviews"],
     "He bought the pier for a pound in 2004 and has spent a fortune keeping it standing; a "
     "profile."),
    ("Tourism's real numbers", "Visitors, beds and the summer economy",
     ["Business", "Culture"],
     "The tourist board says visitor numbers are up; hotel tax receipts tell a more careful "
     "story."),
    ("The water company's promises", "Five years of pledges, checked",
     ["Environment", "Investigations"],
     "Five years ago the water company promised to end sewage overflows onto the beach; we "
     "checked each pledge against the records."),
    ("Editor's notebook: a year of the paper", "What we got right, and what we got wrong",
     ["Letters"],
     "A year after our first issue, the editor looks back at the stories that mattered, the "
     "corrections we ran, and the plans for next year."),
]  # fmt: skip

SECTIONS = [
    (
        "What we found",
        "The documents were obtained through a records request and checked against the "
        "minutes of the meetings where the decisions were taken.",
        "Where figures disagreed, we used the later and audited number and say so in the text.",
    ),
    (
        "What people said",
        "We spoke to residents, traders and officials over two weeks; most agreed to be named.",
        "Those who asked not to be named are described by their role, and their accounts were "
        "checked with a second source.",
    ),
    (
        "What happens next",
        "The next meeting of the relevant committee is set for the end of the month and is open "
        "to the public.",
        "We will follow the decision and report what changes, and what does not.",
    ),
    (
        "The background",
        "The question is not new: it was raised in the local press as early as the 1970s and "
        "again after the storms of 2014.",
        "What is new is the data, which until this year was not collected in one place.",
    ),
]


def body(lead: str, index: int, gated: bool) -> str:
    """Give back a demo article body: a lead, sub-headings, and a paywall marker if gated."""
    first = SECTIONS[index % len(SECTIONS)]
    second = SECTIONS[(index + 1) % len(SECTIONS)]
    parts = [lead, f"## {first[0]}", first[1], first[2]]
    if gated:
        parts.append("<!-- paywall -->")
    parts += [f"## {second[0]}", second[1], second[2]]
    return "\n\n".join(parts) + "\n"
