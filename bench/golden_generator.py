"""A generated golden set of any size: a fictional company's knowledge base and SQuAD-style questions on it.

    .venv/bin/python bench/golden_generator.py OUT_DIR [--documents 120] [--questions 1200] [--seed 0]

Writes ``OUT_DIR/corpus/`` (Markdown documents with headings) and ``OUT_DIR/questions.jsonl`` in
the golden-set format, plus ``answers``: short spans that occur verbatim in the one sentence
given as the reference context (one-word answers, roles, numbers, dates).

The set is built so that shortcuts do not pay: documents of one kind share their
headings and sentence templates and differ only in the entity and its values (so retrieval must
find the right entity, not the right kind of page), service-plan documents repeat one section
per plan, and every question paraphrases its statement with other words in another order.
Everything comes from the word lists below and a seeded ``random.Random``: the same arguments
give byte-identical files, with no network and no fake-data library. Names are compounds and
people appear only as roles, so the project's PII and injection screening has nothing to take.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.evaluation.golden import CORPUS_DIR, QUESTIONS_FILE

UNANSWERABLE_EVERY = 25  # one question in 25 asks about something the corpus does not hold
NO_ANSWER = "The knowledge base does not contain this information."
UNSTATED = ("Which insurer covers {e}?", "What is the carbon footprint of {e}?", "Who audited {e} most recently?",
            "What was the maintenance budget for {e} last year?", "When is {e} due for its next inspection?")

PREFIXES = ("Tide", "Brass", "Quill", "Fern", "Cinder", "Lumen", "Slate", "Amber", "Frost", "Copper", "Maple",
            "Ridge", "Storm", "Granite", "Orbit", "Pixel", "Vector", "Signal", "Harbor", "Cobalt", "Meadow", "Falcon",
            "Juniper", "Beacon", "Summit", "Prism", "Anchor", "Canyon", "Glacier", "Nimbus")
SUFFIXES = ("lock", "wing", "mark", "crest", "gate", "line", "forge", "path", "vault", "beam", "works", "stack",
            "grid", "scope", "dock", "link", "flow", "track", "point", "shift")
TOWN_HEADS = ("Ash", "Birch", "Cold", "Elm", "Fair", "Glen", "High", "Iron", "Lake", "Mill", "North", "Oak", "Red",
              "Stone", "West", "Bright", "Clay", "Dun", "East", "Holly", "Kings", "Long", "Marsh", "Salt")
TOWN_TAILS = ("brook", "ford", "haven", "moor", "port", "ridge", "vale", "wick", "field", "mouth", "stead", "bury",
              "combe", "hollow", "crossing")
CATEGORIES = ("inventory scanner", "label printer", "route planner", "dock scheduler", "forklift telematics unit",
              "yard camera", "pallet tracker", "cold-chain sensor", "handheld terminal", "slotting optimizer")
ROLES = ("the regional operations manager", "the head of procurement", "the site safety officer",
         "the finance controller", "the fleet coordinator", "the service desk lead", "the platform engineering lead",
         "the quality assurance supervisor", "the chief information security officer", "the warehouse shift lead",
         "the customer success director", "the payroll administrator", "the compliance analyst",
         "the facilities supervisor", "the transport planner", "the data protection officer")
COLOURS = ("copper", "teal", "graphite", "amber", "ivory", "crimson", "olive", "navy", "silver", "saffron")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
SYSTEMS = ("Linux", "Android", "Windows", "ChromeOS", "iOS")
CARRIERS = ("rail", "barge", "truck", "air", "ferry")
CLIMATES = ("temperate", "dry", "humid", "mountain", "coastal")
DEPARTMENTS = ("warehouse", "transport", "finance", "support", "engineering", "procurement", "facilities", "sales")
TOPICS = ("remote work", "equipment loan", "travel booking", "overtime", "software purchase", "visitor access",
          "data retention", "vehicle use", "training budget", "mobile device", "expense advance", "shift swap")
TOOLS = ("Ledgerline", "Deskwise", "Formstack", "Tallybook", "Passgate", "Rosterly")
PLANS = ("Basic", "Standard", "Premium", "Enterprise")


def _number(low: int, high: int, step: int = 1) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randrange(low, high + 1, step))


def _choice(words: tuple[str, ...]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(words)


def _date(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(2015, 2025)}"


def _clock(rng: random.Random) -> str:
    return f"{rng.randint(5, 9):02d}:{rng.choice(('00', '15', '30', '45'))}"


def _percent(rng: random.Random) -> str:
    return f"{rng.choice(('99.5', '99.7', '99.9', '99.95', '99.99'))}%"


def _town(rng: random.Random) -> str:
    return rng.choice(TOWN_HEADS) + rng.choice(TOWN_TAILS)


@dataclass(frozen=True)
class Fact:
    """One attribute of an entity: a value drawn per entity, the ways the corpus states it and
    the ways a question asks for it. ``{e}`` is the entity, ``{v}`` the value (in statements only)."""

    key: str
    value: Callable[[random.Random], str]
    statements: tuple[str, ...]
    questions: tuple[str, ...]
    tag: str = "fact"


@dataclass(frozen=True)
class Kind:
    """A kind of document: its folder, title, sections (heading, facts) and filler sentences."""

    folder: str
    title: str
    sections: tuple[tuple[str, tuple[Fact, ...]], ...]
    filler: tuple[str, ...]


PRODUCT = Kind("products", "{e}: product sheet", (
    ("Overview", (
        Fact("launch", _date, ("{e} became generally available on {v}.",
                               "General availability of the {e} device was announced on {v}."),
             ("When was {e} first released to all customers?", "On what date could every customer start using {e}?"),
             "date"),
        Fact("owner", _choice(ROLES), ("Product decisions for the {e} line are made by {v}.",
                                       "The roadmap of the {e} device is owned by {v}."),
             ("Who decides what goes into {e}?", "Which role is accountable for the direction of {e}?"), "role"),
        Fact("colour", _choice(COLOURS), ("The housing of the {e} device ships in a {v} finish.",
                                          "Each unit of the {e} line comes with a {v} casing."),
             ("What colour is the case of {e}?", "Which finish does the {e} enclosure have?")),
    )),
    ("Specifications", (
        Fact("users", _number(20, 900, 10), ("A single deployment of the {e} system supports up to {v} concurrent users.",
                                             "{e} handles at most {v} simultaneous sessions."),
             ("How many people can work in {e} at the same time?", "What is the ceiling on parallel sessions for {e}?"),
             "numeric"),
        Fact("battery", _number(6, 40), ("On a full charge the {e} device runs for {v} hours.",
                                         "The battery of the {e} device lasts {v} hours between charges."),
             ("How long does {e} keep going before it needs recharging?", "What runtime does {e} offer per charge?"),
             "numeric"),
        Fact("os", _choice(SYSTEMS), ("The companion app of the {e} device runs only on {v}.",
                                      "{e} is managed from an app built for {v}."),
             ("Which operating system is needed to manage {e}?", "On what platform does the {e} app work?")),
        Fact("weight", _number(180, 2400, 20), ("{e} weighs {v} grams without accessories.",
                                               "Without its accessories, the {e} device has a mass of {v} grams."),
             ("How heavy is {e}?", "What does {e} weigh, in grams?"), "numeric"),
    )),
    ("Support and warranty", (
        Fact("warranty", _number(6, 60, 6), ("Hardware faults in the {e} device are covered for {v} months from delivery.",
                                             "{e} carries a warranty of {v} months."),
             ("For how long is {e} guaranteed against defects?", "How many months of cover come with {e}?"),
             "numeric"),
        Fact("patch_day", _choice(WEEKDAYS), ("Firmware updates for the {e} device are released every {v}.",
                                              "New firmware for the {e} line arrives each {v}."),
             ("On which day of the week does {e} get software patches?", "When in the week is {e} firmware published?")),
        Fact("price", _number(120, 4800, 5), ("Each licence of the {e} system is priced at {v} dollars per year.",
                                             "The annual list price of one seat on the {e} system is {v} dollars."),
             ("How much does a yearly subscription to {e} cost?", "What do we pay per seat per year for {e}?"),
             "numeric"),
    )),
), (
    "Operators should read the quick-start card before first use.",
    "Spare parts are ordered through the service catalogue.",
    "Devices returned for repair must be wiped by the site administrator beforehand.",
    "The product team publishes release notes on the internal portal.",
    "Training sessions are recorded and kept in the learning library.",
    "Feature requests are reviewed at the monthly product forum.",
    "Accessories from other vendors are not supported.",
    "A loan unit can be requested while a device is being repaired.",
    "Cleaning instructions are printed on the inside of the battery cover.",
    "Configuration backups are taken automatically every night.",
    "The device must be stored away from direct sunlight when not in use.",
    "Support tickets should include the serial number and a short description of the fault.",
    "Older models remain supported until their end-of-life notice expires.",
    "Integration guides for the warehouse system are available from the partner team.",
    "Replacement chargers are kept in the supply room of each site.",
))

SITE = Kind("sites", "{e}: distribution center profile", (
    ("Site profile", (
        Fact("opened", _date, ("The {e} distribution center opened on {v}.",
                               "Operations at the {e} facility began on {v}."),
             ("When did the {e} warehouse start operating?", "What is the opening date of the {e} site?"), "date"),
        Fact("area", _number(40000, 600000, 5000), ("The {e} building covers {v} square feet.",
                                                    "Floor space at the {e} site totals {v} square feet."),
             ("How big is the {e} warehouse?", "What is the size of the {e} facility in square feet?"), "numeric"),
        Fact("climate", _choice(CLIMATES), ("The {e} site lies in a {v} climate zone.",
                                            "{e} is classified as a {v} location for storage planning."),
             ("What kind of climate does the {e} facility have?", "Which climate class applies to {e}?")),
        Fact("manager", _choice(ROLES), ("Day-to-day decisions at the {e} site rest with {v}.",
                                         "The {e} site reports to {v}."),
             ("Who runs the {e} distribution center?", "Which role is in charge of the {e} warehouse?"), "role"),
    )),
    ("Operations", (
        Fact("doors", _number(8, 120), ("{e} has {v} loading dock doors.",
                                        "There are {v} dock doors at the {e} building."),
             ("How many trucks can load at once at {e}?", "What is the number of loading bays at {e}?"), "numeric"),
        Fact("shift", _clock, ("The first shift at the {e} warehouse starts at {v}.",
                               "Morning work at the {e} site begins at {v}."),
             ("What time does the early shift begin at the {e} warehouse?", "When do staff at {e} clock in first?"),
             "numeric"),
        Fact("carrier", _choice(CARRIERS), ("Most inbound freight reaches the {e} site by {v}.",
                                            "{e} receives the bulk of its goods by {v}."),
             ("How do most deliveries arrive at {e}?", "Which transport mode brings incoming stock to {e}?")),
        Fact("port", _town, ("{v} is the nearest port to the {e} site.",
                             "Sea containers for the {e} site are cleared at the {v} terminal."),
             ("Which harbour is closest to the {e} site?", "Where are ocean shipments for {e} handled?")),
    )),
    ("Safety", (
        Fact("drill", _choice(MONTHS), ("The annual evacuation drill at the {e} site takes place in {v}.",
                                        "{e} rehearses its fire evacuation every {v}."),
             ("In which month is the {e} fire drill held?", "When does the {e} warehouse practise evacuating?")),
        Fact("parking", _number(40, 900, 10), ("Staff parking at the {e} site has {v} spaces.",
                                               "{e} offers {v} parking spots for employees."),
             ("How many cars can employees park at {e}?", "What is the capacity of the {e} staff car park?"),
             "numeric"),
    )),
), (
    "Visitors sign in at the front desk and wear a badge at all times.",
    "High-visibility vests are required beyond the yellow line.",
    "Forklift routes are marked on the floor and reviewed each quarter.",
    "Hazardous goods are stored in the caged area near the east wall.",
    "Temperature logs are checked at the start of every shift.",
    "Damaged pallets are reported in the warehouse system before they are moved.",
    "The break room is open to all shifts.",
    "Contractors need a safety induction before working on site.",
    "Lost-and-found items are handed to the security desk at the end of each day.",
    "Spill kits are placed next to every charging station.",
    "Seasonal peaks are planned with the regional team two months ahead.",
    "Cycle counts are run on a rolling schedule so that every location is checked each quarter.",
    "Returns are processed in a separate area to keep them apart from new stock.",
    "The first-aid room is staffed during all operating hours.",
    "Drivers wait in the lounge next to the gatehouse while their trucks are loaded.",
))

POLICY = Kind("policies", "{e} policy", (
    ("Scope", (
        Fact("effective", _date, ("The {e} policy took effect on {v}.",
                                  "{e} rules have applied since {v}."),
             ("Since when is the {e} policy in force?", "What is the start date of the {e} rules?"), "date"),
        Fact("owner", _choice(ROLES), ("The {e} policy is maintained by {v}.",
                                       "Questions about the {e} policy go to {v}."),
             ("Who is responsible for the {e} rules?", "Which role looks after the {e} policy?"), "role"),
    )),
    ("Limits", (
        Fact("limit", _number(100, 9000, 50), ("Under the {e} policy a single request may not exceed {v} dollars.",
                                               "{e} requests are capped at {v} dollars each."),
             ("What is the maximum amount of one {e} request?", "How much money can one {e} claim be for at most?"),
             "numeric"),
        Fact("notice", _number(2, 30), ("{e} requests must be filed {v} days in advance.",
                                        "Employees give {v} days of notice for {e} requests."),
             ("How early do I need to ask for {e}?", "How many days ahead must a {e} request be made?"), "numeric"),
        Fact("tool", _choice(TOOLS), ("{e} requests are submitted in the {v} tool.",
                                      "The {v} tool is where {e} requests are entered."),
             ("Which system do I use to file a {e} request?", "Where are {e} requests logged?")),
    )),
    ("Review", (
        Fact("review", _number(6, 36, 6), ("The {e} policy is reviewed every {v} months.",
                                           "{e} rules are revisited at intervals of {v} months."),
             ("How often is the {e} policy revised?", "At what interval, in months, are the {e} rules checked?"),
             "numeric"),
        Fact("approver", _choice(ROLES), ("Exceptions to the {e} policy need approval from {v}.",
                                          "Only {v} can grant an exception to the {e} rules."),
             ("Who can sign off on an exception to the {e} policy?", "Which role approves departures from {e}?"),
             "role"),
    )),
), (
    "Managers explain this policy to new team members during onboarding.",
    "Records are kept for audit purposes.",
    "Repeated breaches are handled under the disciplinary procedure.",
    "The policy applies to permanent staff and fixed-term contractors.",
    "A summary of changes is published whenever the policy is updated.",
    "Local law takes precedence where it sets a stricter rule.",
    "Requests that are incomplete are returned to the requester.",
    "Approvals are recorded together with the reason given by the approver.",
    "Employees on probation follow the same rules unless their contract says otherwise.",
    "A request that was refused may be submitted again with new information.",
    "Team leads receive a monthly report of open and closed requests.",
    "Misuse of this policy may lead to the withdrawal of the benefit.",
    "Guidance notes with worked examples are linked from the intranet page.",
))

PLAN_FACTS = (
    Fact("response", _number(1, 72), ("On the {p} plan of the {e} service, the first response to a ticket comes within {v} hours.",
                                      "{p} customers of the {e} service get a reply to a ticket within {v} hours."),
         ("How quickly does {e} support answer a {p} customer's ticket?",
          "What is the first-reply target for tickets under the {p} tier of {e}?"), "numeric"),
    Fact("uptime", _percent, ("The {p} plan of the {e} service guarantees {v} availability.",
                              "The {e} service commits to {v} uptime for the {p} subscribers."),
         ("What availability is promised to {p} subscribers of {e}?",
          "Which uptime level does the {p} tier of {e} guarantee?"), "numeric"),
    Fact("seats", _number(5, 500, 5), ("The {p} plan of the {e} service includes {v} user seats.",
                                       "{v} seats come with every {p} subscription to the {e} service."),
         ("How many users are included in the {p} tier of {e}?",
          "What number of seats does a {p} {e} subscription bundle?"), "numeric"),
    Fact("channel", _choice(("chat", "phone", "e-mail", "portal")),
         ("{p} customers of the {e} service reach support by {v}.",
          "The support channel of the {p} plan of the {e} service is {v}."),
         ("How do {p} subscribers of {e} contact the help desk?",
          "Through which channel does the {p} tier of {e} get help?")),
)


def _plan_kind(plans: tuple[str, ...]) -> Kind:
    """Service plans of a product: one section per plan, every section with the same facts."""
    sections = tuple((f"{plan} plan", tuple(
        Fact(f"{plan.lower()}_{fact.key}", fact.value,
             tuple(s.replace("{p}", plan) for s in fact.statements),
             tuple(q.replace("{p}", plan) for q in fact.questions), fact.tag)
        for fact in PLAN_FACTS)) for plan in plans)
    return Kind("service-plans", "{e}: service plans", sections, (
        "Plans can be changed at the start of any billing month.",
        "Support hours are stated in the customer's own time zone.",
        "Credits for missed targets are applied to the next invoice.",
        "Planned maintenance windows are announced a week in advance.",
        "Upgrades take effect immediately; downgrades at the next renewal.",
        "Every plan includes access to the online knowledge base and the community forum.",
        "Invoices are issued monthly in arrears.",
        "Service reports are sent to the account owner at the end of each quarter.",
        "Priority is set by the customer when a ticket is opened and reviewed by the support engineer.",
        "Onboarding sessions are scheduled within two weeks of signing.",
        "Data exports can be requested at any time at no extra cost.",
        "Usage above the included seats is billed at the list price.",
    ))


SERVICE_PLANS = _plan_kind(PLANS)
KINDS = (PRODUCT, SITE, POLICY, SERVICE_PLANS)


@dataclass(frozen=True)
class Statement:
    source: str
    entity: str
    fact: Fact
    value: str
    sentence: str


def _entities(kind: Kind, rng: random.Random, count: int, products: list[str]) -> list[str]:
    """Compound names (``Tidelock``, ``Ashbrook``), capitalised like products and places, never
    like people. Service plans are those of the first products, so both documents name them."""
    if kind is PRODUCT:
        return rng.sample(sorted({head + tail for head in PREFIXES for tail in SUFFIXES}), count)
    if kind is SITE:
        return rng.sample(sorted({head + tail for head in TOWN_HEADS for tail in TOWN_TAILS}), count)
    if kind is POLICY:
        return rng.sample([f"{d} {t}" for d in DEPARTMENTS for t in TOPICS], count)
    return products[:count]


def _capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def _document(kind: Kind, entity: str, rng: random.Random) -> tuple[str, str, list[Statement]]:
    """One Markdown document: its corpus path, its text and the statements it makes."""
    source = f"{kind.folder}/{_slug(entity)}.md"
    lines, statements = [f"# {_capitalised(kind.title.format(e=entity))}", ""], []
    filler = iter(rng.sample(kind.filler, len(kind.filler)))  # each filler sentence at most once a document
    if kind is PRODUCT:
        lines += [f"{entity} is a {rng.choice(CATEGORIES)} sold to warehouse and transport customers.", ""]
    for heading, facts in kind.sections:
        sentences = []
        for fact in facts:
            value = fact.value(rng)
            sentence = rng.choice(fact.statements).format(e=entity, v=value)
            sentence = _capitalised(sentence)
            statements.append(Statement(source, entity, fact, value, sentence))
            sentences.append(sentence)
        sentences += [next(filler) for _ in range(min(3, len(kind.filler) // len(kind.sections)))]
        rng.shuffle(sentences)
        middle = len(sentences) // 2
        lines += [f"## {heading}", "", " ".join(sentences[:middle]), "", " ".join(sentences[middle:]), ""]
    return source, "\n".join(lines), statements


def _answerable(statement: Statement, number: int, paraphrase: int) -> dict:
    fact = statement.fact
    return {
        "id": f"g{number:05d}",
        "question": fact.questions[paraphrase % len(fact.questions)].format(e=statement.entity),
        "ground_truth": statement.sentence,
        "reference_contexts": [statement.sentence],
        "reference_sources": [statement.source],
        "answerable": True,
        "tags": [statement.source.split("/")[0], fact.tag],
        "answers": [statement.value],
    }


def _unanswerable(template: str, statement: Statement, number: int) -> dict:
    """A question about a documented product or site on something no document states."""
    return {
        "id": f"g{number:05d}", "question": template.format(e=statement.entity),
        "ground_truth": NO_ANSWER, "reference_contexts": [], "reference_sources": [], "answerable": False,
        "tags": [statement.source.split("/")[0], "unanswerable"], "answers": [],
    }


def generate_golden_set(root: Path, documents: int = 120, questions: int = 1200, seed: int = 0) -> Path:
    """Write the corpus and ``questions.jsonl`` under ``root``; returns ``root``. Statements are
    asked in a shuffled order, each in one of its paraphrases; with more questions than statements,
    the second round asks them in the other one."""
    rng = random.Random(seed)
    root = Path(root)
    per_kind = [documents // len(KINDS) + (i < documents % len(KINDS)) for i in range(len(KINDS))]
    if per_kind[0] > len(DEPARTMENTS) * len(TOPICS):
        raise ValueError(f"at most {len(KINDS) * len(DEPARTMENTS) * len(TOPICS)} documents, not {documents}")
    statements: list[Statement] = []
    subjects: list[Statement] = []  # one statement per product and site: whom unanswerable questions ask about
    products: list[str] = []
    for kind, count in zip(KINDS, per_kind):
        entities = _entities(kind, rng, count, products)
        products = products or entities
        for entity in entities:
            source, text, stated = _document(kind, entity, rng)
            path = root / CORPUS_DIR / source
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            statements += stated
            subjects += stated[:1] if kind in (PRODUCT, SITE) else []
    order = rng.sample(statements, len(statements))
    paraphrases = [rng.randrange(len(s.fact.questions)) for s in order]
    pairs = [(t, s) for s in subjects for t in UNSTATED]
    unstated = cycle(rng.sample(pairs, len(pairs)))  # repeats only in sets of a few documents
    rows, asked = [], 0
    for number in range(1, questions + 1):
        if number % UNANSWERABLE_EVERY == 0:
            rows.append(_unanswerable(*next(unstated), number))
            continue
        round_, place = divmod(asked, len(order))
        rows.append(_answerable(order[place], number, paraphrases[place] + round_))
        asked += 1
    (root / QUESTIONS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--documents", type=int, default=120)
    parser.add_argument("--questions", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = generate_golden_set(args.out_dir, args.documents, args.questions, args.seed)
    print(f"{root}: {args.documents} documents, {args.questions} questions")


if __name__ == "__main__":
    main()
