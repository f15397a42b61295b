"""KubeCon events: recognising them in post metadata (ingest) and in questions (retrieval).

Both sides share this module so that "Detroit", "KubeCon NA 2022" and the front matter string
"KubeCon + CloudNativeCon North America 2022 (Detroit)" all land on the same (region, year, city).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# City -> region. Regions use the short names people type: EU, NA, China, India, Japan.
CITY_REGION: dict[str, str] = {
    "berlin": "EU", "copenhagen": "EU", "barcelona": "EU", "amsterdam": "EU", "valencia": "EU",
    "paris": "EU", "london": "EU",
    "austin": "NA", "seattle": "NA", "san diego": "NA", "boston": "NA", "los angeles": "NA",
    "detroit": "NA", "chicago": "NA", "salt lake city": "NA", "atlanta": "NA", "san francisco": "NA",
    "portland": "NA", "new orleans": "NA",
    "shanghai": "China", "hong kong": "China",
    "hyderabad": "India", "mumbai": "India", "new delhi": "India", "delhi": "India",
    "tokyo": "Japan",
}  # fmt: skip

CITY_ALIASES: dict[str, str] = {
    "slc": "salt lake city", "salt lake": "salt lake city", "la": "los angeles", "sd": "san diego",
    "sf": "san francisco", "nola": "new orleans",
}  # fmt: skip


@dataclass(frozen=True)
class Region:
    """One region and every word for it. ``names`` count anywhere (any case); ``upper`` only in capitals
    ("NA", never "na"); ``metadata`` only in post metadata, where "US" names an event and not "us"."""

    code: str
    names: tuple[str, ...]
    upper: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()

    def pattern(self, *, in_metadata: bool) -> re.Pattern:
        """The regex for this region in a question (``in_metadata=False``) or in post metadata."""
        words = list(self.names) + (list(self.metadata) if in_metadata else [])
        alternatives = [rf"(?i:\b(?:{'|'.join(re.escape(w) for w in words)})\b)"]
        if self.upper and not in_metadata:
            alternatives.append(rf"\b(?:{'|'.join(re.escape(w) for w in self.upper)})\b")
        return re.compile("|".join(alternatives))

    @property
    def aliases(self) -> str:
        """Everything a post's event may be called in an answer ("EU Europe European")."""
        return " ".join(dict.fromkeys([self.code, *self.names, *self.upper, *self.metadata]))


# The one region vocabulary: event metadata (ingest), questions (rag.question) and answer verification.
REGIONS: tuple[Region, ...] = (
    Region("EU", ("europe", "european", "eu", "emea")),
    Region("NA", ("north america", "north american"), upper=("NA",), metadata=("na", "us", "usa")),
    Region("China", ("china", "chinese")),
    Region("India", ("india", "indian")),
    Region("Japan", ("japan", "japanese")),
)
REGION_BY_CODE: dict[str, Region] = {r.code: r for r in REGIONS}

YEAR_RE = re.compile(r"\b(20[12]\d)\b")


@dataclass(frozen=True)
class EventInfo:
    """What a text says about an event. Empty fields mean "not stated"."""

    year: int | None = None
    city: str = ""  # canonical title case, e.g. "Salt Lake City"
    region: str = ""  # EU / NA / China / India / Japan / Virtual
    virtual: bool = False

    @property
    def is_empty(self) -> bool:
        return self.year is None and not self.city and not self.region

    def label(self) -> str:
        parts = [p for p in (self.region, self.city, str(self.year) if self.year else "") if p]
        return " ".join(parts)


def _canonical_city(city: str) -> str:
    return city.title()


def _city_spans(lowered: str) -> list[tuple[int, int, str]]:
    """Where a (lower-cased) text names KubeCon cities: ``(start, end, city)`` in text order."""
    found: list[tuple[int, int, str]] = []
    for city in sorted(CITY_REGION, key=len, reverse=True):
        for match in re.finditer(rf"\b{re.escape(city)}\b", lowered):
            if not any(s <= match.start() < e for s, e, _ in found):
                found.append((match.start(), match.end(), city))
    for alias, city in CITY_ALIASES.items():
        # Aliases are short; only trust them next to "kubecon" or a year (e.g. "KubeCon LA", "SLC 2024").
        if re.search(rf"(?:kubecon\s+{alias}\b|\b{alias}\s+20[12]\d)", lowered):
            start = lowered.find(alias)
            found.append((start, start + len(alias), city))
    return sorted(found)


def _find_cities(lowered: str) -> list[str]:
    return [city for _, _, city in _city_spans(lowered)]


def cities_in(text: str) -> set[str]:
    """The KubeCon cities a text names (canonical lower case: "san diego")."""
    return set(_find_cities(text.lower()))


# A region named as the place of an event ("the kiosk in Europe", "KubeCon EU"), not as anyone's home ("from India").
_EVENT_REGION_RE = re.compile(
    r"\b(?:in|at|kubecon|cloudnativecon)\s+(?:the\s+)?((?i:europe|north america|china|india|japan)|EU|NA)\b", re.I
)
_REGION_WORD = {"europe": "EU", "eu": "EU", "north america": "NA", "na": "NA", "china": "China", "india": "India", "japan": "Japan"}


@lru_cache(maxsize=4096)  # verification asks it of every window for every answer sentence
def event_places(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The KubeCon cities a text names, and the regions of those cities and of the events it names."""
    cities = cities_in(text)
    regions = {CITY_REGION[c] for c in cities} | {_REGION_WORD[m.lower()] for m in _EVENT_REGION_RE.findall(text)}
    return frozenset(cities), frozenset(regions)


def elsewhere(text: str, question: str) -> bool:
    """Does ``text`` speak only of other KubeCon events than the one ``question`` names?

    Cities are compared with cities ("Seattle had 8,000 attendees" is not San Diego), else regions: "the
    major question which we had at the Istio kiosk in Europe" is not about the kiosk at KubeCon NA in
    Chicago, while "in Amsterdam" is about KubeCon EU 2023. A question naming no event finds nothing
    elsewhere.
    """
    asked_cities, asked_regions = event_places(question)
    cities, regions = event_places(text)
    if cities and asked_cities:
        return not cities & asked_cities
    return bool(regions and asked_regions) and not regions & asked_regions


ANOTHER_EVENT_REACH = 6  # words either side of another event's place that are about that event


def without_other_events(text: str, question: str) -> str:
    """The words of ``text`` that are not about another event than the question's.

    A line that names only other events speaks of them near their names ("Shanghai, China: November
    14-15", "the Istio kiosk in Europe — the schedule for CNCF graduation"), not in its other clauses:
    "With the Academic rate of $150, I believe that if the next conference is near to Chicago, it would
    make sense…" still gives Detroit's rate. The words within ``ANOTHER_EVENT_REACH`` of such a place
    are left out.
    """
    if not elsewhere(text, question):
        return text
    places = [(start, end) for start, end, _ in _city_spans(text.lower())]
    places += [m.span(1) for m in _EVENT_REGION_RE.finditer(text)]
    words = [m.span() for m in re.finditer(r"\S+", text)]
    at = [i for i, (start, end) in enumerate(words) if any(start < e and s < end for s, e in places)]
    near = {j for i in at for j in range(i - ANOTHER_EVENT_REACH, i + ANOTHER_EVENT_REACH + 1)}
    return " ".join(text[start:end] for i, (start, end) in enumerate(words) if i not in near)


def parse_event(text: str) -> EventInfo:
    """Parse an event string such as "KubeCon + CloudNativeCon Europe 2022 (Valencia)"."""
    lowered = text.lower()
    years = YEAR_RE.findall(text)
    year = int(years[0]) if years else None
    cities = _find_cities(lowered)
    city = cities[0] if cities else ""
    virtual = "virtual" in lowered
    region = CITY_REGION.get(city, "")
    if not region:
        for candidate in REGIONS:
            if candidate.pattern(in_metadata=True).search(lowered):
                region = candidate.code
                break
    if not region and virtual:
        region = "Virtual"
    return EventInfo(year=year, city=_canonical_city(city) if city else "", region=region, virtual=virtual)


def event_aliases(event: str) -> str:
    """Other names of a post's event ("EU Europe European Valencia 2022" for "... Europe 2022 (Valencia)"):
    an answer may call the event what the question called it."""
    info = parse_event(event)
    region = REGION_BY_CODE.get(info.region)
    return " ".join(p for p in (region.aliases if region else "", info.city, str(info.year or "")) if p)


def format_event(info: EventInfo) -> str:
    """A readable event name for posts whose front matter did not give one."""
    region_names = {"EU": "Europe", "NA": "North America", "China": "China", "India": "India",
                    "Japan": "Japan", "Virtual": ""}  # fmt: skip
    name = "KubeCon + CloudNativeCon"
    region = region_names.get(info.region, info.region)
    if region:
        name += f" {region}"
    if info.year:
        name += f" {info.year}"
    if info.city:
        name += f" ({info.city})"
    elif info.virtual:
        name += " (Virtual)"
    return name
