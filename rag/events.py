"""KubeCon events: recognising them in post metadata (ingest) and in questions (retrieval).

Both sides share this module so that "Detroit", "KubeCon NA 2022" and the front matter string
"KubeCon + CloudNativeCon North America 2022 (Detroit)" all land on the same (region, year, city).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

REGION_PATTERNS: list[tuple[str, str]] = [
    (r"\b(?:europe|european|eu)\b", "EU"),
    (r"\b(?:north america|na|us|usa)\b", "NA"),
    (r"\b(?:china|chinese)\b", "China"),
    (r"\b(?:india|indian)\b", "India"),
    (r"\b(?:japan|japanese)\b", "Japan"),
]

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


def _find_cities(lowered: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for city in sorted(CITY_REGION, key=len, reverse=True):
        for match in re.finditer(rf"\b{re.escape(city)}\b", lowered):
            if not any(s <= match.start() < s + len(c) for s, c in found):
                found.append((match.start(), city))
    for alias, city in CITY_ALIASES.items():
        # Aliases are short; only trust them next to "kubecon" or a year (e.g. "KubeCon LA", "SLC 2024").
        if re.search(rf"(?:kubecon\s+{alias}\b|\b{alias}\s+20[12]\d)", lowered):
            found.append((lowered.find(alias), city))
    return [c for _, c in sorted(found)]


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
        for pattern, name in REGION_PATTERNS:
            if re.search(pattern, lowered):
                region = name
                break
    if not region and virtual:
        region = "Virtual"
    return EventInfo(year=year, city=_canonical_city(city) if city else "", region=region, virtual=virtual)


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
