"""Events named in a line: which lines speak of another KubeCon than the one asked about."""

from __future__ import annotations

import pytest

from rag.events import elsewhere, event_places, without_other_events

CHICAGO = "What was the most common question at the Istio kiosk at KubeCon NA 2023 in Chicago?"
AMSTERDAM = "What did Istio bring to KubeCon EU 2023 in Amsterdam?"


def test_places_are_cities_and_the_regions_of_events():
    assert event_places(CHICAGO) == ({"chicago"}, {"NA"})
    assert event_places("We flew from India.") == (set(), set())  # a home, not an event
    assert event_places("the Istio kiosk in Europe") == (set(), {"EU"})


@pytest.mark.parametrize(
    ("line", "question", "expected"),
    [
        # istio-at-kubecon-eu-2023 (shared corpus): the next events, named from Amsterdam
        ("Stay tuned for updates on IstioCon 2023 and Istio's presence at KubeCon in China and North America.", AMSTERDAM, True),
        ("With the biggest #kubecon in Europe to date, it's clear that both startups and enterprises are betting on it.", AMSTERDAM, False),
        ("Seattle had 8,000 attendees.", "How many people attended KubeCon San Diego 2019?", True),
        ("After 8,000 in Seattle, San Diego had 12,000 attendees.", "How many people attended KubeCon San Diego 2019?", False),
        ("In Amsterdam it was big.", "What happened at KubeCon EU 2023?", False),  # the city is in the region asked
        ("Seattle had 8,000 attendees.", "How many people attend KubeCon?", False),  # no event asked
    ],
)
def test_a_line_is_elsewhere_when_it_names_only_other_events(line, question, expected):
    assert elsewhere(line, question) is expected


def test_only_the_words_near_another_events_place_are_about_it():
    kept = without_other_events(
        "We are glad that the major question which we had at the Istio kiosk in Europe — the schedule for CNCF "
        "graduation — has been answered, and we assured everyone that we are working on ambient mesh.",
        CHICAGO,
    )
    assert "graduation" not in kept and "ambient mesh" in kept
    line = "Istio had a kiosk in the project pavilion."
    assert without_other_events(line, CHICAGO) == line
