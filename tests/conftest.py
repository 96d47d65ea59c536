"""Hypothesis runs derandomized unless a profile is named: CI draws the same examples every run,
so a red run means a change broke something, not that a new random draw found an old bug.
``HYPOTHESIS_PROFILE=long`` (or a module's own long profile) searches afresh and much longer."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repo-ci", derandomize=True)
if not os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile("repo-ci")
