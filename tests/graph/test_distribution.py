"""Data-parallel settings (issue 16 item 5): typed, validated, saved, old projects open;
the batch semantics in words; generated scripts carry the distribution (item 6)."""

import dataclasses

import pytest

from kbuilder.graph.codegen import generate_training_script
from kbuilder.graph.distribution import batch_problem, batch_split, unsupported_backend
from kbuilder.graph.project import Project, load_project, save_project
from kbuilder.graph.settings import SettingsError, TrainingSettings
from kbuilder.graph.templates import TEMPLATES


def test_the_setting_round_trips_through_the_project_file(tmp_path):
    project = Project.new(TEMPLATES["mlp_classifier"].build())
    project.training = TrainingSettings(distribute="data-parallel", devices=4, batch_size=64)
    save_project(project, tmp_path / "p.kbproj")
    again = load_project(tmp_path / "p.kbproj").training
    assert (again.distribute, again.devices) == ("data-parallel", 4)
    everything = TrainingSettings(distribute="data-parallel")  # devices None: all
    assert TrainingSettings.from_dict(everything.to_dict()) == everything


def test_old_projects_open_and_keep_their_settings_as_they_were():
    old = TrainingSettings().to_dict()
    assert "distribute" not in old and "devices" not in old  # written only when set
    assert TrainingSettings.from_dict(old).distribute == "none"


@pytest.mark.parametrize(("field", "value"), [
    ("distribute", "model-parallel"), ("devices", 0), ("devices", "all"), ("devices", True),
])
def test_a_bad_distribution_setting_is_refused_naming_it(field, value):
    with pytest.raises(SettingsError) as info:
        TrainingSettings.from_dict({**TrainingSettings().to_dict(), field: value})
    assert info.value.param == field


def test_the_batch_semantics_are_said_plainly():
    assert batch_split(64, 2) == "Batch 64 in all: 32 per device on 2 devices."
    assert batch_split(64, 2, 2) == ("Batch 64 in all: 16 per device on 2 hosts (32 per host, "
                                     "2 devices each).")
    assert batch_problem(64, 4) is None
    assert batch_problem(30, 4) == ("The batch size 30 cannot be split evenly over 4 devices; "
                                    "use a multiple of 4, e.g. 28 or 32.")
    assert "on each of 2 hosts (4 in all)" in batch_problem(6, 2, 2)


def test_only_jax_distributes_and_the_others_are_told_to_use_it():
    assert unsupported_backend("jax") is None
    for backend in ("tensorflow", "torch"):
        assert "Choose the JAX backend" in unsupported_backend(backend)


def test_a_data_parallel_script_carries_its_distribution():
    project = Project.new(TEMPLATES["mlp_classifier"].build())
    plain = generate_training_script(project)
    assert "distribution" not in plain and "XLA_FLAGS" not in plain
    project.training = dataclasses.replace(project.training, distribute="data-parallel",
                                           devices=2)
    code = generate_training_script(project)
    compile(code, "train.py", "exec")
    assert 'os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")' \
        in code
    assert code.index("XLA_FLAGS") < code.index("import keras")  # before the backend loads
    body = code[code.index("def main():"):]
    # Hosts joined and the distribution set before the seed, the data and the model...
    assert body.index("placement = distribute()") < body.index("set_random_seed") \
        < body.index("host_share(x_train") < body.index("build_model()")
    # ...and the test split judged without it, after training.
    assert body.index("model.fit(") < body.index("set_distribution(None)") \
        < body.index("model.evaluate(")
    assert "keras.distribution.initialize()" in code and "auto_shard_dataset" in code
    project.training = dataclasses.replace(project.training, device="gpu:1", devices=2)
    gpu = generate_training_script(project)
    assert 'os.environ.setdefault("CUDA_VISIBLE_DEVICES", "1,2")' in gpu


def _data_parallel_notebook_project():
    from kbuilder.graph.settings import DataSettings

    project = Project.new(TEMPLATES["mlp_classifier"].build())
    project.data = DataSettings(source="digits")
    project.training = dataclasses.replace(project.training, distribute="data-parallel",
                                           devices=2, epochs=1, batch_size=64)
    return project


def test_a_data_parallel_notebook_carries_its_distribution():
    from kbuilder.graph.codegen import generate_notebook

    plain = generate_notebook(Project.new(TEMPLATES["mlp_classifier"].build()))
    assert not any("distribut" in c.source for c in plain.cells)
    notebook = generate_notebook(_data_parallel_notebook_project())
    cells = [c.source for c in notebook.cells]
    code = "\n\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    compile(code, "notebook.py", "exec")
    assert 'os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")' \
        in cells[1] and cells[1].index("XLA_FLAGS") < cells[1].index("import keras")
    assert cells[2].startswith("## Data-parallel")
    # Hosts joined and the distribution set before the seed, the data and the model...
    assert code.index("placement = distribute()") < code.index("set_random_seed") \
        < code.index("host_share(x_train") < code.index("build_model()")
    # ...and the test split judged without it, after training.
    assert code.index("model.fit(") < code.index("set_distribution(None)") \
        < code.index("model.evaluate(")

