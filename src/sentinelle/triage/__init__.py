"""Investigator triage (issue 12): seized media -> known vs new, series, priority."""
