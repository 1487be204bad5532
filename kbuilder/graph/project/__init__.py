"""The ``.kbproj`` project file (format version 1) and the in-memory ``Project``.

A project file is a ZIP archive (deflated) with two members:

``project.json``
    ``{"format": "kbuilder-project", "format_version": 1, "kbuilder_version": ...,
    "saved_at": ..., "graph": Graph.to_dict(), "view": {"positions": {node_id: [x, y]},
    "zoom": ..., "center": [x, y], "collapsed": [block ids]}, "data": {...},
    "training": {...}, "runs": [...]}``. Node positions are view data: they live on the
    graph's nodes in memory but in the ``view`` section of the file.
``weights.npz`` (only when there are weights)
    NumPy arrays under the keys ``"<node id>/<index>"``, a layer's weights in Keras order.
    Read with ``allow_pickle=False``: a project file never carries code.

Reading follows orange-canvas-core's ``readwrite``: the bytes are parsed into typed records,
the format version is checked (and older files migrated through ``MIGRATIONS``), everything
is validated — the settings by ``DataSettings`` / ``TrainingSettings``, each run by
``RunRecord.from_dict`` — and only then are live objects built. A file that fails any step raises
``ProjectFileError`` with one sentence naming the file and the place of the problem, and
nothing is loaded. Writing is atomic (``kbuilder.files.atomic_write``).

Several processes may write one project (the window, ``kbuilder train``, another CLI).
Every save holds the project's advisory lock (``kbuilder.files.project_lock``) and, when
the file changed since this process last read or wrote it, first merges the runs another
writer recorded there (runs are records keyed by ``run_id``; one that this process has
seen and removed stays removed). ``add_runs`` records runs by re-reading the file under
the lock, so a ``kbuilder train`` never overwrites what others saved meanwhile. Saves
refuse a read-only file, move the runs of a project saved for the first time beside it
(``kbuilder.graph.runs.relocate_runs``) and remove temporary files that interrupted saves
of the same file left behind.

The package, one module a concern (the public names are re-exported here, so importers
write ``from kbuilder.graph.project import Project, load_project, ...``):

``document``    ``Project`` and ``DiskState`` (what the file held when last read/written)
``container``   the ZIP members, the limits against hostile files, reading bytes and arrays
``migration``   ``FORMAT``, ``FORMAT_VERSION`` and the upgrades of older files (``MIGRATIONS``)
``records``     typed records of a parsed document, and ``Reader``'s typed reads
``parsing``     ``project.json`` -> records, section by section
``validation``  the graph records checked (ids, names, layers, inputs, ports, cycles)
``reading``     ``load_project`` / ``project_from_json``: archive, parse, validate, build
``writing``     ``project_to_json``, the weights to store, the atomic write, the model digest
``saving``      ``save_project`` / ``add_runs`` under the lock, merging other writers' runs
"""

from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.project.container import (
    MAX_BLOCK_DEPTH,
    MAX_ID_LENGTH,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_MEMBERS,
    MAX_WEIGHT_ARRAYS,
    MAX_WEIGHTS_BYTES,
    PROJECT_MEMBER,
    WEIGHTS_MEMBER,
)
from kbuilder.graph.project.document import DEFAULT_VIEW, DiskState, Project, file_stamp
from kbuilder.graph.project.migration import FORMAT, FORMAT_VERSION, MIGRATIONS
from kbuilder.graph.project.reading import load_project, project_from_json
from kbuilder.graph.project.saving import (
    DiskChanges,
    add_runs,
    changed_on_disk,
    disk_changes,
    merge_runs,
    save_project,
)
from kbuilder.graph.project.writing import project_to_json, write_recovery

__all__ = [
    "DEFAULT_VIEW", "FORMAT", "FORMAT_VERSION", "MAX_BLOCK_DEPTH", "MAX_ID_LENGTH",
    "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "MAX_MEMBERS", "MAX_WEIGHTS_BYTES",
    "MAX_WEIGHT_ARRAYS", "MIGRATIONS", "PROJECT_MEMBER", "WEIGHTS_MEMBER", "DiskChanges",
    "DiskState", "Project", "ProjectFileError", "add_runs", "changed_on_disk",
    "disk_changes", "file_stamp", "load_project", "merge_runs", "project_from_json",
    "project_to_json", "save_project", "write_recovery",
]
