"""nbgrader's exchange on the course's JupyterHub, the students' side (in the kit)."""
