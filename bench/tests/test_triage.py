"""One bench/triage.py run in which every pair stays disturbed (t_triage.sh runs it through
pytest_checks; HZ3_BUILD is the build to run)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import triage  # noqa: E402

RESULT_GROUP = "triage"


# A pair that stays disturbed is rerun, then discarded, and the output says so; with no pair left
# the timed gates cannot decide: INCONCLUSIVE, exit 3 (never a silent "no change").
@pytest.mark.name("triage_disturbed_discarded")
def test_disturbed_discarded(monkeypatch, capfd):
    monkeypatch.setattr(triage, "disturbance", lambda pair, peers, limit: "A wall/cpu 1.90 vs B 1.00 (descheduled)")
    monkeypatch.setattr(sys, "argv", ["triage.py", "release", "release", "--build", os.environ["HZ3_BUILD"],
                                      "--runs", "6", "--iters", "200000", "--no-callgrind", "--probes", "off",
                                      "--retries", "1"])
    with pytest.raises(SystemExit) as ex:
        triage.main()
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    shown = " ".join(x for x in lines if "pair 3" in x or "INCONCL" in x or "pairs:" in x)[:300]
    assert ex.value.code == 3, f"exit {ex.value.code}: {shown}"
    assert any(x.startswith("triage: small pair 3 disturbed: A wall/cpu 1.90 vs B 1.00 (descheduled); rerun 1/1")
               for x in lines), shown
    assert any(x.startswith("triage: small pair 3 discarded: ") for x in lines), shown
    assert any(x.startswith("triage: INCONCLUSIVE") for x in lines), shown
