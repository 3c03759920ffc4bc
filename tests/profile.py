"""The run profile (dev / ci / thorough) as tests see it: how many cases the sampled meta-tests take."""

from hypothesis import settings

#: cases per loss for the independent Arb cross-check, by profile
CROSSCHECK_CASES = {"dev": 200, "ci": 1000, "default": 1000, "thorough": 100_000}


def name() -> str:
    return settings.get_current_profile_name()


def crosscheck_cases() -> int:
    return CROSSCHECK_CASES.get(name(), 1000)
