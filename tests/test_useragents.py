"""User agents in words (beacons.useragents)."""

import pytest

from beacons.useragents import browser_label

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    "user_agent, label",
    [
        (FIREFOX, "Firefox 133"),
        (CHROME, "Chrome 131"),
        (IPHONE, "Mobile Safari 17"),
        ("", "Unknown browser"),
        ("not a browser", "Unknown browser"),
    ],
)
def test_browser_label_names_the_family_and_major_version(user_agent, label):
    assert browser_label(user_agent) == label


@pytest.mark.parametrize(
    "user_agent, label",
    [
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Mobile Safari 17",
        ),
        ("curl/8.0", "curl 8"),
        ("SomeBot", "SomeBot"),
        ("", "Unknown browser"),
        ("nothing a parser knows", "Unknown browser"),
    ],
)
def test_browser_label_of_desktop_mobile_tools_and_unknown_agents(user_agent, label):
    assert browser_label(user_agent) == label
