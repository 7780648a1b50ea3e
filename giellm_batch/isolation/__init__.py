"""Containment of per-record work: a record that crashes, hangs or exhausts memory fails alone.

Modules: process (map_isolated: a batch's work in a forked child, the suspect re-run alone),
failures (reason strings, FATAL), faults (fault injection for the crash and poison tests).
May import: nothing else in giellm_batch.
"""
