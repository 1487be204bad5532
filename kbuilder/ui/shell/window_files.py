"""The main window's files: new projects, opening, importing, saving, recent files,
recovering an autosave, saving the model as .keras, and the project's file changing on disk.

A mixin of ``MainWindow`` (kbuilder.ui.shell.main_window); these methods are the window's
public API that the menus, the start page, the tests and the self-test call.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from kbuilder.graph.text import plural
from kbuilder.ui.shell.autosave import RecoveryEntry
from kbuilder.ui.shell.dialogs import KERAS_FILTER, MODEL_FILTER, OPEN_FILTER, PROJECT_FILTER

MAX_RECENT = 10
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


class WindowFiles:
    """The project's file life in the window. Mixed into ``MainWindow`` (a QMainWindow)."""

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def _add_recent(self, path: Path) -> None:
        text = str(Path(path).resolve())
        recent = [text] + [p for p in self.recent_files() if p != text]
        self.settings.setValue("recent_files", recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for i, path in enumerate(recent):
            label = f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name
            action = self.recent_menu.addAction(label, lambda p=path: self.open_project(p))
            action.setToolTip(path)
            action.setEnabled(Path(path).exists())
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the List", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.setValue("recent_files", [])
        self._refresh_start_page()

    def new_from_template(self, name: str) -> bool:
        """A new, unsaved project from a template ("" for an empty model)."""
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.model import Graph
        from kbuilder.graph.project import Project
        from kbuilder.graph.templates import get_template

        graph = get_template(name).build() if name else Graph("model")
        self.set_project(Project.new(graph))
        self.statusBar().showMessage(
            "New model from a template — drag layers from the palette, connect ports "
            "by dragging from an output to an input." if name else
            "Empty model — drag an Input, layers and an Output from the palette.", 10000)
        return True

    def ask_open(self) -> bool:
        folder = str(self.settings.value("last_folder", ""))
        path = self.dialogs.ask_open_path("Open a project or a Keras model", OPEN_FILTER,
                                          folder)
        return self.open_project(path) if path else False

    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a ``.kbproj`` project (or import a ``.keras``/``.h5`` model).

        Returns:
            Whether it was opened; on failure the status bar says why and what was open
            stays open.
        """
        path = Path(path)
        if path.suffix.lower() in MODEL_SUFFIXES:
            return self.import_model(str(path))
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import load_project

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            QApplication.restoreOverrideCursor()
            self.statusBar().showMessage(f"Could not open {path.name}: {exc}")
            self.dialogs.show_error("Could not open the project", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        self.set_project(project)
        self._add_recent(path)
        self.settings.setValue("last_folder", str(path.parent))
        self.statusBar().showMessage(f"Opened {path.name}", 5000)
        self._offer_orphaned_runs()
        return True

    def _offer_orphaned_runs(self) -> None:
        """Offer back the runs whose training ended before it could record them."""
        from kbuilder.graph import runs

        project = self.project
        if project is None or project.path is None:
            return
        orphans = runs.orphaned_run_folders(project.runs, project.path)
        if not orphans:
            return
        many = len(orphans) != 1
        names = ", ".join(folder.name for folder in orphans[:5])
        if not self.dialogs.ask_confirm(
                "Runs missing from the history",
                f"{project.path.name}'s runs folder holds {len(orphans)} run"
                f"{'s' if many else ''} that {'are' if many else 'is'} not in its history "
                f"({names}): a training ended before it could record "
                f"{'them' if many else 'it'}. Add {'them' if many else 'it'} back?",
                "Add to the history"):
            return
        adopted = [r for r in map(runs.adopt, orphans) if r is not None]
        project.runs.extend(adopted)
        self._on_settings_changed()  # in the file at the next save
        self.results_page.refresh()
        self.statusBar().showMessage(
            f"Added {len(adopted)} run{'s' if len(adopted) != 1 else ''} back to the "
            "history — save to keep them.", 10000)

    def import_model(self, path: str | None = None) -> bool:
        """Open a ``.keras``/``.h5`` model as a new, unsaved project."""
        if not path:
            folder = str(self.settings.value("last_folder", ""))
            path = self.dialogs.ask_open_path("Import a Keras model", MODEL_FILTER, folder)
            if not path:
                return False
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.errors import GraphError
        from kbuilder.graph.keras_io import ModelImportError, import_file

        name = Path(path).name
        self.statusBar().showMessage(f"Importing {name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            try:
                project = import_file(path)
            except ModelImportError as exc:
                if not exc.trust_would_help:
                    raise  # said below, like any other import error
                QApplication.restoreOverrideCursor()
                if not self.dialogs.ask_trust(name, str(exc)):
                    self.statusBar().showMessage(f"Did not open {name}.", 5000)
                    return False
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                project = import_file(path, trust=True)
        except (GraphError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            self.statusBar().showMessage(f"Could not import {name}: {exc}")
            self.dialogs.show_error("Could not import the model", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        from kbuilder.graph.layout import apply_layout

        if all(n.position == (0.0, 0.0) for n in project.graph.nodes):
            apply_layout(project.graph)
        self.set_project(project)
        self.settings.setValue("last_folder", str(Path(path).parent))
        self.statusBar().showMessage(
            f"Imported {name} ({plural(len(project.graph), 'node')}) — save it as a project "
            "to keep your changes.", 8000)
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; ``False`` means the user cancelled."""
        if self.doc is None or not self.doc.modified:
            return True
        answer = self.dialogs.ask_unsaved(self._project_title())
        if answer == "save":
            return self.save()
        return answer == "discard"

    def save(self) -> bool:
        project = self.project
        if project is None:
            return False
        if project.path is None:
            return self.save_as()
        return self._save_to(project.path)

    def save_as(self, path: str | os.PathLike | None = None) -> bool:
        project = self.project
        if project is None:
            return False
        if not path:
            suggested = str(project.path or Path(str(self.settings.value("last_folder", "")))
                            / f"{project.name}.kbproj")
            path = self.dialogs.ask_save_path("Save the project", PROJECT_FILTER, suggested)
            if not path:
                return False
        path = Path(path)
        if path.suffix.lower() != ".kbproj":
            path = path.with_name(path.name + ".kbproj")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        from kbuilder.graph.errors import GraphError
        from kbuilder.graph.project import save_project

        project = self.project
        assert project is not None and self.doc is not None
        self.editor.store_view(project.view)
        if project.path is not None and path.resolve() == project.path.resolve():
            if not self._may_overwrite_disk():
                return False
        runs_before = len(project.runs)
        try:
            save_project(project, path)  # merges runs others recorded meanwhile
        except (GraphError, OSError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            self.statusBar().showMessage(f"Could not save {path.name}: {message}")
            self.dialogs.show_error("Could not save the project", f"{path}: {message}")
            return False
        self.autosave.clear()
        self._add_recent(path)
        self.settings.setValue("last_folder", str(path.parent))
        self._update_title()
        merged = len(project.runs) - runs_before
        if merged:
            self.results_page.refresh()
        self.statusBar().showMessage(
            f"Saved {path.name}" + (f", with {merged} run{'s' if merged != 1 else ''} "
                                    "recorded there by another program" if merged else ""),
            8000)
        return True

    def _may_overwrite_disk(self) -> bool:
        """Whether saving may replace the file: another program changed its model since
        it was read, so ask (runs recorded there are merged in any case)."""
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import disk_changes

        project = self.project
        assert project is not None and project.path is not None
        try:
            changes = disk_changes(project)
        except ProjectFileError:
            return True  # no longer a readable project: nothing there to keep
        if changes is None or not changes.graph_changed:
            return True
        return self.dialogs.ask_confirm(
            "The project changed on disk",
            f"{project.path.name} was changed by another program since you opened it. "
            "Save your version over it? Its model changes will be lost (runs recorded "
            "there are kept).", "Overwrite")

    def check_disk(self) -> None:
        """Merge the runs another program recorded in the project's file; say when it
        changed the model there too (the next save asks before overwriting)."""
        project = self.project
        if project is None or project.path is None:
            return  # nothing on disk (and the project module, with NumPy, stays unloaded)
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import changed_on_disk, disk_changes, file_stamp, merge_runs

        if not changed_on_disk(project):
            return
        stamp = file_stamp(project.path)
        if stamp == self._disk_seen:
            return  # this version of the file was looked at already
        try:
            changes = disk_changes(project)
        except ProjectFileError:
            return  # being replaced, or damaged: looked at again next time
        self._disk_seen = stamp
        if changes is None:
            return
        name = project.path.name
        if changes.new_runs or changes.finished_runs:
            added = merge_runs(project, changes)
            self.results_page.refresh()
            count = len(added) + len(changes.finished_runs)
            self.statusBar().showMessage(
                f"{count} run{'s' if count != 1 else ''} recorded in {name} by another "
                "program added to the Results tab.", 10000)
        if changes.graph_changed:
            self.statusBar().showMessage(
                f"{name} was changed by another program; saving will ask before "
                "replacing its model.", 10000)

    def export_keras(self, path: str | None = None) -> bool:
        """Save a model as ``.keras``: a trained run's (the latest is offered first) or the
        model being edited, untrained; in the background, atomically."""
        from kbuilder.graph.runs import artifact_path, trained_runs
        from kbuilder.ui.results.run_format import run_label, when_text

        project = self.project
        if project is None or self.model_saver.busy:
            return False
        trained = trained_runs(project.runs, project.path)
        weights = "with the project's weights" if project.weights else "untrained"
        choices = [f"The model trained in run {run_label(i)}"
                   f"{' (the latest)' if n == 0 else ''} — {when_text(r.created)}, "
                   f"{r.backend}, {r.status}" for n, (i, r) in enumerate(trained)]
        choices.append(f"The model being edited ({weights})")
        choice = 0
        if trained:
            choice = self.dialogs.ask_choice(
                "Save Model as .keras", "Which model do you want to save?", choices)
            if choice is None:
                return False
        if not path:
            suggested = str(Path(str(self.settings.value("last_folder", "")))
                            / f"{project.name}.keras")
            path = self.dialogs.ask_save_path("Save the model as .keras", KERAS_FILTER,
                                              suggested)
            if not path:
                return False
        target = Path(path)
        if target.suffix.lower() != ".keras":
            target = target.with_name(target.name + ".keras")
        what = choices[choice][0].lower() + choices[choice][1:]
        self.statusBar().showMessage(f"Saving {what} to {target.name}…")
        self.export_action.setEnabled(False)
        if choice < len(trained):
            source = artifact_path(trained[choice][1], "model", project.path)
            assert source is not None
            self.model_saver.save_copy(source, target, what)
        else:
            try:
                self.model_saver.save_built(project, target, what)
            except (OSError, ValueError) as exc:
                self._on_model_save_failed(str(exc))
                return False
        return True

    def _on_model_saved(self, path: str, what: str) -> None:
        self._update_actions()
        self.statusBar().showMessage(f"Saved {what} to {path}", 10000)

    def _on_model_save_failed(self, reason: str) -> None:
        self._update_actions()
        self.statusBar().showMessage(f"Could not save the model: {reason}")
        self.dialogs.show_error("Could not save the model", reason)

    def recover(self, entry: RecoveryEntry | None) -> bool:
        """Open an autosave from a session that crashed (as unsaved changes)."""
        if entry is None or not self.ensure_engine():
            return False
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import load_project

        try:
            project = load_project(entry.path)
        except ProjectFileError as exc:
            self.dialogs.show_error("Could not recover the model", str(exc))
            return False
        project.path = Path(entry.original) if entry.original else None
        project.disk = None  # what the original file holds now was never read here
        project.dirty = True  # the recovered work is not in any saved file yet
        self.set_project(project)
        self.autosave.mark_changed()
        self.autosave.autosave()  # this session's recovery now holds the work
        entry.discard()
        self.gallery.set_recovery(None)
        self._update_title()
        self.statusBar().showMessage("Recovered the autosaved model — save it to keep it.",
                                     10000)
        return True

    def _discard_recovery(self, entry: RecoveryEntry | None) -> None:
        if entry is not None:
            entry.discard()
        self._refresh_start_page()

    @staticmethod
    def _dropped_file(mime) -> str | None:
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if Path(path).suffix.lower() in (".kbproj", *MODEL_SUFFIXES):
                    return path
        return None
