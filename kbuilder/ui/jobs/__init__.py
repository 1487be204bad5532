"""Work off the GUI thread seen from Qt: background jobs, worker-process jobs, the engine, training runs."""
