"""Exercise 5's checks beyond their tables (tests/test_checks_tables.py walks those)."""
import torch

from dropout_lab.checks import ex05_dropconnect as ex05


def test_failures_are_one_line(capsys):
    for check, table in ((ex05.check_dropconnect_linear, ex05.LINEAR_MISTAKES),
                         (ex05.check_dropconnect_mc, ex05.MC_MISTAKES)):
        assert not check(table[0].wrong)
        assert capsys.readouterr().out.count("\n") == 1  # one line, for the grader


def test_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex05.check_dropconnect_linear(ex05.dropconnect_linear)
    assert torch.equal(torch.rand(3), expected)
