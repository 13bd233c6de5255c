"""The grading engine that `autograder check` shares with the grader: one run's record and steps, the jail, safe files."""
