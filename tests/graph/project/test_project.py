"""The .kbproj project file: round trips, atomic saves, clear errors for every bad file.

The fuzz tests mutate a valid project (its parsed JSON, and the bytes of its ZIP) and
require that each mutant either loads into a consistent project or raises
``ProjectFileError`` — never another exception.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import random
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kbuilder.graph.commands import (
    AddNodeCommand,
    ConnectCommand,
    GroupCommand,
    History,
    MoveNodesCommand,
    RemoveNodesCommand,
    RenameNodeCommand,
    UngroupCommand,
    copy_fragment,
    new_input_node,
    new_layer_node,
    new_output_node,
    new_shared_node,
    paste_command,
)
from kbuilder.graph.errors import GraphError, ProjectFileError
from kbuilder.graph.model import Graph
from kbuilder.graph.project import (
    FORMAT_VERSION,
    MAX_BLOCK_DEPTH,
    MIGRATIONS,
    Project,
    container,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
    write_recovery,
)
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import DataSettings, TrainingSettings
from tests.graph.helpers import add_input, add_layer, add_output


# ----------------------------------------------------------------------------- fixtures
def rich_project() -> Project:
    """Input -> Dense -> (Dense shared) -> Add -> block(block(Dense)) -> Output, with weights.

    Covers layer sharing, a variadic port, nested blocks, positions, view, settings, runs.
    """
    h = History()
    g = Graph("classifier")
    x = add_input(h, g, [16])
    d = add_layer(h, g, "Dense", x, units=16, activation="relu")
    shared = new_shared_node(g, d)
    h.push(AddNodeCommand(g, shared))
    h.push(ConnectCommand(g, d, 0, shared.id))
    add = add_layer(h, g, "Add", d, shared.id, name="add")
    head = add_layer(h, g, "Dense", add, units=3, activation="softmax", name="head")
    add_output(h, g, head)
    h.push(MoveNodesCommand(g, {x: (-12.5, 40.0), head: (300.0, 7.25)}))
    inner = GroupCommand(g, [head], "head_block")
    h.push(inner)
    outer = GroupCommand(g, [inner.block_id], "outer_block")
    h.push(outer)

    rng = np.random.default_rng(0)
    project = Project(g, history=h)
    project.view.update(zoom=1.5, center=[10.0, -4.0], collapsed=[outer.block_id])
    project.data = DataSettings("csv:data/iris.csv", target="species")
    project.training = TrainingSettings(epochs=3, optimizer="adam", learning_rate=0.001)
    project.runs = [RunRecord.from_dict(
        {"run_id": "run-1", "backend": "jax", "history": {"loss": [1.2, 0.7]}})]
    project.weights = {
        d: [rng.normal(size=(16, 16)).astype("float32"), np.zeros(16, "float32")],
        head: [rng.normal(size=(16, 3)), np.arange(3, dtype="int64")],
    }
    return project


@pytest.fixture(scope="module")
def rich() -> Project:
    return rich_project()


@pytest.fixture(scope="module")
def rich_json(rich: Project) -> dict[str, Any]:
    return project_to_json(rich)


@pytest.fixture(scope="module")
def rich_bytes(rich: Project, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("rich") / "model.kbproj"
    save_project(copy_project(rich), path)
    return path.read_bytes()


def listed(folder: Path | str) -> list[str]:
    """The files of ``folder`` but the advisory lock files saves leave (``.<name>.lock``,
    kept on purpose: removing a lock file on release races with the next writer)."""
    return [name for name in os.listdir(folder)
            if not (name.startswith(".") and name.endswith(".lock"))]


def copy_project(project: Project) -> Project:
    copied = project_from_json(project_to_json(project), "copy", project.weights)
    return copied


def nodes_by_name(data: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every node of a project.json, by name: (its location, its dict)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}

    def visit(graph: dict[str, Any], where: str) -> None:
        for i, node in enumerate(graph["nodes"]):
            found[node["name"]] = (f"{where}.nodes[{i}]", node)
            if node["kind"] == "block":
                visit(node["graph"], f"{where}.nodes[{i}].graph")

    visit(data["graph"], "graph")
    return found


def write_kbproj(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def assert_same_weights(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key], strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- round trip
def test_save_load_round_trip(rich: Project, tmp_path: Path) -> None:
    project = copy_project(rich)
    path = tmp_path / "model.kbproj"
    save_project(project, path)

    loaded = load_project(path)
    assert loaded.graph.to_dict() == rich.graph.to_dict()
    assert loaded.graph.positions() == rich.graph.positions()
    assert loaded.view == rich.view
    assert loaded.data == rich.data
    assert loaded.training == rich.training
    assert loaded.runs == rich.runs
    assert_same_weights(loaded.weights, rich.weights)
    assert loaded.path == path and not loaded.modified
    assert sorted(listed(tmp_path)) == ["model.kbproj"]
    with zipfile.ZipFile(path) as archive:
        assert {i.filename for i in archive.infolist()} == {"project.json", "weights.npz"}
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        document = json.loads(archive.read("project.json"))
    assert document["format"] == "kbuilder-project"
    assert document["format_version"] == FORMAT_VERSION
    assert set(document["view"]["positions"]) == set(rich.graph.positions())


def test_save_without_weights_has_no_npz(tmp_path: Path) -> None:
    project = Project.new(name="empty")
    save_project(project, tmp_path / "empty.kbproj")
    with zipfile.ZipFile(tmp_path / "empty.kbproj") as archive:
        assert archive.namelist() == ["project.json"]
    loaded = load_project(tmp_path / "empty.kbproj")
    assert loaded.graph.name == "empty" and len(loaded.graph) == 0 and loaded.weights == {}


def test_modified_follows_history_and_dirty_flag(tmp_path: Path) -> None:
    project = Project.new()
    assert not project.modified
    project.history.push(AddNodeCommand(project.graph, new_input_node(project.graph, [4])))
    assert project.modified
    save_project(project, tmp_path / "a.kbproj")
    assert not project.modified and project.path == tmp_path / "a.kbproj"
    project.training = dataclasses.replace(project.training, epochs=5)
    project.dirty = True
    assert project.modified
    save_project(project, tmp_path / "a.kbproj")
    assert not project.modified
    project.history.undo()
    assert project.modified


def test_write_recovery_keeps_modified_and_path(rich: Project, tmp_path: Path) -> None:
    project = copy_project(rich)
    project.dirty = True
    write_recovery(project, tmp_path / "autosave.kbproj")
    assert project.modified and project.path is None
    loaded = load_project(tmp_path / "autosave.kbproj")
    assert loaded.graph.to_dict() == rich.graph.to_dict()


def test_non_finite_and_numpy_values_are_saved_as_json(tmp_path: Path) -> None:
    project = Project.new()
    project.runs = [RunRecord("a", history={"loss": [0.5, float("nan")]}, seed=np.int64(3),
                              results={"lr": np.float32(0.5), "class_weight": {0: 1.0},
                                       "shape": (2, 3)})]
    project.training = TrainingSettings(learning_rate=np.float32(0.5))
    save_project(project, tmp_path / "a.kbproj")
    loaded = load_project(tmp_path / "a.kbproj")
    assert loaded.runs == [RunRecord("a", history={"loss": [0.5, None]}, seed=3,
                                     results={"lr": 0.5, "class_weight": {"0": 1.0},
                                              "shape": [2, 3]})]
    assert type(loaded.runs[0].seed) is int
    assert loaded.training == TrainingSettings(learning_rate=0.5)
    assert type(loaded.training.learning_rate) is float


def test_unstorable_value_is_refused_before_writing(tmp_path: Path) -> None:
    project = Project.new()
    project.training = TrainingSettings(early_stopping={"callback": object()})
    with pytest.raises(ProjectFileError,
                       match=r"training\.early_stopping\.callback holds a value of type"):
        save_project(project, tmp_path / "a.kbproj")
    assert listed(tmp_path) == []


def test_weights_of_removed_nodes_are_not_written(rich: Project, tmp_path: Path) -> None:
    project = copy_project(rich)
    project.weights["no-such-node"] = [np.ones(2)]
    save_project(project, tmp_path / "a.kbproj")
    assert set(load_project(tmp_path / "a.kbproj").weights) == set(rich.weights)


# ------------------------------------------------------------------------------ atomic
def failing_savez(*args: Any, **kwargs: Any) -> None:
    args[0].write(b"half of the weights")
    raise OSError(28, "No space left on device")


def failing(*args: Any, **kwargs: Any) -> None:
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    "target, replacement",
    [("np.savez", failing_savez), ("os.fsync", failing), ("os.replace", failing)],
)
def test_failed_save_keeps_old_file_and_leaves_no_temp(
    rich: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, replacement: Any
) -> None:
    path = tmp_path / "model.kbproj"
    old = Project.new(name="old")
    save_project(old, path)
    before = path.read_bytes()

    project = copy_project(rich)
    project.dirty = True
    module, name = target.split(".")
    monkeypatch.setattr({"np": np, "os": os}[module], name, replacement)
    with pytest.raises(OSError):
        save_project(project, path)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert load_project(path).graph.name == "old"
    assert listed(tmp_path) == ["model.kbproj"]
    assert project.modified and project.path is None


def test_failed_first_save_leaves_nothing(
    rich: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError):
        save_project(copy_project(rich), tmp_path / "model.kbproj")
    assert listed(tmp_path) == []


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.kbproj"
    link.symlink_to(tmp_path / "real" / "model.kbproj")
    save_project(Project.new(name="linked"), link)
    assert link.is_symlink() and load_project(link).graph.name == "linked"
    assert listed(tmp_path / "real") == ["model.kbproj"]


def test_save_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "model.kbproj"
    save_project(Project.new(), path)
    os.chmod(path, 0o640)
    save_project(Project.new(), path)
    assert path.stat().st_mode & 0o777 == 0o640


# ----------------------------------------------------------------------- content errors
def mutate_and_expect(data: dict[str, Any], *fragments: str, weights=None) -> str:
    with pytest.raises(ProjectFileError) as info:
        project_from_json(data, "model.kbproj", weights)
    message = str(info.value)
    assert message.startswith("model.kbproj")
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    return message


def test_bad_kind_message_names_file_and_place(rich_json: dict[str, Any]) -> None:
    data = copy.deepcopy(rich_json)
    where, node = nodes_by_name(data)["dense"]
    node["kind"] = "foo"
    message = mutate_and_expect(data)
    assert message == (
        f"model.kbproj: {where}.kind must be one of input, layer, output, block; found 'foo'."
    )


def _node(name: str):
    def pick(data):
        return nodes_by_name(data)[name]
    return pick


def _set(name: str, key: str, value: Any):
    def mutate(data):
        _node(name)(data)[1][key] = value
    return mutate


def _delete(name: str, key: str):
    def mutate(data):
        del _node(name)(data)[1][key]
    return mutate


def _params(name: str, **params: Any):
    def mutate(data):
        _node(name)(data)[1].setdefault("params", {}).update(params)
    return mutate


def _top_edge(index: int, **values: Any):
    def mutate(data):
        data["graph"]["edges"][index].update(values)
    return mutate


def _inner_id_clash(data):
    _node("head")(data)[1]["id"] = _node("input")(data)[1]["id"]


def _duplicate_edge_id(data):
    edges = data["graph"]["edges"]
    edges[1]["id"] = edges[0]["id"]


def _cycle(data):
    ids = {name: node["id"] for name, (_, node) in nodes_by_name(data).items()}
    data["graph"]["edges"].append(
        {"id": "back", "src": ids["add"], "src_port": 0, "dst": ids["dense"],
         "dst_port": "inputs"}
    )


def _share_with(target: str):
    def mutate(data):
        nodes = nodes_by_name(data)
        nodes["dense_shared"][1]["shared_with"] = nodes[target][1]["id"] if target else "nope"
    return mutate


def _newline_name(data):
    node = _node("dense")(data)[1]
    node["name"] = "two\nlines"
    node["params"]["units"] = -1


def _deep_blocks(data):
    graph = {"name": "deep", "nodes": [], "edges": []}
    for i in range(MAX_BLOCK_DEPTH + 2):
        graph = {"name": f"b{i}", "nodes": [
            {"id": f"deep{i}", "kind": "block", "name": f"b{i}", "graph": graph}
        ], "edges": []}
    data["graph"]["nodes"].append(graph["nodes"][0])


def _deep_params(data):
    value: Any = 1
    for _ in range(5000):
        value = [value]
    _node("dense")(data)[1]["params"]["units"] = value


def _set_top(key: str, value: Any):
    def mutate(data):
        data[key] = value
    return mutate


def _view(key: str, value: Any):
    def mutate(data):
        data["view"][key] = value
    return mutate


def _position(value: Any):
    def mutate(data):
        data["view"]["positions"][_node("dense")(data)[1]["id"]] = value
    return mutate


CONTENT_ERRORS = [
    (_delete("dense", "id"), ["{dense}.id is missing"]),
    (_set("dense", "id", ""), ["{dense}.id must be a non-empty string; found ''"]),
    (_set("dense", "id", 7), ["{dense}.id must be a non-empty string; found 7"]),
    (_set("dense", "id", "a\x00b"), ["{dense}.id must be at most 256 printable"]),
    (_inner_id_clash, ["{head}.id", "is already used by {input}"]),
    (_set("dense", "name", "a/b"), ["{dense}.name is not a valid name", "'/'"]),
    (_set("dense", "name", "input"), ["{dense}.name 'input' is already used by {input}"]),
    (_set("dense", "name", None), ["{dense}.name must be a non-empty string; found null"]),
    (_set("dense", "class_name", "Densse"), ["{dense}.class_name 'Densse'", "not a layer type"]),
    (_delete("dense", "class_name"), ["{dense}.class_name is missing"]),
    (_params("dense", units=-1), ["{dense}.params.units of layer 'dense'", "units=-1"]),
    (_params("dense", unitz=3), ["{dense}.params.unitz of layer 'dense'"]),
    # A name with a line break is valid, and still gives a one-line message.
    (_newline_name, ["{dense}.params.units of layer 'two\\nlines' is not valid"]),
    (_set("dense", "params", [1]), ["{dense}.params must be an object; found a list"]),
    (_params("dense", kernel_initializer={"class_name": "GlorotUniform", "config": 3}),
     ["{dense}.params.kernel_initializer of layer 'dense'"]),
    # Values the catalog cannot even examine are bad files too, not crashes.
    (_params("dense", dtype={"class_name": "DTypePolicy", "config": 3}), ["{dense}.params"]),
    (_params("input", shape=[0]), ["{input}.params.shape of input 'input'", "shape=[0]"]),
    (_params("input", dtype="float128"), ["{input}.params.dtype of input 'input'"]),
    (_params("input", ragged=True), ["{input}.params.ragged of input 'input'"]),
    (_set("input", "params", {"dtype": "float32"}), ["{input}.params.shape is missing"]),
    (_params("output", units=2), ["{output}.params must be empty", "model output"]),
    (_share_with(""), ["{dense_shared}.shared_with of 'dense_shared'", "'nope'"]),
    (_share_with("input"), ["{dense_shared}.shared_with"]),
    (_share_with("dense_shared"), ["{dense_shared}.shared_with"]),
    (_share_with("head"), ["{dense_shared}.shared_with"]),  # in another graph
    (_params("dense_shared", units=2), ["{dense_shared}.params must be empty", "'dense'"]),
    (_set("dense_shared", "class_name", "Add"), ["{dense_shared}.class_name", "'Dense'"]),
    (_top_edge(0, src="ghost"), ["graph.edges[0].src 'ghost' is not a node of graph"]),
    (_top_edge(0, src_port=-1), ["graph.edges[0].src_port must be a whole number, 0 or more"]),
    (_top_edge(0, src_port="0"), ["graph.edges[0].src_port must be a whole number"]),
    (_top_edge(0, src_port=True), ["graph.edges[0].src_port must be a whole number"]),
    (_top_edge(0, dst_port="query"), ["graph.edges[0].dst_port 'query' is not an input port",
                                      "'inputs'"]),
    (_top_edge(0, dst_port=3), ["graph.edges[0].dst_port must be a string; found 3"]),
    (_duplicate_edge_id, ["graph.edges[1].id", "already used by graph.edges[0]"]),
    (_cycle, ["graph.edges make a cycle through"]),
    (_deep_blocks, ["is nested more than 32 blocks deep"]),
    (_deep_params, ["{dense}.params.units[0][0]", "...", "nested more than"]),
    (_set_top("graph", [1]), ["graph must be an object; found a list"]),
    (_set_top("graph", object()), ["graph holds a value of type object"]),
    (_set_top("runs", [{"run_id": "a", "seed": 10**5000}]), ["runs[0].seed is a whole number too large"]),
    (_set_top("runs", {}), ["runs must be a list; found an object"]),
    (_set_top("runs", [1]), ["runs[0] must be an object; found 1"]),
    (_set_top("data", "csv"), ["data must be an object; found 'csv'"]),
    (_set_top("training", None), ["training must be an object; found null"]),
    (_view("zoom", 0), ["view.zoom must be more than 0"]),
    (_view("center", [1]), ["view.center must be a pair of numbers"]),
    (_view("collapsed", [3]), ["view.collapsed[0] must be a string; found 3"]),
    (_view("flow", "up"), ["view.flow must be one of down, right; found 'up'"]),
    (_position(["a", 1]), ["view.positions.", "[0] must be a finite number; found 'a'"]),
    (_position([1.0, float("nan")]), ["view.positions.", "[1] is nan"]),
    (_position([1.0, float("inf")]), ["is inf"]),
]


@pytest.mark.parametrize("mutate, fragments", CONTENT_ERRORS)
def test_content_errors_name_their_place(
    rich_json: dict[str, Any], mutate: Any, fragments: list[str]
) -> None:
    data = copy.deepcopy(rich_json)
    places = {name: where for name, (where, _) in nodes_by_name(data).items()}
    mutate(data)
    mutate_and_expect(data, *(f.format(**places) for f in fragments))


def nested_blocks(levels: int) -> dict[str, Any]:
    """A project.json whose innermost graph is ``levels`` blocks deep and holds a Dense."""
    dense = {"id": "dense", "kind": "layer", "name": "dense", "class_name": "Dense",
             "params": {"units": 2, "kernel_initializer": {
                 "class_name": "GlorotUniform", "config": {"seed": 1}}}}
    graph: dict[str, Any] = {"name": "inner", "nodes": [dense], "edges": []}
    for i in range(levels):
        block = {"id": f"block{i}", "kind": "block", "name": f"b{i}", "graph": graph}
        graph = {"name": f"g{i}", "nodes": [block], "edges": []}
    return {"format": "kbuilder-project", "format_version": 1, "graph": graph}


def test_nesting_limit_is_exact(tmp_path: Path) -> None:
    project = project_from_json(nested_blocks(MAX_BLOCK_DEPTH), "deep.kbproj")
    save_project(project, tmp_path / "deep.kbproj")
    assert load_project(tmp_path / "deep.kbproj").graph.to_dict() == project.graph.to_dict()
    with pytest.raises(ProjectFileError, match="nested more than 32 blocks deep"):
        project_from_json(nested_blocks(MAX_BLOCK_DEPTH + 1), "deep.kbproj")


def test_edge_into_a_block_must_name_an_inner_input(rich_json: dict[str, Any]) -> None:
    data = copy.deepcopy(rich_json)
    outer_id = _node("outer_block")(data)[1]["id"]
    index, edge = next(
        (i, e) for i, e in enumerate(data["graph"]["edges"]) if e["dst"] == outer_id
    )
    edge["dst_port"] = "inputs"
    mutate_and_expect(data, f"graph.edges[{index}].dst_port 'inputs'", "'outer_block'")


def test_edge_from_an_output_is_refused(rich_json: dict[str, Any]) -> None:
    data = copy.deepcopy(rich_json)
    edge = data["graph"]["edges"][0]
    edge["src"] = _node("output")(data)[1]["id"]
    mutate_and_expect(data, "graph.edges[0].src is the model output 'output'")


def test_input_inside_a_block_may_have_no_params(rich_json: dict[str, Any]) -> None:
    data = copy.deepcopy(rich_json)
    inner_inputs = [n for n, (_, nd) in nodes_by_name(data).items()
                    if nd["kind"] == "input" and n != "input"]
    assert inner_inputs and all("params" not in _node(n)(data)[1] for n in inner_inputs)
    project_from_json(data, "model.kbproj")


def test_stale_view_entries_are_dropped(rich_json: dict[str, Any]) -> None:
    data = copy.deepcopy(rich_json)
    data["view"]["positions"]["gone"] = [1, 2]
    data["view"]["collapsed"].append("gone")
    project = project_from_json(data, "model.kbproj")
    assert "gone" not in project.graph.positions()
    assert "gone" not in project.view["collapsed"]


@pytest.mark.parametrize(
    "weights, fragments",
    [
        ({"ghost": [np.ones(2)]}, ["weights for node 'ghost'", "not in the model"]),
        ({"@input": [np.ones(2)]}, ["weights for 'input', which is a model input"]),
        ({"@dense_shared": [np.ones(2)]}, ["'dense_shared', which shares another node's"]),
        ({"@dense": [np.array([{}], dtype=object)]}, ["weight 0 of node", "not a numeric"]),
        ({"@dense": [[1.0, 2.0]]}, ["weight 0 of node", "not a numeric"]),
    ],
)
def test_weight_errors(rich_json: dict[str, Any], weights: dict, fragments: list[str]) -> None:
    ids = {name: node["id"] for name, (_, node) in nodes_by_name(rich_json).items()}
    weights = {ids.get(k[1:], k) if k.startswith("@") else k: v for k, v in weights.items()}
    mutate_and_expect(copy.deepcopy(rich_json), *fragments, weights=weights)


# --------------------------------------------------------------------- format versions
def test_wrong_format_is_not_a_project(rich_json: dict[str, Any]) -> None:
    data = dict(rich_json, format="something-else")
    mutate_and_expect(data, "is not a kbuilder project", "'something-else'")
    data = {k: v for k, v in rich_json.items() if k != "format"}
    mutate_and_expect(data, 'no "format"')
    mutate_and_expect([rich_json], "must hold a JSON object; found a list")


def test_newer_format_names_the_needed_version(rich_json: dict[str, Any]) -> None:
    data = dict(rich_json, format_version=FORMAT_VERSION + 1, kbuilder_version="0.9.2")
    message = mutate_and_expect(data, "made by a newer kbuilder", "kbuilder 0.9.2 or newer")
    assert f"format {FORMAT_VERSION + 1}" in message
    data["format_version"] = "2"
    mutate_and_expect(data, "format_version must be a whole number; found '2'")


def test_old_format_is_migrated_in_order(
    rich_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def from_0(data: dict[str, Any]) -> dict[str, Any]:
        # Format 0 (invented for the test) called the graph "model" and had no view.
        calls.append(data["format_version"])
        data["graph"] = data.pop("model")
        data["view"] = {"zoom": 2.0}
        return data

    monkeypatch.setitem(MIGRATIONS, 0, from_0)
    old = {k: v for k, v in copy.deepcopy(rich_json).items() if k not in ("graph", "view")}
    old.update(format_version=0, model=copy.deepcopy(rich_json["graph"]))
    project = project_from_json(old, "old.kbproj")
    assert calls == [0]
    assert project.graph.to_dict() == rich_json["graph"]
    assert project.view["zoom"] == 2.0
    assert "model" in old  # the caller's data is not changed

    without_model = {k: v for k, v in old.items() if k != "model"}
    mutate_and_expect(without_model, "could not be upgraded from project format 0")
    mutate_and_expect(dict(old, format_version=-1), "project format -1, which this kbuilder "
                                                    "cannot read (it reads formats 0 to 1)")
    monkeypatch.delitem(MIGRATIONS, 0)
    mutate_and_expect(old, "project format 0, which this kbuilder cannot read (it reads "
                           "format 1)")


# ------------------------------------------------------------------------- file errors
def expect_file_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ProjectFileError) as info:
        load_project(path)
    message = str(info.value)
    assert message.startswith(path.name)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_file_error(tmp_path / "nope.kbproj", "nope.kbproj does not exist")
    (tmp_path / "dir.kbproj").mkdir()
    expect_file_error(tmp_path / "dir.kbproj", "dir.kbproj is not a file")
    os.mkfifo(tmp_path / "pipe.kbproj")
    expect_file_error(tmp_path / "pipe.kbproj", "is not a file")  # and does not hang


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "model.kbproj"
    path.write_text('{"format": "kbuilder-project"}')
    assert expect_file_error(path) == (
        "model.kbproj is not a kbuilder project (not a ZIP file, or it is truncated)."
    )


def test_truncated_at_every_length(rich_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.kbproj"
    for length in range(0, len(rich_bytes)):
        path.write_bytes(rich_bytes[:length])
        with pytest.raises(ProjectFileError):
            load_project(path)


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b"\xff\xfe{}", ["project.json is not UTF-8 text (invalid byte at position 0)"]),
        (b'{"format": ', ["project.json is not valid JSON", "line 1, column 12"]),
        (b'{"a": [1, NaN]}', ["model.kbproj: a[1] is nan; a project file may only hold "
                              "finite numbers."]),
        (b'{"b": {"c": -Infinity}}', ["b.c is -inf"]),
        (b'{"a": 1e999}', ["a is inf"]),
        (b'{"a": ' + b"9" * 5000 + b"}", ["project.json is not valid JSON"]),
        (b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
        (b"[" * 500 + b"]" * 500, ["nested more than"]),
        (b"3", ["must hold a JSON object; found 3"]),
    ],
)
def test_bad_project_json(tmp_path: Path, content: bytes, fragments: list[str]) -> None:
    path = write_kbproj(tmp_path / "model.kbproj", {"project.json": content})
    expect_file_error(path, *fragments)


def test_bom_and_duplicate_keys_are_accepted(rich_json: dict[str, Any], tmp_path: Path) -> None:
    text = json.dumps(rich_json)
    text = '{"training": {"epochs": 1}, ' + text[1:]  # the later "training" wins
    path = write_kbproj(tmp_path / "model.kbproj",
                        {"project.json": b"\xef\xbb\xbf" + text.encode()})
    assert load_project(path).training.to_dict() == rich_json["training"]


def test_archive_structure_errors(
    rich_json: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = json.dumps(rich_json).encode()
    path = write_kbproj(tmp_path / "a.kbproj", {"other.txt": b"x"})
    expect_file_error(path, "is not a kbuilder project (it has no project.json)")

    path = tmp_path / "b.kbproj"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("project.json", good)
        archive.writestr("project.json", good)
    expect_file_error(path, "holds project.json twice")

    monkeypatch.setattr(container, "MAX_MEMBERS", 3)
    path = write_kbproj(tmp_path / "c.kbproj",
                        {"project.json": good, **{f"x{i}": b"" for i in range(3)}})
    expect_file_error(path, "has 4 members")

    path = write_kbproj(tmp_path / "d.kbproj", {"project.json": good})
    monkeypatch.setattr(container, "MAX_JSON_BYTES", 1000)
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a))
    expect_file_error(path, "project.json is", "KB, more than the 1000 bytes")
    assert opened == []  # refused from the declared size, before decompressing anything


def test_zip_path_tricks_are_ignored(rich_json: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "inner"
    folder.mkdir()
    path = write_kbproj(folder / "model.kbproj", {
        "../evil.txt": b"x", "/etc/evil": b"x", "project.json/../weights.npz": b"x",
        "project.json": json.dumps(rich_json).encode(),
    })
    assert load_project(path).graph.to_dict() == rich_json["graph"]
    assert sorted(listed(tmp_path)) == ["inner"]
    assert listed(folder) == ["model.kbproj"]


def test_corrupt_member_is_reported(rich_bytes: bytes, tmp_path: Path) -> None:
    data = bytearray(rich_bytes)
    offset = data.index(b"project.json") + len("project.json") + 20  # inside the data
    data[offset] ^= 0xFF
    path = tmp_path / "model.kbproj"
    path.write_bytes(bytes(data))
    expect_file_error(path, "model.kbproj")


def npy_with_header(shape: tuple[int, ...], data: bytes, descr: str = "<f8") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


@pytest.mark.parametrize(
    "members, fragments",
    [
        ({"{dense}/0.npy": b""}, ["is not a NumPy array"]),
        ("object", ["array '{dense}/0' is not numeric (dtype object)"]),
        ("structured", ["is not numeric"]),
        ("huge", ["array '{dense}/0' is truncated"]),
        ({"{dense}/1.npy": np.ones(2)}, ["lacks weight 0 of node '{dense}'"]),
        ({"{dense}/x.npy": np.ones(2)}, ["which is not named '<node id>/<index>'"]),
        ({"{dense}/01.npy": np.ones(2)}, ["which is not named"]),
        ({"{dense}.npy": np.ones(2)}, ["which is not named"]),
        ({"{dense}/0.txt": np.ones(2)}, ["which is not named"]),
        ({"ghost/0.npy": np.ones(2)}, ["weights for node 'ghost', which is not in the model"]),
        ("not-a-zip", ["weights.npz cannot be read"]),
    ],
)
def test_bad_weights_npz(
    rich_json: dict[str, Any], tmp_path: Path, members: Any, fragments: list[str]
) -> None:
    dense = _node("dense")(rich_json)[1]["id"]
    if members == "not-a-zip":
        npz = b"PK\x03\x04 definitely not"
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            if members == "object":
                array = io.BytesIO()
                np.save(array, np.array([{}], dtype=object), allow_pickle=True)
                archive.writestr(f"{dense}/0.npy", array.getvalue())
            elif members == "structured":
                array = io.BytesIO()
                np.save(array, np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
                archive.writestr(f"{dense}/0.npy", array.getvalue())
            elif members == "huge":
                archive.writestr(f"{dense}/0.npy", npy_with_header((10**12,), b"\0" * 16))
            else:
                for name, value in members.items():
                    content = value if isinstance(value, bytes) else npy_bytes(value)
                    archive.writestr(name.format(dense=dense), content)
        npz = buffer.getvalue()
    path = write_kbproj(tmp_path / "model.kbproj",
                        {"project.json": json.dumps(rich_json).encode(), "weights.npz": npz})
    expect_file_error(path, *(f.format(dense=dense) for f in fragments))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# ---------------------------------------------------------- what the commands can make
def random_edits(rng: random.Random, steps: int) -> Project:
    """A project after random edits through the commands, as a user could make them."""
    h = History()
    g = Graph("model")
    for _ in range(steps):
        nodes = g.nodes
        op = rng.choice(["dense", "add", "input", "output", "connect", "connect", "remove",
                         "rename", "group", "ungroup", "share", "paste", "move"])
        try:
            if op == "dense":
                h.push(AddNodeCommand(g, new_layer_node(g, "Dense", {"units": rng.randint(1, 9)})))
            elif op == "add":
                h.push(AddNodeCommand(g, new_layer_node(g, "Add")))
            elif op == "input":
                h.push(AddNodeCommand(g, new_input_node(g, [rng.randint(1, 5)])))
            elif op == "output":
                h.push(AddNodeCommand(g, new_output_node(g)))
            elif op == "connect" and nodes:
                src, dst = rng.choice(nodes), rng.choice(nodes)
                ports = g.input_ports(dst.id)
                if ports:
                    h.push(ConnectCommand(g, src.id, rng.randint(0, 1), dst.id,
                                          rng.choice(ports).name))
            elif op == "remove" and nodes:
                h.push(RemoveNodesCommand(g, {rng.choice(nodes).id}))
            elif op == "rename" and nodes:
                h.push(RenameNodeCommand(g, rng.choice(nodes).id, rng.choice(["a", "b", "é\n'"])))
            elif op == "group" and nodes:
                h.push(GroupCommand(g, {rng.choice(nodes).id for _ in range(2)}))
            elif op == "ungroup":
                blocks = [n for n in nodes if n.kind == "block"]
                if blocks:
                    h.push(UngroupCommand(g, rng.choice(blocks).id))
            elif op == "share":
                layers = [n for n in nodes if n.kind == "layer"]
                if layers:
                    h.push(AddNodeCommand(g, new_shared_node(g, rng.choice(layers).id)))
            elif op == "paste" and nodes:
                h.push(paste_command(g, copy_fragment(g, {rng.choice(nodes).id})))
            elif op == "move" and nodes:
                h.push(MoveNodesCommand(g, {rng.choice(nodes).id: (rng.uniform(-1e4, 1e4), 0.5)}))
        except GraphError:
            pass  # an edit the commands refuse is simply not made
    return Project(g, history=h)


def test_whatever_the_commands_make_can_be_saved_and_loaded(tmp_path: Path) -> None:
    rng = random.Random(7)
    for i in range(60):
        project = random_edits(rng, rng.randint(1, 25))
        path = tmp_path / f"p{i}.kbproj"
        save_project(project, path)
        loaded = load_project(path)
        assert loaded.graph.to_dict() == project.graph.to_dict()
        assert loaded.graph.positions() == project.graph.positions()


# ------------------------------------------------------------------------------ fuzzing
WORDS = ["", "inputs", "Dense", "Add", "layer", "input", "output", "block", "a/b", "\x00",
         "é", "units", "shape", "graph", "nodes", "edges", "kind", "id", "x" * 300]


def random_json(rng: random.Random, ids: list[str], depth: int = 0) -> Any:
    choice = rng.randrange(10 if depth < 3 else 7)
    if choice == 0:
        return None
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.choice([0, 1, -1, 3, 2**31, -(2**70), 10**30])
    if choice == 3:
        return rng.choice([0.0, -0.5, 1e300, 3.25])
    if choice == 4:
        return rng.choice(WORDS)
    if choice in (5, 6):
        return rng.choice(ids) if ids else "id"
    if choice == 7:
        return [random_json(rng, ids, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 8:
        keys = ["id", "kind", "name", "params", "graph", "src", "dst", "class_name"]
        return {rng.choice(keys): random_json(rng, ids, depth + 1) for _ in range(rng.randrange(5))}
    return {rng.choice(WORDS): random_json(rng, ids, depth + 1) for _ in range(rng.randrange(4))}


def slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON value."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else (
            enumerate(item) if isinstance(item, list) else ())
        for key, child in pairs:
            found.append((item, key))
            stack.append(child)
    return found


def graphs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every graph dict (top level and blocks) that still looks like one."""
    found, stack = [], [data.get("graph")]
    while stack:
        graph = stack.pop()
        if isinstance(graph, dict) and isinstance(graph.get("nodes"), list):
            found.append(graph)
            stack.extend(n.get("graph") for n in graph["nodes"] if isinstance(n, dict))
    return found


def mutate(rng: random.Random, data: dict[str, Any], ids: list[str], deep: bool) -> None:
    """One random mutation; ``deep`` allows nesting too deep for the other mutations."""
    op = rng.randrange(9)
    if op == 6 and not deep:
        op = 0
    all_slots = slots(data)
    nodes = [n for g in graphs(data) for n in g["nodes"] if isinstance(n, dict)]
    if op <= 1 and all_slots:  # replace a value by a value of another type
        container, key = rng.choice(all_slots)
        container[key] = random_json(rng, ids)
    elif op == 2 and all_slots:  # delete a key or element
        container, key = rng.choice(all_slots)
        del container[key]
    elif op == 3 and nodes:  # duplicate a node, maybe into another graph
        graph = rng.choice(graphs(data))
        clone = copy.deepcopy(rng.choice(nodes))
        if rng.random() < 0.5:
            clone["id"] = f"new{rng.randrange(100)}"
        graph["nodes"].insert(rng.randrange(len(graph["nodes"]) + 1), clone)
    elif op == 4:  # point an id or a reference somewhere else
        things = nodes + [e for g in graphs(data) if isinstance(g.get("edges"), list)
                          for e in g["edges"] if isinstance(e, dict)]
        if things:
            thing = rng.choice(things)
            key = rng.choice(["id", "src", "dst", "shared_with", "dst_port"])
            thing[key] = rng.choice(ids + ["ghost"])
    elif op == 5:  # an edge that may close a cycle or cross graphs
        graph = rng.choice(graphs(data) or [{"edges": []}])
        if isinstance(graph.get("edges"), list) and ids:
            graph["edges"].append({"id": f"e{rng.randrange(100)}", "src": rng.choice(ids),
                                   "src_port": rng.randrange(3), "dst": rng.choice(ids),
                                   "dst_port": rng.choice(["inputs"] + ids)})
    elif op == 6 and all_slots:  # deep nesting
        container, key = rng.choice(all_slots)
        value = container[key]
        for _ in range(rng.choice([10, 100, 400, 3000])):
            value = [value] if rng.random() < 0.5 else {"graph": value}
        container[key] = value
    elif op == 7 and nodes:  # a node of another kind
        rng.choice(nodes)["kind"] = rng.choice(["input", "layer", "output", "block", "Block"])
    elif op == 8 and len(all_slots) > 1:  # swap two values
        (c1, k1), (c2, k2) = rng.sample(all_slots, 2)
        try:
            c1[k1], c2[k2] = c2[k2], c1[k1]
        except (KeyError, IndexError):
            pass  # one slot was inside the other's value


def assert_consistent(project: Project) -> None:
    """A loaded project is usable: acyclic graphs, and it saves and reloads as it is."""
    for _, node in project.graph.walk():
        if node.subgraph is not None:
            node.subgraph.topological_order()
    project.graph.topological_order()
    again = project_from_json(project_to_json(project), "again", project.weights)
    assert again.graph.to_dict() == project.graph.to_dict()
    assert again.graph.positions() == project.graph.positions()


def test_random_json_mutations_load_or_fail_cleanly(rich: Project, rich_json: dict) -> None:
    rng = random.Random(20240611)
    ids = [node.id for _, node in rich.graph.walk()]
    ids += [e.id for e in rich.graph.edges]
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(10_000):
        data = copy.deepcopy(rich_json)
        count = rng.choice([1, 1, 2, 3])
        for k in range(count):
            mutate(rng, data, ids, deep=k == count - 1)
        weights = rich.weights
        if rng.random() < 0.1:
            weights = {rng.choice(ids + ["ghost"]): [np.ones(2)]}
        try:
            project = project_from_json(data, "model.kbproj", weights)
        except ProjectFileError as exc:
            assert str(exc).startswith("model.kbproj"), (i, str(exc))
            assert "\n" not in str(exc) and len(str(exc)) < 1000, (i, str(exc))
            outcomes["refused"] += 1
        else:
            assert_consistent(project)
            outcomes["loaded"] += 1
    # Both kinds of outcome must actually occur for the test to mean anything.
    assert outcomes["loaded"] > 500 and outcomes["refused"] > 5000, outcomes


def test_random_byte_mutations_load_or_fail_cleanly(rich_bytes: bytes, tmp_path: Path) -> None:
    rng = random.Random(99)
    path = tmp_path / "model.kbproj"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(500):
        data = bytearray(rich_bytes)
        op = rng.randrange(4)
        if op == 0:  # flip bits
            for _ in range(rng.randint(1, 5)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1:  # drop a range
            start = rng.randrange(len(data))
            del data[start:start + rng.randint(1, 64)]
        elif op == 2:  # insert junk
            start = rng.randrange(len(data))
            data[start:start] = rng.randbytes(rng.randint(1, 64))
        else:  # overwrite a header-sized run with junk
            start = rng.randrange(len(data))
            data[start:start + 30] = rng.randbytes(30)
        path.write_bytes(bytes(data))
        try:
            project = load_project(path)
        except ProjectFileError:
            outcomes["refused"] += 1
        else:
            assert_consistent(project)
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 250, outcomes
