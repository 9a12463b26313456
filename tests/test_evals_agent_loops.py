"""Agent loop rates with the oracle as referee, on the shapes fakes (right by construction, or wrong on purpose)."""
from mmkit.agents.fakes import ShapesGenerator, ShapesVLM
from mmkit.evals.agent_loops import format_loop_rates, measure_agent_loops


def test_rates_of_faithful_models_are_one_and_agree_with_the_oracle():
    rates = measure_agent_loops(ShapesVLM(), ShapesGenerator(size=64), n=4, steps=2)
    assert [r.loop for r in rates] == ["generate", "edit"]
    for r in rates:
        assert (r.n, r.done, r.oracle_ok, r.agreement, r.attempts) == (4, 1.0, 1.0, 1.0, 1.0), r
    assert "| edit | 4 | 1.00 |" in format_loop_rates(rates)


def test_a_generator_that_draws_the_wrong_colour_is_caught_by_both():
    faults = ["wrong_colour"] * 100  # every call draws the next palette colour
    rates = measure_agent_loops(ShapesVLM(), ShapesGenerator(size=64, faults=faults), n=2, steps=2, attempts=2)
    generate = rates[0]
    assert generate.done == 0.0 and generate.oracle_ok == 0.0 and generate.agreement == 1.0
    assert generate.attempts == 2.0  # the budget was spent
