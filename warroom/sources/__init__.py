"""Incident sources: where incidents come from when nobody types them in.

Each source is one module with the same shape (`warroom.sources.base.IncidentSource`): it checks a
delivery's credentials and turns its body into `SourceEvent`s. What is done with an event (stored
once, never rolled back, a room opened by rule) is the same for every source (`warroom.sources.intake`).
"""
