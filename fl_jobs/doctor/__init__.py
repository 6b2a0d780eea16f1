"""``fl-sandbox doctor``: the job path, run for real on a deployed sandbox.

``expectations`` lists, from the federation manifest, every storage movement of one round and
the isolation negatives with what the plan expects (allowed or denied); ``storage`` tries each
with an actor's credential and compares; ``probe`` is the command that runs inside one Azure ML
job per compute, under that compute's identity; ``submission`` builds those jobs.
"""
