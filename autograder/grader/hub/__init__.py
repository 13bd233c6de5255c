"""The course on JupyterHub and JupyterLab: the hub, its spawner, Formgrader's additions, collecting, due dates."""
