"""The hidden-test wing, split at the jail wall: the check vocabulary, the scorer that runs inside the scoring jail, the launcher outside it, held-out data, exports read back, drawings."""
