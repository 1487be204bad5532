"""A run that learned nothing useful says so, with the likely cause (issue 12 item 16)."""

from kbuilder.runtime.diagnosis import RunFacts, diagnose


def test_a_diverging_loss_with_a_huge_learning_rate_blames_the_learning_rate():
    text = diagnose(RunFacts(epoch_losses=[14.2, 14.5, 14.5], first_loss=2.3,
                             learning_rate=9.9, optimizer="adam", accuracy=0.1,
                             majority_share=0.1))
    assert text.startswith("The loss rose from 2.3 to 14.5 and never came back, ")
    assert "test accuracy 0.10 is no better than always guessing the most common class (0.10)"\
        in text
    assert "learning rate 9.9 is probably too high for adam; try 0.001." in text


def test_a_flat_loss_with_a_tiny_learning_rate_blames_it_too():
    text = diagnose(RunFacts(epoch_losses=[2.30, 2.30, 2.30], first_loss=2.30,
                             learning_rate=1e-7, optimizer="sgd"))
    assert "did not improve in 3 epochs" in text and "too low for sgd; try 0.01" in text


def test_chance_accuracy_with_a_normal_learning_rate_points_at_the_data():
    text = diagnose(RunFacts(epoch_losses=[1.1, 1.0, 0.99], first_loss=1.2,
                             learning_rate=1e-3, accuracy=0.34, accuracy_split="validation",
                             majority_share=0.34))
    assert text.startswith("The validation accuracy 0.34 is no better")
    assert "labels belong to the inputs" in text


def test_a_run_that_learned_says_nothing():
    assert diagnose(RunFacts(epoch_losses=[0.9, 0.5, 0.3], first_loss=2.3,
                             learning_rate=1e-3, accuracy=0.95, majority_share=0.1)) == ""
    assert diagnose(RunFacts()) == ""
