import pytest
import torch

import dropout_lab as dl


@pytest.fixture(scope="session")
def data():
    """The real FashionMNIST (make test fetches it before pytest runs)."""
    return dl.load_fashion_mnist()


@pytest.fixture(scope="session")
def small_data(data):
    """5,000 training images and 2,000 test images: enough to learn, quick to train."""
    return (data.X_train[:5000], data.y_train[:5000], data.X_test[:2000], data.y_test[:2000])


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def verdict(capsys):
    """verdict(check, *args) runs a check of dropout_lab.checks and returns
    (passed, the one line it printed), after asserting that it printed exactly one
    line and that the line's [PASS]/[FAIL] matches what it returned."""
    def run(check, *args):
        passed = check(*args)
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("[PASS]" if passed else "[FAIL]")
        return passed, lines[0]
    return run
